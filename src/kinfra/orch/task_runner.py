"""One task, attempt after attempt, until it is done or a human is needed.

Each attempt gets the prompt its situation calls for: the task's prompt; the
human's answer (verbatim, in the session that asked); a retry told what failed
(the check's output tail, or the error); or a plain "continue" when the
previous attempt was cut short. Its result is judged by the STATUS block of
the final message, then by the check command. Failures are retried under
``retry``'s policy; questions, loops and exhausted attempts go to
``escalation``; API errors are waited out by the invoker (``backoff``).
"""

from __future__ import annotations

from dataclasses import replace

from kinfra.adapters import git
from kinfra.adapters.runner import CommandError, CommandNotFoundError
from kinfra.errors import Interrupted
from kinfra.orch import escalation, retry
from kinfra.orch.agents.base import AgentOutcome, AgentResult
from kinfra.orch.backoff import ApiFailure
from kinfra.orch.events import EventKind, RunEvent
from kinfra.orch.invoke import INTERRUPTED, Conclusion, Invocation, Invoker
from kinfra.orch.notify import Event
from kinfra.orch.plan import Task
from kinfra.orch.prompt import answer_prompt, resume_prompt, retry_prompt, task_prompt
from kinfra.orch.services import RunServices
from kinfra.orch.state import Attempt, AttemptKind, Question, QuestionKind, TaskState, TaskStatus
from kinfra.orch.status_block import AgentStatus

# Outcomes after which the next attempt continues the same agent session.
RESUMABLE = {
    INTERRUPTED,
    AgentOutcome.MAX_TURNS.value,
    AgentOutcome.TIMEOUT.value,
    AgentOutcome.IDLE_TIMEOUT.value,
    AgentOutcome.API_ERROR.value,
    AgentOutcome.PERMISSION_DENIED.value,
}
NO_STATUS = "no STATUS line in the agent's final message (the prompt asks for one)"
_ESCALATED = {
    TaskStatus.NEEDS_HUMAN: QuestionKind.NEEDS_HUMAN,
    TaskStatus.BLOCKED: QuestionKind.BLOCKED,
}


def judge(result: AgentResult) -> tuple[TaskStatus, str | None]:
    """The task status an attempt leads to, and the error to record: the
    status block of the final message decides; without one the attempt
    failed (never a false done)."""
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


