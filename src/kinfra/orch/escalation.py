"""Questions for a human, and their answers back into the same session.

A question is saved in the run state with the time it was asked, whenever a
run stops for a human: the agent asked (``STATUS: needs_human``) or reported
itself blocked, a loop was detected, a task's attempts ran out, or the E2E
still failed after its fixes. The run exits 4. ``kinfra orch answer`` records
the answer (verbatim, with when and how long it waited); the next ``run`` or
``resume`` hands it to the agent in the session that asked (``--resume``).
On a terminal, ``--ask`` (or ``[orchestrator] ask = true``) asks there and
then instead of exiting.

``kinfra orch status`` lists a project's open questions, ``kinfra orch
questions`` the machine's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from kinfra.errors import OrchestratorError
from kinfra.orch.state import Question, QuestionKind, RunState, now_iso


def ask(
    state: RunState, task_id: str, kind: QuestionKind, text: str, session_id: str | None
) -> tuple[RunState, Question]:
    """``state`` with a new open question."""
    number = max((q.number for q in state.questions), default=0) + 1
    question = Question(number, task_id, kind, text.strip() or kind.value, now_iso(), session_id)
    return state.with_question(question), question


def answer(state: RunState, text: str) -> tuple[RunState, Question]:
    """``state`` with its open question answered by ``text`` (kept verbatim)."""
    if not text.strip():
        raise OrchestratorError(
            "the answer is empty", hint='give the text: kinfra orch answer PLAN "..."'
        )
    waiting = state.open_questions()
    if not waiting:
        raise OrchestratorError(
            f"milestone {state.milestone} has no open question",
            hint=f"see `kinfra orch status {state.plan_path}`",
        )
    question = waiting[-1]
    answered = now_iso()
    question = replace(
        question, answer=text, answered=answered, wait=round(seconds_since(question.asked), 3)
    )
    return state.with_question(question), question


def waiting_for(state: RunState, task_id: str) -> Question | None:
    """The open question of ``task_id``, if the task waits for an answer."""
    last = state.last_question(task_id)
    return last if last is not None and last.open else None


def undelivered(state: RunState, task_id: str) -> Question | None:
    """The answered question whose answer ``task_id``'s next attempt gets."""
    last = state.last_question(task_id)
    if last is not None and not last.open and not last.delivered:
        return last
    return None


def delivered(state: RunState, question: Question) -> RunState:
    return state.with_question(replace(question, delivered=True))


def seconds_since(iso: str) -> float:
    try:
        return max(time.time() - datetime.fromisoformat(iso).timestamp(), 0.0)
    except ValueError:
        return 0.0


# --- reading them back -------------------------------------------------------------------


@dataclass(frozen=True)
class OpenQuestion:
    """A question still waiting for its answer, with the run it belongs to."""

    project: str
    milestone: str
    plan: str
    state_path: Path
    question: Question

    @property
    def waited(self) -> float:
        """Seconds since it was asked."""
        return seconds_since(self.question.asked)


@dataclass(frozen=True)
class QuestionList:
    """The machine's open questions, and the run states that could not be read."""

    questions: list[OpenQuestion]  # oldest first
    unreadable: list[str]  # a corrupt state file each, with what is wrong with it


def machine_questions() -> QuestionList:
    """``kinfra orch questions``: every project's open questions on this
    machine. A corrupt run state is named, not skipped quietly, and does not
    hide the other projects' questions."""
    from kinfra.errors import StateFileError
    from kinfra.orch.state import load_state
    from kinfra.paths import kinfra_home

    found: list[OpenQuestion] = []
    unreadable: list[str] = []
    for path in sorted(kinfra_home().glob("*/runs/*.json")):
        try:
            state = load_state(path)
        except StateFileError as exc:
            unreadable.append(exc.message)
            continue
        if state is None:
            continue
        for question in state.open_questions():
            found.append(
                OpenQuestion(state.project, state.milestone, state.plan_path, path, question)
            )
    return QuestionList(sorted(found, key=lambda q: q.question.asked), unreadable)


@dataclass(frozen=True)
class AnswerReceipt:
    """What `kinfra orch answer` saved: the question answered and the run state it went into."""

    milestone: str
    plan: str
    state_path: Path
    question: Question


def record_answer(plan_path: Path, text: str, workdir: Path | None = None) -> AnswerReceipt:
    """``kinfra orch answer``: save the answer to the milestone's open question,
    under the run's lock (a live run is never written under)."""
    from kinfra.adapters.lock import RunLock
    from kinfra.orch.context import resolve_context, run_key
    from kinfra.orch.plan import read_plan
    from kinfra.orch.state import load_state, save_state

    plan = read_plan(plan_path)
    ctx = resolve_context(workdir)
    key = run_key(plan_path, plan.milestone)
    path = ctx.state_path(key)
    with RunLock(ctx.lock_path(key), f"answer-{time.time_ns()}", busy="the milestone is running"):
        state = load_state(path)
        if state is None:
            raise OrchestratorError(
                f"milestone {plan.milestone} has no run ({path})",
                hint=f"start one with `kinfra orch run {plan_path}`",
            )
        state, question = answer(state, text)
        save_state(path, state)
    return AnswerReceipt(state.milestone, state.plan_path, path, question)


def format_wait(seconds: float) -> str:
    """``42 s``, ``7 min``, ``3 h 05 min``, ``2 d 4 h``."""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    return f"{seconds // 86400} d {seconds % 86400 // 3600} h"
