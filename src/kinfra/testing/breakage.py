"""A project with something of every kind to get wrong, and ways to break it.

``make_world`` builds one provisioned project with the targets a careless
user (or a crashed machine) can aim a command at: an impl worktree holding a
slot, a second one holding none, a spec worktree, a worktree of the user's
on an ``impl/`` branch, a registered local-prod, a run state. Each breaker
is a context manager that puts one thing in a bad shape and puts it back
exactly as it was, so that one world serves a whole suite of bad inputs.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kinfra.testing.cli import ok
from kinfra.testing.example import make_example_project
from kinfra.testing.gitrepo import git


@dataclass(frozen=True)
class World:
    """One provisioned project with a target of every kind (see ``make_world``)."""

    root: Path  # the temp dir holding everything
    repo: Path  # the main checkout
    home: Path  # its KINFRA_HOME
    prefix: str
    worktree: Path  # impl genome/M1, holding slot 1 (no stack running)
    idle: Path  # impl genome/M2, holding no slot (genome/M3 has a plan, no worktree)
    spec: Path  # spec genome
    scratch: Path  # the user's own worktree on impl/exp-X
    outside: Path  # a directory in no repository

    @property
    def registry(self) -> Path:
        return self.home / "registry.json"

    @property
    def config(self) -> Path:
        return self.repo / "kinfra.toml"

    @property
    def compose(self) -> Path:
        return self.repo / "docker-compose.yml"

    @property
    def run_state(self) -> Path:
        return self.home / self.prefix / "runs" / "genome-M1.json"

    def record(self, worktree: Path) -> Path:
        return self.home / self.prefix / "pending" / f"{worktree.name}.json"

    def env(self, **extra: str) -> dict[str, str]:
        return {"KINFRA_HOME": str(self.home), **extra}

    def where(self, name: str) -> Path:
        return {
            "repo": self.repo,
            "worktree": self.worktree,
            "idle": self.idle,
            "outside": self.outside,
        }[name]


def make_world(root: Path, prefix: str) -> World:
    home = root / "kinfra-home"
    env = {"KINFRA_HOME": str(home)}
    repo = make_example_project(
        root, prefix, pool_size=2, mini=True, milestones=("genome/M1", "genome/M2", "genome/M3")
    )
    ok(repo, "sandbox", "provision", env=env)
    ok(repo, "impl", "genome/M1", "--no-sandbox", env=env)
    ok(repo, "impl", "genome/M2", "--no-sandbox", env=env)
    ok(repo, "spec", "genome", env=env)
    ok(repo, "local-prod", "init", env=env)
    worktree = (root / f"{prefix}-impl-genome-M1").resolve()
    scratch = (root / "scratch-mine").resolve()
    git(repo, "worktree", "add", "-q", "-b", "impl/exp-X", str(scratch))
    _edit_json(home / "registry.json", lambda data: _claim(data, prefix, 1, worktree))
    world = World(
        root=root,
        repo=repo,
        home=home,
        prefix=prefix,
        worktree=worktree,
        idle=(root / f"{prefix}-impl-genome-M2").resolve(),
        spec=(root / f"{prefix}-spec-genome").resolve(),
        scratch=scratch,
        outside=root / "outside",
    )
    world.outside.mkdir()
    world.run_state.parent.mkdir(parents=True, exist_ok=True)
    world.run_state.write_text(json.dumps(RUN_STATE, indent=2))
    return world


def _claim(data: dict[str, Any], prefix: str, slot: int, path: Path) -> None:
    claim = {"path": str(path), "kind": "impl", "at": "2026-01-01T00:00:00Z"}
    data["projects"][prefix]["slots"][str(slot)]["claim"] = claim


RUN_STATE: dict[str, Any] = {
    "version": 1,
    "run_id": "r1",
    "milestone": "M1",
    "plan_path": "/plans/M1_plan.md",
    "plan_hash": "abc",
    "agent": "claude",
    "workdir": "/w",
    "project": "p",
    "created": "2026-01-01T00:00:00Z",
    "updated": "2026-01-01T00:00:00Z",
    "tasks": [{"id": "1.1", "title": "do something", "status": "done", "attempts": []}],
}


# --- breakers ---------------------------------------------------------------------------


@contextlib.contextmanager
def holding(path: Path, content: bytes | str) -> Iterator[None]:
    """``path`` holds ``content`` (bytes as they are) for the block."""
    with _kept(path):
        data = content.encode() if isinstance(content, str) else content
        path.write_bytes(data)
        yield


@contextlib.contextmanager
def edited_json(path: Path, edit: Callable[[dict[str, Any]], None]) -> Iterator[None]:
    with _kept(path):
        _edit_json(path, edit)
        yield


@contextlib.contextmanager
def replaced_by_directory(path: Path) -> Iterator[None]:
    with _kept(path):
        path.unlink(missing_ok=True)
        path.mkdir()
        yield


@contextlib.contextmanager
def dangling_link(path: Path) -> Iterator[None]:
    with _kept(path):
        path.unlink(missing_ok=True)
        path.symlink_to(path.parent / "gone" / path.name)
        yield


@contextlib.contextmanager
def listening(port: int) -> Iterator[None]:
    """A foreign process's socket on ``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        yield


@contextlib.contextmanager
def running_process() -> Iterator[int]:
    """A live process that is not kinfra (a pid for a record of a run in flight)."""
    import subprocess

    proc = subprocess.Popen(["sleep", "300"])
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def _kept(path: Path) -> Iterator[None]:
    """Whatever ``path`` is (a file, or nothing), it is that again, byte for
    byte, after the block, whatever the block made of it."""
    saved = path.read_bytes() if path.is_file() and not path.is_symlink() else None
    try:
        yield
    finally:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        if saved is not None:
            path.write_bytes(saved)


def _edit_json(path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
