"""The run state of one milestone: a versioned JSON file, written atomically
after every transition (kinfra.adapters.statefile), read strictly.

It lives under ``$KINFRA_HOME/<project>/runs/`` so it outlives the worktree.
Tasks are keyed by id, never by position. Each task keeps the list of its
attempts; an attempt's session id is saved before the agent starts, so an
interrupted attempt can be resumed in the same agent session.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from kinfra.adapters.statefile import atomic_write_text, read_versioned_json
from kinfra.domain.jsonshape import ShapeError, build
from kinfra.errors import StateFileError

STATE_VERSION = 1
_KIND = "run state"


class TaskStatus(str, Enum):
    """Where a task stands in its run."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    NEEDS_HUMAN = "needs_human"
    BLOCKED = "blocked"


class AttemptKind(str, Enum):
    """What an agent attempt was for: a task, the E2E step, or a fix after a failed E2E."""

    TASK = "task"
    E2E = "e2e"  # the agent runs the plan's E2E section
    FIX = "fix"  # the agent fixes what a failed E2E showed


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Attempt:
    """One agent attempt, as the run state keeps it: session, process, outcome, cost, summary."""

    number: int
    session_id: str | None
    started: str
    run_id: str = ""  # the orchestrator execution that made this attempt
    resumed_session: bool = False  # the agent was started with --resume <session_id>
    agent_pid: int | None = None
    agent_start: str | None = None  # the agent's process start time, to recognise it later
    ended: str | None = None  # None: running, or interrupted (orchestrator killed)
    outcome: str | None = None  # AgentOutcome value, or "interrupted"
    status: str | None = None  # the TaskStatus this attempt led to
    cost_usd: float | None = None
    tokens: dict[str, int] = field(default_factory=dict)
    turns: int | None = None
    duration: float | None = None
    error: str | None = None
    question: str | None = None
    summary: str | None = None
    note: str | None = None  # e.g. the saved session could not be resumed: a fresh one started
    # Autonomy (retry.py, backoff.py, escalation.py, e2e.py):
    kind: AttemptKind = AttemptKind.TASK
    signature: str | None = None  # normalized failure, for loop detection
    detail: str | None = None  # what the next attempt is told failed (check output tail)
    api_error: str | None = None  # ApiErrorKind value: waited out, not an attempt used
    backoff: float | None = None  # seconds waited after this API error
    answered: int | None = None  # the Question number whose answer this attempt was given

    @property
    def counts(self) -> bool:
        """A failed attempt that uses up one of ``max_attempts`` (API errors
        and interrupted attempts do not)."""
        return self.status == TaskStatus.FAILED.value and self.api_error is None


@dataclass(frozen=True)
class RunLimits:
    """What ``orch run`` was told on its command line, kept so that ``resume``
    runs under the same limits (the config gives the rest)."""

    max_turns: int | None = None
    model: str | None = None
    task_timeout: float | None = None
    idle_timeout: float | None = None
    sandbox: str | None = None  # "container" for `--in-container`


class QuestionKind(str, Enum):
    """Why a run stopped for a human."""

    NEEDS_HUMAN = "needs_human"  # the agent asked
    BLOCKED = "blocked"  # the agent reported itself blocked
    LOOP = "loop"  # the same failure twice in a row
    EXHAUSTED = "exhausted"  # max_attempts failed attempts
    E2E = "e2e"  # the E2E still failed after e2e_fix_attempts fixes


E2E_STEP = "E2E"  # the task id of the E2E step's questions and agent runs
E2E_FIX = "E2E-fix"  # the task id an agent fixing a failed E2E runs under


@dataclass(frozen=True)
class Question:
    """A question for a human, and its answer once given (``kinfra orch answer``)."""

    number: int  # 1, 2, ... within the run state
    task_id: str  # a task id, or E2E_STEP
    kind: QuestionKind
    text: str
    asked: str  # ISO time
    session_id: str | None = None  # the agent session the answer goes back into
    answer: str | None = None  # verbatim
    answered: str | None = None  # ISO time
    wait: float | None = None  # seconds from asked to answered
    delivered: bool = False  # an attempt was given the answer

    @property
    def open(self) -> bool:
        return self.answer is None


class E2EStatus(str, Enum):
    """Where a run's E2E step stands."""

    PENDING = "pending"
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"  # a fix is due (or the run stopped before it)
    NEEDS_HUMAN = "needs_human"


class E2EResult(str, Enum):
    """The verdict of one E2E run."""

    PASS = "pass"
    FAIL = "fail"


@dataclass(frozen=True)
class E2ERun:
    """One run of the E2E step: kinfra's command, or the agent following the section."""

    number: int
    started: str
    mode: str  # "command" or "agent"
    ended: str | None = None
    result: E2EResult | None = None  # None: cut short (or the agent gave no verdict)
    evidence: str | None = None  # the command's output tail, or the agent's evidence
    attempt: int | None = None  # the agent attempt that ran it, in agent mode


@dataclass(frozen=True)
class E2EState:
    """The E2E step's record: its status, its runs, the agent's attempts (E2E runs and fixes)."""

    status: E2EStatus = E2EStatus.PENDING
    runs: tuple[E2ERun, ...] = ()
    attempts: tuple[Attempt, ...] = ()  # the agent's: E2E runs (kind e2e) and fixes (kind fix)

    @property
    def last_run(self) -> E2ERun | None:
        return self.runs[-1] if self.runs else None

    @property
    def fixes(self) -> tuple[Attempt, ...]:
        return tuple(a for a in self.attempts if a.kind is AttemptKind.FIX)

    @property
    def cost_usd(self) -> float:
        return sum(a.cost_usd or 0.0 for a in self.attempts)

    def with_attempt(self, attempt: Attempt) -> E2EState:
        kept = tuple(a for a in self.attempts if a.number != attempt.number)
        return replace(self, attempts=(*kept, attempt))

    def with_run(self, run: E2ERun) -> E2EState:
        kept = tuple(r for r in self.runs if r.number != run.number)
        return replace(self, runs=(*kept, run))


