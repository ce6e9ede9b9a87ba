"""OpenAI Codex CLI, headless (JSON lines on stdout)::

    codex exec --json [--model M] (-s workspace-write | --dangerously-bypass-approvals-and-sandbox)
               [resume <thread id>] -

The prompt is read from stdin (``-``). Sandbox options belong to ``exec`` and
come before ``resume``, which takes none of its own. Codex reads its own
configuration (model provider, credentials) from ``CODEX_HOME`` (``~/.codex``),
which kinfra leaves to the user; its sessions are found there by id.

What the real CLI (0.17x) prints, and how it is read:

- ``thread.started`` (``thread_id``: the session id), ``turn.started``,
  ``item.started``/``item.completed`` (commands, file changes, the agent's
  messages; an ``error`` item is a warning), ``turn.completed`` (``usage``:
  the thread's totals so far, so a resumed session's earlier tokens are taken
  off) or ``turn.failed``.
- ``error`` events ("Reconnecting... 1/5 (unexpected status 529 ...)") are the
  CLI retrying the API: shown as progress, a failure only when the turn fails.
- Codex reports tokens but no cost. A ``resume`` of an unknown thread exits 1
  with "no rollout found for thread id" on stderr.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

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

SANDBOX = "workspace-write"  # edits in the workdir, commands confined to it
_NO_SESSION = "no rollout found"
_RECONNECT = re.compile(r"Reconnecting\.\.\. (\d+)/(\d+)(?: \(unexpected status (\d+))?")


@dataclass
class CodexStream:
    """The state of one ``codex exec --json`` stream, fed line by line."""

    session_id: str | None = None
    turns: int = 0
    completed: bool = False
    failed: str | None = None  # turn.failed: the turn is over, without success
    retry: str | None = None  # the last transient error, while the CLI retries
    reconnects: int = 0  # "Reconnecting..." errors: the CLI retrying the API
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
            self.retry = None
            usage = event.get("usage") or {}
            self.input_tokens = int_field(usage.get("input_tokens"))
            self.cached_tokens = int_field(usage.get("cached_input_tokens"))
            self.output_tokens = int_field(usage.get("output_tokens"))
        elif kind == "turn.failed":
            self.failed = str((event.get("error") or {}).get("message") or "turn failed")
        elif kind == "error":
            self.retry = str(event.get("message") or "error")
            self.reconnects += self.retry.startswith("Reconnecting")
        elif kind in ("item.started", "item.completed"):
            self.retry = None
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

    def note(self) -> str | None:
        """``API 529, retry 2/5`` while codex retries (its own words otherwise)."""
        if not self.retry:
            return None
        match = _RECONNECT.search(self.retry)
        if match:
            attempt, limit, status = match.groups()
            return f"API {status or 'error'}, retry {attempt}/{limit}"
        return self.retry[:120]

    def tokens(self, earlier: dict[str, int]) -> dict[str, int]:
        """This attempt's tokens: the thread's totals less what earlier attempts
        of the same session recorded."""
        totals = {
            "input": self.input_tokens,
            "cache_read": self.cached_tokens,
            "output": self.output_tokens,
        }
        return {k: max(v - earlier.get(k, 0), 0) for k, v in totals.items()}


class CodexAgent:
    """The OpenAI Codex CLI, run as ``codex exec --json``."""

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
            argv += ["-s", SANDBOX]
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
        earlier = dict(request.session_tokens)

        def progress() -> None:
            if on_progress:
                on_progress(
                    AgentProgress(
                        time.monotonic() - started,
                        stream.turns,
                        None,
                        stream.last_tool,
                        stream.session_id,
                        tokens=stream.tokens(earlier) if stream.completed else {},
                        note=stream.note(),
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
        elif stream.failed:
            # after reconnects, the turn failed on the API (retries used up)
            api = stream.reconnects > 0 or "unexpected status" in stream.failed
            outcome = AgentOutcome.API_ERROR if api else AgentOutcome.ERROR
            error = f"API error: {stream.failed}" if api else stream.failed
        elif _NO_SESSION in proc.stderr_tail and not stream.completed:
            last = [line for line in proc.stderr_tail.splitlines() if _NO_SESSION in line]
            outcome, error = AgentOutcome.SESSION_NOT_FOUND, last[-1].strip()[:300]
        elif not stream.completed or proc.returncode != 0:
            what = "codex exited without completing its turn"
            if stream.retry:
                what += f" (last error: {stream.retry[:200]})"
            outcome, error = AgentOutcome.CRASHED, crash_message(proc, what)
        else:
            outcome, error = AgentOutcome.SUCCESS, None
        return with_status(
            AgentResult(
                outcome=outcome,
                session_id=stream.session_id,
                turns=stream.turns,
                cost_usd=None,
                tokens=stream.tokens(earlier) if stream.completed else {},
                duration=proc.duration,
                final_text=stream.last_message if outcome is AgentOutcome.SUCCESS else None,
                error=error,
                exit_code=proc.returncode,
                pid=proc.pid,
            )
        )
