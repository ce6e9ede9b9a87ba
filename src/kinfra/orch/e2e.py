"""The E2E step after the last task, and its bounded fix loop (seed 001 M5).

The plan's E2E section(s) run against the worktree's own slot; a slot that is
not up is started and must pass its startability gate first.

- With ``[orchestrator] e2e = "<command>"`` kinfra runs the command in the
  worktree with the slot's variables (what ``kinfra env`` prints) and judges
  it by its exit code; the output's tail is the evidence.
- Without one, the agent gets the E2E section (and the slot's URLs) as a step
  of its own, changes nothing, and ends with ``E2E: pass | fail`` and its
  ``EVIDENCE:``. No conclusion, or a pass without evidence, is a failure.

A failed E2E goes to the agent with its evidence to fix the code, and the E2E
runs again: at most ``[orchestrator] e2e_fix_attempts`` fixes (default 5;
``--confirm-fixes`` asks before each). Then a human is asked, with the last
failure as the question (exit 4); their answer goes to the next fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from kinfra.adapters.runner import CommandError, CommandNotFoundError
from kinfra.errors import Interrupted, KinfraError
from kinfra.orch import escalation
from kinfra.orch.agents.base import AgentResult
from kinfra.orch.backoff import ApiFailure
from kinfra.orch.events import EventKind, RunEvent
from kinfra.orch.invoke import INTERRUPTED, Conclude, Conclusion, Invocation, Invoker
from kinfra.orch.notify import Event
from kinfra.orch.prompt import answer_prompt, e2e_fix_prompt, e2e_prompt
from kinfra.orch.retry import output_tail
from kinfra.orch.services import RunServices
from kinfra.orch.state import (
    E2E_FIX,
    E2E_STEP,
    Attempt,
    AttemptKind,
    E2EResult,
    E2ERun,
    E2EStatus,
    Question,
    QuestionKind,
    TaskStatus,
    now_iso,
)
from kinfra.orch.status_block import parse_e2e_report
from kinfra.orch.task_runner import ask_here, judge

_ESCALATED = {
    TaskStatus.NEEDS_HUMAN: QuestionKind.NEEDS_HUMAN,
    TaskStatus.BLOCKED: QuestionKind.BLOCKED,
}


@dataclass(frozen=True)
class Sandbox:
    """The slot the E2E runs against: its variables, or why there is none."""

    variables: Mapping[str, str]
    note: str | None = None


def ensure_slot(run: RunServices) -> Sandbox:
    """The worktree's slot, started (and through its gate) when it is not up."""
    from kinfra.detect import detect, find_env_file
    from kinfra.project import find_project
    from kinfra.workflows.everyday import instance_status
    from kinfra.workflows.targeting import sandbox_up

    workdir = run.ctx.workdir
    no_slot = Sandbox({}, "this worktree has no slot: the E2E runs without a sandbox")
    if find_env_file(workdir) is None:
        return no_slot
    instance = detect(workdir)
    if instance.source != "env-file":
        return no_slot
    status = instance_status(workdir)
    if status.state != "running":
        run.note(f"slot {instance.slot} is {status.state}: starting it for the E2E")
        sandbox_up(find_project(workdir), None)
    return Sandbox(dict(instance.variables))


def fixes_used(attempts: tuple[Attempt, ...]) -> int:
    """Fix attempts counted against ``e2e_fix_attempts``: those since the last
    one that carried a human's answer (that one included); API errors never."""
    fixes = [a for a in attempts if a.kind is AttemptKind.FIX]
    start = 0
    for index, attempt in enumerate(fixes):
        if attempt.answered is not None:
            start = index
    return sum(
        1
        for a in fixes[start:]
        if a.api_error is None and a.ended is not None and a.outcome != INTERRUPTED
    )


