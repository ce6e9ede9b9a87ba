"""Claude Code, headless: ``claude -p --output-format stream-json --verbose``.

The prompt goes on stdin. The stream is read as it comes: ``system``/``init``
gives the session id, ``assistant`` events give turns and tool uses (for the
progress line), and the final ``result`` event gives the outcome: ``subtype``
(``success``, ``error_max_turns``, ``error_during_execution``), ``is_error``,
``terminal_reason``, ``num_turns``, ``total_cost_usd``, ``usage``,
``modelUsage`` and ``session_id``. A result with subtype ``success`` but
``is_error: true`` is an API failure, not a success.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kinfra.domain.config import OrchestratorSettings
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

_TOOL_KEYS = ("file_path", "path", "command", "pattern", "url", "description", "prompt")


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


@dataclass
class ClaudeStream:
    """The state of one stream-json stream, fed line by line (pure)."""

    session_id: str | None = None
    turns: int = 0
    last_tool: str | None = None
    result: dict[str, Any] | None = None
    bad_lines: int = 0
    _message_ids: set[str] = field(default_factory=set)

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
            message_id = message.get("id") or f"#{len(self._message_ids)}"
            if message_id not in self._message_ids:
                self._message_ids.add(message_id)
                self.turns += 1
            for block in message.get("content") or []:
                if not isinstance(block, dict):
                    continue
                if block.get("type") == "tool_use":
                    self.last_tool = tool_summary(str(block.get("name", "?")), block.get("input"))
            return True
        if kind == "result":
            self.result = event
            return True
        return kind == "system"

    def tokens(self) -> dict[str, int]:
        if self.result is None:
            return {}
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
            keys = {
                "input_tokens": "input",
                "output_tokens": "output",
                "cache_read_input_tokens": "cache_read",
                "cache_creation_input_tokens": "cache_creation",
            }
            for key, kind in keys.items():
                totals[kind] = int_field(usage.get(key))
        return totals

    def outcome(self) -> tuple[AgentOutcome, str | None]:
        result = self.result
        if result is None:
            return AgentOutcome.CRASHED, "the stream ended without a result event"
        subtype = str(result.get("subtype") or "")
        is_error = bool(result.get("is_error"))
        reason = result.get("terminal_reason")
        text = result.get("result")
        errors = result.get("errors")
        detail = str(text) if isinstance(text, str) and text else None
        if not detail and isinstance(errors, list) and errors:
            detail = "; ".join(str(e) for e in errors)[:500]
        if subtype == "error_max_turns" or reason == "max_turns":
            return (
                AgentOutcome.MAX_TURNS,
                f"stopped after {result.get('num_turns')} turns (max turns)",
            )
        if is_error and subtype == "success":
            return AgentOutcome.API_ERROR, f"API error: {detail or 'is_error with subtype success'}"
        if is_error or subtype.startswith("error"):
            return AgentOutcome.ERROR, f"{subtype or 'error'}: {detail or 'no detail'}"
        return AgentOutcome.SUCCESS, None


class ClaudeAgent:
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
        elif self.settings.allowed_tools:
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
            outcome, error = stream.outcome()
        final_text = result.get("result") if isinstance(result.get("result"), str) else None
        if final_text is None and stream.result is None:
            final_text = None  # never judge a cut-short stream by its partial text
        model_usage = result.get("modelUsage")
        return with_status(
            AgentResult(
                outcome=outcome,
                session_id=stream.session_id,
                turns=int_field(result["num_turns"]) if "num_turns" in result else stream.turns,
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
            )
        )


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
