"""The agent interface: one request in, one result out, progress on the way.

Every adapter (Claude Code, Codex, a generic command) runs its program through
kinfra.adapters.process and turns its output into an ``AgentResult``. Nothing here
raises for an agent that misbehaves: a hang, a crash or a stream without a
result is an outcome, recorded as a failed attempt by the run loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from kinfra.adapters.process import HOST, Launcher, ProcessResult, StopReason, stream_process
from kinfra.orch.status_block import StatusBlock, parse_status_block


class AgentOutcome(str, Enum):
    """How an agent attempt ended, as its adapter read it from the output and the exit."""

    SUCCESS = "success"  # the agent finished its turn normally
    ERROR = "error"  # the agent reported an error (error_during_execution...)
    API_ERROR = "api_error"  # an API failure (is_error with subtype success): retryable
    MAX_TURNS = "max_turns"  # stopped by --max-turns
    TIMEOUT = "timeout"  # wall-clock task timeout: killed
    IDLE_TIMEOUT = "idle_timeout"  # no output for too long: killed
    CRASHED = "crashed"  # exited without a result (non-zero exit, stream cut short)
    NOT_FOUND = "not_found"  # the agent program is not installed
    PERMISSION_DENIED = "permission_denied"  # tool calls were refused: never done
    SESSION_NOT_FOUND = "session_not_found"  # --resume found no such session


@dataclass(frozen=True)
class AgentRequest:
    """One attempt to ask of an agent: the prompt, where it runs, its limits and its session."""

    prompt: str
    workdir: Path
    max_turns: int
    timeout: float  # wall clock, seconds
    idle_timeout: float  # no output, seconds
    resume_session: str | None = None  # continue this session (--resume)
    new_session: str | None = None  # id for a new session, when the agent lets us choose
    model: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    log_path: Path | None = None  # raw output goes here
    kill_grace: float = 5.0  # seconds per stage of INT -> TERM -> KILL
    # A folder kinfra owns for the agent's own state (Claude Code's config dir,
    # where its sessions live): the same for every attempt, so --resume finds them.
    config_dir: Path | None = None
    # Where the agent's command runs and how a stop reaches it: here by default;
    # an agent container wraps the command (docker exec) and signals inside it.
    launcher: Launcher = HOST
    # Tokens earlier attempts recorded for the session being resumed: an agent
    # whose CLI reports the session's running totals (codex) takes them off.
    session_tokens: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class AgentProgress:
    """What the agent did so far; sent on each event and on a clock tick."""

    elapsed: float
    turns: int
    cost_usd: float | None
    last_tool: str | None
    session_id: str | None
    # Tokens the stream showed so far: what an interrupted attempt keeps.
    tokens: Mapping[str, int] = field(default_factory=dict)
    note: str | None = None  # what the agent waits for, e.g. "API 529, retry 3/10 in 12 s"


@dataclass(frozen=True)
class AgentResult:
    """What an agent attempt came to: outcome, session, turns, cost, tokens, final text, STATUS."""

    outcome: AgentOutcome
    session_id: str | None
    turns: int | None
    cost_usd: float | None  # None when the agent does not report cost
    tokens: Mapping[str, int]  # by type: input, output, cache_read, cache_creation...
    duration: float  # seconds, the agent process's own wall time
    final_text: str | None
    error: str | None = None
    status_block: StatusBlock | None = None
    question: str | None = None
    subtype: str | None = None
    terminal_reason: str | None = None
    models: tuple[str, ...] = ()
    exit_code: int | None = None
    pid: int | None = None
    denied_tools: tuple[str, ...] = ()  # tools the agent was refused

    @property
    def ok(self) -> bool:
        return self.outcome is AgentOutcome.SUCCESS


class ProgressCallback(Protocol):
    """Receives an attempt's progress while the agent runs."""

    def __call__(self, progress: AgentProgress) -> None: ...


class Agent(Protocol):
    """A headless coding agent: runs one attempt of a request and returns its result."""

    name: str
    provider: str  # gen_ai.provider.name: anthropic, openai, ...
    chooses_session_id: bool  # whether AgentRequest.new_session is honoured

    def run(
        self,
        request: AgentRequest,
        on_progress: ProgressCallback | None = None,
        on_session: Callable[[str], None] | None = None,
        on_start: Callable[[int], None] | None = None,
    ) -> AgentResult:
        """Run one attempt. ``on_session`` is called as soon as the session
        id is known, ``on_start`` with the agent's pid right after it starts."""
        ...


def int_field(value: Any) -> int:
    """A count from an agent's JSON event; 0 for anything that is not an int."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def run_agent_process(
    request: AgentRequest,
    argv: list[str],
    on_line: Callable[[str], None],
    on_start: Callable[[int], None] | None,
    on_tick: Callable[[], None],
    stdin_text: str | None,
    env: Mapping[str, str] | None = None,
) -> ProcessResult:
    """One attempt's process, with the request's limits: every adapter runs
    its agent through here, so timeouts and logs behave the same for all.
    ``env`` replaces ``request.env`` (an adapter adding its own variables)."""
    return stream_process(
        argv,
        cwd=request.workdir,
        on_line=on_line,
        env=request.env if env is None else env,
        stdin_text=stdin_text,
        timeout=request.timeout,
        idle_timeout=request.idle_timeout,
        grace=request.kill_grace,
        on_start=on_start,
        on_tick=on_tick,
        log_path=request.log_path,
        launcher=request.launcher,
    )


def process_failure(proc: ProcessResult, request: AgentRequest) -> tuple[AgentOutcome, str] | None:
    """The outcome for a process that was killed or never ran, else None."""
    if proc.stop is StopReason.NOT_FOUND:
        return AgentOutcome.NOT_FOUND, proc.stderr_tail
    if proc.stop is StopReason.TIMEOUT:
        return AgentOutcome.TIMEOUT, f"task timeout: killed after {request.timeout:g}s"
    if proc.stop is StopReason.IDLE:
        return (
            AgentOutcome.IDLE_TIMEOUT,
            f"no output for {request.idle_timeout:g}s: killed (hung agent)",
        )
    return None


def with_status(result: AgentResult) -> AgentResult:
    """Attach the status block of the final message (and its question)."""
    from dataclasses import replace

    block = parse_status_block(result.final_text)
    return replace(
        result, status_block=block, question=block.question if block else result.question
    )


def crash_message(proc: ProcessResult, what: str) -> str:
    message = what
    if proc.returncode is not None:
        message += f" (exit {proc.returncode})"
    if proc.stderr_tail.strip():
        message += ": " + proc.stderr_tail.strip().splitlines()[-1][:300]
    return message
