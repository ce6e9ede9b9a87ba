"""The Claude Code adapter against the real ``claude`` CLI (the pinned npm
release), talking to the mock model server on 127.0.0.1."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from kinfra.domain.config import OrchestratorSettings
from kinfra.orch.agents.base import AgentOutcome, AgentProgress, AgentRequest
from kinfra.orch.agents.claude import ClaudeAgent
from kinfra.orch.context import default_settings
from kinfra.orch.status_block import AgentStatus
from kinfra.testing.model_server import ModelServer, RunCommand, WriteFile, done

SESSION = "11111111-2222-3333-4444-555555555555"
TOOLS = ("Bash", "Edit", "Read", "Write")


def _request(workdir: Path, tmp_path: Path, **kw: object) -> AgentRequest:
    values: dict[str, object] = {
        "prompt": "Implement Task 1.1 of milestone M1.\n",
        "workdir": workdir,
        "max_turns": 7,
        "timeout": 60.0,
        "idle_timeout": 30.0,
        "new_session": SESSION,
        "config_dir": tmp_path / "claude-config",
        "kill_grace": 0.5,
    }
    values.update(kw)
    return AgentRequest(**values)  # type: ignore[arg-type]


def _settings(**kw: object) -> OrchestratorSettings:
    return replace(default_settings(), **kw)  # type: ignore[arg-type]


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
