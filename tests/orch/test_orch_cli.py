"""`kinfra orch ...` as a user runs it: real processes, real signals, kill -9."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from kinfra.adapters.lock import read_lock
from kinfra.adapters.process import group_alive
from kinfra.paths import project_home

if TYPE_CHECKING:
    from conftest import Agentry, WriteConfig


def kinfra(
    *args: str | Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kinfra", *[str(a) for a in args]],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        input=input,
        timeout=60,
    )


def start(*args: str | Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "kinfra", *[str(a) for a in args]],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_for(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def _state() -> dict[str, Any]:
    path = project_home("app") / "runs" / "M3.json"
    # every read must parse: the state is never half-written
    return json.loads(path.read_text()) if path.exists() else {"tasks": []}


def _task(state: dict[str, Any], task_id: str) -> dict[str, Any]:
    return next((t for t in state["tasks"] if t["id"] == task_id), {"status": None, "attempts": []})


def test_plan_command(seed_plan: Path, tmp_path: Path) -> None:
    result = kinfra("orch", "plan", seed_plan, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [t["id"] for t in data["tasks"]] == ["4.0", "4.1", "4.2", "4.3", "4.4", "4.5"]
    text = kinfra("orch", "plan", seed_plan)
    assert "milestone M4: Impl Workflow  (6 tasks)" in text.stdout
    assert "E2E: E2E Test: infra/impl-workflow (in task 4.5, line 516)" in text.stdout

    bad = tmp_path / "M7_bad.md"
    bad.write_text("## Task 7.1: A\n\n## Task 7.1: B\n")
    result = kinfra("orch", "plan", bad)
    assert result.returncode == 1
    assert "kinfra: error: plan M7_bad.md is malformed:" in result.stderr
    assert "line 3: duplicate task id 7.1 (first at line 1)" in result.stderr
    assert "Traceback" not in result.stderr


def test_exit_codes_questions_answers_and_json_reports(
    agentry: Agentry, repo: Path, plan3: Path, kinfra_toml: WriteConfig, tmp_path: Path
) -> None:
    kinfra_toml(backoff=[])  # an API error fails the task at once
    env = agentry.env()
    agentry.scenario(
        {"name": "success", "cost": 0.5},
        task_3_2=[{"name": "needs_human", "cost": 0.5}, "api_error", {"name": "done", "cost": 0.5}],
    )
    result = kinfra("orch", "run", plan3, cwd=repo, env=env)  # workdir: the checkout we stand in
    assert result.returncode == 4, result.stderr
    question = "Should config/ be mounted read-only in the override?"
    assert f"task 3.2 (Second) needs a human (needs_human): {question}" in result.stderr
    assert f"? task 3.2 asks: {question}" in result.stderr
    assert "✓ task 3.1 done" in result.stderr
    assert "hint: answer with `kinfra orch answer" in result.stderr

    # the open question, with how long it has waited, in status and machine-wide
    status = kinfra("orch", "status", cwd=repo)
    assert re.search(
        rf"\? task 3.2 \(needs_human\), waiting \d+ s: {re.escape(question)}", status.stdout
    )
    listed = json.loads(kinfra("orch", "questions", "--json").stdout)
    assert [(q["project"], q["milestone"], q["task"], q["question"]) for q in listed] == [
        ("app", "M3", "3.2", question)
    ]
    assert "app      M3         3.2   needs_human" in kinfra("orch", "questions").stdout
    # another project's corrupt run state is named, and hides nothing
    junk = project_home("other") / "runs" / "M9.json"
    junk.parent.mkdir(parents=True)
    junk.write_text('{"version": 1, "tasks": 3}')
    listing = kinfra("orch", "questions")
    assert "3.2   needs_human" in listing.stdout
    assert f"warning: run state {junk} is corrupt" in listing.stderr
    junk.unlink()

    # resume without an answer stops again, the agent untouched
    result = kinfra("orch", "resume", plan3, "--workdir", repo, env=env)
    assert result.returncode == 4 and len(agentry.invocations("3.2")) == 1

    bad = kinfra("orch", "answer", plan3, "--workdir", repo)
    assert bad.returncode == 1 and "give the answer once" in bad.stderr
    empty = kinfra("orch", "answer", plan3, "  ", "--workdir", repo)
    assert empty.returncode == 1 and "the answer is empty" in empty.stderr
    answer = tmp_path / "answer.txt"
    answer.write_text("Read-only, please.\n")
    result = kinfra("orch", "answer", plan3, "--file", answer, "--workdir", repo)
    assert result.returncode == 0, result.stderr
    assert "✓ answered question 1 of M3 (task 3.2, waited" in result.stdout
    again = kinfra("orch", "answer", plan3, "-", "--workdir", repo, input="more")
    assert again.returncode == 1 and "M3 has no open question" in again.stderr
    assert json.loads(kinfra("orch", "questions", "--json").stdout) == []

    result = kinfra("orch", "resume", plan3, "--workdir", repo, env=env)
    assert result.returncode == 1
    assert "task 3.2 (Second) failed on attempt 2: API error" in result.stderr
    assert "hint: see `kinfra orch status" in result.stderr
    assert "Read-only, please.\n" in agentry.invocations("3.2")[1]["prompt"]

    result = kinfra("orch", "resume", plan3, "--workdir", repo, env=env)
    assert result.returncode == 0, result.stderr
    assert "✓ milestone M3: all tasks done" in result.stdout

    status = json.loads(kinfra("orch", "status", plan3, "--json", cwd=repo).stdout)
    assert status[0]["counts"]["done"] == 3
    assert [t["attempts"] for t in status[0]["tasks"]] == [1, 3, 1]
    (asked,) = status[0]["questions"]
    assert asked["answer"] == "Read-only, please.\n" and asked["delivered"]
    assert asked["time_to_answer"] is not None and not asked["open"]
    history = json.loads(kinfra("orch", "history", "-n", "3", "--json", cwd=repo).stdout)
    assert [h["outcome"] for h in history] == ["done", "failed", "needs_human"]
    costs = json.loads(kinfra("orch", "costs", "--json", "--since", "2000-01-01", cwd=repo).stdout)
    # 3.1, 3.2 (needs_human), 3.2 (done) and 3.3 at $0.5; the API error reported $0
    assert costs["cost_usd"] == 2.0
    assert costs["attempts"] == 5 and costs["attempts_without_cost"] == 0
    table = kinfra("orch", "costs", "--by-milestone", cwd=repo)
    assert "M3         $2.0000  5" in table.stdout


def test_kill_9_during_a_task_then_resume(agentry: Agentry, repo: Path, plan3: Path) -> None:
    agentry.scenario("success", task_3_2=[{"name": "slow", "seconds": 30}, "success"])
    proc = start("orch", "run", plan3, "--workdir", repo, env=agentry.env())
    try:

        def agent_running() -> bool:
            task = _task(_state(), "3.2")
            attempts = task["attempts"]
            return bool(attempts and attempts[-1].get("agent_pid")) and bool(
                agentry.invocations("3.2")
            )

        wait_for(agent_running)
        time.sleep(0.3)  # well into the agent's stream
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
    state = _state()
    interrupted = _task(state, "3.2")["attempts"][-1]
    assert _task(state, "3.2")["status"] == "running"
    assert interrupted["ended"] is None
    session = interrupted["session_id"]
    assert session == agentry.invocations("3.2")[0]["session_id"]
    lock = project_home("app") / "runs" / "M3.lock"
    info = read_lock(lock)
    assert info is not None and info.pid == proc.pid  # left behind by kill -9

    result = kinfra("orch", "resume", plan3, "--workdir", repo, env=agentry.env())
    assert result.returncode == 0, result.stderr
    assert f"took over a stale lock of pid {proc.pid}" in result.stderr
    assert f"task 3.2 was interrupted; it continues in session {session}" in result.stderr
    calls = agentry.invocations("3.2")
    assert len(calls) == 2
    assert calls[1]["argv"][calls[1]["argv"].index("--resume") + 1] == session
    assert len(agentry.invocations("3.1")) == 1  # done: never run again
    state = _state()
    assert [t["status"] for t in state["tasks"]] == ["done"] * 3
    assert [a["outcome"] for a in _task(state, "3.2")["attempts"]] == ["interrupted", "success"]
    assert not group_alive(interrupted["agent_pid"])
    assert not lock.exists()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_agent_releases_lock_and_second_run_is_refused(
    agentry: Agentry, repo: Path, plan3: Path, signum: int
) -> None:
    agentry.scenario({"name": "slow", "seconds": 30})
    proc = start("orch", "run", plan3, "--workdir", repo, env=agentry.env())
    try:
        wait_for(lambda: bool(_task(_state(), "3.1")["attempts"]) and bool(agentry.invocations()))
        second = kinfra("orch", "run", plan3, "--workdir", repo, env=agentry.env())
        assert second.returncode == 1
        assert f"milestone is already being run by kinfra pid {proc.pid}" in second.stderr
        os.kill(proc.pid, signum)
        _, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == (130 if signum == signal.SIGINT else 143), stderr
    assert "interrupted" in stderr
    assert not (project_home("app") / "runs" / "M3.lock").exists()
    agent_pid = agentry.invocations()[0]["pid"]
    assert not group_alive(agent_pid)
    task = _task(_state(), "3.1")
    assert task["status"] == "pending"
    assert task["attempts"][-1]["outcome"] == "interrupted"
    assert len(agentry.invocations()) == 1
    history = json.loads(kinfra("orch", "history", "--json", "--workdir", repo).stdout)
    assert [h["outcome"] for h in history] == ["interrupted"]
