"""Agent-container tests: the real agent image, built once per machine.

The base is a Debian image made locally (scripts/ensure-agent-base.sh:
debootstrap + docker import); `kinfra agent build` puts git, Node.js and the
pinned claude/codex on it. Both stay cached between runs: the image is tagged
by the digest of its inputs, so a later session finds it at once. The first
build on a fresh machine takes a few minutes, hence the long timeout here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kinfra.testing import agentkit
from kinfra.testing.gitrepo import make_repo

BUILD_TIMEOUT = 1800  # a cold build on a slow machine: minutes


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.timeout(BUILD_TIMEOUT))


@pytest.fixture(scope="session")
def agent_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The agent image for the tests' [agent] config, built by `kinfra agent build`."""
    agentkit.ensure_base_image()
    parent = tmp_path_factory.mktemp("agent-image")
    repo = make_repo(parent, with_origin=False)
    name = "ktimage" + os.urandom(3).hex()
    (repo / "kinfra.toml").write_text(
        f'[project]\nname = "{name}"\n' + agentkit.agent_config(), encoding="utf-8"
    )
    result = subprocess.run(
        [sys.executable, "-m", "kinfra", "agent", "build", "--ca-bundle", agentkit.CA_BUNDLE],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        env={**os.environ, "KINFRA_HOME": str(parent / "home")},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    image = result.stdout.split("agent image ", 1)[1].split()[0]
    yield image
    agentkit.remove_agents(name)


@pytest.fixture
def agent_project(tmp_path: Path, docker_prefix: str, agent_image: str) -> agentkit.AgentProject:
    """The shop example with one impl worktree (slot 1 up), owned by a non-root user."""
    return agentkit.make_agent_project(tmp_path, docker_prefix, agent_image)
