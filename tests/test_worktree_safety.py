"""Safety of the worktree workflow: what `done`, `doctor` and `impl` must
never do to worktrees, claims and branches that are not theirs to touch.

Real git in temp dirs, real kinfra processes, real Docker where a slot runs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from kinfra.adapters.registry import RegistryStore
from kinfra.testing.dockerkit import unique_prefix
from kinfra.testing.example import claims, kinfra, make_example_project
from kinfra.testing.gitrepo import commit_all, git


def _worktree_paths(repo: Path) -> set[Path]:
    out = git(repo, "worktree", "list", "--porcelain").stdout
    return {
        Path(line.split(" ", 1)[1]) for line in out.splitlines() if line.startswith("worktree ")
    }


def test_done_never_removes_a_locked_worktree(tmp_path: Path) -> None:
    prefix = unique_prefix()
    repo = make_example_project(tmp_path, prefix, mini=True)
    assert kinfra(repo, "impl", "genome/M1", "--no-sandbox").returncode == 0
    wt = (tmp_path / f"{prefix}-impl-genome-M1").resolve()
    # Deleted by hand, but locked: the user wants git to keep the entry.
    git(repo, "worktree", "lock", "--reason", "on a usb disk", str(wt))
    shutil.rmtree(wt)

    result = kinfra(repo, "done", "genome-M1")
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"worktree {wt} is locked" in result.stderr
    assert "git worktree unlock" in result.stderr
    assert wt in _worktree_paths(repo)  # the entry and its lock are still there
    assert "locked" in git(repo, "worktree", "list", "--porcelain").stdout


def test_impl_again_after_done_continues_the_pushed_branch(tmp_path: Path) -> None:
    prefix = unique_prefix()
    repo = make_example_project(tmp_path, prefix, mini=True)
    wt = (tmp_path / f"{prefix}-impl-genome-M1").resolve()
    assert kinfra(repo, "impl", "genome/M1", "--no-sandbox").returncode == 0
    (wt / "work.txt").write_text("first session\n")
    commit_all(wt, "work")
    git(wt, "push", "-q", "-u", "origin", "HEAD")
    pushed = git(wt, "rev-parse", "HEAD").stdout.strip()
    done = kinfra(repo, "done", "genome-M1")
    assert done.returncode == 0, done.stderr
    assert not wt.exists() and "impl/genome-M1" not in git(repo, "branch").stdout

    again = kinfra(repo, "impl", "genome/M1", "--no-sandbox")
    assert again.returncode == 0, again.stderr
    assert git(wt, "rev-parse", "HEAD").stdout.strip() == pushed
    assert (wt / "work.txt").read_text() == "first session\n"
    upstream = git(wt, "rev-parse", "--abbrev-ref", "@{upstream}").stdout.strip()
    assert upstream == "origin/impl/genome-M1"
    assert "from origin/impl/genome-M1" in again.stdout


def test_done_leaves_worktrees_kinfra_did_not_make(tmp_path: Path) -> None:
    prefix = unique_prefix()
    repo = make_example_project(tmp_path, prefix, mini=True)
    scratch = tmp_path / "scratch-mine"
    git(repo, "worktree", "add", "-q", "-b", "impl/exp-X", str(scratch))
    # The right name in the wrong place is not kinfra's either.
    elsewhere = tmp_path / "nested" / f"{prefix}-impl-exp-Y"
    git(repo, "worktree", "add", "-q", "-b", "impl/exp-Y", str(elsewhere))

    for wanted in ("exp-X", "scratch-mine", "exp-Y", f"{prefix}-impl-exp-Y"):
        result = kinfra(repo, "done", wanted, "--force")
        assert result.returncode == 1, (wanted, result.stdout, result.stderr)
        assert f"No worktree matching '{wanted}'" in result.stderr
    assert scratch.is_dir() and elsewhere.is_dir()
    assert {scratch.resolve(), elsewhere.resolve()} <= _worktree_paths(repo)
    assert "impl/exp-X" in git(repo, "branch").stdout
    listing = kinfra(repo, "worktrees", "--json")
    assert listing.returncode == 0 and json.loads(listing.stdout) == []


def test_done_releases_every_slot_the_worktree_claims(
    tmp_path: Path, kinfra_home: Path, docker_prefix: str
) -> None:
    repo = make_example_project(tmp_path, docker_prefix, pool_size=3, mini=True)
    assert kinfra(repo, "sandbox", "provision").returncode == 0
    assert kinfra(repo, "impl", "genome/M1", "--no-sandbox").returncode == 0
    wt = (tmp_path / f"{docker_prefix}-impl-genome-M1").resolve()
    with RegistryStore().transaction() as reg:  # the registry file of this test's KINFRA_HOME
        reg.claim(docker_prefix, 1, wt, kind="impl")
        reg.claim(docker_prefix, 3, wt, kind="impl")

    result = kinfra(repo, "done", "genome-M1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "slot 1 stopped" in result.stdout
    assert "slot 3, also claimed by this worktree, stopped and released" in result.stderr
    assert claims(kinfra_home, docker_prefix) == {1: None, 2: None, 3: None}
    assert not wt.exists()
