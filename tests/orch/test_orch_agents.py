"""Agent adapters against real executables: the fake Claude Code in each of its
scenarios, a codex-format stream, and a generic command."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path
from typing import TYPE_CHECKING

from kinfra.adapters.lock import process_alive
from kinfra.domain.config import OrchestratorSettings
from kinfra.orch.agents.base import AgentOutcome, AgentProgress, AgentRequest
from kinfra.orch.agents.claude import ClaudeAgent, ClaudeStream
from kinfra.orch.agents.codex import CodexAgent
from kinfra.orch.agents.command import CommandAgent
from kinfra.orch.context import default_settings
from kinfra.orch.process import group_alive
from kinfra.orch.status_block import AgentStatus

if TYPE_CHECKING:
    from conftest import Agentry


def _request(workdir: Path, **kw: object) -> AgentRequest:
    values: dict[str, object] = {
        "prompt": "Implement Task 1.1.\n",
        "workdir": workdir,
        "max_turns": 7,
        "timeout": 30.0,
        "idle_timeout": 10.0,
        "new_session": "11111111-2222-3333-4444-555555555555",
        "env": {"KINFRA_TASK_ID": "1.1"},
        "kill_grace": 0.3,
    }
    values.update(kw)
    return AgentRequest(**values)  # type: ignore[arg-type]


def _settings(**kw: object) -> OrchestratorSettings:
    from dataclasses import replace

    return replace(default_settings(), **kw)  # type: ignore[arg-type]


def test_success_edits_a_file_and_reports_cost_tokens_session(agentry: Agentry, repo: Path) -> None:
    agentry.scenario({"name": "success", "cost": 0.25})
    progress: list[AgentProgress] = []
    sessions: list[str] = []
    pids: list[int] = []
    result = ClaudeAgent(_settings()).run(
        _request(repo), progress.append, sessions.append, pids.append
    )
    assert result.outcome is AgentOutcome.SUCCESS
    assert result.cost_usd == 0.25
    assert result.session_id == "11111111-2222-3333-4444-555555555555"
    assert result.turns == 4
    assert result.tokens == {"input": 400, "output": 200, "cache_read": 2000, "cache_creation": 100}
    assert result.models == ("claude-sonnet-4-5-20250929",)
    assert result.status_block is not None and result.status_block.status is AgentStatus.DONE
    assert (repo / "fake_agent_1.1.txt").read_text().startswith("task 1.1 done")
    # progress saw the tool uses as they came
    assert any(p.last_tool and p.last_tool.startswith("Write ") for p in progress)
    assert progress[-1].turns == 4
    assert pids == [result.pid]
    (call,) = agentry.invocations()
    assert call["argv"][:7] == [
        "-p",
        "--output-format",
        "stream-json",
        "--verbose",
        "--max-turns",
        "7",
        "--session-id",
    ]
    assert call["prompt_head"] == "Implement Task 1.1.\n"
    assert result.duration > 0


def test_resume_model_and_permission_flags(agentry: Agentry, repo: Path) -> None:
    agent = ClaudeAgent(_settings(allowed_tools=("Edit", "Bash(make test)")))
    result = agent.run(_request(repo, resume_session="abc-123", model="opus"))
    assert result.session_id == "abc-123"
    argv = agentry.invocations()[0]["argv"]
    assert argv[argv.index("--resume") + 1] == "abc-123"
    assert "--session-id" not in argv
    assert argv[argv.index("--model") + 1] == "opus"
    assert argv[argv.index("--allowedTools") + 1 :] == ["Edit", "Bash(make test)"]
    assert "--dangerously-skip-permissions" not in argv
    skip = ClaudeAgent(_settings(skip_permissions=True, allowed_tools=("Edit",)))
    assert "--dangerously-skip-permissions" in skip.argv(_request(repo))
    assert "--allowedTools" not in skip.argv(_request(repo))


def test_error_max_turns(agentry: Agentry, repo: Path) -> None:
    agentry.scenario("max_turns")
    result = ClaudeAgent(_settings()).run(_request(repo))
    assert result.outcome is AgentOutcome.MAX_TURNS
    assert result.subtype == "error_max_turns"
    assert result.terminal_reason == "max_turns"
    assert result.turns == 3
    assert result.error == "stopped after 3 turns (max turns)"


def test_is_error_with_subtype_success_is_an_api_error(agentry: Agentry, repo: Path) -> None:
    agentry.scenario("api_error")
    result = ClaudeAgent(_settings()).run(_request(repo))
    assert result.outcome is AgentOutcome.API_ERROR
    assert result.subtype == "success"
    assert result.error is not None and "overloaded_error" in result.error
    assert not result.ok


def test_hang_is_killed_by_the_watchdog_with_its_whole_group(agentry: Agentry, repo: Path) -> None:
    agentry.scenario("hang")
    started = time.monotonic()
    result = ClaudeAgent(_settings()).run(_request(repo, idle_timeout=1.0, kill_grace=0.3))
    elapsed = time.monotonic() - started
    assert result.outcome is AgentOutcome.IDLE_TIMEOUT
    assert result.error == "no output for 1s: killed (hung agent)"
    assert elapsed < 8
    (call,) = agentry.invocations()
    # the agent and the child it spawned both ignored SIGINT and SIGTERM: only the
    # group's SIGKILL got them, and nothing of the group is left running
    assert result.pid == call["pid"]
    assert not group_alive(call["pid"])
    assert not _running(call["child_pid"])


def test_wall_clock_timeout(agentry: Agentry, repo: Path) -> None:
    agentry.scenario({"name": "slow", "seconds": 30})
    result = ClaudeAgent(_settings()).run(_request(repo, timeout=1.0, idle_timeout=5.0))
    assert result.outcome is AgentOutcome.TIMEOUT
    assert result.turns is not None and result.turns > 0
    assert not group_alive(agentry.invocations()[0]["pid"])


def test_crash_mid_stream_without_result(agentry: Agentry, repo: Path) -> None:
    agentry.scenario("crash")
    result = ClaudeAgent(_settings()).run(_request(repo))
    assert result.outcome is AgentOutcome.CRASHED
    assert result.exit_code == 3
    assert result.error == (
        "the agent exited without a result event (exit 3): fake claude: simulated crash (segfault)"
    )
    assert result.final_text is None and result.status_block is None


def test_needs_human_question_from_the_final_message(agentry: Agentry, repo: Path) -> None:
    agentry.scenario("needs_human")
    result = ClaudeAgent(_settings()).run(_request(repo))
    assert result.outcome is AgentOutcome.SUCCESS
    assert result.status_block is not None
    assert result.status_block.status is AgentStatus.NEEDS_HUMAN
    assert result.question == "Should config/ be mounted read-only in the override?"


def test_missing_agent_program(repo: Path) -> None:
    result = ClaudeAgent(_settings(), program="no-such-claude-xyz").run(_request(repo))
    assert result.outcome is AgentOutcome.NOT_FOUND


def test_stream_parser_ignores_garbage_and_counts_messages_once() -> None:
    stream = ClaudeStream()
    message = {"id": "m1", "content": [{"type": "text", "text": "hi"}]}
    assert not stream.feed("not json")
    stream.feed(json.dumps({"type": "system", "subtype": "init", "session_id": "s1"}))
    stream.feed(json.dumps({"type": "assistant", "message": message, "session_id": "s1"}))
    stream.feed(json.dumps({"type": "assistant", "message": message, "session_id": "s1"}))
    assert (stream.session_id, stream.turns, stream.bad_lines) == ("s1", 1, 1)
    assert stream.outcome()[0] is AgentOutcome.CRASHED


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_codex_adapter_reads_exec_json(tmp_path: Path, repo: Path) -> None:
    events = [
        {"type": "thread.started", "thread_id": "thr-1"},
        {"type": "turn.started"},
        {"type": "item.started", "item": {"type": "command_execution", "command": "make test"}},
        {
            "type": "item.completed",
            "item": {"type": "agent_message", "text": "ok\nSTATUS: blocked\nSUMMARY: db down"},
        },
        {
            "type": "turn.completed",
            "usage": {"input_tokens": 1200, "cached_input_tokens": 200, "output_tokens": 345},
        },
    ]
    lines = "".join(f"printf '%s\\n' '{json.dumps(e)}'\n" for e in events)
    program = _script(tmp_path / "codex", 'echo "$@" > "$0.argv"\ncat > /dev/null\n' + lines)
    result = CodexAgent(_settings(), program=str(program)).run(
        _request(repo, resume_session="thr-0")
    )
    assert result.outcome is AgentOutcome.SUCCESS
    assert result.session_id == "thr-1"
    assert result.cost_usd is None
    assert result.tokens == {"input": 1200, "cache_read": 200, "output": 345}
    assert result.status_block is not None and result.status_block.status is AgentStatus.BLOCKED
    argv = (tmp_path / "codex.argv").read_text().split()
    assert argv[:2] == ["exec", "--json"] and argv[-3:] == ["resume", "thr-0", "-"]


def test_command_agent_prompt_on_stdin_and_exit_code(tmp_path: Path, repo: Path) -> None:
    program = _script(
        tmp_path / "agent",
        'read first\necho "got: $first"\necho "STATUS: needs_human"\necho "QUESTION: which db?"\n',
    )
    agent = CommandAgent(_settings(agent="command", command=(str(program),)))
    result = agent.run(_request(repo))
    assert result.outcome is AgentOutcome.SUCCESS
    assert result.final_text is not None and "got: Implement Task 1.1." in result.final_text
    assert result.question == "which db?"
    failing = _script(tmp_path / "failing", "echo oops >&2\nexit 5\n")
    bad = CommandAgent(_settings(agent="command", command=(str(failing),), prompt_via="arg"))
    result = bad.run(_request(repo))
    assert result.outcome is AgentOutcome.ERROR
    assert result.error == "the agent command failed (exit 5): oops"


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting for init."""
    if not process_alive(pid):
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return os.system(f"ps -o stat= -p {pid} | grep -qv Z") == 0
    return state != "Z"
