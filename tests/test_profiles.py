"""Slot profiles: a heavy slot runs 4+4 workers and its gate waits for them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from kinfra.testing.cli import kinfra, ok
from kinfra.testing.example import make_example_project
from kinfra.testing.gitrepo import commit_all

# A second worker service whose replicas become healthy only after a moment,
# so an up that did not wait for every replica would be caught.
TRAINER = """
  trainer:
    image: busybox:1.36
    init: true
    command: ["sh", "-c", "sleep 2; touch /ready; while true; do sleep 1; done"]
    healthcheck:
      test: ["CMD", "test", "-f", "/ready"]
      interval: 1s
      timeout: 2s
      retries: 20
"""


def _two_worker_project(tmp_path: Path, prefix: str) -> Path:
    repo = make_example_project(
        tmp_path,
        prefix,
        with_origin=False,
        extra_config='\n[profiles.heavy]\nreplicas = 4\nmemory = "3.5 GB"\n',
    )
    config = (repo / "kinfra.toml").read_text()
    config = config.replace("heavy_slots = []", "heavy_slots = [2]")
    config = config.replace('workers = ["worker"]', 'workers = ["worker", "trainer"]')
    (repo / "kinfra.toml").write_text(config)
    compose = (repo / "docker-compose.yml").read_text()
    compose = compose.replace("\n  db:\n", TRAINER + "\n  db:\n", 1)
    (repo / "docker-compose.yml").write_text(compose)
    commit_all(repo, "two worker services")
    return repo


@pytest.mark.docker
def test_heavy_slot_runs_four_plus_four_workers_behind_the_gate(
    tmp_path: Path, docker_prefix: str
) -> None:
    repo = _two_worker_project(tmp_path, docker_prefix)
    ok(repo, "sandbox", "provision")

    slots = json.loads(ok(repo, "sandbox", "slots", "--json"))
    assert [(s["slot"], s["profile"], s["memory"]) for s in slots] == [
        (1, "light", "1.5 GB"),
        (2, "heavy", "3.5 GB"),
    ]
    table = ok(repo, "sandbox", "slots")
    assert "heavy" in table and "3.5 GB" in table

    up = kinfra(repo, "sandbox", "up", "--slot", "2")
    try:
        assert up.returncode == 0, up.stderr
        assert "workers:worker" in up.stderr and "4/4 running (heavy profile)" in up.stderr
        assert "workers:trainer" in up.stderr
        listed = subprocess.run(
            ["docker", "compose", "-p", f"{docker_prefix}-slot-2", "ps", "--format", "json"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        rows = [json.loads(line) for line in listed.splitlines() if line.strip()]
        trainers = [r for r in rows if r["Service"] == "trainer"]
        workers = [r for r in rows if r["Service"] == "worker"]
        assert len(workers) == 4 and all(r["State"] == "running" for r in workers)
        # The gate returned only once every replica was healthy.
        assert len(trainers) == 4 and all(r["Health"] == "healthy" for r in trainers)
    finally:
        ok(repo, "sandbox", "down", "--slot", "2")


@pytest.mark.docker
def test_light_slot_runs_one_of_each(tmp_path: Path, docker_prefix: str) -> None:
    repo = _two_worker_project(tmp_path, docker_prefix)
    ok(repo, "sandbox", "provision")
    up = kinfra(repo, "sandbox", "up", "--slot", "1")
    try:
        assert up.returncode == 0, up.stderr
        assert "1/1 running (light profile)" in up.stderr
    finally:
        ok(repo, "sandbox", "down", "--slot", "1")
