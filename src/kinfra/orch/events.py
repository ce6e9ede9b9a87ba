"""What a run tells its caller while it goes on (the CLI draws it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from kinfra.orch.agents.base import AgentProgress
from kinfra.orch.state import Attempt, Question, TaskStatus


class EventKind(str, Enum):
    """What a run event reports."""

    NOTE = "note"
    TASK_START = "task_start"  # an agent attempt starts (a task's, the E2E's, a fix's)
    PROGRESS = "progress"  # the attempt's live figures
    TASK_END = "task_end"  # the attempt ended
    WAITING = "waiting"  # an API-error wait, once a second: "API rate limited: retry 1/5 in 30 s"
    QUESTION = "question"  # a question for a human was saved
    E2E_START = "e2e_start"  # an E2E command run starts
    E2E_END = "e2e_end"  # an E2E run ended (message: pass / fail and evidence)


@dataclass(frozen=True)
class RunEvent:
    """One thing a run tells its caller while it goes on."""

    kind: EventKind
    task_id: str | None = None
    message: str = ""
    progress: AgentProgress | None = None
    status: TaskStatus | None = None
    attempt: Attempt | None = None
    question: Question | None = None


EventCallback = Callable[[RunEvent], None]
