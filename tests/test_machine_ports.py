"""Ports planned across the machine: many projects adopted on one machine
with `kinfra init` then `kinfra sandbox provision`, the machine's port map,
and a provision refusal whose hint gives [ports] lines that fit."""

from __future__ import annotations

import json
import re
import shutil
import socket
from collections import Counter
from pathlib import Path

from kinfra.domain.config import load_config
from kinfra.testing.cli import kinfra, ok
from kinfra.testing.gitrepo import commit_all, make_repo
from kinfra.workflows.machine import listening

ADOPTION = Path(__file__).resolve().parent / "data" / "adoption"


def adopt(parent: Path, fixture: Path) -> Path:
    repo = make_repo(parent, fixture.stem, with_origin=False)
    shutil.copy(fixture, repo / "compose.yaml")
    commit_all(repo, "compose file")
    ok(repo, "init")
    ok(repo, "sandbox", "provision", "--count", "2")
    return repo


def test_a_dozen_compose_projects_adopt_on_one_machine_without_a_shared_port(
    tmp_path: Path,
) -> None:
    fixtures = sorted(ADOPTION.glob("*.yml"))
    assert len(fixtures) >= 10
    wanted = Counter(
        port
        for f in fixtures
        for port in re.findall(r"(?<![\d.])(8000|80):\d+", f.read_text())
        + re.findall(r'published: "?(8000|80)\b', f.read_text())
    )
    assert sum(wanted.values()) >= 5  # at least five of them want 8000 or 80
    # Something already listens on a port one of them wants (prometheus' 9090):
    # this test's socket, or a real Prometheus that has it already.
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind(("127.0.0.1", 9090))
            listener.listen()
        except OSError:
            assert listening(9090), "9090 is taken, so something must listen there"
        repos = [adopt(tmp_path, fixture) for fixture in fixtures]

        listing = json.loads(ok(tmp_path, "ports", "--json"))
    ports = [entry["port"] for entry in listing]
    assert len(ports) == len(set(ports)), Counter(ports).most_common(3)
    assert min(ports) > 1023
    assert 9090 not in ports
    # Every slot 0..pool_size of every project is in the map, none missing.
    expected = 0
    for repo in repos:
        config = load_config(repo / "kinfra.toml")
        expected += len(config.ports) * (config.sandbox.pool_size + 1)
        for port in config.ports:
            assert port.base > 1023
    assert len(ports) == expected
    assert {entry["project"] for entry in listing} == {f.stem for f in fixtures}
    # The privileged ones moved to the documented high range.
    nginx = load_config(tmp_path / "nginx-static" / "kinfra.toml")
    assert [p.base for p in nginx.ports] == [10080]
    # What `init` said about the moves is in the file, for review.
    wordpress = (tmp_path / "wordpress" / "kinfra.toml").read_text()
    assert "host port 8000 belongs to" in wordpress and "base moved to" in wordpress


def two_projects_on_the_same_bases(tmp_path: Path) -> tuple[Path, Path, str]:
    text = (
        '[project]\nname = "{name}"\n\n[ports]\n'
        'api = {{ service = "web", target = 80, base = 24000, scheme = "http" }}\n'
        'db = {{ service = "db", target = 5432, base = 25432, scheme = "tcp" }}\n\n'
        "[sandbox]\npool_size = 3\n"
    )
    repos = []
    for name in ("first", "second"):
        repo = make_repo(tmp_path, name, with_origin=False)
        (repo / "docker-compose.yml").write_text(
            "services:\n  web:\n    image: x\n    ports: ['80:80']\n"
            "  db:\n    image: y\n    ports: ['5432:5432']\n"
        )
        (repo / "kinfra.toml").write_text(text.format(name=name))
        commit_all(repo, "adopted")
        repos.append(repo)
    return repos[0], repos[1], text


def test_provision_refuses_a_second_project_on_the_same_bases_and_says_what_fits(
    tmp_path: Path,
) -> None:
    first, second, _ = two_projects_on_the_same_bases(tmp_path)
    ok(first, "sandbox", "provision")

    refused = kinfra(second, "sandbox", "provision")

    assert refused.returncode == 1
    lines = refused.stderr.splitlines()
    assert lines[0] == (
        "kinfra: error: host port 24000 would belong to both first local-prod (api) "
        "and second local-prod (api)"
    )
    assert lines[1] == "  hint: these [ports] lines in kinfra.toml fit this machine:"
    fitting = [line.strip() for line in lines[2:]]
    assert fitting == [
        'api = { service = "web", target = 80, base = 24010, scheme = "http" }',
        'db = { service = "db", target = 5432, base = 25442, scheme = "tcp" }',
    ]
    config = (second / "kinfra.toml").read_text()
    config = re.sub(r"(?m)^(api|db) = .*$", lambda m: fitting[m.group(1) == "db"], config)
    (second / "kinfra.toml").write_text(config)
    ok(second, "sandbox", "provision")
    listing = json.loads(ok(tmp_path, "ports", "--json"))
    assert len({e["port"] for e in listing}) == len(listing) == 16


def test_ports_lists_nothing_on_a_fresh_machine(tmp_path: Path) -> None:
    result = kinfra(tmp_path, "ports")
    assert result.returncode == 0 and "no projects registered" in result.stdout
    assert json.loads(ok(tmp_path, "ports", "--json")) == []


def test_a_mistake_in_a_section_listings_do_not_read_hides_nothing_and_acting_commands_refuse(
    tmp_path: Path,
) -> None:
    first, _, _ = two_projects_on_the_same_bases(tmp_path)
    ok(first, "sandbox", "provision")
    with (first / "kinfra.toml").open("a") as config:
        config.write("\n[orchestrator]\nmax_turnz = 10\n")

    listing = json.loads(ok(tmp_path, "ports", "--json"))
    assert {e["port"] for e in listing if e["slot"] == 1} == {24001, 25433}
    assert len(json.loads(ok(first, "sandbox", "slots", "--json"))) == 3

    typo = "kinfra: error: kinfra.toml: [orchestrator] max_turnz: unknown key (check its spelling)"
    for command in (["sandbox", "provision"], ["doctor"], ["sandbox", "up", "--slot", "1"]):
        refused = kinfra(first, *command)
        assert refused.returncode == 1 and refused.stderr.splitlines()[0] == typo
