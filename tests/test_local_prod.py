"""local-prod: a singleton on slot 0 from a full clone; every command acts on
the registered clone, and destroy never deletes the clone or a worktree."""

from __future__ import annotations

import json
import shutil
import urllib.request
from pathlib import Path

import pytest

from kinfra.domain.config import load_config
from kinfra.testing import dockerkit
from kinfra.testing.cli import kinfra, ok
from kinfra.testing.example import make_example_project
from kinfra.testing.gitrepo import commit_all, git


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        body: bytes = response.read()
    return body.decode()


@pytest.mark.docker
def test_local_prod_acts_on_the_registered_clone_and_destroy_keeps_worktrees(
    tmp_path: Path, docker_prefix: str, kinfra_home: Path
) -> None:
    repo = make_example_project(tmp_path, docker_prefix, pool_size=2)
    bases = {p.name: p.base for p in load_config(repo / "kinfra.toml").ports}
    ok(repo, "sandbox", "provision")
    ok(repo, "impl", "genome/M1")
    worktree = tmp_path / f"{docker_prefix}-impl-genome-M1"
    (worktree / "work.txt").write_text("unpushed work\n")
    commit_all(worktree, "unpushed work")
    unpushed_head = git(worktree, "rev-parse", "HEAD").stdout.strip()

    clone = tmp_path / "prod"
    git(tmp_path, "clone", "-q", str(tmp_path / "app-origin.git"), str(clone))
    (clone / "app" / "index.html").write_text("the prod clone\n")  # proves whose code runs
    outside = tmp_path / "outside"
    outside.mkdir()

    refused = kinfra(worktree, "local-prod", "init")
    assert refused.returncode == 1 and "worktree" in refused.stderr
    no_lp = kinfra(outside, "local-prod", "status")
    assert no_lp.returncode == 1 and "local-prod" in no_lp.stderr

    ok(clone, "local-prod", "init")
    again = kinfra(clone, "local-prod", "init")
    assert again.returncode == 1 and "already has a local-prod" in again.stderr

    try:
        # Started from inside the impl worktree: it is still the clone that runs.
        up = kinfra(worktree, "local-prod", "up")
        assert up.returncode == 0, up.stderr
        api = f"http://localhost:{bases['api']}"
        assert _get(f"{api}/app/index.html") == "the prod clone\n"
        assert _get(f"http://localhost:{bases['api'] + 1}/app/index.html") != "the prod clone\n"

        status = json.loads(ok(outside, "local-prod", "status", "--json"))
        assert status["clone"] == str(clone.resolve())
        assert status["state"] == "running"
        assert status["compose_project"] == f"{docker_prefix}-local-prod"
        assert ok(repo, "url").strip() == api  # detection from the main checkout finds it
        assert "local-prod" in kinfra(repo, "url").stderr

        destroyed = kinfra(worktree, "local-prod", "destroy")
        assert destroyed.returncode == 0, destroyed.stderr
    finally:
        kinfra(outside, "local-prod", "down")

    # Only local-prod went away.
    assert f"{docker_prefix}-local-prod" not in dockerkit.compose_projects(docker_prefix)
    assert f"{docker_prefix}-slot-1" in dockerkit.compose_projects(docker_prefix)
    assert git(worktree, "rev-parse", "HEAD").stdout.strip() == unpushed_head
    assert (worktree / "work.txt").read_text() == "unpushed work\n"
    assert (clone / "app" / "index.html").read_text() == "the prod clone\n"
    assert (clone / ".git").is_dir() and (clone / "kinfra.toml").is_file()
    assert not (kinfra_home / docker_prefix / "local-prod").exists()
    registry = json.loads((kinfra_home / "registry.json").read_text())
    assert registry["projects"][docker_prefix]["local_prod"] is None
    assert kinfra(outside, "local-prod", "status").returncode == 1

    ok(repo, "done", "genome-M1", "--force")


def _registry_path(home: Path) -> Path:
    return home / "registry.json"


