"""Sandbox commands inside an impl worktree act on its slot, at any depth."""

from __future__ import annotations

import json
from pathlib import Path

from kinfra.testing.example import claims, impl_worktree, kinfra, make_example_project


def test_sandbox_commands_target_the_worktree_slot(
    tmp_path: Path, kinfra_home: Path, docker_prefix: str
) -> None:
    repo = make_example_project(
        tmp_path, docker_prefix, pool_size=2, mini=True, milestones=("a/M1", "b/M1")
    )
    assert kinfra(repo, "sandbox", "provision").returncode == 0
    assert kinfra(repo, "impl", "a/M1").returncode == 0
    assert kinfra(repo, "impl", "b/M1").returncode == 0
    wt_b = (tmp_path / f"{docker_prefix}-impl-b-M1").resolve()
    assert claims(kinfra_home, docker_prefix)[2] == str(wt_b)
    deep = wt_b / "docs" / "designs" / "b" / "implementation"

    status = kinfra(deep, "sandbox", "status", "--json")
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert (data["slot"], data["state"], data["claimed_by"]) == (2, "running", str(wt_b))

    # A stale .env.sandbox is corrected from the registry (the truth).
    env = wt_b / ".env.sandbox"
    env.write_text(env.read_text().replace("SLOT_NUMBER=2", "SLOT_NUMBER=1"))
    status = kinfra(deep, "sandbox", "status")
    assert status.returncode == 0 and "said slot 1; rewritten for slot 2" in status.stderr
    assert "SLOT_NUMBER=2" in env.read_text()

    down = kinfra(deep, "sandbox", "down")
    assert down.returncode == 0 and "slot 2 stopped" in down.stdout
    assert claims(kinfra_home, docker_prefix)[2] == str(wt_b)  # impl keeps its claim
    assert (
        json.loads(kinfra(repo, "sandbox", "status", "--slot", "1", "--json").stdout)["state"]
        == "running"
    )  # slot 1 (worktree a) untouched
    up = kinfra(deep, "sandbox", "up")
    assert up.returncode == 0 and "slot 2 is up" in up.stdout

    # The main checkout holds no slot: an explicit error, no guess.
    none = kinfra(repo, "sandbox", "status")
    assert none.returncode == 1 and "holds no slot" in none.stderr


def test_released_worktree_is_told_to_reclaim(
    tmp_path: Path, kinfra_home: Path, docker_prefix: str
) -> None:
    repo, wt = impl_worktree(tmp_path, docker_prefix, pool_size=1, flags=("--no-sandbox",))
    assert kinfra(wt, "sandbox", "status").returncode == 1

    up = kinfra(wt, "sandbox", "up")  # claims a slot for the impl worktree
    assert up.returncode == 0, up.stderr
    assert "claimed slot 1 again" in up.stderr
    assert claims(kinfra_home, docker_prefix)[1] == str(wt)
    assert "SLOT_NUMBER=1" in (wt / ".env.sandbox").read_text()
    listing = json.loads(kinfra(repo, "worktrees", "--json").stdout)
    assert listing[0]["sandbox"].startswith("slot 1 (running")
    assert kinfra(repo, "done", "genome-M1").returncode == 0
    assert claims(kinfra_home, docker_prefix)[1] is None


def test_env_file_name_is_shared() -> None:
    from kinfra.workflows import slot_files, worktrees

    assert worktrees.ENV_FILE == slot_files.ENV_FILE
