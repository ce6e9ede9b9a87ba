"""The seven bundled plans (seed 001), run on a copy of the shop example with
the fast fake agent: each ends the way it was designed to. The E2E plans run
in impl worktrees against their own slots (real Docker), with the example's
E2E suite as ``[orchestrator] e2e``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from kinfra.orch.escalation import record_answer
from kinfra.orch.runloop import RunEvent, RunSummary
from kinfra.orch.state import E2EStatus, QuestionKind, TaskStatus
from kinfra.testing import bundled
from kinfra.testing.example import kinfra

if TYPE_CHECKING:
    from conftest import Agentry


def _log(agentry: Agentry, name: str) -> Path:
    """One invocation log per plan: every plan's task is called 1.1."""
    return agentry.log.with_name(f"{name}.invocations.jsonl")


def _calls(agentry: Agentry, name: str, task: str) -> list[dict[str, object]]:
    lines = _log(agentry, name).read_text().splitlines()
    return [c for c in map(json.loads, lines) if c["task"] == task]


def _run(
    agentry: Agentry, name: str, where: Path, resume: bool = False, **kw: object
) -> RunSummary:
    log = _log(agentry, name)
    summary: RunSummary = bundled.run_fake_plan(
        agentry.scenario_file, log, name, where, resume=resume, **kw
    )
    return summary


def test_every_bundled_plan_ends_as_designed(
    agentry: Agentry, tmp_path: Path, docker_prefix: str
) -> None:
    events = tmp_path / "events.jsonl"
    repo, worktrees = bundled.make_shop(
        tmp_path,
        docker_prefix,
        e2e=bundled.E2E_COMMAND,
        backoff=[0.1, 0.1],
        allowed_tools=["Bash", "Edit", "Read", "Write"],
        notify=f"cat >> {events}",
    )
    # a slot that is down is started (and gated) for the E2E
    assert kinfra(worktrees["e2e_will_pass"], "sandbox", "down").returncode == 0

    # hello_world: an API error is waited out (no attempt used), then done
    progress: list[RunEvent] = []
    hello = _run(agentry, "hello_world", repo, on_event=progress.append)
    assert hello.outcome == "done"
    assert (repo / "app" / "hello.txt").read_text() == "hello world\n"
    waited, done = hello.state.task("1.1").attempts
    assert (waited.api_error, waited.backoff, waited.counts) == ("overloaded", 0.1, False)
    assert done.resumed_session and done.session_id == waited.session_id
    assert "API overloaded: retry 1/2 in 0 s" in [e.message for e in progress]

    for name in ("health_check", "three_tasks_clean"):
        summary = _run(agentry, name, repo)
        assert summary.outcome == "done", name
        assert all(len(t.attempts) == 1 for t in summary.state.tasks)
    assert (repo / "app" / "health.json").is_file() and (repo / "app" / "three.txt").is_file()

    # ambiguous_task asks, is answered, and finishes in the same session
    asked = _run(agentry, "ambiguous_task", repo)
    assert asked.outcome == "needs_human"
    (question,) = asked.state.open_questions()
    assert (question.kind, question.text) == (QuestionKind.NEEDS_HUMAN, bundled.CURRENCY_QUESTION)
    record_answer(bundled.plan_path(repo, "ambiguous_task"), "EUR", repo)
    answered = _run(agentry, "ambiguous_task", repo, resume=True)
    assert answered.outcome == "done"
    first, second = answered.state.task("1.1").attempts
    assert second.resumed_session and second.session_id == first.session_id
    call = _calls(agentry, "ambiguous_task", "1.1")[-1]
    assert call["session_id"] == first.session_id
    assert "The answer, verbatim:\n\nEUR\n" in str(call["prompt"])
    assert '"currency": "EUR"' in (repo / "app" / "prices.json").read_text()

    # doomed_to_fail stops on a detected loop (or after 3 attempts), asking a human
    doomed = _run(agentry, "doomed_to_fail", repo)
    assert doomed.outcome == "needs_human"
    attempts = doomed.state.task("1.1").attempts
    assert 2 <= len(attempts) <= 3 and all(a.counts for a in attempts)
    (question,) = doomed.state.open_questions()
    assert question.kind in (QuestionKind.LOOP, QuestionKind.EXHAUSTED)
    assert "cksum is" in question.text and "expected 0 0" in question.text

    # e2e_will_pass: the task, then the E2E against the worktree's own slot
    wt = worktrees["e2e_will_pass"]
    passed = _run(agentry, "e2e_will_pass", wt)
    assert passed.outcome == "done" and passed.ran == ("1.1", "E2E")
    assert any(n.startswith("slot ") and "starting it for the E2E" in n for n in passed.notes)
    (run,) = passed.state.e2e.runs
    assert (run.mode, run.result and run.result.value) == ("command", "pass")
    assert "app/status.json" in (run.evidence or "")
    assert passed.state.e2e.status is E2EStatus.PASSED

    # e2e_will_fail_fixable: the E2E fails, the agent fixes it, it passes (<= 5 fixes)
    wt = worktrees["e2e_will_fail_fixable"]
    fixed = _run(agentry, "e2e_will_fail_fixable", wt)
    assert fixed.outcome == "done"
    e2e = fixed.state.e2e
    assert [r.result and r.result.value for r in e2e.runs] == ["fail", "pass"]
    assert "expected items and total" in (e2e.runs[0].evidence or "")
    assert 1 <= len(e2e.fixes) <= 5
    assert (wt / "app" / "cart.json").read_text() == bundled.CART_FIXED
    (fix_call,) = _calls(agentry, "e2e_will_fail_fixable", "E2E-fix")
    assert "expected items and total" in str(fix_call["prompt"])  # the fix was told what failed
    assert fixed.state.task("1.1").status is TaskStatus.DONE

    # status and history carry the E2E results
    plan = bundled.plan_path(wt, "e2e_will_fail_fixable")
    (entry,) = json.loads(kinfra(wt, "orch", "status", str(plan), "--json").stdout)
    assert entry["e2e"]["status"] == "passed" and entry["e2e"]["fixes"] == 1
    history = json.loads(kinfra(wt, "orch", "history", "--json").stdout)
    assert (history[0]["run_key"], history[0]["e2e"]) == ("e2e_will_fail_fixable-M1", "passed")
    assert history[0]["e2e_fixes"] == 1
    text = kinfra(wt, "orch", "status", str(plan)).stdout
    assert "E2E passed (2 runs, 1 fixes)" in text and "E2E run 1 (command): fail" in text

    # every notification went out, with its event
    sent = [json.loads(line) for line in events.read_text().splitlines()]
    kinds = [(e["event"], e["task"]) for e in sent]
    assert ("question", "1.1") in kinds  # ambiguous_task
    assert ("loop_detected", "1.1") in kinds  # doomed_to_fail
    assert ("e2e_failed", "E2E") in kinds  # e2e_will_fail_fixable
    assert kinds.count(("milestone_done", None)) == 6
    assert all(e["run_state"].endswith(".json") and e["project"] == docker_prefix for e in sent)
