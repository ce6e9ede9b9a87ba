"""What must hold after any kinfra command, checked from the outside.

- ``Snapshot``: the things a refused command must not have touched (registry
  bytes, branches, worktrees, containers, crash logs, records of runs).
- ``assert_consistent``: the registry, git and Docker agree, and `kinfra
  doctor` finds nothing.
- ``refs`` / ``assert_no_commit_lost``: every commit a ref pointed at before
  is still reachable from some ref after.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kinfra.adapters.runner import run
from kinfra.testing.cli import kinfra
from kinfra.testing.gitrepo import git


@dataclass(frozen=True)
class Snapshot:
    """What a refused command must not touch, taken before it runs to compare after."""

    registry: bytes | None
    branches: frozenset[str]
    worktrees: frozenset[str]
    containers: frozenset[str]
    crash_logs: frozenset[str]
    records: frozenset[str]

    def changes(self, after: Snapshot) -> list[str]:
        """What differs, one line per kind; [] when nothing does."""
        found = []
        if self.registry != after.registry:
            found.append("the registry's bytes changed")
        for kind in ("branches", "worktrees", "containers", "crash_logs", "records"):
            old, new = getattr(self, kind), getattr(after, kind)
            if old != new:
                found.append(f"{kind}: {sorted(old)} -> {sorted(new)}")
        return found


def snapshot(repo: Path, home: Path, prefix: str) -> Snapshot:
    registry = home / "registry.json"
    try:
        raw: bytes | None = registry.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raw = None
    branches = git(repo, "for-each-ref", "--format=%(refname)", "refs/heads").stdout.split()
    return Snapshot(
        registry=raw,
        branches=frozenset(branches),
        worktrees=frozenset(_worktrees(repo)),
        containers=frozenset(containers(prefix)),
        crash_logs=frozenset(p.name for p in (home / "logs").glob("crash-*")),
        records=frozenset(str(p) for p in home.glob("*/pending/*")),
    )


def _worktrees(repo: Path) -> list[str]:
    out = git(repo, "worktree", "list", "--porcelain").stdout
    return [line[len("worktree ") :] for line in out.splitlines() if line.startswith("worktree ")]


def containers(prefix: str) -> list[str]:
    listed = run(
        ["docker", "ps", "--all", "--filter", "label=com.docker.compose.project", "--format",
         '{{.Label "com.docker.compose.project"}} {{.State}}'],
        check=False,
    )  # fmt: skip
    return [line for line in listed.stdout.splitlines() if line.startswith(prefix)]


def running_projects(prefix: str) -> set[str]:
    return {line.split()[0] for line in containers(prefix) if line.endswith(" running")}


def claimants(home: Path, project: str) -> dict[int, Path | None]:
    """slot id -> the path that claims it (None: free), as the registry says."""
    data: dict[str, Any] = json.loads((home / "registry.json").read_text(encoding="utf-8"))
    slots: dict[str, Any] = data["projects"][project]["slots"]
    return {int(k): Path(v["claim"]["path"]) if v.get("claim") else None for k, v in slots.items()}


def assert_consistent(repo: Path, home: Path, prefix: str) -> None:
    """`kinfra doctor` finds nothing; every claim names a whole git worktree
    whose stack runs; every running stack of the project is claimed; no
    record of a run in flight is left."""
    report = kinfra(repo, "doctor", "--json")
    assert report.returncode == 0, report.stdout + report.stderr
    assert json.loads(report.stdout)["findings"] == [], report.stdout
    listed = set(_worktrees(repo))
    porcelain = git(repo, "worktree", "list", "--porcelain").stdout
    assert "prunable" not in porcelain and "locked" not in porcelain, porcelain
    claimed = set()
    for slot_id, path in claimants(home, prefix).items():
        if path is not None:
            assert path.is_dir() and str(path) in listed, (path, listed)
            assert (path / ".git").is_file(), path
            claimed.add(f"{prefix}-slot-{slot_id}")
    assert running_projects(prefix) == claimed, (running_projects(prefix), claimed)
    assert not list(home.glob("*/pending/*")), list(home.glob("*/pending/*"))


def refs(repo: Path) -> dict[str, str]:
    out = git(repo, "for-each-ref", "--format=%(refname) %(objectname)").stdout
    found = {}
    for line in out.splitlines():
        ref, _, sha = line.partition(" ")
        found[ref] = sha
    return found


def assert_no_commit_lost(repo: Path, before: dict[str, str]) -> None:
    for ref, sha in before.items():
        holders = git(repo, "for-each-ref", "--contains", sha, "--format=%(refname)").stdout
        assert holders.strip(), f"commit {sha} (was {ref}) is no longer on any ref"
