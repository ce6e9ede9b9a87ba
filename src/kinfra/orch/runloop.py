"""The orchestrator workflow: run a plan's tasks one by one with an agent.

``run_plan`` (``kinfra orch run``/``resume``) takes the milestone's lock,
loads or creates the run state, and runs every task that is not done, in plan
order, saving the state atomically after every transition:

    pending -> running (attempt recorded, session id saved, agent started)
            -> done | failed | needs_human | blocked

A task that is done is never run again. The run stops at the first task that
is not done; ``resume`` tries it again, continuing the agent's session when the
previous attempt was cut short (orchestrator killed, timeout, max turns). The
lock is released however the run ends (success, error, SIGINT, SIGTERM).
"""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from kinfra.adapters import git
from kinfra.adapters.lock import RunLock, process_alive, process_start_time
from kinfra.adapters.process import HOST, Launcher, stop_group
from kinfra.adapters.runner import CommandError, CommandNotFoundError, run
from kinfra.domain.config import OrchestratorSettings
from kinfra.domain.config_agent import AgentSandbox
from kinfra.errors import (
    Interrupted,
    NeedsHumanError,
    OrchestratorError,
    TaskFailedError,
)
from kinfra.orch.agents import make_agent
from kinfra.orch.agents.base import Agent, AgentOutcome, AgentProgress, AgentRequest, AgentResult
from kinfra.orch.context import RunContext, resolve_context, run_key
from kinfra.orch.plan import Plan, Task, read_plan
from kinfra.orch.prompt import resume_prompt, task_prompt
from kinfra.orch.state import (
    Attempt,
    RunLimits,
    RunState,
    TaskState,
    TaskStatus,
    load_state,
    now_iso,
    save_state,
)
from kinfra.orch.status_block import AgentStatus
from kinfra.orch.telemetry import Telemetry, mark_error

INTERRUPTED = "interrupted"
NO_STATUS = "no STATUS line in the agent's final message (the prompt asks for one)"
# Outcomes after which the next attempt continues the same agent session.
_RESUMABLE = {
    INTERRUPTED,
    AgentOutcome.MAX_TURNS.value,
    AgentOutcome.TIMEOUT.value,
    AgentOutcome.IDLE_TIMEOUT.value,
    AgentOutcome.API_ERROR.value,
    AgentOutcome.PERMISSION_DENIED.value,
}

# The agent stopped to ask: the next attempt continues its session.
_ASKED = {TaskStatus.NEEDS_HUMAN.value, TaskStatus.BLOCKED.value}


@dataclass(frozen=True)
class RunOptions:
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


@dataclass(frozen=True)
class RunEvent:
    """What the CLI shows while a run goes on."""

    kind: str  # "note", "task_start", "progress", "task_end"
    task_id: str | None = None
    message: str = ""
    progress: AgentProgress | None = None
    status: TaskStatus | None = None
    attempt: Attempt | None = None


EventCallback = Callable[[RunEvent], None]


@dataclass(frozen=True)
class RunSummary:
    milestone: str
    run_id: str
    state_path: Path
    state: RunState
    ran: tuple[str, ...]  # task ids attempted by this execution
    stopped_at: str | None  # the task that is not done, if the run stopped early
    notes: tuple[str, ...] = ()
    timings: tuple[tuple[str, float, float], ...] = ()  # (task id, task wall s, agent s)

    @property
    def outcome(self) -> str:
        if self.stopped_at is None:
            return TaskStatus.DONE.value
        return self.state.task(self.stopped_at).status.value

    def raise_for_outcome(self) -> None:
        """Exit 1 for a failed task, 4 when a human is needed; nothing when done."""
        if self.stopped_at is None:
            return
        task = self.state.task(self.stopped_at)
        attempt = task.last
        counts = self.state.counts()
        done = f"{counts['done']}/{sum(counts.values())} tasks done"
        if task.status in (TaskStatus.NEEDS_HUMAN, TaskStatus.BLOCKED):
            what = "needs a human" if task.status is TaskStatus.NEEDS_HUMAN else "is blocked"
            detail = (attempt.question or attempt.summary or attempt.error) if attempt else None
            raise NeedsHumanError(
                f"task {task.id} ({task.title}) {what}: {detail or 'no details given'} ({done})",
                hint=f"answer in the worktree or edit the plan, then run "
                f"`kinfra orch resume {self.state.plan_path}`",
            )
        error = task.last_error or "no details"
        raise TaskFailedError(
            f"task {task.id} ({task.title}) failed on attempt {len(task.attempts)}: {error} "
            f"({done}, ${self.state.cost_usd:.2f} spent)",
            hint=f"see `kinfra orch status {self.state.plan_path}`; "
            f"`kinfra orch resume {self.state.plan_path}` tries it again",
        )