class E2EStep:
    """Runs a plan's E2E step and its fix loop, saving the state as it goes."""

    def __init__(self, run: RunServices, invoker: Invoker) -> None:
        self.run = run
        self.invoker = invoker

    def run_step(self) -> E2EStatus:
        """Run the E2E (and fixes) until it passes (PASSED), a human is
        needed (NEEDS_HUMAN: the question is saved) or the agent's API stayed
        down (FAILED)."""
        run = self.run
        while True:
            e2e = run.state.e2e
            if e2e.status is E2EStatus.PASSED:
                return E2EStatus.PASSED
            waiting = escalation.waiting_for(run.state, E2E_STEP)
            if waiting is not None:
                if not ask_here(run, waiting):
                    self._status(E2EStatus.NEEDS_HUMAN)
                    return E2EStatus.NEEDS_HUMAN
                continue
            pending = escalation.undelivered(run.state, E2E_STEP)
            if pending is None and e2e.status in (E2EStatus.PENDING, E2EStatus.RUNNING):
                passed = self._run_once()
                if passed is None:
                    self._status(E2EStatus.PENDING)  # resume runs it again
                    return E2EStatus.FAILED  # the agent's API stayed down
                if passed:
                    self._status(E2EStatus.PASSED)
                    return E2EStatus.PASSED
                self._status(E2EStatus.FAILED)
                last = run.state.e2e.last_run
                run.notify(Event.E2E_FAILED, task=E2E_STEP, message=_evidence(last))
                continue
            # A failed E2E (or a human's answer about it): a fix is due.
            used = fixes_used(e2e.attempts)
            allowed = run.policy.e2e_fix_attempts
            if pending is None and used >= allowed:
                self._escalate(
                    QuestionKind.E2E,
                    f"the E2E still fails after {used} fix{'es' if used != 1 else ''} "
                    f"(e2e_fix_attempts = {allowed}): {_evidence(e2e.last_run)[-1500:]} "
                    "What should change?",
                    _last_session(e2e.attempts),
                )
                continue
            if (
                pending is None
                and run.confirm_fix is not None
                and not run.confirm_fix(
                    f"The E2E failed. Let the agent fix it (fix {used + 1} of {allowed})?"
                )
            ):
                self._escalate(
                    QuestionKind.E2E,
                    f"the E2E failed and the fix was declined: {_evidence(e2e.last_run)[-1500:]}"
                    " What should change?",
                    _last_session(e2e.attempts),
                )
                continue
            status = self._fix(used + 1, allowed, pending)
            if status is None:
                return E2EStatus.FAILED  # the API stayed down
            if status in _ESCALATED:
                fix = run.state.e2e.attempts[-1]
                text = fix.question or fix.summary or fix.error or status.value
                self._escalate(_ESCALATED[status], text, fix.session_id)
                continue
            self._status(E2EStatus.PENDING)  # done or not, the E2E runs again

    # --- one E2E run ----------------------------------------------------------------------

    def _run_once(self) -> bool | None:
        """One E2E run; True when it passed, None when the agent's API stayed down."""
        run = self.run
        e2e = run.state.e2e
        mode = "command" if run.policy.e2e else "agent"
        record = E2ERun(number=len(e2e.runs) + 1, started=now_iso(), mode=mode)
        run.save_e2e(replace(e2e.with_run(record), status=E2EStatus.RUNNING))
        try:
            sandbox = ensure_slot(run)
        except KinfraError as exc:  # the worktree's code may be why the slot does not start
            return self._end_run(record, E2EResult.FAIL, f"the slot did not start: {exc.message}")
        if sandbox.note:
            run.note(sandbox.note, E2E_STEP)
        if run.policy.e2e:
            return self._run_command(record, run.policy.e2e, sandbox)
        return self._run_agent(record, sandbox)

    def _run_command(self, record: E2ERun, command: str, sandbox: Sandbox) -> bool:
        run = self.run
        run.emit(RunEvent(EventKind.E2E_START, E2E_STEP, message=command))
        env = {
            **sandbox.variables,
            "KINFRA_RUN_ID": run.run_id,
            "KINFRA_MILESTONE": run.plan.milestone,
            "KINFRA_E2E_RUN": str(record.number),
        }
        attributes = {"kinfra.run.id": run.run_id, "kinfra.e2e.run": record.number}
        with run.telemetry.e2e_span(run.plan.milestone, "command", attributes) as span:
            try:
                done = run.shell(command, env)
            except (CommandError, CommandNotFoundError) as exc:
                result, evidence = E2EResult.FAIL, f"`{command}` did not complete: {exc.message}"
            else:
                result = E2EResult.PASS if done.ok else E2EResult.FAIL
                evidence = f"`{command}` exited {done.returncode}\n" + output_tail(done.output)
            run.telemetry.end_e2e(span, result.value)
        return self._end_run(record, result, evidence)

    def _run_agent(self, record: E2ERun, sandbox: Sandbox) -> bool | None:
        run = self.run
        urls = {
            k: v for k, v in sandbox.variables.items() if k.endswith("_URL") or k == "SLOT_NUMBER"
        }
        prompt = e2e_prompt(run.plan, urls or run.ctx.slot_env)
        inv = Invocation(E2E_STEP, "E2E", AttemptKind.E2E, prompt, None, lambda: prompt)
        attempt, result, failure = self._invoke(inv, self._conclude_e2e)
        record = replace(record, attempt=attempt.number)
        if failure is not None:
            self.run.save_e2e(self.run.state.e2e.with_run(replace(record, ended=now_iso())))
            return None
        if attempt.outcome != "success":
            return self._end_run(record, None, attempt.error or "the agent's E2E run failed")
        report = parse_e2e_report(result.final_text)
        if report is None:
            return self._end_run(record, None, "the agent ended without an `E2E: pass | fail` line")
        if report.passed:
            return self._end_run(record, E2EResult.PASS, report.evidence or "")
        evidence = report.evidence or "(the agent reported a pass with no evidence)"
        return self._end_run(record, E2EResult.FAIL, evidence)

    def _conclude_e2e(self, result: AgentResult) -> Conclusion:
        report = parse_e2e_report(result.final_text)
        if result.outcome.value != "success":
            return Conclusion(TaskStatus.FAILED, result.error or result.outcome.value)
        if report is None:
            return Conclusion(TaskStatus.FAILED, "no `E2E: pass | fail` line in the final message")
        return Conclusion(TaskStatus.DONE if report.passed else TaskStatus.FAILED)

    def _end_run(self, record: E2ERun, result: E2EResult | None, evidence: str) -> bool:
        run = self.run
        passed = result is E2EResult.PASS
        ended = replace(record, ended=now_iso(), result=result, evidence=evidence.strip())
        run.save_e2e(run.state.e2e.with_run(ended))
        run.telemetry.record_e2e(
            milestone=run.key,
            mode=record.mode,
            result=result.value if result else "error",
        )
        conclusion = "passed" if passed else "failed"
        run.emit(
            RunEvent(
                EventKind.E2E_END, E2E_STEP, message=f"E2E {conclusion}: {evidence.strip()[:300]}"
            )
        )
        run.telemetry.flush()
        return passed

    # --- a fix ------------------------------------------------------------------------

    def _fix(self, number: int, allowed: int, pending: Question | None) -> TaskStatus | None:
        """One fix attempt; its status, or None when the API stayed down."""
        run = self.run
        e2e = run.state.e2e
        evidence = _evidence(e2e.last_run)
        session = _last_session(e2e.attempts, AttemptKind.FIX)
        prompt = e2e_fix_prompt(run.plan, number, allowed, evidence)
        fallback = prompt
        answered = None
        if pending is not None:
            assert pending.answer is not None
            run.save(escalation.delivered(run.state, pending))
            run.telemetry.record_answer(
                milestone=run.key, kind=pending.kind.value, wait=pending.wait or 0.0
            )
            answered = pending.number
            reply = answer_prompt(
                f"the E2E fix of milestone {run.plan.milestone}", pending.text, pending.answer
            )
            fallback = prompt + "\n" + reply
            if pending.kind is QuestionKind.E2E:
                prompt = fallback
            else:
                prompt, session = reply, pending.session_id
        if session is None:
            prompt = fallback
        inv = Invocation(
            E2E_FIX,
            "fix the E2E failure",
            AttemptKind.FIX,
            prompt,
            session,
            lambda: fallback,
            answered,
        )
        run.telemetry.record_e2e_fix(milestone=run.key)
        attempt, _result, failure = self._invoke(inv, lambda result: Conclusion(*judge(result)))
        return None if failure is not None else TaskStatus(attempt.status)

    def _invoke(
        self, inv: Invocation, conclude: Conclude
    ) -> tuple[Attempt, AgentResult, ApiFailure | None]:
        run = self.run

        def save(attempt: Attempt) -> None:
            run.save_e2e(run.state.e2e.with_attempt(attempt))

        try:
            return self.invoker.attempt_with_backoff(
                inv, len(run.state.e2e.attempts) + 1, save, conclude, lambda: run.state.e2e.attempts
            )
        except Interrupted:
            self._status(E2EStatus.PENDING if inv.kind is AttemptKind.E2E else E2EStatus.FAILED)
            raise

    # --- bookkeeping -------------------------------------------------------------------

    def _status(self, status: E2EStatus) -> None:
        self.run.save_e2e(replace(self.run.state.e2e, status=status))

    def _escalate(self, kind: QuestionKind, text: str, session: str | None) -> None:
        run = self.run
        state, question = escalation.ask(run.state, E2E_STEP, kind, text, session)
        run.save(replace(state, e2e=replace(state.e2e, status=E2EStatus.NEEDS_HUMAN)))
        run.telemetry.record_escalation(milestone=run.key, kind=kind.value)
        run.emit(RunEvent(EventKind.QUESTION, E2E_STEP, message=text, question=question))
        run.notify(Event.QUESTION, task=E2E_STEP, question=text)


def _evidence(run: E2ERun | None) -> str:
    if run is None:
        return "(no E2E run yet)"
    return run.evidence or "(no evidence)"


def _last_session(attempts: tuple[Attempt, ...], kind: AttemptKind | None = None) -> str | None:
    for attempt in reversed(attempts):
        if (kind is None or attempt.kind is kind) and attempt.session_id:
            return attempt.session_id
    return None
