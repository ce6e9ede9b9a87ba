"""Safety of the worktree workflow: what `done`, `doctor` and `impl` must
never do to worktrees, claims and branches that are not theirs to touch.

Real git in temp dirs, real kinfra processes, real Docker where a slot runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kinfra.adapters.registry import Claim, ClaimKind, RegistryStore, SlotRecord
from kinfra.adapters.statefile import file_lock
from kinfra.domain.names import impl_name
from kinfra.errors import Interrupted, SandboxStartError
from kinfra.interrupts import deferred_interrupts
from kinfra.testing.dockerkit import compose_projects, unique_prefix
from kinfra.testing.example import claims, impl_worktree, kinfra, make_example_project
from kinfra.testing.gitrepo import commit_all, git
from kinfra.workflows.worktree_create import _start_error


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
        assert f"'{wanted}' is a git worktree kinfra did not make" in result.stderr
    assert scratch.is_dir() and elsewhere.is_dir()
    assert {scratch.resolve(), elsewhere.resolve()} <= _worktree_paths(repo)
    assert "impl/exp-X" in git(repo, "branch").stdout
    listing = kinfra(repo, "worktrees", "--json")
    assert listing.returncode == 0 and json.loads(listing.stdout) == []


def test_done_releases_every_slot_the_worktree_claims(
    tmp_path: Path, kinfra_home: Path, docker_prefix: str
) -> None:
    repo, wt = impl_worktree(tmp_path, docker_prefix, pool_size=3, flags=("--no-sandbox",))
    with RegistryStore().transaction() as reg:  # the registry file of this test's KINFRA_HOME
        reg.claim(docker_prefix, 1, wt, kind=ClaimKind.IMPL)
        reg.claim(docker_prefix, 3, wt, kind=ClaimKind.IMPL)

    result = kinfra(repo, "done", "genome-M1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "slot 1 stopped" in result.stdout
    assert "slot 3, also claimed by this worktree, stopped and released" in result.stderr
    assert claims(kinfra_home, docker_prefix) == {1: None, 2: None, 3: None}
    assert not wt.exists()


def _wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def _impl_process(repo: Path, target: str, env: dict[str, str]) -> subprocess.Popen[str]:
    # Its own session, so that the processes it leaves (git's ssh command)
    # can be ended by its group id afterwards.
    return subprocess.Popen(
        [sys.executable, "-m", "kinfra", "impl", target],
        cwd=repo,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _end_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def test_second_interrupt_during_cleanup_still_releases_the_claim(
    tmp_path: Path, kinfra_home: Path, docker_prefix: str
) -> None:
    repo = make_example_project(tmp_path, docker_prefix, pool_size=1, mini=True)
    assert kinfra(repo, "sandbox", "provision").returncode == 0
    # A remote whose fetch hangs: the first Ctrl-C lands in `git fetch`.
    git(repo, "remote", "set-url", "origin", "ssh://nowhere/x.git")
    proc = _impl_process(repo, "genome/M1", {"GIT_SSH_COMMAND": "sleep 20 #"})
    try:
        _wait_for(lambda: claims(kinfra_home, docker_prefix)[1] is not None, 20, "the claim")
        # Holding the registry lock keeps the cleanup's release waiting, so
        # the second signal is certain to arrive while the cleanup runs.
        with file_lock(kinfra_home / "registry.json.lock"):
            os.kill(proc.pid, signal.SIGINT)
            time.sleep(0.05)
            os.kill(proc.pid, signal.SIGINT)
            time.sleep(0.5)
        _, err = proc.communicate(timeout=30)
    finally:
        _end_group(proc)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    assert claims(kinfra_home, docker_prefix) == {1: None}
    assert not (tmp_path / f"{docker_prefix}-impl-genome-M1").exists()
    assert "impl/genome-M1" not in git(repo, "branch").stdout
    assert len(_worktree_paths(repo)) == 1


NEVER_HEALTHY = """\
services:
  db:
    image: busybox:1.36
    init: true
    command: ["sh", "-c", "exec httpd -f -p 5432 -h /"]
    ports:
      - "5432:5432"
    healthcheck:
      test: ["CMD", "test", "-f", "/never"]
      interval: 1s
      timeout: 1s
      retries: 60
"""


def test_interrupted_start_stops_releases_and_says_what_is_left(
    tmp_path: Path, kinfra_home: Path, docker_prefix: str
) -> None:
    repo = make_example_project(
        tmp_path, docker_prefix, pool_size=1, mini=True, compose_text=NEVER_HEALTHY
    )
    assert kinfra(repo, "sandbox", "provision").returncode == 0
    wt = (tmp_path / f"{docker_prefix}-impl-genome-M1").resolve()
    proc = _impl_process(repo, "genome/M1", {})
    try:
        # The env file is written just before the start, which then waits
        # for a health check that never passes.
        _wait_for(lambda: (wt / ".env.sandbox").is_file(), 30, "the start")
        time.sleep(1)
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the whole foreground group
        _, err = proc.communicate(timeout=60)
    finally:
        _end_group(proc)
    assert proc.returncode == 130, err
    assert (
        f"interrupted: slot 1 stopped and released, worktree kept at ../{wt.name}; "
        "run `kinfra sandbox up` inside it, or `kinfra done genome-M1`" in err
    )
    assert claims(kinfra_home, docker_prefix) == {1: None}
    assert wt.is_dir() and not compose_projects(docker_prefix)


def test_impl_over_a_claim_without_directory_says_so(
    tmp_path: Path, kinfra_home: Path, docker_prefix: str
) -> None:
    repo = make_example_project(tmp_path, docker_prefix, pool_size=2, mini=True)
    assert kinfra(repo, "sandbox", "provision").returncode == 0
    wt = (tmp_path / f"{docker_prefix}-impl-genome-M1").resolve()
    with RegistryStore().transaction() as reg:  # an impl killed before its worktree existed
        reg.claim(docker_prefix, 1, wt, kind=ClaimKind.IMPL)

    again = kinfra(repo, "impl", "genome/M1")
    assert again.returncode == 1
    assert f"Worktree {wt.name} does not exist, but slot 1 is still claimed for it" in again.stderr
    assert "`kinfra done genome-M1`" in again.stderr and "already exists" not in again.stderr
    assert claims(kinfra_home, docker_prefix) == {1: str(wt), 2: None}

    assert kinfra(repo, "done", "genome-M1").returncode == 0  # what the hint says
    assert claims(kinfra_home, docker_prefix) == {1: None, 2: None}


def test_failed_start_and_failed_stop_hint_points_at_a_real_recovery() -> None:
    name = impl_name("shop", "genome", "M1")
    slot = SlotRecord(1, "i", claim=Claim(Path("/w"), ClaimKind.IMPL, "2026-01-01T00:00:00Z"))
    error = _start_error(SandboxStartError("Failed to start sandbox: boom."), name, slot, False)
    assert "slot 1 stays claimed" in error.message
    assert error.hint is not None
    assert "`kinfra sandbox up` inside ../shop-impl-genome-M1" in error.hint
    assert "`kinfra done genome-M1`" in error.hint and "doctor" not in error.hint


def test_deferred_interrupts_hold_signals_until_the_block_ends() -> None:
    before = signal.getsignal(signal.SIGTERM)
    finished = False
    with pytest.raises(Interrupted) as info, deferred_interrupts():
        signal.raise_signal(signal.SIGTERM)
        finished = True  # the cleanup ran to its end
    assert finished and info.value.signum == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is before
    with deferred_interrupts():
        pass  # no signal: nothing raised
