"""spec / impl / done / worktrees against real git (bare origin) and real Docker."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from kinfra.domain.config import load_config
from kinfra.testing.dockerkit import compose_projects
from kinfra.testing.example import claims, impl_worktree, kinfra, make_example_project, registry
from kinfra.testing.gitrepo import commit_all, git


def _branches(repo: Path) -> set[str]:
    out = git(repo, "branch", "--list", "--format=%(refname:short)").stdout
    return set(out.split())


def _worktree_paths(repo: Path) -> set[Path]:
    out = git(repo, "worktree", "list", "--porcelain").stdout
    return {
        Path(line.split(" ", 1)[1]) for line in out.splitlines() if line.startswith("worktree ")
    }


def _running(prefix: str, slot: int) -> bool:
    out = subprocess.run(
        ["docker", "compose", "ls", "--format", "json"], capture_output=True, text=True, check=True
    ).stdout
    return any(p["Name"] == f"{prefix}-slot-{slot}" for p in json.loads(out or "[]"))


def _volumes(prefix: str) -> list[str]:
    out = subprocess.run(
        ["docker", "volume", "ls", "--format", "{{.Name}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [v for v in out.split() if v.startswith(prefix)]


def _get(url: str) -> str:
    deadline = time.monotonic() + 10
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                body: str = response.read().decode()
                return body
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_full_cycle_impl_worktrees_serve_done(
    tmp_path: Path, kinfra_home: Path, docker_prefix: str
) -> None:
    repo = make_example_project(tmp_path, docker_prefix, pool_size=2)
    assert kinfra(repo, "sandbox", "provision").returncode == 0

    result = kinfra(repo, "impl", "genome/M1")
    assert result.returncode == 0, result.stderr
    wt = (tmp_path / f"{docker_prefix}-impl-genome-M1").resolve()
    assert wt.is_dir() and "slot       1" in result.stdout
    assert claims(kinfra_home, docker_prefix)[1] == str(wt)
    api_port = load_config(repo / "kinfra.toml").port("api").host_port(1)
    env = (wt / ".env.sandbox").read_text()
    assert "SLOT_NUMBER=1" in env and f"API_PORT={api_port}" in env

    listing = kinfra(repo, "worktrees", "--json")
    assert listing.returncode == 0, listing.stderr
    (row,) = json.loads(listing.stdout)
    assert (row["name"], row["type"], row["slot"], row["port"]) == (wt.name, "impl", 1, api_port)
    assert row["sandbox"] == f"slot 1 (running, :{api_port})" and row["uncommitted"] is False
    table = kinfra(repo, "worktrees").stdout
    assert f"slot 1 (running, :{api_port})" in table

    # The slot serves this worktree's code, live through the bind mount.
    (wt / "app" / "index.html").write_text("served from the worktree\n")
    assert "served from the worktree" in _get(f"http://127.0.0.1:{api_port}/app/index.html")
    git(wt, "checkout", "--", "app/index.html")

    done = kinfra(repo, "done", "genome-M1")
    assert done.returncode == 0, done.stderr
    assert claims(kinfra_home, docker_prefix)[1] is None
    assert not _running(docker_prefix, 1)
    assert not wt.exists() and wt not in _worktree_paths(repo)
    assert "impl/genome-M1" not in _branches(repo)
    assert f"{docker_prefix}-slot-1_dbdata" in _volumes(docker_prefix)


def test_no_free_slot_creates_nothing(
    tmp_path: Path, kinfra_home: Path, docker_prefix: str
) -> None:
    repo = make_example_project(
        tmp_path, docker_prefix, pool_size=1, mini=True, milestones=("a/M1", "b/M1")
    )
    assert kinfra(repo, "sandbox", "provision").returncode == 0
    assert kinfra(repo, "impl", "a/M1").returncode == 0
    before = registry(kinfra_home)

    result = kinfra(repo, "impl", "b/M1")
    assert result.returncode == 1
    assert "All 1 slots in use. Run `kinfra worktrees` to see active worktrees." in result.stderr
    assert not (tmp_path / f"{docker_prefix}-impl-b-M1").exists()
    assert "impl/b-M1" not in _branches(repo)
    assert registry(kinfra_home) == before


def test_missing_milestone_and_existing_worktree(
    tmp_path: Path, kinfra_home: Path, docker_prefix: str
) -> None:
    repo = make_example_project(tmp_path, docker_prefix, pool_size=2, mini=True)
    assert kinfra(repo, "sandbox", "provision").returncode == 0
    missing = kinfra(repo, "impl", "genome/M9")
    assert missing.returncode == 1
    assert (
        "No milestone matching 'M9' found in docs/designs/genome/implementation/" in missing.stderr
    )
    # Case-insensitive match of the milestone file.
    assert kinfra(repo, "impl", "genome/m1", "--no-sandbox").returncode == 0
    again = kinfra(repo, "impl", "genome/m1")
    assert again.returncode == 1
    assert f"Worktree {docker_prefix}-impl-genome-m1 already exists" in again.stderr
    assert all(c is None for c in claims(kinfra_home, docker_prefix).values())


FAILING_UNTIL_READY = """\
services:
  db:
    image: busybox:1.36
    init: true
    command: ["sh", "-c", "exec httpd -f -p 5432 -h /code"]
    ports:
      - "5432:5432"
    healthcheck:
      test: ["CMD", "test", "-f", "/code/ready"]
      interval: 1s
      timeout: 1s
      retries: 2
