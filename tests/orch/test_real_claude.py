"""The Claude Code adapter against the real ``claude`` CLI (the pinned npm
release), talking to the mock model server on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from kinfra.adapters.process import group_alive
from kinfra.orch.agents.base import AgentOutcome, AgentProgress, AgentRequest
from kinfra.orch.agents.claude import ClaudeAgent
from kinfra.orch.status_block import AgentStatus
from kinfra.testing.agents import agent_request, orchestrator_settings
from kinfra.testing.model_server import (
    Forever,
    Hang,
    ModelServer,
    RunCommand,
    WriteFile,
    done,
    failures,
    needs_human,
)

SESSION = "11111111-2222-3333-4444-555555555555"
TOOLS = ("Bash", "Edit", "Read", "Write")


def _request(workdir: Path, tmp_path: Path, **kw: object) -> AgentRequest:
    values = {"new_session": SESSION, "config_dir": tmp_path / "claude-config", **kw}
    return agent_request(workdir, **values)


_settings = orchestrator_settings


def test_success_edits_a_file_and_reports_session_turns_tokens_cost(
    real_claude: ModelServer, repo: Path, tmp_path: Path
) -> None:
    real_claude.script(
        WriteFile("notes.txt", "written by the agent\n"),
        RunCommand("cat notes.txt"),
        done("wrote notes.txt"),
        key="Task 1.1",
    )
    progress: list[AgentProgress] = []
    sessions: list[str] = []
    result = ClaudeAgent(_settings(allowed_tools=TOOLS)).run(
        _request(repo, tmp_path), progress.append, sessions.append
    )
    assert result.outcome is AgentOutcome.SUCCESS, result.error
    assert (repo / "notes.txt").read_text() == "written by the agent\n"
    assert result.session_id == SESSION
    assert result.turns == 3  # three model requests: Write, Bash, the final message
    assert result.tokens["input"] == 300 and result.tokens["output"] == 60
    assert result.cost_usd is not None and result.cost_usd > 0
    assert result.status_block is not None and result.status_block.status is AgentStatus.DONE
    assert result.status_block.summary == "wrote notes.txt"
    assert any(p.last_tool and p.last_tool.startswith("Write ") for p in progress)
    # what the CLI sent: the prompt, under the session kinfra chose
    requests = real_claude.requests("Task 1.1")
    assert len(requests) == 3
    assert {r.session_id for r in requests} == {SESSION}
    assert requests[0].user_texts()[-1].endswith("Implement Task 1.1 of milestone M1.\n")
    # the session lives in the config dir kinfra gave it
    assert list((tmp_path / "claude-config").rglob(f"{SESSION}.jsonl"))


def test_default_permissions_accept_edits_and_refuse_other_tools(
    real_claude: ModelServer, repo: Path, tmp_path: Path
) -> None:
    real_claude.script(
        WriteFile("notes.txt", "edit accepted\n"),
        RunCommand("sh -c 'echo ran > ran.txt'"),
        done("wrote notes.txt"),
        key="Task 1.1",
    )
    result = ClaudeAgent(_settings()).run(_request(repo, tmp_path))
    # --permission-mode acceptEdits: the edit in the workdir went through...
    assert (repo / "notes.txt").read_text() == "edit accepted\n"
    # ...a program not listed in allowed_tools was refused, so the attempt is not
    # done, whatever its final STATUS says
    assert not (repo / "ran.txt").exists()
    assert result.outcome is AgentOutcome.PERMISSION_DENIED
    assert result.denied_tools == ("Bash",)
    assert result.error is not None
    assert 'allowed_tools = ["Bash", ...]' in result.error
    assert result.status_block is not None and result.status_block.status is AgentStatus.DONE


def test_max_turns_reports_the_turns_that_ran(
    real_claude: ModelServer, repo: Path, tmp_path: Path
) -> None:
    real_claude.script(Forever(RunCommand("echo still working")), key="Task 1.1")
    settings = _settings(allowed_tools=TOOLS)
    result = ClaudeAgent(settings).run(_request(repo, tmp_path, max_turns=2))
    assert result.outcome is AgentOutcome.MAX_TURNS
    assert result.error == "reached the max-turns limit (2 turns)"
    assert result.turns == 2  # the CLI says num_turns 3
    assert len(real_claude.requests("Task 1.1")) == 2
    assert result.cost_usd is not None and result.tokens["input"] == 200


def test_api_errors_are_retried_visibly_then_fail_when_they_persist(
    real_claude: ModelServer, repo: Path, tmp_path: Path
) -> None:
    # the fixture allows the CLI 2 retries: 529 twice, then an answer
    real_claude.script(*failures(529, 2), done("made it"), key="Task 1.1")
    progress: list[AgentProgress] = []
    result = ClaudeAgent(_settings()).run(_request(repo, tmp_path), progress.append)
    assert result.outcome is AgentOutcome.SUCCESS
    notes = [p.note for p in progress if p.note]
    assert notes[0].startswith("API 529, retry 1/2 in ")
    assert notes[-1].startswith("API 529, retry 2/2 in ")
    # 429 three times: the retries are used up
    real_claude.script(*failures(429, 3), key="Task 2.1")
    result = ClaudeAgent(_settings()).run(
        _request(repo, tmp_path, prompt="Task 2.1", new_session=SESSION.replace("1", "2"))
    )
    assert result.outcome is AgentOutcome.API_ERROR
    assert result.error is not None and "(429)" in result.error
    assert len(real_claude.requests("Task 2.1")) == 3


def test_needs_human_question_comes_from_the_final_message(
    real_claude: ModelServer, repo: Path, tmp_path: Path
) -> None:
    real_claude.script(needs_human("Mount config/ read-only?"), key="Task 1.1")
    result = ClaudeAgent(_settings()).run(_request(repo, tmp_path))
    assert result.outcome is AgentOutcome.SUCCESS
    assert result.status_block is not None
    assert result.status_block.status is AgentStatus.NEEDS_HUMAN
    assert result.question == "Mount config/ read-only?"


def test_resume_continues_the_session_with_its_earlier_messages(
    real_claude: ModelServer, repo: Path, tmp_path: Path
) -> None:
    real_claude.script(
        RunCommand("echo first part"), done("part one"), done("part two"), key="Task 1.1"
    )
    agent = ClaudeAgent(_settings(allowed_tools=TOOLS))
    assert agent.run(_request(repo, tmp_path)).ok
    result = agent.run(
        _request(
            repo, tmp_path, prompt="Continue Task 1.1.\n", new_session=None, resume_session=SESSION
        )
    )
    assert result.ok and result.session_id == SESSION
    assert result.status_block is not None and result.status_block.summary == "part two"
    resumed = real_claude.requests("Task 1.1")[-1]
    assert resumed.session_id == SESSION
    texts = resumed.user_texts()
    assert texts[0].endswith("Implement Task 1.1 of milestone M1.\n")  # the first prompt...
    assert texts[-1].endswith("Continue Task 1.1.\n")  # ...then the new one
    assert any("part one" in str(m) for m in resumed.messages)  # and the earlier answer


def test_resume_of_a_session_it_cannot_find(
    real_claude: ModelServer, repo: Path, tmp_path: Path
) -> None:
    result = ClaudeAgent(_settings()).run(
        _request(repo, tmp_path, new_session=None, resume_session=SESSION)
    )
    assert result.outcome is AgentOutcome.SESSION_NOT_FOUND
    assert result.error == f"No conversation found with session ID: {SESSION}"
    assert real_claude.requests() == []


def test_a_model_that_never_answers_is_stopped_by_the_idle_watchdog(
    real_claude: ModelServer, repo: Path, tmp_path: Path
) -> None:
    real_claude.script(RunCommand("echo started"), Hang(120), key="Task 1.1")
    started = time.monotonic()
    result = ClaudeAgent(_settings(allowed_tools=TOOLS)).run(
        _request(repo, tmp_path, idle_timeout=4.0)
    )
    assert result.outcome is AgentOutcome.IDLE_TIMEOUT
    assert time.monotonic() - started < 30
    assert [r.answer for r in real_claude.requests()] == ["RunCommand", "Hang"]
    assert result.pid is not None and not group_alive(result.pid)
    assert result.turns == 1 and result.tokens["input"] == 100  # what the stream showed


def test_a_killed_agent_is_a_crash_with_the_tokens_its_stream_showed(
    real_claude: ModelServer, repo: Path, tmp_path: Path
) -> None:
    real_claude.script(RunCommand("echo started"), Hang(120), key="Task 1.1")
    pids: list[int] = []

    def kill_after_first_turn(progress: AgentProgress) -> None:
        if progress.turns >= 1 and pids:
            os.kill(pids[0], signal.SIGKILL)
            pids.clear()

    result = ClaudeAgent(_settings(allowed_tools=TOOLS)).run(
        _request(repo, tmp_path), kill_after_first_turn, None, pids.append
    )
    assert result.outcome is AgentOutcome.CRASHED
    assert result.error is not None
    assert result.error.startswith("the agent exited without a result event (exit -9)")
    assert result.final_text is None and result.status_block is None
    assert result.tokens["input"] == 100 and result.cost_usd is None
