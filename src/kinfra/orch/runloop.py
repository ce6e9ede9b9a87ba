"""The orchestrator workflow: run a plan's tasks one by one with an agent,
then its E2E step.

``run_plan`` (``kinfra orch run``/``resume``) takes the milestone's lock,
loads or creates the run state, runs every task that is not done, in plan
order (``task_runner``: attempts, retries, questions), then the plan's E2E
step (``e2e``: the E2E and its fixes), saving the state atomically after every
transition:

    pending -> running (attempt recorded, session id saved, agent started)
            -> done | failed | needs_human | blocked

A task that is done is never run again. The run stops at the first task (or
E2E step) that is not done: exit 1 when it failed, 4 when it waits for a
human's answer. ``resume`` goes on from there, continuing the agent's session
where that helps. The lock is released however the run ends (success, error,
SIGINT, SIGTERM).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from kinfra.adapters.lock import RunLock, process_alive
from kinfra.adapters.process import HOST, Launcher, stop_group
from kinfra.domain.config_agent import AgentSandbox
from kinfra.domain.config_orch import OrchestratorSettings
from kinfra.errors import NeedsHumanError, OrchestratorError, TaskFailedError
from kinfra.orch.agents import make_agent
from kinfra.orch.agents.base import Agent
from kinfra.orch.context import RunContext, resolve_context, run_key
from kinfra.orch.e2e import E2EStep
from kinfra.orch.events import EventCallback, EventKind, RunEvent
from kinfra.orch.invoke import INTERRUPTED, Invoker
from kinfra.orch.notify import Event
from kinfra.orch.plan import Plan, read_plan
from kinfra.orch.services import Asker, Confirmer, RunServices
from kinfra.orch.state import (
    E2E_STEP,
    Attempt,
    E2EStatus,
    RunLimits,
    RunState,
    TaskState,
    TaskStatus,
    load_state,
    now_iso,
    save_state,
)
from kinfra.orch.task_runner import NO_STATUS as NO_STATUS  # re-exported: callers use them here
from kinfra.orch.task_runner import TaskRunner
from kinfra.orch.task_runner import judge as judge
from kinfra.orch.telemetry import Telemetry, mark_error

__all__ = [
    "NO_STATUS",
    "EventCallback",
    "RunEvent",
    "RunOptions",
    "RunSummary",
    "judge",
    "run_plan",
]


@dataclass(frozen=True)
class RunOptions:
    """What `kinfra orch run` / `resume` was told on its command line."""

    plan_path: Path
    workdir: Path | None = None
    agent: str | None = None
    max_turns: int | None = None
    model: str | None = None
    task_timeout: float | None = None
    idle_timeout: float | None = None
    restart: bool = False
    kill_grace: float = 5.0  # seconds per stage of INT -> TERM -> KILL
    in_container: bool = False  # each attempt in the worktree's agent container
    ask: bool = False  # --ask: questions on the terminal (also [orchestrator] ask)
    asker: Asker | None = None  # the terminal, when there is one
    confirm_fix: Confirmer | None = None  # --confirm-fixes: a yes/no before each E2E fix


@dataclass(frozen=True)
class RunSummary:
    """How a run ended: its state, the tasks it attempted, where it stopped, notes and timings."""

    milestone: str
    run_id: str
    state_path: Path
    state: RunState
    ran: tuple[str, ...]  # task ids attempted by this execution ("E2E": the E2E step)
    stopped_at: str | None  # the task (or "E2E") that is not done, if the run stopped early
    notes: tuple[str, ...] = ()
    timings: tuple[tuple[str, float, float], ...] = ()  # (task id, task wall s, agent s)

    @property
    def outcome(self) -> str:
        if self.stopped_at is None:
            return TaskStatus.DONE.value
        if self.stopped_at == E2E_STEP:
            status = self.state.e2e.status
            return "needs_human" if status is E2EStatus.NEEDS_HUMAN else TaskStatus.FAILED.value
        return self.state.task(self.stopped_at).status.value

    def raise_for_outcome(self) -> None:
        """Exit 1 for a failed task, 4 when a human is needed; nothing when done."""
        if self.stopped_at is None:
            return
        state = self.state
        counts = state.counts()
        done = f"{counts['done']}/{sum(counts.values())} tasks done"
        plan = state.plan_path
        waiting = [q for q in state.open_questions() if q.task_id == self.stopped_at]
        if waiting:
            question = waiting[-1]
            where = "the E2E step" if question.task_id == E2E_STEP else f"task {question.task_id}"
            if question.task_id != E2E_STEP:
                where += f" ({state.task(question.task_id).title})"
            raise NeedsHumanError(
                f"{where} needs a human ({question.kind.value}): {question.text} ({done})",
                hint=f'answer with `kinfra orch answer {plan} "..."`, then `kinfra orch resume '
                f"{plan}` gives the answer to the agent",
            )
        if self.stopped_at == E2E_STEP:
            last = state.e2e.attempts[-1] if state.e2e.attempts else None
            raise TaskFailedError(
                f"the E2E step stopped: {last.error if last and last.error else 'the agent failed'} "
                f"({done}, ${state.cost_usd:.2f} spent)",
                hint=f"`kinfra orch resume {plan}` runs the E2E again",
            )
        task = state.task(self.stopped_at)
        error = task.last_error or "no details"
        raise TaskFailedError(
            f"task {task.id} ({task.title}) failed on attempt {len(task.attempts)}: {error} "
            f"({done}, ${state.cost_usd:.2f} spent)",
            hint=f"see `kinfra orch status {plan}`; `kinfra orch resume {plan}` tries it again",
        )


def new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{os.urandom(3).hex()}"


def run_plan(
    options: RunOptions,
    *,
    resume: bool = False,
    on_event: EventCallback | None = None,
    telemetry: Telemetry | None = None,
    agent: Agent | None = None,
) -> RunSummary:
    """Run (or resume) the plan at ``options.plan_path``; see the module doc."""
    emit = on_event or (lambda event: None)
    plan_path = options.plan_path.resolve()
    plan = read_plan(plan_path)
    ctx = resolve_context(options.workdir)
    run_id = new_run_id()
    notes: list[str] = []

    def note(message: str) -> None:
        notes.append(message)
        emit(RunEvent(EventKind.NOTE, message=message))

    key = run_key(plan_path, plan.milestone)
    state_path = ctx.state_path(key)
    owned = telemetry is None
    # Before the lock and the state: a bad OTLP setup must not leave a run behind.
    tel = telemetry or Telemetry.to_jsonl(
        ctx.telemetry_path(key),
        attributes={"kinfra.project": ctx.project},
    )
    with contextlib.ExitStack() as stack:
        stack.callback(tel.shutdown if owned else tel.flush)
        lock = stack.enter_context(RunLock(ctx.lock_path(key), run_id))
        if lock.took_over is not None:
            holder = lock.took_over
            who = f"pid {holder.pid}" if holder.pid else "an unfinished kinfra start"
            note(f"took over a stale lock of {who} (run {holder.run_id or '?'}): process gone")
        existing = load_state(state_path)
        if resume:
            if existing is None:
                raise OrchestratorError(
                    f"no run of milestone {plan.milestone} to resume ({state_path})",
                    hint=f"start one with `kinfra orch run {options.plan_path}`",
                )
            state = _reconcile(existing, plan, plan_path, ctx, run_id, note, options)
        else:
            if existing is not None and not options.restart:
                counts = existing.counts()
                raise OrchestratorError(
                    f"milestone {plan.milestone} already has a run "
                    f"({counts['done']}/{sum(counts.values())} tasks done, state {state_path})",
                    hint=f"continue it with `kinfra orch resume {options.plan_path}`, "
                    "or start over with --restart",
                )
            if existing is not None:
                note(f"--restart: the previous run's state ({existing.run_id}) is replaced")
            # The replaced run's logs go with it: attempt numbers start again at 1.
            shutil.rmtree(ctx.logs_dir(key), ignore_errors=True)
            state = _fresh_state(plan, plan_path, ctx, run_id, options)
        settings = _settings(ctx, state.limits, options.agent or state.agent)
        ctx = replace(ctx, settings=settings)
        the_agent = agent or make_agent(settings)
        launcher: Launcher = HOST
        if settings.sandbox is AgentSandbox.CONTAINER:
            from kinfra.workflows.agent_launch import container_launcher

            launcher = container_launcher(ctx.workdir, key, options.kill_grace)
        save_state(state_path, state)

        services = RunServices(
            ctx=ctx,
            plan=plan,
            agent=the_agent,
            telemetry=tel,
            state=state,
            state_path=state_path,
            logs_dir=ctx.logs_dir(key),
            run_id=run_id,
            key=key,
            emit=emit,
            kill_grace=options.kill_grace,
            launcher=launcher,
            asker=options.asker if (options.ask or settings.policy.ask) else None,
            confirm_fix=options.confirm_fix,
            notes=notes,
        )
        invoker = Invoker(services)
        tasks = TaskRunner(services, invoker)
        ran: list[str] = []
        stopped_at: str | None = None
        with tel.run_span(
            plan.milestone,
            {
                "kinfra.run.id": run_id,
                "kinfra.milestone": plan.milestone,
                "kinfra.run_key": key,
                "kinfra.project": ctx.project,
                "kinfra.plan.path": str(plan_path),
                "kinfra.plan.hash": plan.hash,
                "kinfra.resume": resume,
                "gen_ai.agent.name": the_agent.name,
            },
        ) as span:
            outcome = INTERRUPTED  # unless the loop ends normally
            try:
                for task in plan.tasks:
                    if services.state.task(task.id).status is TaskStatus.DONE:
                        continue
                    ran.append(task.id)
                    if tasks.run_task(task) is not TaskStatus.DONE:
                        stopped_at = task.id
                        break
                if stopped_at is None and plan.e2e:
                    if services.state.e2e.status is not E2EStatus.PASSED:
                        ran.append(E2E_STEP)
                    if E2EStep(services, invoker).run_step() is not E2EStatus.PASSED:
                        stopped_at = E2E_STEP
                if stopped_at is None:
                    services.notify(Event.MILESTONE_DONE, message=f"{len(plan.tasks)} tasks done")
                outcome = _outcome(services.state, stopped_at)
            finally:
                final = services.state
                counts = final.counts()
                span.set_attribute("kinfra.outcome", outcome)
                span.set_attribute("kinfra.tasks.done", counts["done"])
                span.set_attribute("kinfra.tasks.total", sum(counts.values()))
                span.set_attribute("kinfra.cost_usd", final.cost_usd)
                if plan.e2e:
                    span.set_attribute("kinfra.e2e.status", final.e2e.status.value)
                    span.set_attribute("kinfra.e2e.runs", len(final.e2e.runs))
                    span.set_attribute("kinfra.e2e.fixes", len(final.e2e.fixes))
                if outcome != "done":
                    where = stopped_at or (ran[-1] if ran else "?")
                    mark_error(span, f"{outcome} at {where}")
        return RunSummary(
            milestone=plan.milestone,
            run_id=run_id,
            state_path=state_path,
            state=services.state,
            ran=tuple(ran),
            stopped_at=stopped_at,
            notes=tuple(notes),
            timings=tuple(services.timings),
        )


def _outcome(state: RunState, stopped_at: str | None) -> str:
    if stopped_at is None:
        return "done"
    if stopped_at == E2E_STEP:
        return "needs_human" if state.e2e.status is E2EStatus.NEEDS_HUMAN else "failed"
    return state.task(stopped_at).status.value


def _limits(options: RunOptions, saved: RunLimits | None = None) -> RunLimits:
    """The run's command-line limits: the options given now, else those saved."""
    saved = saved or RunLimits()
    return RunLimits(
        max_turns=options.max_turns if options.max_turns is not None else saved.max_turns,
        model=options.model if options.model is not None else saved.model,
        task_timeout=options.task_timeout
        if options.task_timeout is not None
        else saved.task_timeout,
        idle_timeout=options.idle_timeout
        if options.idle_timeout is not None
        else saved.idle_timeout,
        sandbox=AgentSandbox.CONTAINER.value if options.in_container else saved.sandbox,
    )


