"""Claude Code, headless::

    claude -p --output-format stream-json --verbose --max-turns N
           (--session-id <uuid> | --resume <uuid>) [--model M]
           --permission-mode acceptEdits [--allowedTools <tool>...]

with ``CLAUDE_CONFIG_DIR`` set to a folder kinfra owns (sessions are found only
from the same config dir and cwd). The prompt goes on stdin.

What the real CLI (2.1.x) does, and how it is read:

- ``system``/``init`` gives the session id; ``assistant`` events the turns,
  tool uses (the progress line) and each message's ``usage``;
  ``system``/``api_retry`` (``attempt``, ``max_retries``, ``retry_delay_ms``,
  ``error_status``) is all it prints while it waits out API errors.
- The final ``result`` event: ``subtype`` (``success``, ``error_max_turns``,
  ``error_during_execution``), ``is_error``, ``terminal_reason``,
  ``num_turns``, ``total_cost_usd``, ``usage``, ``modelUsage``,
  ``permission_denials``, ``errors``.
- A tool call the permission setup refuses does not fail the run: the result
  is still ``success`` and the refusals are only in ``permission_denials``.
  Such an attempt is never done.
- ``--max-turns N`` ends with ``num_turns`` N+1: the CLI counts the turn it
  refused to start. kinfra reports the N turns that ran.
- ``subtype: success`` with ``is_error: true`` is an API failure (retries used up).
- ``--resume`` of a session it cannot find: ``error_during_execution`` with
  ``errors: ["No conversation found with session ID: ..."]``.
- On SIGINT it exits 0 without a ``result``: the tokens are those the stream showed.
- As root it refuses ``--dangerously-skip-permissions`` (kinfra refuses first).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kinfra.domain.config_orch import OrchestratorSettings
from kinfra.orch.agents.base import (
    AgentOutcome,
    AgentProgress,
    AgentRequest,
    AgentResult,
    ProgressCallback,
    crash_message,
    int_field,
    process_failure,
    run_agent_process,
    with_status,
)

PERMISSION_MODE = "acceptEdits"  # edits in the workdir; everything else from allowed_tools
_TOOL_KEYS = ("file_path", "path", "command", "pattern", "url", "description", "prompt")
_NO_SESSION = "No conversation found"
_USAGE_KEYS = {
    "input_tokens": "input",
    "output_tokens": "output",
    "cache_read_input_tokens": "cache_read",
    "cache_creation_input_tokens": "cache_creation",
}


def tool_summary(name: str, tool_input: Any) -> str:
    """``Edit src/app.py``, ``Bash make test``: the progress line's last tool."""
    detail = ""
    if isinstance(tool_input, dict):
        for key in _TOOL_KEYS:
            value = tool_input.get(key)
            if isinstance(value, str) and value.strip():
                detail = value.strip().splitlines()[0]
                break
    if len(detail) > 60:
        detail = detail[:57] + "..."
    return f"{name} {detail}".strip()


def retry_note(event: dict[str, Any]) -> str:
    """``API 529, retry 3/10 in 12 s`` from a ``system``/``api_retry`` event."""
    status = event.get("error_status") or event.get("error") or "error"
    delay = int_field(event.get("retry_delay_ms")) / 1000
    return (
        f"API {status}, retry {int_field(event.get('attempt'))}/"
        f"{int_field(event.get('max_retries'))} in {delay:.0f} s"
    )


def denial_message(tools: tuple[str, ...]) -> str:
    listed = ", ".join(f'"{t}"' for t in tools)
    return (
        f"claude was refused {', '.join(tools)} (permission_denials), so the task is not done; "
        f"allow {'them' if len(tools) > 1 else 'it'} with "
        f"[orchestrator] allowed_tools = [{listed}, ...] in kinfra.toml"
    )


