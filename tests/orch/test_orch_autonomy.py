"""Retries counted across resumes, API backoff (and Ctrl-C during its wait),
notifications, questions asked on the terminal, and the E2E fix loop, with the
fake agent on real git repositories."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from kinfra.orch.escalation import record_answer
from kinfra.orch.runloop import RunEvent, RunOptions, run_plan
from kinfra.orch.state import E2EStatus, QuestionKind, TaskStatus, load_state
from kinfra.paths import project_home

if TYPE_CHECKING:
    from conftest import Agentry, WriteConfig

E2E_PLAN = """\
# Milestone 5: With an E2E

## Task 5.1: Write it

**Acceptance Criteria:**
- [ ] it is written

## E2E Test: it is fixed

Run `test -f fixed.txt`: it must succeed.
"""


def _options(plan: Path, repo: Path, **kw: object) -> RunOptions:
    values: dict[str, object] = {"plan_path": plan, "workdir": repo, "kill_grace": 0.3}
    values.update(kw)
    return RunOptions(**values)  # type: ignore[arg-type]


@pytest.fixture
def e2e_plan(tmp_path: Path) -> Path:
    path = tmp_path / "plans" / "M5_e2e.md"
    path.parent.mkdir(exist_ok=True)
    path.write_text(E2E_PLAN)
    return path


def _fix(name: str = "fixed.txt") -> dict[str, object]:
    return {"name": "success", "write": {name: "fixed\n"}}


# --- retries ---------------------------------------------------------------------------


def test_max_attempts_are_counted_across_resumes_and_an_answer_starts_a_new_budget(
    agentry: Agentry, repo: Path, plan3: Path, kinfra_toml: WriteConfig
) -> None:
    kinfra_toml(backoff=[], max_attempts=3)
    # four different failures (no loop), one API error in between (not counted)
    agentry.scenario(
        "success",
        task_3_1=[
            "crash",
            "api_error",
            {"name": "success", "status": False},
            "max_turns",
            "success",
        ],
    )
    first = run_plan(_options(plan3, repo))
    assert first.outcome == "failed"  # the API error ended that run: exit 1, no attempt used
    assert [a.counts for a in first.state.task("3.1").attempts] == [True, False]
    second = run_plan(_options(plan3, repo), resume=True)
    # crash + no STATUS + max turns: three failed attempts, over two runs
    assert second.outcome == "needs_human"
    (question,) = second.state.open_questions()
    assert question.kind is QuestionKind.EXHAUSTED
    assert question.text.startswith("the task failed 3 times (max_attempts = 3)")
    assert "max-turns" in question.text  # the last failure
    record_answer(plan3, "Try once more, smaller steps.", repo)
    third = run_plan(_options(plan3, repo), resume=True)
    assert third.outcome == "done"
    attempts = third.state.task("3.1").attempts
    assert [a.outcome for a in attempts] == [
        "crashed",
        "api_error",
        "success",
        "max_turns",
        "success",
    ]
    assert attempts[-1].answered == question.number


# --- API backoff -------------------------------------------------------------------------


def test_a_reported_reset_time_is_waited_for_instead_of_the_schedule(
    agentry: Agentry, repo: Path, plan3: Path, kinfra_toml: WriteConfig
) -> None:
    kinfra_toml(backoff=[300])  # the schedule would wait 5 minutes
    limited = "API Error: Request rejected (429) · Rate limited. Please try again in 1 second."
    agentry.scenario("success", task_3_1=[{"name": "api_error", "final": limited}, "success"])
    events: list[RunEvent] = []
    started = time.monotonic()
    summary = run_plan(_options(plan3, repo), on_event=events.append)
    assert summary.outcome == "done"
    assert time.monotonic() - started < 60
    waited = summary.state.task("3.1").attempts[0]
    assert waited.api_error == "rate_limited" and waited.backoff is not None
    assert 1.5 <= waited.backoff <= 3.0  # the reset in 1 s, and a second's margin
    lines = [e.message for e in events if e.kind == "waiting"]
    assert lines and lines[0].startswith("API rate limited: retry 1/1 in ")


def test_ctrl_c_during_an_api_wait_leaves_a_resumable_run(
    agentry: Agentry, repo: Path, plan3: Path, kinfra_toml: WriteConfig
) -> None:
    kinfra_toml(backoff=[120])
    agentry.scenario("success", task_3_1=["api_error", "success"])
    proc = subprocess.Popen(
        [sys.executable, "-m", "kinfra", "orch", "run", str(plan3), "--workdir", str(repo)],
        env=agentry.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    state_path = project_home("app") / "runs" / "M3.json"
    try:
        deadline = time.monotonic() + 30
        while True:
            state = json.loads(state_path.read_text()) if state_path.exists() else {"tasks": []}
            attempts = state["tasks"][0]["attempts"] if state["tasks"] else []
            if attempts and attempts[0].get("backoff"):
                break
            assert time.monotonic() < deadline, "the run never started its wait"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stderr
    assert "API overloaded: retry 1/1 in 120 s" in stderr  # said once without a terminal
    saved = load_state(state_path)
    assert saved is not None and saved.task("3.1").status is TaskStatus.PENDING
    assert not (state_path.parent / "M3.lock").exists()
    summary = run_plan(_options(plan3, repo), resume=True)
    assert summary.outcome == "done"
    waited, done = summary.state.task("3.1").attempts
    assert done.resumed_session and done.session_id == waited.session_id


# --- notifications -------------------------------------------------------------------------


def test_notifier_gets_the_event_in_variables_and_json_and_never_stops_the_run(
    agentry: Agentry, repo: Path, plan3: Path, tmp_path: Path
) -> None:
    out = tmp_path / "notified"
    out.mkdir()
    script = tmp_path / "notify.sh"
    script.write_text(
        "#!/bin/sh\n"
        f"n=$(ls {out} | grep -c json)\n"
        f"cat > {out}/$n.json\n"
        f'printf "%s|%s|%s|%s|%s" "$KINFRA_EVENT" "$KINFRA_MILESTONE" "$KINFRA_TASK" '
        f'"$KINFRA_QUESTION" "$KINFRA_RUN_STATE" > {out}/$n.env\n'
        'test "$KINFRA_EVENT" != question  # fails on questions: must not stop the run\n'
    )
    (repo / "kinfra.toml").write_text(
        '[project]\nname = "app"\n\n[secrets]\nTOKEN = "literal:hunter2-secret"\n\n'
        f'[orchestrator]\nnotify = "sh {script}"\n'
    )
    question = "Should it use hunter2-secret as the password?"
    agentry.scenario(
        "success",
        task_3_2={
            "name": "success",
            "final": f"Unsure.\n\nSTATUS: needs_human\nQUESTION: {question}\nSUMMARY: asked",
        },
    )
    events: list[RunEvent] = []
    summary = run_plan(_options(plan3, repo), on_event=events.append)
    assert summary.outcome == "needs_human"
    (event,) = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    assert event["event"] == "question" and event["task"] == "3.2"
    assert event["question"] == "Should it use [secret] as the password?"
    assert event["run_state"] == str(summary.state_path) and event["milestone"] == "M3"
    env = (out / "0.env").read_text().split("|")
    assert env == ["question", "M3", "3.2", event["question"], str(summary.state_path)]
    assert "hunter2-secret" not in json.dumps(event) + "|".join(env)
    notes = [e.message for e in events if e.kind == "note"]
    assert "notifier failed (exit 1, event question)" in notes

    record_answer(plan3, "No.", repo)
    agentry.scenario("success")
    assert run_plan(_options(plan3, repo), resume=True).outcome == "done"
    assert json.loads((out / "1.json").read_text())["event"] == "milestone_done"


# --- questions on the terminal ---------------------------------------------------------------


def test_ask_on_a_terminal_takes_the_answer_there_and_goes_on(
    agentry: Agentry, repo: Path, plan3: Path
) -> None:
    agentry.scenario("success", task_3_2=["needs_human", "success"])
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kinfra",
            "orch",
            "run",
            str(plan3),
            "--ask",
            "--workdir",
            str(repo),
        ],
        env=agentry.env(),
        stdin=slave,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(slave)
    seen: list[str] = []
    asked = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            seen.append(line)
            if line.startswith("Your answer"):
                asked.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert asked.wait(30), "".join(seen)
        os.write(master, b"Read-only.\n\n")
        proc.wait(timeout=30)
        reader.join(timeout=5)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()
    assert proc.returncode == 0, "".join(seen)
    assert "needs an answer (needs_human):" in "".join(seen)
    state = load_state(project_home("app") / "runs" / "M3.json")
    assert state is not None
    (question,) = state.questions
    assert question.answer == "Read-only." and question.delivered and question.wait is not None
    call = agentry.invocations("3.2")[1]
    assert call["session_id"] == agentry.invocations("3.2")[0]["session_id"]
    assert "Read-only." in call["prompt"]


# --- the E2E step --------------------------------------------------------------------------


def test_e2e_fixes_are_bounded_then_a_human_is_asked_and_the_answer_reaches_the_fix(
    agentry: Agentry, repo: Path, e2e_plan: Path, kinfra_toml: WriteConfig
) -> None:
    kinfra_toml(e2e="echo checked at $(date +%s%N); test -f fixed.txt", e2e_fix_attempts=2)
    agentry.scenario("success", **{"E2E-fix": ["success", "success", _fix()]})
    summary = run_plan(_options(e2e_plan, repo))
    assert (summary.outcome, summary.stopped_at) == ("needs_human", "E2E")
    e2e = summary.state.e2e
    assert e2e.status is E2EStatus.NEEDS_HUMAN
    assert [r.result and r.result.value for r in e2e.runs] == ["fail"] * 3
    assert len(e2e.fixes) == 2
    (question,) = summary.state.open_questions()
    assert question.kind is QuestionKind.E2E and question.task_id == "E2E"
    assert question.text.startswith("the E2E still fails after 2 fixes (e2e_fix_attempts = 2)")
    assert "checked at" in question.text  # the last failure's evidence
    from kinfra.errors import NeedsHumanError

    with pytest.raises(NeedsHumanError, match=r"the E2E step needs a human \(e2e\)"):
        summary.raise_for_outcome()

    record_answer(e2e_plan, "Create fixed.txt.", repo)
    summary = run_plan(_options(e2e_plan, repo), resume=True)
    assert summary.outcome == "done" and summary.state.e2e.status is E2EStatus.PASSED
    fix = agentry.invocations("E2E-fix")[-1]
    assert "Create fixed.txt." in fix["prompt"] and "checked at" in fix["prompt"]
    assert len(agentry.invocations("5.1")) == 1  # the done task never ran again


def test_confirm_fixes_declined_stops_for_a_human(
    agentry: Agentry, repo: Path, e2e_plan: Path, kinfra_toml: WriteConfig
) -> None:
    kinfra_toml(e2e="test -f fixed.txt")
    asked: list[str] = []

    def decline(prompt: str) -> bool:
        asked.append(prompt)
        return False

    summary = run_plan(_options(e2e_plan, repo, confirm_fix=decline))
    assert summary.outcome == "needs_human"
    assert asked == ["The E2E failed. Let the agent fix it (fix 1 of 5)?"]
    assert agentry.invocations("E2E-fix") == []
    (question,) = summary.state.open_questions()
    assert question.text.startswith("the E2E failed and the fix was declined")


def test_e2e_run_by_the_agent_needs_a_verdict_with_evidence(
    agentry: Agentry, repo: Path, e2e_plan: Path
) -> None:
    agentry.scenario(
        "success",
        E2E=[
            {"name": "success", "final": "Looks fine to me."},  # no verdict: a failure
            {"name": "success", "final": "E2E: pass"},  # a pass without evidence: a failure
            {"name": "success", "final": "E2E: pass\nEVIDENCE: test -f fixed.txt -> exit 0"},
        ],
        **{"E2E-fix": _fix()},
    )
    summary = run_plan(_options(e2e_plan, repo))
    assert summary.outcome == "done"
    runs = summary.state.e2e.runs
    assert [(r.mode, r.result and r.result.value) for r in runs] == [
        ("agent", None),
        ("agent", "fail"),
        ("agent", "pass"),
    ]
    assert runs[0].evidence == "the agent ended without an `E2E: pass | fail` line"
    assert runs[2].evidence == "test -f fixed.txt -> exit 0"
    prompt = agentry.invocations("E2E")[0]["prompt"]
    assert "## E2E Test: it is fixed" in prompt and "E2E: pass | fail" in prompt
    assert "this worktree has no slot: the E2E runs without a sandbox" in summary.notes
