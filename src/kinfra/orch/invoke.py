"""One agent attempt: the request, the telemetry span, the state saved as it
goes (the session id before the agent starts, its pid once it runs), and
what an interrupt leaves behind.

Every agent run of an orchestrated milestone goes through ``Invoker.attempt``: a
task's attempts, the E2E step run by the agent, and the fixes after a failed
E2E. The caller judges the result (``conclude``) inside the attempt's span.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from kinfra.adapters.lock import process_start_time
from kinfra.adapters.process import HOST
from kinfra.errors import Interrupted
from kinfra.orch.agents.base import AgentOutcome, AgentProgress, AgentRequest, AgentResult
from kinfra.orch.backoff import ApiFailure, api_failure, next_wait, sleep
from kinfra.orch.events import EventKind, RunEvent
from kinfra.orch.retry import failure_signature
from kinfra.orch.services import RunServices
from kinfra.orch.state import Attempt, AttemptKind, TaskStatus, now_iso
from kinfra.orch.telemetry import Telemetry

INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class Invocation:
    """One attempt to make."""

    task_id: str  # a task id, or E2E_STEP
    title: str
    kind: AttemptKind
    prompt: str
    resume_session: str | None  # continue this session; None: a new one
    fallback_prompt: Callable[[], str]  # the prompt for a fresh session if the saved one is gone
    answered: int | None = None  # the question whose answer the prompt carries


@dataclass(frozen=True)
class Conclusion:
    """What the caller made of a result: the status, and for a failure what
    the next attempt is told."""

    status: TaskStatus
    error: str | None = None
    detail: str | None = None  # the check's output tail


Conclude = Callable[[AgentResult], Conclusion]
SaveAttempt = Callable[[Attempt], None]
History = Callable[[], Sequence[Attempt]]  # the attempts made so far (of the task, or the E2E)


def session_tokens(attempts: Sequence[Attempt], session_id: str | None) -> dict[str, int]:
    """What the earlier attempts in ``session_id`` recorded (an agent whose CLI
    reports a session's running totals takes them off)."""
    totals: dict[str, int] = {}
    for attempt in attempts:
        if session_id and attempt.session_id == session_id and attempt.ended:
            for kind, count in attempt.tokens.items():
                totals[kind] = totals.get(kind, 0) + count
    return totals


class Invoker:
    """Makes a run's agent attempts: the request, the span, the state saved as it goes."""

    def __init__(self, run: RunServices) -> None:
        self.run = run

    def attempt(
        self,
        inv: Invocation,
        number: int,
        save: SaveAttempt,
        conclude: Conclude,
        history: History = tuple,
    ) -> tuple[Attempt, AgentResult, ApiFailure | None]:
        """Run one attempt. An API failure is returned as such (not judged):
        the backoff decides about it. Ctrl-C saves the attempt as interrupted
        (resumable) and is raised again."""
        run = self.run
        agent = run.agent
        settings = run.settings
        t0 = time.monotonic()
        resume = inv.resume_session if agent.name != "command" else None
        new_sid = str(uuid.uuid4()) if resume is None and agent.chooses_session_id else None
        attempt = Attempt(
            number=number,
            session_id=resume or new_sid,
            started=now_iso(),
            run_id=run.run_id,
            resumed_session=resume is not None,
            answered=inv.answered,
            kind=inv.kind,
        )
        save(attempt)  # the session id is on disk before the agent starts
        run.emit(RunEvent(EventKind.TASK_START, inv.task_id, message=inv.title, attempt=attempt))
        # One log per attempt, started empty: never the tail of another run's.
        run.logs_dir.mkdir(parents=True, exist_ok=True)
        log_path = run.logs_dir / f"{inv.task_id}-{number}.jsonl"
        log_path.write_bytes(b"")
        latest: list[AgentProgress] = []

        def on_session(session_id: str) -> None:
            nonlocal attempt
            attempt = replace(attempt, session_id=session_id)
            save(attempt)

        def on_start(pid: int) -> None:
            nonlocal attempt
            attempt = replace(attempt, agent_pid=pid, agent_start=process_start_time(pid))
            save(attempt)

        def on_progress(progress: AgentProgress) -> None:
            latest[:] = [progress]
            run.emit(RunEvent(EventKind.PROGRESS, inv.task_id, progress=progress))

        attributes = Telemetry.attempt_attributes(
            run_id=run.run_id,
            milestone=run.plan.milestone,
            task_id=inv.task_id,
            title=inv.title,
            number=number,
            kind=inv.kind,
            resumed=resume is not None,
            provider=agent.provider,
            model=settings.model,
        )
        with run.telemetry.attempt_span(agent.name, attributes) as span:
            env = {
                **run.ctx.slot_env,
                **Telemetry.traceparent(span),
                "KINFRA_RUN_ID": run.run_id,
                "KINFRA_MILESTONE": run.plan.milestone,
                "KINFRA_TASK_ID": inv.task_id,
                "KINFRA_ATTEMPT": str(number),
            }
            request = AgentRequest(
                prompt=inv.prompt,
                workdir=run.ctx.workdir,
                max_turns=settings.max_turns,
                timeout=settings.task_timeout,
                idle_timeout=settings.idle_timeout,
                resume_session=resume,
                new_session=new_sid,
                model=settings.model,
                env=env,
                log_path=log_path,
                kill_grace=run.kill_grace,
                # In the container, the agent's config dir is in its home volume.
                config_dir=run.ctx.agent_dir(agent.name) if run.launcher is HOST else None,
                session_tokens=session_tokens(history(), resume),
                launcher=run.launcher,
            )
            try:
                result = agent.run(request, on_progress, on_session, on_start)
                if result.outcome is AgentOutcome.SESSION_NOT_FOUND and resume:
                    # The transcript is gone (another machine, a cleaned
                    # config dir): start over in a fresh session, told what
                    # the previous attempt did, rather than fail the task.
                    fresh = str(uuid.uuid4()) if agent.chooses_session_id else None
                    note = (
                        f"session {resume} could not be resumed ({result.error}); "
                        "started a fresh session with the task prompt and the previous summary"
                    )
                    attempt = replace(attempt, session_id=fresh, resumed_session=False, note=note)
                    save(attempt)
                    run.emit(RunEvent(EventKind.NOTE, inv.task_id, message=note))
                    request = replace(
                        request,
                        prompt=inv.fallback_prompt(),
                        resume_session=None,
                        new_session=fresh,
                    )
                    result = agent.run(request, on_progress, on_session, on_start)
            except Interrupted:
                # What the stream showed is kept: the CLI prints no result when stopped.
                seen = latest[-1] if latest else None
                attempt = replace(
                    attempt,
                    ended=now_iso(),
                    outcome=INTERRUPTED,
                    status=TaskStatus.PENDING.value,
                    error="interrupted by a signal",
                    duration=round(time.monotonic() - t0, 3),
                    tokens=dict(seen.tokens) if seen else {},
                    turns=seen.turns if seen else None,
                    cost_usd=seen.cost_usd if seen else None,
                )
                save(attempt)
                Telemetry.end_interrupted(span, attempt.tokens)
                raise
            failure = api_failure(result)
            if failure is not None:
                conclusion = Conclusion(TaskStatus.FAILED, result.error or result.outcome.value)
            else:
                conclusion = conclude(result)
            attempt = replace(
                attempt,
                session_id=result.session_id or attempt.session_id,
                ended=now_iso(),
                outcome=result.outcome.value,
                status=conclusion.status.value,
                cost_usd=result.cost_usd,
                tokens=dict(result.tokens),
                turns=result.turns,
                duration=round(time.monotonic() - t0, 3),
                error=conclusion.error,
                detail=conclusion.detail,
                question=result.question,
                summary=result.status_block.summary if result.status_block else None,
                api_error=failure.kind.value if failure else None,
                signature=_signature(conclusion) if failure is None else None,
            )
            Telemetry.end_attempt(span, result, conclusion.status.value, conclusion.error)
            run.telemetry.record_attempt(
                agent=agent.name,
                provider=agent.provider,
                milestone=run.key,
                task_id=inv.task_id,
                kind=inv.kind,
                outcome=result.outcome.value,
                cost_usd=result.cost_usd,
                tokens=result.tokens,
                duration=time.monotonic() - t0,
            )
        save(attempt)
        run.emit(
            RunEvent(
                EventKind.TASK_END,
                inv.task_id,
                message=conclusion.error or "",
                status=conclusion.status,
                attempt=attempt,
            )
        )
        run.timings.append((inv.task_id, time.monotonic() - t0, result.duration))
        return attempt, result, failure

    def attempt_with_backoff(
        self,
        inv: Invocation,
        number: int,
        save: SaveAttempt,
        conclude: Conclude,
        history: History = tuple,
        waited: int = 0,
    ) -> tuple[Attempt, AgentResult, ApiFailure | None]:
        """``attempt``, with API failures waited out on ``[orchestrator] backoff``
        (``waited``: waits this task already had in this run). Each retry is an
        attempt of its own that continues the same session with the same
        prompt, and none counts against ``max_attempts``. An ApiFailure is
        returned only when the schedule is used up."""
        run = self.run
        while True:
            attempt, result, failure = self.attempt(inv, number, save, conclude, history)
            if failure is None:
                return attempt, result, None
            wait = next_wait(run.policy.backoff, waited, failure, time.time())
            if wait is None:
                return attempt, result, failure
            attempt = replace(attempt, backoff=round(wait.seconds, 3))
            save(attempt)
            run.telemetry.record_backoff(
                milestone=run.key, api_error=failure.kind.value, seconds=wait.seconds
            )
            run.note(wait.message(wait.seconds), inv.task_id)
            task_id = inv.task_id

            def tick(line: str, task_id: str = task_id) -> None:
                run.emit(RunEvent(EventKind.WAITING, task_id, message=line))

            sleep(wait, tick)
            waited += 1
            number += 1
            inv = replace(inv, resume_session=attempt.session_id or inv.resume_session)


def _signature(conclusion: Conclusion) -> str | None:
    if conclusion.status is not TaskStatus.FAILED:
        return None
    return failure_signature("\n".join(filter(None, (conclusion.error, conclusion.detail))))