class TaskRunner:
    """Runs one task, attempt after attempt, until it is done or a human is needed."""

    def __init__(self, run: RunServices, invoker: Invoker) -> None:
        self.run = run
        self.invoker = invoker

    def record(self, task_id: str) -> TaskState:
        return self.run.state.task(task_id)

    def run_task(self, task: Task) -> TaskStatus:
        """Attempts until the task is done (DONE), needs a human (NEEDS_HUMAN,
        BLOCKED: its question is saved) or failed in a way retrying cannot
        help (FAILED: the API stayed down, the agent is not installed)."""
        run = self.run
        record = self.record(task.id)
        if record.status in _ESCALATED and run.state.last_question(task.id) is None and record.last:
            # A state saved before questions were: its question is asked now.
            last = record.last
            text = last.question or last.summary or last.error or record.status.value
            self._escalate(task, _ESCALATED[record.status], text, last, record.status)
        while True:
            waiting = escalation.waiting_for(run.state, task.id)
            if waiting is not None:
                if not self._ask_here(waiting):
                    return self._stop(task, self.record(task.id).status)
                continue
            try:
                attempt, failure = self._attempt(task)
            except Interrupted:
                self._set_status(task.id, TaskStatus.PENDING)
                raise
            if failure is not None or attempt.outcome == AgentOutcome.NOT_FOUND.value:
                run.notify(Event.TASK_FAILED, task=task.id, message=attempt.error or "")
                return self._stop(task, TaskStatus.FAILED)
            status = TaskStatus(attempt.status)
            if status is TaskStatus.DONE:
                return self._stop(task, TaskStatus.DONE)
            if status in _ESCALATED:
                text = attempt.question or attempt.summary or attempt.error or status.value
                self._escalate(task, _ESCALATED[status], text, attempt, status)
                continue
            decision = retry.decide(self.record(task.id).attempts, run.policy.max_attempts)
            if decision.verdict is retry.Verdict.RETRY:
                run.telemetry.record_retry(milestone=run.key, reason=retry.retry_reason(attempt))
                run.note(
                    f"task {task.id}: attempt {attempt.number} failed ({retry.describe(attempt)}); "
                    f"retrying ({decision.used} of {decision.allowed} attempts used)",
                    task.id,
                )
                continue
            assert decision.question is not None
            if decision.verdict is retry.Verdict.LOOP:
                run.telemetry.record_loop(milestone=run.key)
                self._escalate(task, QuestionKind.LOOP, decision.question, attempt)
            else:
                self._escalate(task, QuestionKind.EXHAUSTED, decision.question, attempt)

    # --- one attempt ------------------------------------------------------------------

    def _attempt(self, task: Task) -> tuple[Attempt, ApiFailure | None]:
        run = self.run
        record = self.record(task.id)
        inv = self._next(task, record)

        def save(attempt: Attempt) -> None:
            # The task's status goes with its attempt: one write, not two.
            if attempt.ended is None:
                status = TaskStatus.RUNNING
            elif attempt.backoff is not None or attempt.outcome == INTERRUPTED:
                status = TaskStatus.PENDING  # waiting for the API, or cut short
            else:
                status = TaskStatus(attempt.status)
            run.save_task(replace(self.record(task.id), status=status).with_attempt(attempt))

        attempt, _result, failure = self.invoker.attempt_with_backoff(
            inv,
            len(record.attempts) + 1,
            save,
            lambda result: self._conclude(task, result),
            lambda: self.record(task.id).attempts,
            waited=_waits_in_run(record, run.run_id),
        )
        return attempt, failure

    def _next(self, task: Task, record: TaskState) -> Invocation:
        """The attempt the task's history calls for (see the module doc)."""
        run = self.run
        last = record.last
        same_agent = run.state.agent == run.agent.name
        session = last.session_id if last is not None and same_agent else None
        label = f"Task {task.id} ({task.title})"

        def fresh() -> str:
            return task_prompt(
                run.plan,
                task,
                slot_env=run.ctx.slot_env,
                test_command=run.ctx.test_command,
                previous_error=last.error if last else None,
                previous_summary=last.summary if last else None,
            )

        pending = escalation.undelivered(run.state, task.id)
        if pending is not None:
            assert pending.answer is not None
            self._delivered(pending)
            reply = answer_prompt(label, pending.text, pending.answer)
            target = pending.session_id if same_agent else None

            def with_answer() -> str:
                return fresh() + "\n" + reply

            return Invocation(
                task.id,
                task.title,
                AttemptKind.TASK,
                reply if target else with_answer(),
                target,
                with_answer,
                answered=pending.number,
            )
        if last is None:
            return Invocation(task.id, task.title, AttemptKind.TASK, fresh(), None, fresh)
        if last.outcome in RESUMABLE and session:
            reason = last.error or last.outcome or INTERRUPTED
            prompt = resume_prompt(task, reason)
            return Invocation(task.id, task.title, AttemptKind.TASK, prompt, session, fresh)
        if last.counts:
            used = len(retry.budget(record.attempts))
            prompt = retry_prompt(
                task, used + 1, run.policy.max_attempts, retry.describe(last), last.detail
            )
            if session:
                return Invocation(task.id, task.title, AttemptKind.TASK, prompt, session, fresh)
            return Invocation(task.id, task.title, AttemptKind.TASK, fresh(), None, fresh)
        return Invocation(task.id, task.title, AttemptKind.TASK, fresh(), None, fresh)

    def _conclude(self, task: Task, result: AgentResult) -> Conclusion:
        status, error = judge(result)
        if status is not TaskStatus.DONE:
            return Conclusion(status, error)
        failed = self._check(task)
        if failed is not None:
            return Conclusion(TaskStatus.FAILED, *failed)
        if self.run.settings.commit:
            error = self._commit(task)
            if error:
                return Conclusion(TaskStatus.FAILED, error)
        return Conclusion(TaskStatus.DONE)

    def _check(self, task: Task) -> tuple[str, str | None] | None:
        """Run the check command: None when it passed, else (error, output tail)."""
        run = self.run
        command = task.check or run.settings.check
        if not command:
            return None
        run.note(f"checking: {command}", task.id)
        try:
            result = run_check(command, run)
        except (CommandError, CommandNotFoundError) as exc:
            return f"check `{command}` did not complete: {exc.message.splitlines()[0]}", None
        if result is None:
            return None
        code, output = result
        tail = retry.output_tail(output)
        last = tail.splitlines()[-1] if tail else ""
        return f"check `{command}` failed (exit {code})" + (f": {last}" if last else ""), tail

    def _commit(self, task: Task) -> str | None:
        run = self.run
        workdir = run.ctx.workdir
        try:
            git.git("add", "-A", cwd=workdir)
            staged = git.git("diff", "--cached", "--quiet", cwd=workdir, check=False)
            if staged.returncode == 0:
                run.note("nothing to commit", task.id)
                return None
            message = (
                f"{run.plan.milestone} Task {task.id}: {task.title}\n\n"
                f"Committed by kinfra orch (run {run.run_id})."
            )
            git.git("commit", "-q", "-m", message, cwd=workdir)
        except Exception as exc:  # GitError: the task's work stays in the worktree
            return f"commit failed: {exc}"
        return None

    # --- the human ---------------------------------------------------------------------

    def _escalate(
        self,
        task: Task,
        kind: QuestionKind,
        text: str,
        attempt: Attempt,
        status: TaskStatus = TaskStatus.NEEDS_HUMAN,
    ) -> None:
        run = self.run
        state, question = escalation.ask(run.state, task.id, kind, text, attempt.session_id)
        run.save(state.with_task(replace(self.record(task.id), status=status)))
        run.telemetry.record_escalation(milestone=run.key, kind=kind.value)
        run.emit(RunEvent(EventKind.QUESTION, task.id, message=text, question=question))
        event = Event.LOOP if kind is QuestionKind.LOOP else Event.QUESTION
        run.notify(event, task=task.id, question=text)

    def _ask_here(self, question: Question) -> bool:
        """Ask on the terminal when the run does; True when answered."""
        return ask_here(self.run, question)

    def _delivered(self, question: Question) -> None:
        run = self.run
        run.save(escalation.delivered(run.state, question))
        run.telemetry.record_answer(
            milestone=run.key, kind=question.kind.value, wait=question.wait or 0.0
        )

    # --- bookkeeping -------------------------------------------------------------------

    def _set_status(self, task_id: str, status: TaskStatus) -> None:
        self.run.save_task(replace(self.record(task_id), status=status))

    def _stop(self, task: Task, status: TaskStatus) -> TaskStatus:
        """The run leaves this task with ``status`` (done, or stopped on it)."""
        run = self.run
        record = self.record(task.id)
        if record.status is not status:
            record = replace(record, status=status)
            run.save_task(record)
        run.telemetry.record_task(milestone=run.key, status=status.value, duration=record.duration)
        run.telemetry.flush()  # what happened so far reaches the JSON lines (and Prometheus)
        return status


def ask_here(run: RunServices, question: Question) -> bool:
    """Ask ``question`` on the terminal, when the run asks there; the answer is
    recorded like ``kinfra orch answer``'s. True when answered."""
    if run.asker is None:
        return False
    answer = run.asker(question)
    if answer is None or not answer.strip():
        return False
    state, _ = escalation.answer(run.state, answer)
    run.save(state)
    return True


def run_check(command: str, run: RunServices) -> tuple[int, str] | None:
    """The check where the agent runs: None when it passed, else (exit code, output)."""
    done = run.shell(command)
    return None if done.ok else (done.returncode, done.output)


def _waits_in_run(record: TaskState, run_id: str) -> int:
    """API-error waits this task had in this run since its last other attempt."""
    waits = 0
    for attempt in reversed(record.attempts):
        if attempt.api_error is None or attempt.run_id != run_id:
            break
        if attempt.backoff is not None:
            waits += 1
    return waits
