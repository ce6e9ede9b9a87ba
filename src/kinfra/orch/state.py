"""The run state of one milestone: a versioned JSON file, written atomically
after every transition (kinfra.adapters.statefile), read strictly.

It lives under ``$KINFRA_HOME/<project>/runs/`` so it outlives the worktree.
Tasks are keyed by id, never by position. Each task keeps the list of its
attempts; an attempt's session id is saved before the agent starts, so an
interrupted attempt can be resumed in the same agent session.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from kinfra.adapters.statefile import atomic_write_json, read_versioned_json
from kinfra.errors import StateFileError

STATE_VERSION = 1
_KIND = "run state"


class TaskStatus(str, Enum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    NEEDS_HUMAN = "needs_human"
    BLOCKED = "blocked"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Attempt:
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


@dataclass(frozen=True)
class RunLimits:
    """What ``orch run`` was told on its command line, kept so that ``resume``
    runs under the same limits (the config gives the rest)."""

    max_turns: int | None = None
    model: str | None = None
    task_timeout: float | None = None
    idle_timeout: float | None = None
    sandbox: str | None = None  # "container" for `--in-container`


@dataclass(frozen=True)
class TaskState:
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
        return sum(t.cost_usd for t in self.tasks)

    def counts(self) -> dict[str, int]:
        result = {s.value: 0 for s in TaskStatus}
        for task in self.tasks:
            if task.in_plan:
                result[task.status.value] += 1
        return result


def state_to_dict(state: RunState) -> dict[str, Any]:
    data = asdict(state)
    for task in data["tasks"]:
        task["status"] = TaskStatus(task["status"]).value
    return data


def state_from_dict(data: dict[str, Any], path: Path) -> RunState:
    try:
        tasks = tuple(
            TaskState(
                id=str(t["id"]),
                title=str(t["title"]),
                status=TaskStatus(t["status"]),
                attempts=tuple(_attempt(a) for a in t.get("attempts", [])),
                in_plan=bool(t.get("in_plan", True)),
            )
            for t in data["tasks"]
        )
        return RunState(
            run_id=str(data["run_id"]),
            milestone=str(data["milestone"]),
            plan_path=str(data["plan_path"]),
            plan_hash=str(data["plan_hash"]),
            agent=str(data["agent"]),
            workdir=str(data["workdir"]),
            project=str(data["project"]),
            created=str(data["created"]),
            updated=str(data["updated"]),
            tasks=tasks,
            version=int(data["version"]),
            limits=RunLimits(**(data.get("limits") or {})),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise StateFileError(
            f"{_KIND} {path} is corrupt ({type(exc).__name__}: {exc})",
            hint=f"kinfra left it untouched; move it aside (mv {path} {path}.bad) "
            "and start again with `kinfra orch run --restart`",
        ) from exc


def _attempt(data: dict[str, Any]) -> Attempt:
    known = {f for f in Attempt.__dataclass_fields__}
    values = {k: v for k, v in data.items() if k in known}
    values["tokens"] = {str(k): int(v) for k, v in (values.get("tokens") or {}).items()}
    return Attempt(**values)


def load_state(path: Path) -> RunState | None:
    data = read_versioned_json(path, kind=_KIND, current_version=STATE_VERSION)
    if data is None:
        return None
    return state_from_dict(data, path)


def save_state(path: Path, state: RunState) -> None:
    atomic_write_json(path, state_to_dict(state))
