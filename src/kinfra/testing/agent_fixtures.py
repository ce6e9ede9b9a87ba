"""pytest fixtures for tests that run the real agent CLIs: ``model_server``,
``real_claude`` and ``real_codex`` (a pytest plugin, loaded by the test suite's
``conftest.py`` with ``pytest_plugins``).

The agents are the pinned releases ``scripts/ensure-agents.sh`` installs. When
one is missing the test fails under ``CI=true`` (CI installs them: a missing
one is a broken setup) and is skipped elsewhere, with the command to run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kinfra.testing import agents
from kinfra.testing.ci import unavailable
from kinfra.testing.model_server import ModelServer


@pytest.fixture
def model_server() -> Iterator[ModelServer]:
    """The mock model server; at the end, the proof that the agents it served
    reached nothing else (no stray request, no proxy tunnel)."""
    with ModelServer() as server:
        yield server
        stray = [f"{r.method} {r.path}" for r in server.stray()]
        assert stray == [], f"an agent reached beyond the mock model server: {stray}"


def require_agents(*names: str) -> None:
    absent = agents.missing(*names)
    if absent:
        unavailable(f"{', '.join(absent)} not installed: {agents.INSTALL_HINT}")


@pytest.fixture
def real_claude(
    model_server: ModelServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> ModelServer:
    """The pinned ``claude`` first on PATH, pointed at the mock: script it
    through the returned server."""
    require_agents("claude")
    bin_dir = agents.bin_dir(tmp_path / "agent-bin", "claude")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    for key, value in agents.claude_env(model_server.url).items():
        monkeypatch.setenv(key, value)
    return model_server


@pytest.fixture
def real_codex(
    model_server: ModelServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> ModelServer:
    """The pinned ``codex`` first on PATH, with a CODEX_HOME for the mock."""
    require_agents("codex")
    bin_dir = agents.bin_dir(tmp_path / "agent-bin", "codex")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    home = agents.codex_home(tmp_path / "codex-home", model_server.url)
    for key, value in agents.codex_env(model_server.url, home).items():
        monkeypatch.setenv(key, value)
    return model_server
