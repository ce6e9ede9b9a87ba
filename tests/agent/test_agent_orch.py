"""The orchestrator with the real claude inside the worktree's agent container,
talking to the mock model server on the host through the host gateway."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kinfra.adapters.process import group_alive
from kinfra.errors import Interrupted, NeedsHumanError
from kinfra.orch.runloop import RunEvent, RunOptions, run_plan
from kinfra.orch.state import load_state
from kinfra.paths import project_home
from kinfra.testing import agentkit, agents
from kinfra.testing.agentkit import AgentProject, make_agent_project
from kinfra.testing.model_server import Forever, Hang, ModelServer, RunCommand, WriteFile, done

PLAN = "docs/designs/genome/implementation/M1_plan.md"  # "## Task 1.1: do something"
CONFIG = """
[secrets]
ANTHROPIC_API_KEY = "env://ANTHROPIC_API_KEY"

[orchestrator]
skip_permissions = true
"""


@pytest.fixture
def mock(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModelServer]:
    """The mock on the host's bridge address; claude in the container is
    pointed at it as host.docker.internal (endpoint and proxy), and reaches
    nothing else."""
    with ModelServer(host=agentkit.bridge_gateway()) as server:
        for key, value in agents.claude_env(f"http://host.docker.internal:{server.port}").items():
            monkeypatch.setenv(key, value)
        yield server
        assert [f"{r.method} {r.path}" for r in server.stray()] == []


@pytest.fixture
def project(tmp_path: Path, docker_prefix: str, agent_image: str) -> AgentProject:
    return make_agent_project(tmp_path, docker_prefix, agent_image, extra=CONFIG)


def claude_processes(p: AgentProject) -> list[str]:
    return [line for line in agentkit.processes_in(f"{p.worktree.name}-agent") if "claude" in line]


def test_a_plan_runs_with_claude_in_the_container_as_the_worktree_owner(
    mock: ModelServer, project: AgentProject
) -> None:
    p, wt = project, project.worktree
    mock.script(
        WriteFile("from-claude.txt", "written in the container\n"),
        RunCommand("id -u > who.txt; echo sandbox=$IS_SANDBOX >> who.txt"),
        done("wrote from-claude.txt"),
        key="Task 1.1",
    )
    # As root on the host, skipping permissions is refused, pointing here.
    refused = p.kinfra("orch", "run", PLAN)
    assert refused.returncode == 1 and 'sandbox = "container"' in refused.stderr
    result = p.kinfra("orch", "run", PLAN, "--in-container", "--restart")
    assert result.returncode == 0, result.stdout + result.stderr
    made = wt / "from-claude.txt"
    assert made.read_text() == "written in the container\n"
    assert (made.stat().st_uid, made.stat().st_gid) == (1000, 1000)
    assert (wt / "who.txt").read_text() == "1000\nsandbox=1\n"

    state = load_state(project_home(p.prefix) / "runs" / "genome-M1.json")
    assert state is not None
    attempt = state.task("1.1").attempts[-1]
    assert (attempt.outcome, attempt.status, attempt.turns) == ("success", "done", 3)
    assert {r.session_id for r in mock.requests("Task 1.1")} == {attempt.session_id}
    # The session transcript is in the worktree's home volume, not on the host.
    listed = p.kinfra("agent", "run", "--", "sh", "-c", "ls ~/.claude/projects/*/")
    assert f"{attempt.session_id}.jsonl" in listed.stdout.split()
    host_agents = project_home(p.prefix) / "agents"
    assert not list(host_agents.rglob("*.jsonl"))
    assert claude_processes(p) == []


def test_the_check_runs_in_the_container_on_what_the_agent_wrote(
    mock: ModelServer, tmp_path: Path, docker_prefix: str, agent_image: str
) -> None:
    # On the host (root, no IS_SANDBOX) this check fails: the task is done
    # only if it ran inside, as the worktree's owner, in /workspace.
    check = 'test "$IS_SANDBOX" = 1 && test "$(id -u)" = 1000 && test -f from-claude.txt && pwd > checked.txt'
    p = make_agent_project(
        tmp_path, docker_prefix, agent_image, extra=CONFIG + f"check = '{check}'\n"
    )
    mock.script(WriteFile("from-claude.txt", "written\n"), done("wrote it"), key="Task 1.1")
    result = p.kinfra("orch", "run", PLAN, "--in-container")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (p.worktree / "checked.txt").read_text() == "/workspace\n"
    state = load_state(project_home(p.prefix) / "runs" / "genome-M1.json")
    assert state is not None and state.task("1.1").attempts[-1].status == "done"


def test_an_interrupted_attempt_stops_inside_and_resumes_the_same_session(
    mock: ModelServer, project: AgentProject
) -> None:
    p, wt = project, project.worktree
    mock.script(RunCommand("echo part one"), Hang(120), done("finished"), key="Task 1.1")

    def interrupt_while_the_model_thinks(event: RunEvent) -> None:
        if len(mock.requests("Task 1.1")) >= 2:  # the first turn ran; the second hangs
            raise Interrupted(signal.SIGINT)  # as kinfra's handler does on Ctrl-C

    options = RunOptions(plan_path=wt / PLAN, workdir=wt, kill_grace=1.0, in_container=True)
    with pytest.raises(Interrupted):
        run_plan(options, on_event=interrupt_while_the_model_thinks)
    state = load_state(project_home(p.prefix) / "runs" / "genome-M1.json")
    assert state is not None
    first = state.task("1.1").attempts[0]
    assert first.outcome == "interrupted"
    # Nothing left: neither the docker CLI on the host nor claude inside.
    assert first.agent_pid and not group_alive(first.agent_pid)
    assert claude_processes(p) == []

    # Resumed by the CLI: the run keeps --in-container, claude continues its session.
    resumed = p.kinfra("orch", "resume", PLAN)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    state = load_state(project_home(p.prefix) / "runs" / "genome-M1.json")
    assert state is not None
    second = state.task("1.1").attempts[1]
    assert second.resumed_session and second.session_id == first.session_id
    last = mock.requests("Task 1.1")[-1]
    assert last.session_id == first.session_id
    assert any("part one" in str(m) for m in last.messages)  # the earlier turns came along
    assert claude_processes(p) == []


def test_the_idle_watchdog_stops_a_hung_agent_inside(
    mock: ModelServer, project: AgentProject
) -> None:
    p, wt = project, project.worktree
    mock.script(Forever(Hang(120)), key="Task 1.1")
    options = RunOptions(
        plan_path=wt / PLAN, workdir=wt, kill_grace=1.0, in_container=True, idle_timeout=4
    )
    summary = run_plan(options)
    # hung twice the same way: a loop, for a human
    with pytest.raises(NeedsHumanError, match=r"needs a human \(loop\)"):
        summary.raise_for_outcome()
    attempts = summary.state.task("1.1").attempts
    assert [(a.outcome, a.status) for a in attempts] == [("idle_timeout", "failed")] * 2
    assert "no output for 4s" in (attempts[0].error or "")
    assert claude_processes(p) == []


def test_an_agent_left_by_a_killed_orchestrator_is_stopped_before_the_resume(
    mock: ModelServer, project: AgentProject
) -> None:
    p, wt = project, project.worktree
    mock.script(RunCommand("echo part one"), Hang(120), done("finished"), key="Task 1.1")
    orchestrator = subprocess.Popen(
        [sys.executable, "-m", "kinfra", "orch", "run", PLAN, "--in-container"],
        cwd=wt,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while len(mock.requests("Task 1.1")) < 2:  # the second turn hangs
            assert time.monotonic() < deadline and orchestrator.poll() is None
            time.sleep(0.2)
    finally:
        orchestrator.kill()  # SIGKILL: no cleanup at all
        orchestrator.wait()
    assert claude_processes(p) != []  # left running in the container

    resumed = p.kinfra("orch", "resume", PLAN)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    state = load_state(project_home(p.prefix) / "runs" / "genome-M1.json")
    assert state is not None
    first, second = state.task("1.1").attempts
    assert first.outcome == "interrupted"
    assert second.resumed_session and second.session_id == first.session_id
    assert claude_processes(p) == []