def _settings(ctx: RunContext, limits: RunLimits, agent: str) -> OrchestratorSettings:
    changes = {k: v for k, v in dataclasses.asdict(limits).items() if v is not None}
    if "sandbox" in changes:
        changes["sandbox"] = AgentSandbox(changes["sandbox"])
    return dataclasses.replace(ctx.settings, agent=agent, **changes)


def _fresh_state(
    plan: Plan, plan_path: Path, ctx: RunContext, run_id: str, options: RunOptions
) -> RunState:
    now = now_iso()
    return RunState(
        run_id=run_id,
        milestone=plan.milestone,
        plan_path=str(plan_path),
        plan_hash=plan.hash,
        agent=options.agent or ctx.settings.agent,
        workdir=str(ctx.workdir),
        project=ctx.project,
        created=now,
        updated=now,
        tasks=tuple(TaskState(t.id, t.title) for t in plan.tasks),
        limits=_limits(options),
    )


def _reconcile(
    state: RunState,
    plan: Plan,
    plan_path: Path,
    ctx: RunContext,
    run_id: str,
    note: Callable[[str], None],
    options: RunOptions,
) -> RunState:
    """Match the saved tasks to the (possibly changed) plan by id."""
    if state.plan_hash != plan.hash:
        note(
            f"the plan changed since the run started (hash {state.plan_hash[:12]} -> "
            f"{plan.hash[:12]}); tasks are matched by id"
        )
    if Path(state.workdir) != ctx.workdir:
        note(f"workdir changed: {state.workdir} -> {ctx.workdir}")
    if options.agent and options.agent != state.agent:
        note(f"agent changed: {state.agent} -> {options.agent}; sessions start afresh")
    saved = {t.id: t for t in state.tasks}
    tasks: list[TaskState] = []
    for planned in plan.tasks:
        old = saved.pop(planned.id, None)
        if old is None:
            note(f"task {planned.id} is new in the plan")
            tasks.append(TaskState(planned.id, planned.title))
        else:
            tasks.append(replace(old, title=planned.title, in_plan=True))
    for old in saved.values():
        if old.in_plan:
            note(f"task {old.id} is no longer in the plan; its record is kept")
        tasks.append(replace(old, in_plan=False))
    # An attempt with no end was cut short by a killed orchestrator.
    for index, task in enumerate(tasks):
        last = task.last
        if task.status is TaskStatus.RUNNING or (last is not None and last.ended is None):
            if last is not None and last.ended is None:
                last = _cut_short(last, options, note)
                task = task.with_attempt(last)
            tasks[index] = replace(task, status=TaskStatus.PENDING)
            note(
                f"task {task.id} was interrupted; it continues in session {last.session_id if last else '?'}"
            )
    e2e = state.e2e
    for attempt in e2e.attempts:
        if attempt.ended is None:
            e2e = e2e.with_attempt(_cut_short(attempt, options, note))
    if e2e.status is E2EStatus.RUNNING:
        e2e = replace(e2e, status=E2EStatus.PENDING)
    return replace(
        state,
        run_id=run_id,
        plan_path=str(plan_path),
        plan_hash=plan.hash,
        agent=options.agent or state.agent,
        workdir=str(ctx.workdir),
        updated=now_iso(),
        tasks=tuple(tasks),
        limits=_limits(options, state.limits),
        e2e=e2e,
    )


def _cut_short(attempt: Attempt, options: RunOptions, note: Callable[[str], None]) -> Attempt:
    """An attempt a killed orchestrator left open: its agent stopped if it
    still runs, the attempt ended as interrupted (its session is continued)."""
    if (
        attempt.agent_pid
        and process_alive(attempt.agent_pid, attempt.agent_start)
        and stop_group(attempt.agent_pid, options.kill_grace)
    ):
        note(f"stopped the agent left running by the killed run (pid {attempt.agent_pid})")
    return replace(
        attempt,
        ended=now_iso(),
        outcome=INTERRUPTED,
        status=TaskStatus.PENDING.value,
        error="the orchestrator stopped during this attempt",
    )
