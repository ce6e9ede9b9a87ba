"""A port base changed in kinfra.toml after provisioning: `sandbox slots`,
the cross-project collision check and `sandbox up` agree (real Docker)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from kinfra.testing import dockerkit
from kinfra.testing.cli import kinfra, ok
from kinfra.testing.example import make_example_project
from kinfra.testing.gitrepo import commit_all, make_repo

pytestmark = pytest.mark.docker


def db_base(repo: Path) -> int:
    return int(re.search(r"db = .*base = (\d+)", (repo / "kinfra.toml").read_text()).group(1))  # type: ignore[union-attr]


def set_db_base(repo: Path, base: int) -> None:
    text = (repo / "kinfra.toml").read_text()
    (repo / "kinfra.toml").write_text(re.sub(r"(db = .*base = )\d+", rf"\g<1>{base}", text))


def published(compose_project: str) -> set[int]:
    out = subprocess.run(
        ["docker", "ps", "--filter", f"label=com.docker.compose.project={compose_project}",
         "--format", "{{.Ports}}"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return {int(p) for p in re.findall(r":(\d+)->", out)}


def neighbour_on(tmp_path: Path, name: str, base: int) -> Path:
    repo = make_repo(tmp_path, name, with_origin=False)
    (repo / "docker-compose.yml").write_text("services:\n  db:\n    image: busybox:1.36\n")
    (repo / "kinfra.toml").write_text(
        f'[project]\nname = "{name}"\n[ports]\n'
        f'db = {{ service = "db", target = 5432, base = {base} }}\n[sandbox]\npool_size = 2\n'
    )
    commit_all(repo, "adopted")
    return repo


def test_a_changed_base_reaches_slots_the_collision_check_and_up(
    tmp_path: Path, docker_prefix: str
) -> None:
    repo = make_example_project(tmp_path, docker_prefix, pool_size=2, mini=True)
    ok(repo, "sandbox", "provision")
    ok(repo, "sandbox", "up", "--slot", "1")
    old = db_base(repo)
    (new,) = dockerkit.free_port_bases(1, 3)
    set_db_base(repo, new)

    provisioned = ok(repo, "sandbox", "provision")
    assert re.search(
        rf"1 .* db:{old + 1}→{new + 1} .*claimed: ports change at next start", provisioned
    )
    assert re.search(rf"2 .* db:{new + 2} .*refreshed", provisioned)
    slots = {s["slot"]: s for s in json.loads(ok(repo, "sandbox", "slots", "--json"))}
    assert slots[1]["ports"] == {"db": new + 1}
    assert slots[1]["ports_until_restart"] == {"db": old + 1}
    assert slots[2]["ports"] == {"db": new + 2} and slots[2]["ports_until_restart"] is None
    assert published(f"{docker_prefix}-slot-1") == {old + 1}

    # The collision check sees the new ports, and the old one still in use.
    for base, owner in ((new, f"{docker_prefix} local-prod (db)"),
                        (old + 1, f"{docker_prefix} slot 1 (db, until its next start)")):  # fmt: skip
        other = neighbour_on(tmp_path, f"n{base}", base)
        refused = kinfra(other, "sandbox", "provision")
        assert refused.returncode == 1
        assert f"host port {base} would belong to both {owner}" in refused.stderr

    ok(repo, "sandbox", "up", "--slot", "1")  # the next start publishes the new port
    assert published(f"{docker_prefix}-slot-1") == {new + 1}
    slots = {s["slot"]: s for s in json.loads(ok(repo, "sandbox", "slots", "--json"))}
    assert slots[1]["ports_until_restart"] is None
    ports = {(e["project"], e["slot"]): e for e in json.loads(ok(repo, "ports", "--json"))}
    assert ports[(docker_prefix, 1)]["port"] == new + 1
    assert ports[(docker_prefix, 1)]["listening"] is True
    assert not any(e["until_restart"] for e in ports.values())
    ok(repo, "sandbox", "down", "--slot", "1")
