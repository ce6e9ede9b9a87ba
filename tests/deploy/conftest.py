"""Deploy tests run against a second real Docker engine (kinfra.testing.engine):
a dockerd in its own network namespace, reached over TCP with TLS through a
Docker context of the test's own Docker config."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kinfra.testing.deploy import TOKEN_VARIABLE, Shop, make_deploy_project, remove_release_images
from kinfra.testing.engine import SecondEngine, second_engine


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecondEngine]:
    """One engine for a test module; each test deploys its own compose projects there."""
    if os.geteuid() != 0:
        pytest.fail("deploy tests start a second dockerd in a network namespace: run them as root")
    with second_engine() as started:
        yield started


@pytest.fixture
def shop(engine: SecondEngine, docker_prefix: str, tmp_path: Path) -> Iterator[Shop]:
    repo = make_deploy_project(tmp_path, docker_prefix, engine.context)
    env = {**engine.env(), TOKEN_VARIABLE: f"tok-{docker_prefix}-s3cret"}
    yield Shop(repo, docker_prefix, env)
    remove_release_images(repo)
