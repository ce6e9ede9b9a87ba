"""Test-wide guards: no test touches the real home or the real ~/.kinfra,
and Docker tests fail (never skip) when the engine is missing."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kinfra.testing import dockerkit

# The real agent CLIs and the mock model server: model_server, real_claude, real_codex.
pytest_plugins = ["kinfra.testing.agent_fixtures"]


@pytest.fixture(scope="session", autouse=True)
def _no_real_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # HOME points below a regular file: any attempt to write there fails with
    # ENOTDIR, even as root (where permissions would not stop it).
    blocker = tmp_path_factory.mktemp("home") / "not-a-dir"
    blocker.write_text("tests must not write to HOME\n")
    gitconfig = tmp_path_factory.mktemp("gitconfig") / "gitconfig"
    gitconfig.write_text(
        "[user]\n\tname = kinfra tests\n\temail = tests@kinfra.invalid\n"
        "[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n"
        # Agent tests hand their repositories to a non-root owner; git run by
        # root must still work in them.
        "[safe]\n\tdirectory = *\n"
    )
    docker_config = tmp_path_factory.mktemp("docker-config")
    keys = ("HOME", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_NOSYSTEM", "DOCKER_CONFIG")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ["HOME"] = str(blocker / "home")
    # The docker CLI reads its config from ~/.docker unless told otherwise.
    os.environ["DOCKER_CONFIG"] = str(docker_config)
    os.environ["GIT_CONFIG_GLOBAL"] = str(gitconfig)
    os.environ["GIT_CONFIG_NOSYSTEM"] = "1"
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(autouse=True)
def kinfra_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "kinfra-home"
    monkeypatch.setenv("KINFRA_HOME", str(home))
    return home


_docker_ok: bool | None = None


@pytest.fixture
def docker() -> None:
    """Request a real Docker engine. Without one the test fails, never skips:
    scripts/test.sh brings the engine up first."""
    global _docker_ok
    if _docker_ok is None:
        _docker_ok = dockerkit.docker_ready()
    if not _docker_ok:
        message = "Docker engine with Compose v2 and busybox:1.36 not available (run scripts/ensure-docker.sh)"
        pytest.fail(message)


@pytest.fixture
def docker_prefix(docker: None) -> Iterator[str]:
    """A unique compose-project prefix; everything under it is removed afterwards."""
    prefix = dockerkit.unique_prefix()
    yield prefix
    dockerkit.remove_everything(prefix)


@pytest.fixture(scope="session", autouse=True)
def _no_stack_outlives_the_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A last sweep: any compose project whose working dir lies in this
    session's temp dirs is removed at the end, whatever the tests did."""
    yield
    if not dockerkit.docker_ready():
        return
    base = str(tmp_path_factory.getbasetemp())
    dockerkit.remove_projects_under(base)
