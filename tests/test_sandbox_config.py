"""`kinfra sandbox config`: the merged compose configuration `up` would run,
secrets redacted, nothing started (real Docker Compose)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from kinfra.domain.config import load_config
from kinfra.testing import dockerkit
from kinfra.testing.cli import kinfra, ok
from kinfra.testing.example import make_example_project

pytestmark = pytest.mark.docker

SECRET = "s3cr3t-value-never-shown"
EXTRA = '\n[env]\nGREETING = "hello"\n\n[secrets]\nAPI_KEY = "env://SHOP_API_KEY"\n'


def test_config_is_what_up_runs_valid_for_compose_bound_and_redacted(
    tmp_path: Path, kinfra_home: Path, docker_prefix: str
) -> None:
    repo = make_example_project(tmp_path, docker_prefix, pool_size=2, extra_config=EXTRA)
    compose = repo / "docker-compose.yml"
    compose.write_text(
        compose.read_text().replace(
            "    image: shop-backend:dev\n",
            "    image: shop-backend:dev\n    environment:\n"
            "      API_KEY: ${API_KEY}\n      GREETING: ${GREETING}\n",
        )
    )
    ok(repo, "sandbox", "provision")
    env = {"SHOP_API_KEY": SECRET}

    shown = kinfra(repo, "sandbox", "config", "--slot", "2", env=env)

    assert shown.returncode == 0, shown.stderr
    assert SECRET not in shown.stdout + shown.stderr
    assert f"shown as a claim by {repo.resolve()} would run it" in shown.stderr
    model = yaml.safe_load(shown.stdout)
    assert model["name"] == f"{docker_prefix}-slot-2"
    backend = model["services"]["backend"]
    assert backend["environment"]["API_KEY"] == "[secret]"
    assert backend["environment"]["GREETING"] == "hello"
    assert {"type": "bind", "source": str(repo.resolve() / "app"), "target": "/srv/www/app",
            "read_only": True} in backend["volumes"]  # fmt: skip
    config = load_config(repo / "kinfra.toml")
    published = {
        (service, int(p["published"]), p["host_ip"])
        for service, body in model["services"].items()
        for p in body.get("ports") or []
    }
    assert published == {
        ("backend", config.port("api").host_port(2), "127.0.0.1"),
        ("db", config.port("db").host_port(2), "127.0.0.1"),
    }
    # Compose itself accepts the output as a compose file.
    saved = tmp_path / "merged.yml"
    saved.write_text(shown.stdout)
    again = subprocess.run(
        ["docker", "compose", "-f", str(saved), "config", "--format", "json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["services"].keys() == model["services"].keys()
    # JSON says the same; nothing started, the slot's own files untouched.
    as_json = json.loads(ok(repo, "sandbox", "config", "--slot", "2", "--format", "json", env=env))
    assert as_json["services"]["db"]["ports"] == model["services"]["db"]["ports"]
    assert dockerkit.compose_projects(docker_prefix) == []
    slot_dir = kinfra_home / docker_prefix / "slot-2"
    assert "nothing (no claimant)" in (slot_dir / "docker-compose.override.yml").read_text()
    leftovers = list(slot_dir.parent.glob(".config-*"))  # the scratch dir is gone
    assert leftovers == []


def test_config_of_a_claimed_slot_mounts_its_claimant_and_honours_bind(
    tmp_path: Path, docker_prefix: str
) -> None:
    repo = make_example_project(tmp_path, docker_prefix, pool_size=2)
    text = (repo / "kinfra.toml").read_text()
    (repo / "kinfra.toml").write_text(text.replace("[sandbox]\n", '[sandbox]\nbind = "0.0.0.0"\n'))
    ok(repo, "sandbox", "provision")
    other = tmp_path / "elsewhere"
    (other / "app").mkdir(parents=True)
    up = kinfra(repo, "sandbox", "up", "--slot", "1", "--code-dir", str(other))
    assert up.returncode == 0, up.stderr

    model = yaml.safe_load(ok(repo, "sandbox", "config", "--slot", "1"))

    volumes = model["services"]["backend"]["volumes"]
    assert any(v.get("source") == str(other.resolve() / "app") for v in volumes)
    hosts = {p["host_ip"] for body in model["services"].values() for p in body.get("ports") or []}
    assert hosts == {"0.0.0.0"}
    ok(repo, "sandbox", "down", "--slot", "1")