"""

MOUNT_CODE = """
[[mounts]]
services = ["db"]
source = "app"
target = "/code"
read_only = true
"""


def test_failed_start_releases_slot_keeps_worktree_and_recovers(
    tmp_path: Path, kinfra_home: Path, docker_prefix: str
) -> None:
    repo = make_example_project(
        tmp_path,
        docker_prefix,
        pool_size=1,
        mini=True,
        compose_text=FAILING_UNTIL_READY,
        extra_config=MOUNT_CODE,
    )
    (repo / "app").mkdir()
    (repo / "app" / "index.html").write_text("code\n")
    commit_all(repo, "app")
    git(repo, "push", "-q", "origin", "main")
    assert kinfra(repo, "sandbox", "provision").returncode == 0

    result = kinfra(repo, "impl", "genome/M1")
    wt = (tmp_path / f"{docker_prefix}-impl-genome-M1").resolve()
    assert result.returncode == 1, result.stdout
    assert "Failed to start sandbox: " in result.stderr
    assert (
        f"Slot released. Worktree kept at ../{wt.name}. Fix issue and run `kinfra sandbox up`."
        in result.stderr
    )
    assert wt.is_dir() and "impl/genome-M1" in _branches(repo)
    assert claims(kinfra_home, docker_prefix)[1] is None
    assert not _running(docker_prefix, 1)

    # Fix the cause in the worktree, then run the printed recovery command there.
    (wt / "app" / "ready").write_text("yes\n")
    up = kinfra(wt / "app", "sandbox", "up")
    assert up.returncode == 0, up.stderr
    assert claims(kinfra_home, docker_prefix)[1] == str(wt)
    assert _running(docker_prefix, 1)
    assert "SLOT_NUMBER=1" in (wt / ".env.sandbox").read_text()

    done = kinfra(repo, "done", "genome-M1", "--force")
    assert done.returncode == 0, done.stderr
    assert not _running(docker_prefix, 1)


def test_done_refuses_unsaved_work_and_force_proceeds(
    tmp_path: Path, kinfra_home: Path, docker_prefix: str
) -> None:
    repo, wt = impl_worktree(tmp_path, docker_prefix)

    (wt / "notes.txt").write_text("work in progress\n")
    dirty = kinfra(repo, "done", "genome-M1")
    assert dirty.returncode == 1
    assert (
        "Worktree has uncommitted changes. Commit or stash, then retry. "
        "Use --force to proceed anyway." in dirty.stderr
    )
    commit_all(wt, "wip")
    unpushed = kinfra(repo, "finish", "genome-M1")
    assert unpushed.returncode == 1
    assert (
        "Worktree has unpushed commits. Push first, then retry. Use --force to proceed anyway."
        in unpushed.stderr
    )
    assert wt.is_dir() and claims(kinfra_home, docker_prefix)[1] == str(wt)
    assert _running(docker_prefix, 1)

    forced = kinfra(repo, "complete", "genome-M1", "--force")
    assert forced.returncode == 0, forced.stderr
    assert not wt.exists() and claims(kinfra_home, docker_prefix)[1] is None
    assert not _running(docker_prefix, 1)
    # The unmerged branch is kept: --force never loses commits.
    assert "impl/genome-M1" in _branches(repo)


def test_done_after_push_and_on_spec(tmp_path: Path, kinfra_home: Path, docker_prefix: str) -> None:
    repo = make_example_project(tmp_path, docker_prefix, pool_size=2, mini=True)
    assert kinfra(repo, "sandbox", "provision").returncode == 0
    spec = kinfra(repo, "spec", "genome")
    assert spec.returncode == 0, spec.stderr
    spec_wt = (tmp_path / f"{docker_prefix}-spec-genome").resolve()
    assert (spec_wt / "docs" / "designs" / "genome").is_dir()
    assert "spec/genome" in _branches(repo)

    refused = kinfra(repo, "done", f"{docker_prefix}-spec-genome")
    assert refused.returncode == 1
    assert (
        "Spec worktrees don't have sandboxes to release. Just run `git worktree remove`."
        in refused.stderr
    )
    assert spec_wt.is_dir()

    assert kinfra(repo, "impl", "genome/M1").returncode == 0
    wt = (tmp_path / f"{docker_prefix}-impl-genome-M1").resolve()
    (wt / "feature.txt").write_text("done\n")
    commit_all(wt, "feature")
    git(wt, "push", "-q", "-u", "origin", "HEAD")
    # Even a unique part of a name is never guessed: the candidate is named.
    partial = kinfra(repo, "done", "impl-genome")
    assert partial.returncode == 1 and f"did you mean {wt.name}?" in partial.stderr
    assert wt.is_dir()
    done = kinfra(repo, "done", "genome-M1")
    assert done.returncode == 0, done.stderr
    assert not wt.exists() and spec_wt.is_dir()


def test_done_after_rm_rf_still_releases(
    tmp_path: Path, kinfra_home: Path, docker_prefix: str
) -> None:
    repo, wt = impl_worktree(tmp_path, docker_prefix)
    subprocess.run(["rm", "-rf", str(wt)], check=True)

    listing = json.loads(kinfra(repo, "worktrees", "--json").stdout)
    assert [r["exists"] for r in listing] == [False]

    done = kinfra(repo, "done", "genome-M1")
    assert done.returncode == 0, done.stderr
    assert claims(kinfra_home, docker_prefix)[1] is None
    assert not _running(docker_prefix, 1)
    assert wt not in _worktree_paths(repo)


def test_done_from_other_worktree_and_main_removes_only_target(
    tmp_path: Path, kinfra_home: Path, docker_prefix: str
) -> None:
    repo = make_example_project(
        tmp_path, docker_prefix, pool_size=2, mini=True, milestones=("a/M1", "b/M1")
    )
    assert kinfra(repo, "sandbox", "provision").returncode == 0
    assert kinfra(repo, "impl", "a/M1").returncode == 0
    assert kinfra(repo, "impl", "b/M1").returncode == 0
    assert kinfra(repo, "spec", "a").returncode == 0
    wt_a = (tmp_path / f"{docker_prefix}-impl-a-M1").resolve()
    wt_b = (tmp_path / f"{docker_prefix}-impl-b-M1").resolve()
    spec_a = (tmp_path / f"{docker_prefix}-spec-a").resolve()
    slot_of = {v: k for k, v in claims(kinfra_home, docker_prefix).items()}

    # "M1" is part of both names: never guessed, the candidates are named.
    ambiguous = kinfra(repo, "done", "M1")
    assert ambiguous.returncode == 1
    assert f"did you mean {wt_a.name} or {wt_b.name}?" in ambiguous.stderr
    assert wt_a.is_dir() and wt_b.is_dir() and len(slot_of) == 2

    # From deep inside worktree A, finish B.
    inside = wt_a / "docs" / "designs"
    result = kinfra(inside, "done", "b-M1")
    assert result.returncode == 0, result.stderr
    assert not wt_b.exists() and wt_a.is_dir() and spec_a.is_dir()
    assert claims(kinfra_home, docker_prefix)[slot_of[str(wt_a)]] == str(wt_a)
    assert _running(docker_prefix, slot_of[str(wt_a)])
    assert not _running(docker_prefix, slot_of[str(wt_b)])

    # From the main checkout, finish A.
    result = kinfra(repo, "done", "a-M1")
    assert result.returncode == 0, result.stderr
    assert not wt_a.exists() and spec_a.is_dir() and (repo / "kinfra.toml").is_file()
    assert _worktree_paths(repo) == {repo.resolve(), spec_a}
    assert all(c is None for c in claims(kinfra_home, docker_prefix).values())


def test_parallel_impls_get_distinct_slots(
    tmp_path: Path, kinfra_home: Path, docker_prefix: str
) -> None:
    features = [f"f{i}/M1" for i in range(8)]
    repo = make_example_project(
        tmp_path, docker_prefix, pool_size=6, mini=True, milestones=tuple(features)
    )
    assert kinfra(repo, "sandbox", "provision").returncode == 0
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "kinfra", "impl", target],
            cwd=repo,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for target in features
    ]
    outcomes = [(p.wait(timeout=240), *p.communicate()) for p in procs]
    ok = [i for i, (code, _, _) in enumerate(outcomes) if code == 0]
    failed = [i for i, (code, _, _) in enumerate(outcomes) if code != 0]
    assert len(ok) == 6, outcomes
    assert len(failed) == 2
    for i in failed:
        assert "All 6 slots in use." in outcomes[i][2], outcomes[i]
        assert not (tmp_path / f"{docker_prefix}-impl-f{i}-M1").exists()
        assert f"impl/f{i}-M1" not in _branches(repo)

    held = claims(kinfra_home, docker_prefix)
    expected = {str((tmp_path / f"{docker_prefix}-impl-f{i}-M1").resolve()) for i in ok}
    assert set(held.values()) == expected  # 6 distinct slots, one per worktree
    assert len(registry(kinfra_home)["projects"][docker_prefix]["slots"]) == 6
    assert sorted(compose_projects(docker_prefix)) == sorted(
        f"{docker_prefix}-slot-{n}" for n in range(1, 7)
    )
    assert _worktree_paths(repo) == {repo.resolve(), *map(Path, expected)}
    doctor = kinfra(repo, "doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "no problems found" in doctor.stdout


def test_worktree_copy_and_setup(tmp_path: Path, kinfra_home: Path, docker_prefix: str) -> None:
    extra = '\n[worktree]\ncopy = [".env", "config/local.toml", "absent.txt"]\nsetup = "echo setup-ran; test -f .env"\n'
    repo = make_example_project(tmp_path, docker_prefix, mini=True, extra_config=extra)
    (repo / ".gitignore").write_text(".env\nconfig/local.toml\n")
    commit_all(repo, "ignore")
    git(repo, "push", "-q", "origin", "main")
    (repo / ".env").write_text("SECRET_FREE=1\n")
    (repo / "config").mkdir()
    (repo / "config" / "local.toml").write_text("x = 1\n")

    result = kinfra(repo, "impl", "genome/M1", "--no-sandbox")
    assert result.returncode == 0, result.stderr
    wt = tmp_path / f"{docker_prefix}-impl-genome-M1"
    assert (wt / ".env").read_text() == "SECRET_FREE=1\n"
    assert (wt / "config" / "local.toml").read_text() == "x = 1\n"
    assert "setup │ setup-ran" in result.stderr
    assert "absent.txt: not in the main checkout" in result.stderr
    assert not (kinfra_home / "registry.json").exists()  # --no-sandbox claims nothing

    # A failing setup is reported; the worktree is kept.
    (repo / "kinfra.toml").write_text(
        (repo / "kinfra.toml").read_text().replace("test -f .env", "exit 3")
    )
    (repo / "docs" / "designs" / "genome" / "implementation" / "M2_x.md").write_text("# M2\n")
    second = kinfra(repo, "impl", "genome/M2", "--no-sandbox")
    assert second.returncode == 0, second.stderr
    assert "failed (exit 3); the worktree is kept" in second.stderr
    assert (tmp_path / f"{docker_prefix}-impl-genome-M2").is_dir()


def test_concurrent_impls_of_the_same_name(
    tmp_path: Path, kinfra_home: Path, docker_prefix: str
) -> None:
    repo = make_example_project(tmp_path, docker_prefix, pool_size=3, mini=True)
    assert kinfra(repo, "sandbox", "provision").returncode == 0
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "kinfra", "impl", "genome/M1"],
            cwd=repo,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outcomes = [(p.wait(timeout=240), *p.communicate()) for p in procs]
    assert sorted(code for code, _, _ in outcomes) == [0, 1, 1], outcomes
    for code, _, err in outcomes:
        if code:
            # Refused by the winner's record while it runs, or after by the
            # directory it made.
            assert (
                f"`kinfra impl genome/M1` is running for {docker_prefix}-impl-genome-M1" in err
                or f"Worktree {docker_prefix}-impl-genome-M1 already exists" in err
            ), err
    wt = str((tmp_path / f"{docker_prefix}-impl-genome-M1").resolve())
    held = [c for c in claims(kinfra_home, docker_prefix).values() if c is not None]
    assert held == [wt]  # one claim, kept by the winner
    assert sum(_running(docker_prefix, n) for n in (1, 2, 3)) == 1
