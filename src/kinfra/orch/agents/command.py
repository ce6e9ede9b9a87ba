"""Any other agent: a command from ``[orchestrator] command = [...]``.

The prompt goes on stdin (``prompt_via = "stdin"``) or as the last argument
(``"arg"``). The exit code is the outcome; the end of stdout is the final
message, where the status block is looked for. No turns, tokens or cost.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from kinfra.domain.config_orch import OrchestratorSettings
from kinfra.errors import OrchestratorError
from kinfra.orch.agents.base import (
    AgentOutcome,
    AgentProgress,
    AgentRequest,
    AgentResult,
    ProgressCallback,
    crash_message,
    process_failure,
    run_agent_process,
    with_status,
)

_FINAL_LINES = 200


class CommandAgent:
    """Any other agent program, from [orchestrator] command: its exit code is the outcome."""

    name = "command"
    provider = "unknown"
    chooses_session_id = False

    def __init__(self, settings: OrchestratorSettings) -> None:
        if not settings.command:
            raise OrchestratorError(
                "the command agent needs [orchestrator] command in kinfra.toml",
                hint='e.g. command = ["my-agent", "--headless"] and prompt_via = "stdin"',
            )
        self.settings = settings

    def argv(self, request: AgentRequest) -> list[str]:
        argv = list(self.settings.command)
        if self.settings.prompt_via == "arg":
            argv.append(request.prompt)
        return argv

    def run(
        self,
        request: AgentRequest,
        on_progress: ProgressCallback | None = None,
        on_session: Callable[[str], None] | None = None,
        on_start: Callable[[int], None] | None = None,
    ) -> AgentResult:
        tail: deque[str] = deque(maxlen=_FINAL_LINES)
        started = time.monotonic()
        last_line: list[str] = []

        def progress() -> None:
            if on_progress:
                tool = last_line[0][:60] if last_line else None
                on_progress(AgentProgress(time.monotonic() - started, 0, None, tool, None))

        def on_line(line: str) -> None:
            tail.append(line)
            if line.strip():
                last_line[:] = [line.strip()]
            progress()

        proc = run_agent_process(
            request,
            self.argv(request),
            on_line,
            on_start,
            progress,
            request.prompt if self.settings.prompt_via == "stdin" else None,
        )
        failure = process_failure(proc, request)
        if failure:
            outcome, error = failure
        elif proc.returncode != 0:
            outcome, error = AgentOutcome.ERROR, crash_message(proc, "the agent command failed")
        else:
            outcome, error = AgentOutcome.SUCCESS, None
        return with_status(
            AgentResult(
                outcome=outcome,
                session_id=None,
                turns=None,
                cost_usd=None,
                tokens={},
                duration=proc.duration,
                final_text="\n".join(tail) if outcome is AgentOutcome.SUCCESS else None,
                error=error,
                exit_code=proc.returncode,
                pid=proc.pid,
            )
        )
