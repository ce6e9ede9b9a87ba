"""The Codex adapter and a run against the real ``codex`` CLI (the pinned npm
release), with a CODEX_HOME whose provider is the mock model server."""

from __future__ import annotations

from pathlib import Path

from kinfra.orch.agents.base import AgentOutcome, AgentProgress
from kinfra.orch.agents.codex import CodexAgent
from kinfra.orch.runloop import NO_STATUS, RunOptions, run_plan
from kinfra.orch.status_block import AgentStatus
from kinfra.testing.agents import agent_request, orchestrator_settings
from kinfra.testing.model_server import (
    Fail,
    Forever,
    ModelServer,
    Reply,
    RunCommand,
    WriteFile,
    done,
    failures,
)

_request = agent_request


def _agent() -> CodexAgent:
    return CodexAgent(orchestrator_settings(agent="codex"))


def test_success_edits_a_file_in_the_workspace_write_sandbox(
    real_codex: ModelServer, repo: Path
) -> None:
    real_codex.script(
        WriteFile("notes.txt", "written by codex\n"),
        RunCommand("echo appended >> notes.txt"),
        done("wrote notes.txt"),
        key="Task 1.1",
    )
    progress: list[AgentProgress] = []
    sessions: list[str] = []
    agent = _agent()
    assert agent.argv(_request(repo))[1:] == ["exec", "--json", "-s", "workspace-write", "-"]
    result = agent.run(_request(repo), progress.append, sessions.append)
    assert result.outcome is AgentOutcome.SUCCESS, result.error
    assert (repo / "notes.txt").read_text() == "written by codex\nappended\n"
    assert result.session_id and sessions == [result.session_id]
    assert result.tokens == {"input": 300, "cache_read": 0, "output": 60}
    assert result.cost_usd is None  # codex reports none
    assert result.status_block is not None and result.status_block.status is AgentStatus.DONE
    assert any(p.last_tool and p.last_tool.startswith("edit ") for p in progress)
    requests = real_codex.requests("Task 1.1")
    assert len(requests) == 3 and {r.session_id for r in requests} == {result.session_id}


def test_resume_continues_the_thread_and_counts_only_its_own_tokens(
    real_codex: ModelServer, repo: Path
) -> None:
    real_codex.script(
        RunCommand("echo part one"), done("part one"), done("part two"), key="Task 1.1"
    )
    agent = _agent()
    first = agent.run(_request(repo))
    assert first.ok and first.session_id
    assert first.tokens["input"] == 200
    second_request = _request(
        repo,
        prompt="Continue Task 1.1.\n",
        resume_session=first.session_id,
        session_tokens=first.tokens,
    )
    # sandbox options go before `resume`, which takes none of its own
    assert agent.argv(second_request)[1:] == [
        "exec", "--json", "-s", "workspace-write", "resume", first.session_id, "-",
    ]  # fmt: skip
    second = agent.run(second_request)
    assert second.ok and second.session_id == first.session_id
    assert second.status_block is not None and second.status_block.summary == "part two"
    assert second.tokens["input"] == 100  # codex reports the thread's total, 300
    resumed = real_codex.requests("Task 1.1")[-1]
    assert resumed.session_id == first.session_id
    assert resumed.user_texts()[-1] == "Continue Task 1.1.\n"
    assert any("part one" in str(m) for m in resumed.messages)


def test_transient_api_errors_then_completion_is_a_success(
    real_codex: ModelServer, repo: Path
) -> None:
    # codex retries a request once itself, then reconnects (an `error` event)
    real_codex.script(*failures(529, 2), done("made it"), key="Task 1.1")
    progress: list[AgentProgress] = []
    result = _agent().run(_request(repo), progress.append)
    assert result.outcome is AgentOutcome.SUCCESS, result.error
    assert "API 529, retry 1/2" in [p.note for p in progress]
    assert result.status_block is not None and result.status_block.summary == "made it"


def test_a_lasting_api_error_fails(real_codex: ModelServer, repo: Path) -> None:
    real_codex.script(Forever(Fail(500)), key="Task 1.1")
    result = _agent().run(_request(repo))
    assert result.outcome is AgentOutcome.API_ERROR
    assert result.error == (
        "API error: We’re currently experiencing high demand, which may cause temporary errors."
    )


def test_resume_of_an_unknown_thread(real_codex: ModelServer, repo: Path) -> None:
    unknown = "01a233b0-0000-7000-8000-000000000000"
    result = _agent().run(_request(repo, resume_session=unknown))
    assert result.outcome is AgentOutcome.SESSION_NOT_FOUND
    assert result.error is not None and unknown in result.error
    assert real_codex.requests() == []


def test_a_run_with_codex_judges_by_the_status_line(
    real_codex: ModelServer, repo: Path, plan3: Path
) -> None:
    real_codex.script(WriteFile("first.txt", "1\n"), done("first"), key="Task 3.1")
    real_codex.script(Reply("I changed everything, all good."), done("second"), key="Task 3.2")
    real_codex.script(Forever(done("ok")))
    options = RunOptions(plan_path=plan3, workdir=repo, agent="codex", kill_grace=1.0)
    summary = run_plan(options)
    assert summary.outcome == "done"
    first = summary.state.task("3.1").attempts[0]
    assert (first.status, first.summary) == ("done", "first")
    assert (repo / "first.txt").read_text() == "1\n"
    # no STATUS line: a failed attempt, retried in its session, told what failed
    no_status, retried = summary.state.task("3.2").attempts
    assert (no_status.outcome, no_status.status, no_status.error) == (
        "success",
        "failed",
        NO_STATUS,
    )
    assert retried.resumed_session and retried.session_id == no_status.session_id
    assert retried.summary == "second"
    told = real_codex.requests("Task 3.2")[-1].user_texts()[-1]
    assert told.startswith(f"Your attempt at Task 3.2 (Second) failed: {NO_STATUS}")