@dataclass
class ClaudeStream:
    """The state of one stream-json stream, fed line by line (pure)."""

    session_id: str | None = None
    turns: int = 0
    last_tool: str | None = None
    note: str | None = None
    result: dict[str, Any] | None = None
    bad_lines: int = 0
    _usage: dict[str, dict[str, int]] = field(default_factory=dict)  # by message id

    def feed(self, line: str) -> bool:
        """Take one line; True when it changed what progress shows."""
        line = line.strip()
        if not line:
            return False
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            self.bad_lines += 1
            return False
        if not isinstance(event, dict):
            return False
        kind = event.get("type")
        if isinstance(event.get("session_id"), str) and event["session_id"]:
            self.session_id = event["session_id"]
        if kind == "assistant":
            message = event.get("message") or {}
            message_id = str(message.get("id") or f"#{len(self._usage)}")
            if message_id not in self._usage:
                self.turns += 1
            # One event per content block, each with the message's usage so far.
            usage = message.get("usage")
            seen = self._usage.setdefault(message_id, {})
            if isinstance(usage, dict):
                for key, kind_name in _USAGE_KEYS.items():
                    seen[kind_name] = max(seen.get(kind_name, 0), int_field(usage.get(key)))
            for block in message.get("content") or []:
                if isinstance(block, dict) and block.get("type") == "tool_use":
                    self.last_tool = tool_summary(str(block.get("name", "?")), block.get("input"))
            self.note = None
            return True
        if kind == "result":
            self.result = event
            self.note = None
            return True
        if kind == "system" and event.get("subtype") == "api_retry":
            self.note = retry_note(event)
            return True
        return kind == "system"

    def stream_tokens(self) -> dict[str, int]:
        """The tokens the assistant messages showed (no result event needed)."""
        totals: dict[str, int] = {}
        for usage in self._usage.values():
            for kind, count in usage.items():
                totals[kind] = totals.get(kind, 0) + count
        return totals

    def tokens(self) -> dict[str, int]:
        if self.result is None:
            return self.stream_tokens()
        totals: dict[str, int] = {}
        model_usage = self.result.get("modelUsage")
        if isinstance(model_usage, dict) and model_usage:
            keys = {
                "inputTokens": "input",
                "outputTokens": "output",
                "cacheReadInputTokens": "cache_read",
                "cacheCreationInputTokens": "cache_creation",
            }
            for usage in model_usage.values():
                if isinstance(usage, dict):
                    for key, kind in keys.items():
                        totals[kind] = totals.get(kind, 0) + int_field(usage.get(key))
            return totals
        usage = self.result.get("usage")
        if isinstance(usage, dict):
            for key, kind in _USAGE_KEYS.items():
                totals[kind] = int_field(usage.get(key))
        return totals

    def denied_tools(self) -> tuple[str, ...]:
        denials = (self.result or {}).get("permission_denials")
        names: list[str] = []
        for denial in denials if isinstance(denials, list) else []:
            if isinstance(denial, dict):
                name = str(denial.get("tool_name") or "?")
                if name not in names:
                    names.append(name)
        return tuple(names)

    def turns_run(self) -> int:
        """The turns that ran, as kinfra reports them."""
        result = self.result or {}
        if "num_turns" not in result:
            return self.turns
        turns = int_field(result["num_turns"])
        if _max_turns(result):
            turns -= 1  # the CLI counts the turn it refused to start
        return max(turns, 0)

    def outcome(self, max_turns: int | None = None) -> tuple[AgentOutcome, str | None]:
        result = self.result
        if result is None:
            return AgentOutcome.CRASHED, "the stream ended without a result event"
        subtype = str(result.get("subtype") or "")
        is_error = bool(result.get("is_error"))
        text = result.get("result")
        errors = result.get("errors")
        detail = str(text) if isinstance(text, str) and text else None
        if not detail and isinstance(errors, list) and errors:
            detail = "; ".join(str(e) for e in errors)[:500]
        if _max_turns(result):
            limit = max_turns if max_turns is not None else self.turns_run()
            return AgentOutcome.MAX_TURNS, f"reached the max-turns limit ({limit} turns)"
        if is_error and subtype == "success":
            return AgentOutcome.API_ERROR, f"API error: {detail or 'is_error with subtype success'}"
        if is_error and detail and detail.startswith(_NO_SESSION):
            return AgentOutcome.SESSION_NOT_FOUND, detail
        if is_error or subtype.startswith("error"):
            return AgentOutcome.ERROR, f"{subtype or 'error'}: {detail or 'no detail'}"
        denied = self.denied_tools()
        if denied:
            return AgentOutcome.PERMISSION_DENIED, denial_message(denied)
        return AgentOutcome.SUCCESS, None