def new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


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
        emit(RunEvent("note", message=message))

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

        runner = _TaskRunner(
            ctx=ctx,
            plan=plan,
            options=options,
            agent=the_agent,
            telemetry=tel,
            state_path=state_path,
            logs_dir=ctx.logs_dir(key),
            run_id=run_id,
            emit=emit,
            launcher=launcher,
        )
        runner.state = state
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
                    if runner.state.task(task.id).status is TaskStatus.DONE:
                        continue
                    ran.append(task.id)
                    status = runner.run_task(task)
                    if status is not TaskStatus.DONE:
                        stopped_at = task.id
                        break
                outcome = runner.state.task(stopped_at).status.value if stopped_at else "done"
            finally:
                counts = runner.state.counts()
                span.set_attribute("kinfra.outcome", outcome)
                span.set_attribute("kinfra.tasks.done", counts["done"])
                span.set_attribute("kinfra.tasks.total", sum(counts.values()))
                span.set_attribute("kinfra.cost_usd", runner.state.cost_usd)
                if outcome != "done":
                    where = stopped_at or (ran[-1] if ran else "?")
                    mark_error(span, f"{outcome} at task {where}")
        return RunSummary(
            milestone=plan.milestone,
            run_id=run_id,
            state_path=state_path,
            state=runner.state,
            ran=tuple(ran),
            stopped_at=stopped_at,
            notes=tuple(notes),
            timings=tuple(runner.timings),
        )


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
                if (
                    last.agent_pid
                    and process_alive(last.agent_pid, last.agent_start)
                    and stop_group(last.agent_pid, options.kill_grace)
                ):
                    note(f"stopped the agent left running by the killed run (pid {last.agent_pid})")
                last = replace(
                    last,
                    ended=now_iso(),
                    outcome=INTERRUPTED,
                    status=TaskStatus.PENDING.value,
                    error="the orchestrator stopped during this attempt",
                )
                task = task.with_attempt(last)
            tasks[index] = replace(task, status=TaskStatus.PENDING)
            note(
                f"task {task.id} was interrupted; it continues in session {last.session_id if last else '?'}"
            )
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
    )