@pytest.mark.docker
def test_destroy_ignores_a_directory_edited_into_the_registry(
    tmp_path: Path, docker_prefix: str, kinfra_home: Path
) -> None:
    repo = make_example_project(tmp_path, docker_prefix, mini=True)
    clone = tmp_path / "prod"
    git(tmp_path, "clone", "-q", str(tmp_path / "app-origin.git"), str(clone))
    ok(clone, "local-prod", "init")
    # A user's folder holding files that happen to share kinfra's names.
    users = tmp_path / "users-folder"
    users.mkdir()
    mine = {
        "docker-compose.override.yml": "services: {}\n",
        ".env.secrets": "MINE=1\n",
        ".env.sandbox": "SLOT_NUMBER=0\n",
    }
    for name, text in mine.items():
        (users / name).write_text(text)
    registry = json.loads(_registry_path(kinfra_home).read_text())
    registry["projects"][docker_prefix]["local_prod"]["directory"] = str(users)
    _registry_path(kinfra_home).write_text(json.dumps(registry))

    destroyed = kinfra(repo, "local-prod", "destroy")
    assert destroyed.returncode == 0, destroyed.stderr
    assert str(users) not in destroyed.stdout
    assert {p.name: p.read_text() for p in users.iterdir()} == mine
    # Unregistered (the project record too: local-prod init created it).
    registry = json.loads(_registry_path(kinfra_home).read_text())
    assert (registry["projects"].get(docker_prefix) or {}).get("local_prod") is None


@pytest.mark.docker
def test_destroy_unregisters_a_local_prod_whose_clone_is_gone(
    tmp_path: Path, docker_prefix: str, kinfra_home: Path
) -> None:
    repo = make_example_project(tmp_path, docker_prefix, mini=True)
    clone = tmp_path / "prod"
    git(tmp_path, "clone", "-q", str(tmp_path / "app-origin.git"), str(clone))
    ok(clone, "local-prod", "init")
    ok(clone, "local-prod", "up")
    assert dockerkit.compose_projects(docker_prefix) == [f"{docker_prefix}-local-prod"]
    shutil.rmtree(clone)

    gone = kinfra(repo, "local-prod", "status")
    assert gone.returncode == 1 and "is gone" in gone.stderr
    assert "local-prod destroy" in gone.stderr
    destroyed = kinfra(repo, "local-prod", "destroy")
    assert destroyed.returncode == 0, destroyed.stderr
    assert dockerkit.compose_projects(docker_prefix) == []  # the stack went too
    assert not (kinfra_home / docker_prefix / "local-prod").exists()
    registry = json.loads(_registry_path(kinfra_home).read_text())
    assert (registry["projects"].get(docker_prefix) or {}).get("local_prod") is None

    # Another clone can now become local-prod.
    other = tmp_path / "prod2"
    git(tmp_path, "clone", "-q", str(tmp_path / "app-origin.git"), str(other))
    ok(other, "local-prod", "init")
    registry = json.loads(_registry_path(kinfra_home).read_text())
    assert registry["projects"][docker_prefix]["local_prod"]["clone"] == str(other.resolve())
    ok(other, "local-prod", "destroy")


@pytest.mark.docker
def test_down_takes_the_resolved_secrets_off_the_disk(
    tmp_path: Path, docker_prefix: str, kinfra_home: Path
) -> None:
    make_example_project(
        tmp_path,
        docker_prefix,
        mini=True,
        extra_config='\n[secrets]\nLP_TOKEN = "env://KT_LP_TOKEN"\n',
    )
    clone = tmp_path / "prod"
    git(tmp_path, "clone", "-q", str(tmp_path / "app-origin.git"), str(clone))
    env = {"KT_LP_TOKEN": "lp-token-value-6161"}
    ok(clone, "local-prod", "init")
    secrets_file = kinfra_home / docker_prefix / "local-prod" / ".env.secrets"
    try:
        ok(clone, "local-prod", "up", env=env)
        assert "lp-token-value-6161" in secrets_file.read_text()
        ok(clone, "local-prod", "down")
        assert not secrets_file.exists()
        assert dockerkit.compose_projects(docker_prefix) == []
    finally:
        kinfra(clone, "local-prod", "destroy")
