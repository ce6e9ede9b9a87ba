"""The run loop with the real ``claude`` CLI on the mock model server: what a
run records, interruptions and resumes, limits, permissions, the fallback when
a session is gone, and the per-attempt logs."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from kinfra.adapters.process import group_alive
from kinfra.errors import Interrupted, NeedsHumanError, OrchestratorError
from kinfra.orch.escalation import record_answer
from kinfra.orch.report import run_costs
from kinfra.orch.runloop import RunEvent, RunOptions, run_plan
from kinfra.orch.state import TaskStatus, load_state
from kinfra.paths import project_home
from kinfra.testing.model_server import (
    Forever,
    Hang,
    ModelServer,
    RunCommand,
    WriteFile,
    done,
    failures,
    needs_human,
)

if TYPE_CHECKING:
    from conftest import WriteConfig

TOOLS = ["Bash", "Edit", "Read", "Write"]


def _options(plan: Path, repo: Path, **kw: object) -> RunOptions:
    values: dict[str, object] = {"plan_path": plan, "workdir": repo, "kill_grace": 1.0}
    values.update(kw)
    return RunOptions(**values)  # type: ignore[arg-type]


def _agent_home() -> Path:
    return project_home("app") / "agents" / "claude"


def test_a_plan_run_by_the_real_claude(
    real_claude: ModelServer, repo: Path, plan3: Path, kinfra_toml: WriteConfig
) -> None:
    kinfra_toml(allowed_tools=TOOLS)
    for task in ("3.1", "3.2", "3.3"):
        real_claude.script(
            WriteFile(f"task_{task}.txt", f"done by claude for {task}\n"),
            RunCommand(f"cat task_{task}.txt"),
            done(f"wrote task_{task}.txt"),
            key=f"Task {task}",
        )
    summary = run_plan(_options(plan3, repo))
    assert summary.outcome == "done"
    for task in ("3.1", "3.2", "3.3"):
        assert (repo / f"task_{task}.txt").read_text() == f"done by claude for {task}\n"
        attempt = summary.state.task(task).attempts[0]
        assert (attempt.outcome, attempt.status, attempt.turns) == ("success", "done", 3)
        assert attempt.tokens["input"] == 300 and attempt.cost_usd
        assert attempt.summary == f"wrote task_{task}.txt"
        requests = real_claude.requests(f"Task {task}")
        assert {r.session_id for r in requests} == {attempt.session_id}
        # one log per attempt, holding the stream
        log = summary.state_path.with_name("M3.logs") / f"{task}-1.jsonl"
        assert attempt.session_id in log.read_text()
    # the sessions live in the config dir kinfra owns for the project
    assert len(list(_agent_home().rglob("*.jsonl"))) >= 3


def test_interrupt_then_resume_continues_the_same_session(
    real_claude: ModelServer, repo: Path, plan3: Path, kinfra_toml: WriteConfig
) -> None:
    kinfra_toml(allowed_tools=TOOLS)
    real_claude.script(RunCommand("echo part one"), Hang(120), done("finished"), key="Task 3.1")
    real_claude.script(Forever(done("ok")))

    def interrupt_while_the_model_thinks(event: RunEvent) -> None:
        if len(real_claude.requests("Task 3.1")) >= 2:  # the first turn ran; the 2nd hangs
            raise Interrupted(signal.SIGINT)  # as kinfra's handler does on Ctrl-C

    with pytest.raises(Interrupted):
        run_plan(_options(plan3, repo), on_event=interrupt_while_the_model_thinks)
    state = load_state(project_home("app") / "runs" / "M3.json")
    assert state is not None
    interrupted = state.task("3.1").attempts[0]
    assert interrupted.agent_pid and not group_alive(interrupted.agent_pid)  # the CLI went too
    costs = run_costs(workdir=repo)
    assert costs["without_cost"] == [
        {
            "agent": "claude",
            "outcome": "interrupted",
            "attempts": 1,
            "why": "stopped before its result event (tokens are those its stream showed)",
        }
    ]

    summary = run_plan(_options(plan3, repo), resume=True)
    assert summary.outcome == "done"
    first, second = summary.state.task("3.1").attempts
    assert first.outcome == "interrupted"
    assert first.tokens["input"] == 100 and first.turns == 1  # what its stream showed
    assert second.resumed_session and second.session_id == first.session_id
    resumed = real_claude.requests("Task 3.1")[-1]
    assert resumed.session_id == first.session_id
    assert resumed.user_texts()[-1].startswith(
        "Your work on Task 3.1 (First) was interrupted (interrupted by a signal)"
    )
    assert any("part one" in str(m) for m in resumed.messages)  # the earlier turns came along


def test_max_turns_then_resume_keeps_the_limit(
    real_claude: ModelServer, repo: Path, plan3: Path, kinfra_toml: WriteConfig
) -> None:
    kinfra_toml(allowed_tools=TOOLS)
    real_claude.script(Forever(RunCommand("echo still failing")), key="Task 3.1")
    summary = run_plan(_options(plan3, repo, max_turns=2))
    first, second = summary.state.task("3.1").attempts  # retried, then the same again: a loop
    assert (first.outcome, first.turns) == ("max_turns", 2)
    assert first.error == "reached the max-turns limit (2 turns)"
    assert second.resumed_session and second.session_id == first.session_id
    assert summary.outcome == "needs_human"
    record_answer(plan3, "Keep going.", repo)
    summary = run_plan(_options(plan3, repo), resume=True)  # no --max-turns this time
    third = summary.state.task("3.1").attempts[2]
    assert third.resumed_session and third.session_id == first.session_id
    assert (third.outcome, third.turns) == ("max_turns", 2)
    # 2 turns an attempt, 4 attempts (a new budget after the answer): not the default 50
    assert len(real_claude.requests("Task 3.1")) == 8


def test_needs_human_then_a_lost_transcript_falls_back_to_a_fresh_session(
    real_claude: ModelServer, repo: Path, plan3: Path
) -> None:
    real_claude.script(
        needs_human("Postgres or SQLite?", summary="schema drafted"),
        done("used SQLite"),
        key="Task 3.1",
    )
    real_claude.script(Forever(done("ok")))
    summary = run_plan(_options(plan3, repo))
    assert summary.outcome == "needs_human"
    asked = summary.state.task("3.1").attempts[0]
    assert asked.question == "Postgres or SQLite?"
    shutil.rmtree(_agent_home())  # the saved session is gone (another machine, a cleanup)
    record_answer(plan3, "SQLite.", repo)

    events: list[RunEvent] = []
    summary = run_plan(_options(plan3, repo), resume=True, on_event=events.append)
    assert summary.outcome == "done"
    second = summary.state.task("3.1").attempts[1]
    assert second.status == "done" and second.summary == "used SQLite"
    assert not second.resumed_session and second.session_id != asked.session_id
    assert second.note is not None and second.note.startswith(
        f"session {asked.session_id} could not be resumed (No conversation found"
    )
    assert second.note in [e.message for e in events if e.kind == "note"]
    fresh = real_claude.requests("Task 3.1")[-1]
    assert fresh.session_id == second.session_id
    prompt = fresh.user_texts()[0]
    assert "You are implementing Task 3.1 of milestone M3" in prompt
    assert "Its summary of what it did: schema drafted" in prompt
    assert "The answer, verbatim:\n\nSQLite.\n" in prompt  # the answer is not lost either


def test_refused_tools_fail_the_task_naming_the_setting(
    real_claude: ModelServer, repo: Path, plan3: Path
) -> None:
    attempt = [RunCommand("sh -c 'echo ran > ran.txt'"), done("all good")]
    real_claude.script(*attempt, *attempt, key="Task 3.1")
    summary = run_plan(_options(plan3, repo))
    # refused twice the same way: a loop, and the question names the setting
    assert summary.outcome == "needs_human" and summary.stopped_at == "3.1"
    attempts = summary.state.task("3.1").attempts
    assert [a.outcome for a in attempts] == ["permission_denied", "permission_denied"]
    with pytest.raises(NeedsHumanError, match=r'allowed_tools = \["Bash", \.\.\.\] in kinfra.toml'):
        summary.raise_for_outcome()
    assert not (repo / "ran.txt").exists()


def test_api_retries_show_in_progress_and_a_lasting_failure_fails_the_task(
    real_claude: ModelServer, repo: Path, plan3: Path, kinfra_toml: WriteConfig
) -> None:
    kinfra_toml(backoff=[])  # no waits of kinfra's own after the CLI's retries
    real_claude.script(*failures(529, 3), key="Task 3.1")
    events: list[RunEvent] = []
    summary = run_plan(_options(plan3, repo), on_event=events.append)
    notes = [e.progress.note.split(" in ")[0] for e in events if e.progress and e.progress.note]
    assert list(dict.fromkeys(notes)) == ["API 529, retry 1/2", "API 529, retry 2/2"]
    attempt = summary.state.task("3.1").attempts[0]
    assert (summary.outcome, attempt.outcome) == ("failed", "api_error")


def test_skip_permissions_as_root_is_refused_before_the_agent_starts(
    real_claude: ModelServer, repo: Path, plan3: Path, kinfra_toml: WriteConfig
) -> None:
    if os.geteuid() != 0:
        pytest.skip("the refusal is for root; CI runs as root")
    kinfra_toml(skip_permissions=True)
    with pytest.raises(OrchestratorError) as caught:
        run_plan(_options(plan3, repo))
    assert caught.value.message == (
        "[orchestrator] skip_permissions is refused for claude running as root on the host"
    )
    assert caught.value.hint == (
        "list the tools it may use in [orchestrator] allowed_tools, or run the agent "
        'in its container ([orchestrator] sandbox = "container")'
    )
    assert real_claude.requests() == []
    assert not (project_home("app") / "runs" / "M3.json").exists()


def test_logs_are_one_file_per_attempt_and_go_with_a_replaced_run(
    real_claude: ModelServer, repo: Path, plan3: Path
) -> None:
    real_claude.script(Forever(done("ok")))
    first = run_plan(_options(plan3, repo))
    logs = first.state_path.with_name("M3.logs")
    assert sorted(p.name for p in logs.iterdir()) == ["3.1-1.jsonl", "3.2-1.jsonl", "3.3-1.jsonl"]
    old_session = first.state.task("3.1").attempts[0].session_id
    assert old_session and old_session in (logs / "3.1-1.jsonl").read_text()
    second = run_plan(_options(plan3, repo, restart=True))
    new_session = second.state.task("3.1").attempts[0].session_id
    text = (logs / "3.1-1.jsonl").read_text()
    assert new_session and new_session in text and old_session not in text
    assert [t.status for t in second.state.tasks] == [TaskStatus.DONE] * 3