@dataclass
class _TaskRunner:
    ctx: RunContext
    plan: Plan
    options: RunOptions
    agent: Agent
    telemetry: Telemetry
    state_path: Path
    logs_dir: Path
    run_id: str
    emit: EventCallback
    launcher: Launcher = HOST  # where the agent runs: here, or in its container
    state: RunState = field(init=False)
    timings: list[tuple[str, float, float]] = field(default_factory=list)

    def _save(self, task: TaskState) -> None:
        self.state = self.state.with_task(task)
        save_state(self.state_path, self.state)

    def run_task(self, task: Task) -> TaskStatus:
        t0 = time.monotonic()
        settings = self.ctx.settings
        record = self.state.task(task.id)
        last = record.last
        resume_sid = None
        if (
            last is not None
            and last.session_id
            and (last.outcome in _RESUMABLE or last.status in _ASKED)
            and self.state.agent == self.agent.name
            and self.agent.name != "command"
        ):
            resume_sid = last.session_id
        new_sid = None
        if resume_sid is None and self.agent.chooses_session_id:
            new_sid = _uuid4()
        attempt = Attempt(
            number=len(record.attempts) + 1,
            session_id=resume_sid or new_sid,
            started=now_iso(),
            run_id=self.run_id,
            resumed_session=resume_sid is not None,
        )
        record = replace(record, status=TaskStatus.RUNNING).with_attempt(attempt)
        self._save(record)  # the session id is on disk before the agent starts
        self.emit(RunEvent("task_start", task.id, message=task.title, attempt=attempt))

        if resume_sid and last is not None:
            reason = last.error or last.outcome or INTERRUPTED
            prompt = resume_prompt(task, reason, asked=last.status in _ASKED)
        else:
            prompt = self._fresh_prompt(task, last)
        # One log per attempt, started empty: never the tail of another run's.
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.logs_dir / f"{task.id}-{attempt.number}.jsonl"
        log_path.write_bytes(b"")
        latest: list[AgentProgress] = []

        def on_session(session_id: str) -> None:
            nonlocal attempt, record
            attempt = replace(attempt, session_id=session_id)
            record = record.with_attempt(attempt)
            self._save(record)

        def on_start(pid: int) -> None:
            nonlocal attempt, record
            attempt = replace(attempt, agent_pid=pid, agent_start=process_start_time(pid))
            record = record.with_attempt(attempt)
            self._save(record)

        def on_progress(progress: AgentProgress) -> None:
            latest[:] = [progress]
            self.emit(RunEvent("progress", task.id, progress=progress))

        span_attributes: dict[str, str | int | bool] = {
            "kinfra.run.id": self.run_id,
            "kinfra.milestone": self.plan.milestone,
            "kinfra.task.id": task.id,
            "kinfra.task.title": task.title,
            "kinfra.attempt": attempt.number,
            "kinfra.resumed_session": resume_sid is not None,
            "gen_ai.provider.name": self.agent.provider,
        }
        if settings.model:
            span_attributes["gen_ai.request.model"] = settings.model
        with self.telemetry.attempt_span(self.agent.name, span_attributes) as span:
            env = {
                **self.ctx.slot_env,
                **Telemetry.traceparent(span),
                "KINFRA_RUN_ID": self.run_id,
                "KINFRA_MILESTONE": self.plan.milestone,
                "KINFRA_TASK_ID": task.id,
                "KINFRA_ATTEMPT": str(attempt.number),
            }
            request = AgentRequest(
                prompt=prompt,
                workdir=self.ctx.workdir,
                max_turns=settings.max_turns,
                timeout=settings.task_timeout,
                idle_timeout=settings.idle_timeout,
                resume_session=resume_sid,
                new_session=new_sid,
                model=settings.model,
                env=env,
                log_path=log_path,
                kill_grace=self.options.kill_grace,
                # In the container, the agent's config dir is in its home volume.
                config_dir=self.ctx.agent_dir(self.agent.name) if self.launcher is HOST else None,
                session_tokens=_session_tokens(record, resume_sid),
                launcher=self.launcher,
            )
            try:
                result = self.agent.run(request, on_progress, on_session, on_start)
                if result.outcome is AgentOutcome.SESSION_NOT_FOUND and resume_sid:
                    # The transcript is gone (another machine, a cleaned
                    # config dir): start over in a fresh session, told what
                    # the previous attempt did, rather than fail the task.
                    fresh = _uuid4() if self.agent.chooses_session_id else None
                    note = (
                        f"session {resume_sid} could not be resumed ({result.error}); "
                        "started a fresh session with the task prompt and the previous summary"
                    )
                    attempt = replace(attempt, session_id=fresh, resumed_session=False, note=note)
                    record = record.with_attempt(attempt)
                    self._save(record)
                    self.emit(RunEvent("note", task.id, message=note))
                    request = replace(
                        request,
                        prompt=self._fresh_prompt(task, last),
                        resume_session=None,
                        new_session=fresh,
                    )
                    result = self.agent.run(request, on_progress, on_session, on_start)
            except Interrupted:
                # What the stream showed is kept: the CLI prints no result when stopped.
                seen = latest[-1] if latest else None
                attempt = replace(
                    attempt,
                    ended=now_iso(),
                    outcome=INTERRUPTED,
                    status=TaskStatus.PENDING.value,
                    error="interrupted by a signal",
                    duration=time.monotonic() - t0,
                    tokens=dict(seen.tokens) if seen else {},
                    turns=seen.turns if seen else None,
                    cost_usd=seen.cost_usd if seen else None,
                )
                self._save(replace(record, status=TaskStatus.PENDING).with_attempt(attempt))
                span.set_attribute("kinfra.outcome", INTERRUPTED)
                _span_tokens(span, attempt.tokens)
                mark_error(span, "interrupted")
                raise
            status, error = judge(result)
            if status is TaskStatus.DONE:
                error = self._verify_and_commit(task)
                if error:
                    status = TaskStatus.FAILED
            summary = result.status_block.summary if result.status_block else None
            attempt = replace(
                attempt,
                session_id=result.session_id or attempt.session_id,
                ended=now_iso(),
                outcome=result.outcome.value,
                status=status.value,
                cost_usd=result.cost_usd,
                tokens=dict(result.tokens),
                turns=result.turns,
                duration=round(result.duration, 3),
                error=error,
                question=result.question,
                summary=summary,
            )
            _span_result(span, result, status, error)
            self.telemetry.record_attempt(
                agent=self.agent.name,
                milestone=self.plan.milestone,
                task_id=task.id,
                outcome=result.outcome.value,
                cost_usd=result.cost_usd,
                tokens=result.tokens,
                duration=time.monotonic() - t0,
            )
        self.telemetry.record_task(milestone=self.plan.milestone, status=status.value)
        self._save(replace(record, status=status).with_attempt(attempt))
        self.emit(
            RunEvent("task_end", task.id, message=error or "", status=status, attempt=attempt)
        )
        self.timings.append((task.id, time.monotonic() - t0, result.duration))
        return status

    def _fresh_prompt(self, task: Task, last: Attempt | None) -> str:
        return task_prompt(
            self.plan,
            task,
            slot_env=self.ctx.slot_env,
            test_command=self.ctx.test_command,
            previous_error=last.error if last else None,
            previous_summary=last.summary if last else None,
        )

    def _verify_and_commit(self, task: Task) -> str | None:
        """Run the check command and commit; an error message when either fails."""
        command = task.check or self.ctx.settings.check
        if command:
            self.emit(RunEvent("note", task.id, message=f"checking: {command}"))
            try:
                result = run(
                    ["sh", "-c", command],
                    cwd=self.ctx.workdir,
                    check=False,
                    timeout=self.ctx.settings.task_timeout,
                )
            except (CommandError, CommandNotFoundError) as exc:
                return f"check `{command}` did not complete: {exc.message.splitlines()[0]}"
            if not result.ok:
                tail = result.output.splitlines()[-5:]
                return f"check `{command}` failed (exit {result.returncode})" + (
                    ": " + " | ".join(tail) if tail else ""
                )
        if self.ctx.settings.commit:
            return self._commit(task)
        return None

    def _commit(self, task: Task) -> str | None:
        workdir = self.ctx.workdir
        try:
            git.git("add", "-A", cwd=workdir)
            staged = git.git("diff", "--cached", "--quiet", cwd=workdir, check=False)
            if staged.returncode == 0:
                self.emit(RunEvent("note", task.id, message="nothing to commit"))
                return None
            message = (
                f"{self.plan.milestone} Task {task.id}: {task.title}\n\n"
                f"Committed by kinfra orch (run {self.run_id})."
            )
            git.git("commit", "-q", "-m", message, cwd=workdir)
        except Exception as exc:  # GitError: the task's work stays in the worktree
            return f"commit failed: {exc}"
        return None