def _max_turns(result: dict[str, Any]) -> bool:
    return (
        result.get("subtype") == "error_max_turns" or result.get("terminal_reason") == "max_turns"
    )


class ClaudeAgent:
    """Claude Code, run as ``claude -p --output-format stream-json``."""

    name = "claude"
    provider = "anthropic"
    chooses_session_id = True

    def __init__(self, settings: OrchestratorSettings, program: str = "claude") -> None:
        self.settings = settings
        self.program = program

    def argv(self, request: AgentRequest) -> list[str]:
        argv = [
            self.program,
            "-p",
            "--output-format",
            "stream-json",
            "--verbose",
            "--max-turns",
            str(request.max_turns),
        ]
        if request.resume_session:
            argv += ["--resume", request.resume_session]
        elif request.new_session:
            argv += ["--session-id", request.new_session]
        if request.model:
            argv += ["--model", request.model]
        if self.settings.skip_permissions:
            argv.append("--dangerously-skip-permissions")
        else:
            argv += ["--permission-mode", PERMISSION_MODE]
            if self.settings.allowed_tools:
                # variadic: kept last, the prompt comes on stdin
                argv += ["--allowedTools", *self.settings.allowed_tools]
        return argv

    def run(
        self,
        request: AgentRequest,
        on_progress: ProgressCallback | None = None,
        on_session: Callable[[str], None] | None = None,
        on_start: Callable[[int], None] | None = None,
    ) -> AgentResult:
        stream = ClaudeStream(session_id=request.resume_session or request.new_session)
        started = time.monotonic()
        reported_session = stream.session_id

        def progress() -> None:
            if on_progress:
                on_progress(
                    AgentProgress(
                        elapsed=time.monotonic() - started,
                        turns=stream.turns,
                        cost_usd=_float(stream.result.get("total_cost_usd"))
                        if stream.result
                        else None,
                        last_tool=stream.last_tool,
                        session_id=stream.session_id,
                        tokens=stream.tokens(),
                        note=stream.note,
                    )
                )

        def on_line(line: str) -> None:
            nonlocal reported_session
            if stream.feed(line):
                if on_session and stream.session_id and stream.session_id != reported_session:
                    reported_session = stream.session_id
                    on_session(stream.session_id)
                progress()

        env = dict(request.env)
        if request.config_dir is not None:
            request.config_dir.mkdir(parents=True, exist_ok=True)
            env["CLAUDE_CONFIG_DIR"] = str(request.config_dir)
        proc = run_agent_process(
            request, self.argv(request), on_line, on_start, progress, request.prompt, env
        )
        failure = process_failure(proc, request)
        result = stream.result or {}
        error: str | None
        if failure and stream.result is None:
            outcome, error = failure
        elif stream.result is None:
            outcome, error = (
                AgentOutcome.CRASHED,
                crash_message(proc, "the agent exited without a result event"),
            )
        else:
            outcome, error = stream.outcome(request.max_turns)
        # never judge a cut-short stream by its partial text
        final_text = result.get("result") if isinstance(result.get("result"), str) else None
        model_usage = result.get("modelUsage")
        return with_status(
            AgentResult(
                outcome=outcome,
                session_id=stream.session_id,
                turns=stream.turns_run(),
                cost_usd=_float(result.get("total_cost_usd")),
                tokens=stream.tokens(),
                duration=proc.duration,
                final_text=final_text,
                error=error,
                subtype=result.get("subtype"),
                terminal_reason=result.get("terminal_reason"),
                models=tuple(model_usage) if isinstance(model_usage, dict) else (),
                exit_code=proc.returncode,
                pid=proc.pid,
                denied_tools=stream.denied_tools(),
            )
        )


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
