"""OpenAI Codex CLI, headless: ``codex exec --json`` (JSON lines on stdout).

Events: ``thread.started`` (the session id, ``thread_id``), ``item.started`` /
``item.completed`` (commands, file changes, the agent's messages),
``turn.completed`` (token usage), ``turn.failed`` and ``error``. Codex reports
tokens but no cost. A session is resumed with ``codex exec resume <id>``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

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


@dataclass
class CodexStream:
    session_id: str | None = None
    turns: int = 0
    completed: bool = False
    error: str | None = None
    last_tool: str | None = None
    last_message: str | None = None
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0

    def feed(self, line: str) -> bool:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            return False
        if not isinstance(event, dict):
            return False
        kind = event.get("type")
        if kind == "thread.started" and isinstance(event.get("thread_id"), str):
            self.session_id = event["thread_id"]
        elif kind == "turn.started":
            self.turns += 1
        elif kind == "turn.completed":
            self.completed = True
            usage = event.get("usage") or {}
            self.input_tokens += int_field(usage.get("input_tokens"))
            self.cached_tokens += int_field(usage.get("cached_input_tokens"))
            self.output_tokens += int_field(usage.get("output_tokens"))
        elif kind == "turn.failed":
            self.error = str((event.get("error") or {}).get("message") or "turn failed")
        elif kind == "error":
            self.error = str(event.get("message") or "error")
        elif kind in ("item.started", "item.completed"):
            item = event.get("item") or {}
            item_type = item.get("type")
            if item_type == "agent_message" and kind == "item.completed":
                self.last_message = str(item.get("text") or "")
            elif item_type == "command_execution":
                self.last_tool = f"shell {str(item.get('command') or '')[:60]}".strip()
            elif item_type == "file_change":
                changes = item.get("changes") or []
                paths = [str(c.get("path")) for c in changes if isinstance(c, dict)]
                self.last_tool = f"edit {', '.join(paths)[:60]}".strip()
            elif item_type == "mcp_tool_call":
                self.last_tool = f"{item.get('server')}.{item.get('tool')}"
        else:
            return False
        return True


class CodexAgent:
    name = "codex"
    provider = "openai"
    chooses_session_id = False

    def __init__(self, settings: OrchestratorSettings, program: str = "codex") -> None:
        self.settings = settings
        self.program = program

    def argv(self, request: AgentRequest) -> list[str]:
        argv = [self.program, "exec", "--json"]
        if request.model:
            argv += ["--model", request.model]
        if self.settings.skip_permissions:
            argv.append("--dangerously-bypass-approvals-and-sandbox")
        else:
            argv.append("--full-auto")
        if request.resume_session:
            argv += ["resume", request.resume_session]
        argv.append("-")  # the prompt is read from stdin
        return argv

    def run(
        self,
        request: AgentRequest,
        on_progress: ProgressCallback | None = None,
        on_session: Callable[[str], None] | None = None,
        on_start: Callable[[int], None] | None = None,
    ) -> AgentResult:
        stream = CodexStream(session_id=request.resume_session)
        started = time.monotonic()

        def progress() -> None:
            if on_progress:
                on_progress(
                    AgentProgress(
                        time.monotonic() - started,
                        stream.turns,
                        None,
                        stream.last_tool,
                        stream.session_id,
                    )
                )

        def on_line(line: str) -> None:
            before = stream.session_id
            if stream.feed(line):
                if on_session and stream.session_id and stream.session_id != before:
                    on_session(stream.session_id)
                progress()

        proc = run_agent_process(
            request, self.argv(request), on_line, on_start, progress, request.prompt
        )
        failure = process_failure(proc, request)
        if failure:
            outcome, error = failure
        elif stream.error:
            outcome, error = AgentOutcome.ERROR, stream.error
        elif not stream.completed or proc.returncode != 0:
            outcome, error = (
                AgentOutcome.CRASHED,
                crash_message(proc, "codex exited without completing its turn"),
            )
        else:
            outcome, error = AgentOutcome.SUCCESS, None
        tokens = {
            "input": stream.input_tokens,
            "cache_read": stream.cached_tokens,
            "output": stream.output_tokens,
        }
        return with_status(
            AgentResult(
                outcome=outcome,
                session_id=stream.session_id,
                turns=stream.turns,
                cost_usd=None,
                tokens=tokens,
                duration=proc.duration,
                final_text=stream.last_message if outcome is AgentOutcome.SUCCESS else None,
                error=error,
                exit_code=proc.returncode,
                pid=proc.pid,
            )
        )