@dataclass(frozen=True)
class TaskState:
    """One task's record: its status and its attempts."""

    id: str
    title: str
    status: TaskStatus = TaskStatus.PENDING
    attempts: tuple[Attempt, ...] = ()
    in_plan: bool = True  # False when the plan changed and no longer has this task

    @property
    def last(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    @property
    def cost_usd(self) -> float:
        return sum(a.cost_usd or 0.0 for a in self.attempts)

    @property
    def tokens(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for attempt in self.attempts:
            for kind, count in attempt.tokens.items():
                total[kind] = total.get(kind, 0) + count
        return total

    @property
    def turns(self) -> int:
        return sum(a.turns or 0 for a in self.attempts)

    @property
    def duration(self) -> float:
        return sum(a.duration or 0.0 for a in self.attempts)

    @property
    def last_error(self) -> str | None:
        return self.last.error if self.last else None

    def with_attempt(self, attempt: Attempt) -> TaskState:
        """Add ``attempt``, or replace the attempt with the same number."""
        kept = tuple(a for a in self.attempts if a.number != attempt.number)
        return replace(self, attempts=(*kept, attempt))


@dataclass(frozen=True)
class RunState:
    """The run state of one milestone: its tasks, questions, E2E step and limits."""

    run_id: str
    milestone: str
    plan_path: str
    plan_hash: str
    agent: str
    workdir: str
    project: str
    created: str
    updated: str
    tasks: tuple[TaskState, ...]
    version: int = STATE_VERSION
    limits: RunLimits = field(default_factory=RunLimits)
    questions: tuple[Question, ...] = ()
    e2e: E2EState = field(default_factory=E2EState)

    def task(self, task_id: str) -> TaskState:
        for task in self.tasks:
            if task.id == task_id:
                return task
        raise KeyError(task_id)

    def with_task(self, task: TaskState) -> RunState:
        tasks = tuple(task if t.id == task.id else t for t in self.tasks)
        if task.id not in {t.id for t in self.tasks}:
            tasks = (*tasks, task)
        return replace(self, tasks=tasks, updated=now_iso())

    @property
    def cost_usd(self) -> float:
        return sum(t.cost_usd for t in self.tasks) + self.e2e.cost_usd

    def open_questions(self) -> tuple[Question, ...]:
        return tuple(q for q in self.questions if q.open)

    def last_question(self, task_id: str) -> Question | None:
        found = [q for q in self.questions if q.task_id == task_id]
        return found[-1] if found else None

    def with_question(self, question: Question) -> RunState:
        """Add ``question``, or replace the one with the same number."""
        kept = tuple(q for q in self.questions if q.number != question.number)
        return replace(self, questions=(*kept, question), updated=now_iso())

    def counts(self) -> dict[str, int]:
        result = {s.value: 0 for s in TaskStatus}
        for task in self.tasks:
            if task.in_plan:
                result[task.status.value] += 1
        return result


def state_to_dict(state: RunState) -> dict[str, Any]:
    data: dict[str, Any] = _plain(state)
    return data


def _plain(value: Any) -> Any:
    """``dataclasses.asdict`` without its deep copies: the state is saved
    several times an attempt, and grows with every attempt."""
    if isinstance(value, Enum):
        return value.value
    if hasattr(value, "__dataclass_fields__"):
        return {name: _plain(getattr(value, name)) for name in value.__dataclass_fields__}
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def state_from_dict(data: dict[str, Any], path: Path) -> RunState:
    """The state, every field checked against its type (``jsonshape``): a
    file with junk in it is corrupt, named with the field at fault, never
    half-read. Fields a newer minor version added are ignored."""
    try:
        return build(RunState, data, "state")
    except ShapeError as exc:
        raise StateFileError(
            f"{_KIND} {path} is corrupt ({exc})",
            hint=f"kinfra left it untouched; move it aside (mv {path} {path}.bad) "
            "and start again with `kinfra orch run --restart`",
        ) from exc


def load_state(path: Path) -> RunState | None:
    data = read_versioned_json(path, kind=_KIND, current_version=STATE_VERSION)
    if data is None:
        return None
    return state_from_dict(data, path)


def save_state(path: Path, state: RunState) -> None:
    StateWriter(path).save(state)


class StateWriter:
    """Writes one run's state, again and again (several times an attempt):
    a task unchanged since the last write (the same immutable record) is not
    converted again, and the JSON is compact (json's C encoder only runs
    without indent; `kinfra orch status --json` reads it nicely)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tasks: dict[int, tuple[TaskState, Any]] = {}

    def save(self, state: RunState) -> None:
        known: dict[int, tuple[TaskState, Any]] = {}
        tasks = []
        for task in state.tasks:
            hit = self._tasks.get(id(task))
            plain = hit[1] if hit is not None and hit[0] is task else _plain(task)
            known[id(task)] = (task, plain)
            tasks.append(plain)
        self._tasks = known
        data = {
            name: tasks if name == "tasks" else _plain(getattr(state, name))
            for name in RunState.__dataclass_fields__
        }
        text = json.dumps(data, separators=(",", ":")) + "\n"
        atomic_write_text(self.path, text, through_links=True)
