"""The memory budget and its queue, against real Docker, git and the registry:
refusing over budget, five `impl --wait` sharing a budget of two, Ctrl-C
leaving the queue, dead waiters dropped, real usage in `sandbox slots`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kinfra.adapters.registry import RegistryStore, Ticket
from kinfra.errors import OverBudgetError
from kinfra.project import find_project
from kinfra.testing.cli import kinfra, ok
from kinfra.testing.example import claims, make_example_project, registry
from kinfra.testing.gitrepo import git
from kinfra.workflows.budget import admit

pytestmark = pytest.mark.docker

BUDGET_OF_TWO = 'memory_budget = "3 GB"\n'  # light slots expect 1.5 GB each


def running_stacks(prefix: str) -> set[str]:
    out = subprocess.run(
        ["docker", "ps", "--filter", "label=com.docker.compose.project",
         "--format", '{{.Label "com.docker.compose.project"}}'],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return {name for name in out.split() if name.startswith(f"{prefix}-slot-")}


def spawn(repo: Path, log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "kinfra", *args], cwd=repo, stdout=handle, stderr=handle
        )


def wait_for_text(
    log: Path, text: str, proc: subprocess.Popen[bytes], timeout: float = 120
) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text():
        assert proc.poll() is None or text in log.read_text(), log.read_text()
        assert time.monotonic() < deadline, f"{text!r} not in:\n{log.read_text()}"
        time.sleep(0.05)


def one_slot_running_of_a_budget_for_one(tmp_path: Path, prefix: str) -> Path:
    """A project whose budget (2 GB) holds one light slot (1.5 GB), slot 1 running."""
    repo = make_example_project(
        tmp_path, prefix, pool_size=2, mini=True, extra_config='memory_budget = "2 GB"\n'
    )
    ok(repo, "sandbox", "provision")
    ok(repo, "sandbox", "up", "--slot", "1")
    return repo


def test_over_budget_without_wait_is_one_line_exit_5_and_nothing_created(
    tmp_path: Path, kinfra_home: Path, docker_prefix: str
) -> None:
    repo = one_slot_running_of_a_budget_for_one(tmp_path, docker_prefix)
    before = registry(kinfra_home)

    refused = kinfra(repo, "impl", "genome/M1")

    assert refused.returncode == 5
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[1].startswith("  hint: add --wait to queue for it")
    assert lines[0] == (
        "kinfra: error: not enough memory for impl genome/M1 (1.5 GB): 1.5 GB of the 2.0 GB "
        f"memory budget is taken by {docker_prefix} slot 1 (1.5 GB)"
    )
    assert not (tmp_path / f"{docker_prefix}-impl-genome-M1").exists()
    assert "impl/genome-M1" not in git(repo, "branch", "--list").stdout
    assert registry(kinfra_home) == before  # no claim, no ticket
    assert running_stacks(docker_prefix) == {f"{docker_prefix}-slot-1"}
    # `sandbox up` of another slot is refused the same way; a running slot restarts.
    up = kinfra(repo, "sandbox", "up", "--slot", "2")
    assert up.returncode == 5 and "not enough memory for slot 2" in up.stderr
    ok(repo, "sandbox", "up", "--slot", "1")
    # Real usage next to the profile's figure.
    slots = {s["slot"]: s for s in json.loads(ok(repo, "sandbox", "slots", "--json"))}
    assert slots[1]["memory_mb"] == 1536 and 0 < slots[1]["used_mb"] < 1536
    assert slots[2]["used_mb"] is None
    ok(repo, "sandbox", "down", "--slot", "1")


def test_five_impl_wait_share_a_budget_of_two_first_come_first_served(
    tmp_path: Path, kinfra_home: Path, docker_prefix: str
) -> None:
    names = [f"f{i}" for i in range(1, 6)]
    repo = make_example_project(
        tmp_path,
        docker_prefix,
        pool_size=5,
        mini=True,
        extra_config=BUDGET_OF_TWO,
        milestones=tuple(f"{n}/M1" for n in names),
    )
    ok(repo, "sandbox", "provision")
    most = 0
    watching = True

    def watch() -> None:
        nonlocal most
        while watching:
            most = max(most, len(running_stacks(docker_prefix)))
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    procs, logs = [], []
    try:
        # Arrivals in a known order: the first is up before the second comes,
        # which is admitted too (the budget fits two); each later one joins
        # the queue before the next arrives.
        for i, name in enumerate(names):
            log = tmp_path / f"{name}.log"
            proc = spawn(repo, log, "impl", f"{name}/M1", "--wait")
            if i == 0:
                assert proc.wait(timeout=180) == 0, log.read_text()
            else:
                wait_for_text(log, "… starting" if i == 1 else f"place {i - 1} in the queue", proc)
            procs.append(proc)
            logs.append(log)
        finished: list[int] = []
        for i in range(len(names)):
            # The earliest arrival not done yet finishes next: none queued
            # behind it (the third on) has finished before it.
            assert procs[i].wait(timeout=180) == 0, logs[i].read_text()
            behind = range(max(i + 1, 2), len(names))
            later = [j for j in behind if procs[j].poll() is not None]
            assert later == [], f"{later} finished before {i}"
            finished.append(i)
            ok(repo, "done", f"{names[i]}-M1")
            if i < 2:
                # Each done admits the head of the queue; the last arrival moves
                # up one place, and says so, before the next done comes.
                wait_for_text(logs[4], f"place {2 - i} in the queue", procs[4])
    finally:
        watching = False
        watcher.join()
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    assert finished == [0, 1, 2, 3, 4]
    assert most == 2
    last = logs[4].read_text()
    assert "place 3 in the queue" in last and "place 2 in the queue" in last
    assert "place 1 in the queue" in last and "in use: " in last
    state = registry(kinfra_home)
    assert state["queue"] == [] and state["starting"] == []
    assert set(claims(kinfra_home, docker_prefix).values()) == {None}


def test_ctrl_c_leaves_the_queue_and_creates_nothing(
    tmp_path: Path, kinfra_home: Path, docker_prefix: str
) -> None:
    repo = one_slot_running_of_a_budget_for_one(tmp_path, docker_prefix)
    log = tmp_path / "waiter.log"
    waiter = spawn(repo, log, "impl", "genome/M1", "--wait")
    wait_for_text(log, "place 1 in the queue", waiter)
    assert len(registry(kinfra_home)["queue"]) == 1

    waiter.send_signal(signal.SIGINT)

    assert waiter.wait(timeout=30) == 130
    assert registry(kinfra_home)["queue"] == []
    assert not (tmp_path / f"{docker_prefix}-impl-genome-M1").exists()
    assert claims(kinfra_home, docker_prefix) == {1: str(repo.resolve()), 2: None}
    ok(repo, "sandbox", "down", "--slot", "1")


def test_a_dead_waiter_at_the_head_of_the_queue_is_dropped(
    tmp_path: Path, docker_prefix: str
) -> None:
    repo = make_example_project(
        tmp_path, docker_prefix, pool_size=2, mini=True, extra_config=BUDGET_OF_TWO
    )
    ok(repo, "sandbox", "provision")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with RegistryStore().transaction() as reg:
        reg.queue.append(Ticket("dead", "other", "impl x/M1", 1536, gone.pid, None, "2026"))
    with pytest.raises(OverBudgetError, match="ahead of it"):
        with RegistryStore().transaction() as reg:  # a live waiter would block us...
            reg.queue.append(Ticket("live", "other", "impl y/M1", 1536, os.getpid(), None, "2026"))
        admit(find_project(repo), 1536, "slot 1")
    with RegistryStore().transaction() as reg:
        reg.queue = [t for t in reg.queue if t.ticket != "live"]
    # ...a dead one does not: it is dropped and the start admitted.
    with admit(find_project(repo), 1536, "slot 1") as admission:
        assert admission.ticket is not None
        assert [t.ticket for t in RegistryStore().load().starting] == [admission.ticket.ticket]
        assert RegistryStore().load().queue == []
    assert RegistryStore().load().starting == []


def test_a_start_bigger_than_the_whole_budget_is_refused_even_with_wait(
    tmp_path: Path, docker_prefix: str
) -> None:
    repo = make_example_project(
        tmp_path, docker_prefix, pool_size=2, mini=True, extra_config='memory_budget = "1 GB"\n'
    )
    ok(repo, "sandbox", "provision")
    refused = kinfra(repo, "impl", "genome/M1", "--wait")
    assert refused.returncode == 5
    assert "impl genome/M1 needs 1.5 GB, more than the whole memory budget (1.0 GB)" in (
        refused.stderr
    )