def judge(result: AgentResult) -> tuple[TaskStatus, str | None]:
    """The task status an attempt leads to, and the error to record.

    A successful attempt is judged by the status block of its final message,
    for every agent: without one it is not done (never a false "done")."""
    if result.outcome is not AgentOutcome.SUCCESS:
        return TaskStatus.FAILED, result.error or result.outcome.value
    block = result.status_block
    if block is None:
        return TaskStatus.FAILED, NO_STATUS
    if block.status is AgentStatus.DONE:
        return TaskStatus.DONE, None
    if block.status is AgentStatus.NEEDS_HUMAN:
        return TaskStatus.NEEDS_HUMAN, f"needs a human: {block.question or block.summary or '?'}"
    return TaskStatus.BLOCKED, f"blocked: {block.summary or block.question or '?'}"


def _span_result(span: object, result: AgentResult, status: TaskStatus, error: str | None) -> None:
    from opentelemetry.trace import Span

    assert isinstance(span, Span)
    span.set_attribute("kinfra.outcome", result.outcome.value)
    span.set_attribute("kinfra.task.status", status.value)
    span.set_attribute("kinfra.duration", result.duration)
    if result.session_id:
        span.set_attribute("gen_ai.conversation.id", result.session_id)
    if result.cost_usd is not None:
        span.set_attribute("kinfra.cost_usd", result.cost_usd)
        span.set_attribute("gen_ai.usage.cost", result.cost_usd)
    if result.turns is not None:
        span.set_attribute("kinfra.turns", result.turns)
    _span_tokens(span, result.tokens)
    if result.models:
        span.set_attribute("gen_ai.response.model", result.models[0])
    if result.subtype:
        span.set_attribute("kinfra.agent.subtype", result.subtype)
    if error:
        mark_error(span, error)


def _session_tokens(record: TaskState, session_id: str | None) -> dict[str, int]:
    """What the task's earlier attempts in ``session_id`` recorded."""
    totals: dict[str, int] = {}
    for attempt in record.attempts:
        if session_id and attempt.session_id == session_id and attempt.ended:
            for kind, count in attempt.tokens.items():
                totals[kind] = totals.get(kind, 0) + count
    return totals


def _span_tokens(span: object, tokens: Mapping[str, int]) -> None:
    from opentelemetry.trace import Span

    assert isinstance(span, Span)
    if "input" in tokens:
        span.set_attribute("gen_ai.usage.input_tokens", tokens["input"])
    if "output" in tokens:
        span.set_attribute("gen_ai.usage.output_tokens", tokens["output"])
    for kind, count in tokens.items():
        span.set_attribute(f"kinfra.tokens.{kind}", count)


def _uuid4() -> str:
    import uuid

    return str(uuid.uuid4())
