"""Fixtures for orchestrator tests: a real git repo, plans, and the small fake
Claude Code (a real executable) for fast tests of the run loop. The real
``claude`` and ``codex`` come from kinfra.testing.agent_fixtures."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kinfra.testing import fake_claude
from kinfra.testing.gitrepo import make_repo

FAKE = Path(fake_claude.__file__).resolve()
DATA = Path(__file__).parent / "data"
SEED_PLAN = DATA / "seed_002_impl_workflow.md"

THREE_TASKS = """\
# Milestone 3: Three tasks

## Task 3.1: First

**Type:** CODING

**Description:**
Write the first file.

**Acceptance Criteria:**
- [ ] first file exists

## Task 3.2: Second

**Acceptance Criteria:**
- [ ] second file exists

## Task 3.3: Third

**Acceptance Criteria:**
- third file exists
"""


@dataclass
class Agentry:
    """The fake agent's setup for one test."""

    bin_dir: Path
    log: Path
    scenario_file: Path

    def scenario(self, default: Any = "success", **tasks: Any) -> None:
        """Task ids as keyword names use '_' for '.': task_3_2="crash"."""
        data = {
            "default": default,
            "tasks": {k.removeprefix("task_").replace("_", "."): v for k, v in tasks.items()},
            "log": str(self.log),
        }
        self.scenario_file.write_text(json.dumps(data))

    def invocations(self, task: str | None = None) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        rows = [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]
        return [r for r in rows if task is None or r["task"] == task]

    def env(self) -> dict[str, str]:
        """The environment for a kinfra subprocess that should use the fake agent."""
        env = dict(os.environ)
        env["PATH"] = f"{self.bin_dir}{os.pathsep}{env['PATH']}"
        env["FAKE_AGENT_SCENARIO"] = str(self.scenario_file)
        return env


@pytest.fixture
def agentry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Agentry:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_claude.install(str(bin_dir))
    a = Agentry(bin_dir, tmp_path / "invocations.jsonl", tmp_path / "scenario.json")
    a.scenario()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_AGENT_SCENARIO", str(a.scenario_file))
    return a


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path, "app", with_origin=False)


@pytest.fixture
def plan3(tmp_path: Path) -> Path:
    path = tmp_path / "plans" / "M3_three.md"
    path.parent.mkdir()
    path.write_text(THREE_TASKS)
    return path


WriteConfig = Callable[..., Path]


@pytest.fixture
def kinfra_toml(repo: Path) -> WriteConfig:
    """Write repo/kinfra.toml with an [orchestrator] table (and commit it)."""

    def write(**orchestrator: Any) -> Path:
        lines = ["[project]", 'name = "app"', 'test_command = "make test"', "", "[orchestrator]"]
        for key, value in orchestrator.items():
            lines.append(f"{key} = {json.dumps(value)}")
        path = repo / "kinfra.toml"
        path.write_text("\n".join(lines) + "\n")
        from kinfra.testing.gitrepo import commit_all

        commit_all(repo, "kinfra.toml")
        return path

    return write


@pytest.fixture
def seed_plan() -> Path:
    return SEED_PLAN
