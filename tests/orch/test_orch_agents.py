"""Agent adapters: command lines, process control against a fake agent that
ignores signals, the stream parser on the real CLI's event shapes, a generic
command. What the agents themselves do is tested against the real CLIs
(test_real_claude.py, test_real_codex.py)."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path
from typing import TYPE_CHECKING

from kinfra.adapters.lock import process_alive
from kinfra.adapters.process import group_alive
from kinfra.orch.agents.base import AgentOutcome, AgentRequest
from kinfra.orch.agents.claude import ClaudeAgent, ClaudeStream
from kinfra.orch.agents.codex import CodexAgent
from kinfra.orch.agents.command import CommandAgent
from kinfra.orch.status_block import AgentStatus
from kinfra.testing.agents import agent_request, orchestrator_settings

if TYPE_CHECKING:
    from conftest import Agentry


def _request(workdir: Path, **kw: object) -> AgentRequest:
    # the fake agent finds its scenario by KINFRA_TASK_ID
    values: dict[str, object] = {
        "new_session": "11111111-2222-3333-4444-555555555555",
        "env": {"KINFRA_TASK_ID": "1.1"},
        "kill_grace": 0.3,
        **kw,
    }
    return agent_request(workdir, **values)


_settings = orchestrator_settings


def test_resume_model_and_permission_flags(agentry: Agentry, repo: Path) -> None:
    agent = ClaudeAgent(_settings(allowed_tools=("Edit", "Bash(make test)")))
    result = agent.run(_request(repo, resume_session="abc-123", model="opus"))
    assert result.session_id == "abc-123"
    argv = agentry.invocations()[0]["argv"]
    assert argv[argv.index("--resume") + 1] == "abc-123"
    assert "--session-id" not in argv
    assert argv[argv.index("--model") + 1] == "opus"
    assert argv[argv.index("--permission-mode") + 1] == "acceptEdits"
    assert argv[argv.index("--allowedTools") + 1 :] == ["Edit", "Bash(make test)"]
    assert "--dangerously-skip-permissions" not in argv
    skip = ClaudeAgent(_settings(skip_permissions=True, allowed_tools=("Edit",)))
    assert "--dangerously-skip-permissions" in skip.argv(_request(repo))
    assert "--allowedTools" not in skip.argv(_request(repo))
    assert "--permission-mode" not in skip.argv(_request(repo))
    plain = ClaudeAgent(_settings()).argv(_request(repo))
    assert plain[-2:] == ["--permission-mode", "acceptEdits"]


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


def _result(**fields: object) -> str:
    event = {"type": "result", "subtype": "success", "is_error": False, "num_turns": 1}
    return json.dumps({**event, **fields})


def test_stream_parser_reads_the_real_clis_shapes() -> None:
    # --max-turns 2: the CLI reports num_turns 3 (it counts the refused turn)
    stream = ClaudeStream()
    stream.feed(
        _result(
            subtype="error_max_turns",
            is_error=True,
            num_turns=3,
            terminal_reason="max_turns",
            errors=["Reached maximum number of turns (2)"],
        )
    )
    assert stream.outcome(2) == (AgentOutcome.MAX_TURNS, "reached the max-turns limit (2 turns)")
    assert stream.turns_run() == 2
    # refused tool calls: success on the surface, never done
    stream = ClaudeStream()
    denials = [
        {"tool_name": "Bash", "tool_input": {}},
        {"tool_name": "Write"},
        {"tool_name": "Bash"},
    ]
    stream.feed(_result(permission_denials=denials))
    outcome, error = stream.outcome()
    assert outcome is AgentOutcome.PERMISSION_DENIED
    assert error == (
        "claude was refused Bash, Write (permission_denials), so the task is not done; "
        'allow them with [orchestrator] allowed_tools = ["Bash", "Write", ...] in kinfra.toml'
    )
    # --resume of an unknown session
    stream = ClaudeStream()
    stream.feed(
        _result(
            subtype="error_during_execution",
            is_error=True,
            num_turns=0,
            errors=["No conversation found with session ID: abc"],
        )
    )
    assert stream.outcome() == (
        AgentOutcome.SESSION_NOT_FOUND,
        "No conversation found with session ID: abc",
    )
    # API retries are shown while waiting; usage is kept from the stream alone
    stream = ClaudeStream()
    retry = {"type": "system", "subtype": "api_retry", "attempt": 3, "max_retries": 10}
    stream.feed(json.dumps({**retry, "retry_delay_ms": 12400, "error_status": 529}))
    assert stream.note == "API 529, retry 3/10 in 12 s"
    usage = {"input_tokens": 100, "output_tokens": 1, "cache_read_input_tokens": 7}
    for _ in range(2):  # one event per content block, same message
        stream.feed(json.dumps({"type": "assistant", "message": {"id": "m1", "usage": usage}}))
    stream.feed(json.dumps({"type": "assistant", "message": {"id": "m2", "usage": usage}}))
    assert stream.note is None
    assert stream.tokens() == {"input": 200, "output": 2, "cache_read": 14, "cache_creation": 0}


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
    assert argv == ["exec", "--json", "-s", "workspace-write", "resume", "thr-0", "-"]
    bypass = CodexAgent(_settings(skip_permissions=True)).argv(_request(repo))
    assert bypass[1:] == ["exec", "--json", "--dangerously-bypass-approvals-and-sandbox", "-"]


def test_root_may_not_bypass_an_agents_permissions_on_the_host() -> None:
    from kinfra.errors import OrchestratorError
    from kinfra.orch.agents import check_permissions

    for agent, way in (
        ("claude", "list the tools it may use in [orchestrator] allowed_tools"),
        ("codex", "leave skip_permissions off (codex then runs in its workspace-write sandbox)"),
    ):
        settings = _settings(agent=agent, skip_permissions=True)
        if os.geteuid() != 0:
            check_permissions(settings)  # not root: allowed
            continue
        try:
            check_permissions(settings)
        except OrchestratorError as refused:
            assert refused.message.endswith(f"for {agent} running as root on the host")
            assert refused.hint == (
                f'{way}, or run the agent in its container ([orchestrator] sandbox = "container")'
            )
        else:
            raise AssertionError(f"{agent}: skip_permissions as root was accepted")
    check_permissions(_settings(agent="claude"))  # the default: nothing to refuse


def test_command_agent_prompt_on_stdin_and_exit_code(tmp_path: Path, repo: Path) -> None:
    program = _script(
        tmp_path / "agent",
        'read first\necho "got: $first"\necho "STATUS: needs_human"\necho "QUESTION: which db?"\n',
    )
    agent = CommandAgent(_settings(agent="command", command=(str(program),)))
    result = agent.run(_request(repo))
    assert result.outcome is AgentOutcome.SUCCESS
    assert (
        result.final_text is not None
        and "got: Implement Task 1.1 of milestone M1." in result.final_text
    )
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
