"""The run loop, in-process, with the fake Claude Code and real git repos."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from kinfra.adapters.statefile import atomic_write_json
from kinfra.errors import NeedsHumanError, OrchestratorError, StateFileError, TaskFailedError
from kinfra.orch.escalation import record_answer as answer_question
from kinfra.orch.runloop import NO_STATUS, RunEvent, RunOptions, run_plan
from kinfra.orch.state import TaskStatus, load_state
from kinfra.paths import project_home
from kinfra.testing.gitrepo import git

if TYPE_CHECKING:
    from conftest import Agentry, WriteConfig


def _options(plan: Path, repo: Path, **kw: object) -> RunOptions:
    values: dict[str, object] = {"plan_path": plan, "workdir": repo, "kill_grace": 0.3}
    values.update(kw)
    return RunOptions(**values)  # type: ignore[arg-type]


def test_run_all_tasks_done(agentry: Agentry, repo: Path, plan3: Path) -> None:
    (repo / ".env.sandbox").write_text(
        "# slot 2\nSLOT_NUMBER=2\nCOMPOSE_PROJECT_NAME=app-slot-2\n"
        "API_URL=http://localhost:8002\nDB_PASSWORD=secret\n"
    )
    events: list[RunEvent] = []
    summary = run_plan(_options(plan3, repo), on_event=events.append)
    assert summary.outcome == "done"
    assert summary.ran == ("3.1", "3.2", "3.3")
    summary.raise_for_outcome()  # nothing to raise
    # no kinfra.toml: the project is named after the checkout's folder
    path = project_home("app") / "runs" / "M3.json"
    assert summary.state_path == path
    state = load_state(path)
    assert state is not None
    assert [t.status for t in state.tasks] == [TaskStatus.DONE] * 3
    first = state.task("3.1").attempts[0]
    assert first.outcome == "success" and first.status == "done"
    assert first.cost_usd == 0.0125 and first.turns == 4
    assert first.tokens["input"] == 400
    assert first.session_id == agentry.invocations("3.1")[0]["session_id"]
    assert first.agent_pid == agentry.invocations("3.1")[0]["pid"]
    assert state.plan_hash == summary.state.plan_hash
    assert all((repo / f"fake_agent_{t}.txt").exists() for t in ("3.1", "3.2", "3.3"))
    # the prompt carried the slot's URLs (not its secrets) to the agent
    call = agentry.invocations("3.1")[0]
    assert call["slot_env"] == {"API_URL": "http://localhost:8002"}
    assert "SLOT_NUMBER" in call["env_keys"] and "DB_PASSWORD" not in call["env_keys"]
    assert "- API_URL=http://localhost:8002\n- SLOT_NUMBER=2" in call["prompt"]
    assert "secret" not in call["prompt"]
    assert "- first file exists" in call["prompt"]  # the acceptance criteria
    assert call["prompt"].rstrip().endswith("Only your final message is read.")
    kinds = [e.kind for e in events if e.kind != "progress"]
    assert kinds == ["task_start", "task_end"] * 3
    assert any(e.kind == "progress" and e.progress and e.progress.last_tool for e in events)


def test_run_refuses_existing_state_unless_restart(
    agentry: Agentry, repo: Path, plan3: Path
) -> None:
    run_plan(_options(plan3, repo))
    with pytest.raises(OrchestratorError, match=r"M3 already has a run \(3/3 tasks done"):
        run_plan(_options(plan3, repo))
    assert len(agentry.invocations()) == 3
    summary = run_plan(_options(plan3, repo, restart=True))
    assert summary.notes[0].startswith("--restart: the previous run's state")
    assert len(agentry.invocations()) == 6


def test_resume_without_state(agentry: Agentry, repo: Path, plan3: Path) -> None:
    with pytest.raises(OrchestratorError, match="no run of milestone M3 to resume"):
        run_plan(_options(plan3, repo), resume=True)


def test_failed_attempt_is_retried_told_what_failed_in_its_session(
    agentry: Agentry, repo: Path, plan3: Path
) -> None:
    agentry.scenario("success", task_3_2=["crash", "success"])
    summary = run_plan(_options(plan3, repo))
    assert summary.outcome == "done"
    assert summary.ran == ("3.1", "3.2", "3.3")
    crashed, retried = summary.state.task("3.2").attempts
    assert crashed.outcome == "crashed" and crashed.status == "failed"
    assert crashed.error is not None and "without a result event (exit 3)" in crashed.error
    assert crashed.signature is not None
    assert retried.outcome == "success" and retried.resumed_session
    call = agentry.invocations("3.2")[1]
    assert call["argv"][call["argv"].index("--resume") + 1] == crashed.session_id
    assert call["prompt"].startswith(f"Your attempt at Task 3.2 (Second) failed: {crashed.error}")
    assert "This is attempt 2 of 3." in call["prompt"]


def test_a_task_that_fails_stops_the_run_and_resume_tries_it_again(
    agentry: Agentry, repo: Path, plan3: Path, kinfra_toml: WriteConfig
) -> None:
    kinfra_toml(backoff=[])  # an API error fails the task at once
    agentry.scenario("success", task_3_2=["api_error", "success"])
    summary = run_plan(_options(plan3, repo))
    assert (summary.outcome, summary.stopped_at, summary.ran) == ("failed", "3.2", ("3.1", "3.2"))
    assert summary.state.task("3.3").status is TaskStatus.PENDING
    with pytest.raises(TaskFailedError, match=r"task 3.2 \(Second\) failed on attempt 1: API"):
        summary.raise_for_outcome()
    summary = run_plan(_options(plan3, repo), resume=True)
    assert summary.outcome == "done"
    assert summary.ran == ("3.2", "3.3")  # 3.1 is done: never run again
    assert len(agentry.invocations("3.1")) == 1
    assert [a.outcome for a in summary.state.task("3.2").attempts] == ["api_error", "success"]


def test_max_turns_continues_the_session_under_the_runs_limits(
    agentry: Agentry, repo: Path, plan3: Path
) -> None:
    agentry.scenario("success", task_3_1=["max_turns", "max_turns", "success"])
    summary = run_plan(_options(plan3, repo, max_turns=3))
    # the same failure twice in a row: a loop, for a human to look at
    assert summary.outcome == "needs_human"
    first, second = summary.state.task("3.1").attempts
    assert first.error == "reached the max-turns limit (3 turns)" and first.turns == 3
    assert second.resumed_session and second.session_id == first.session_id
    (question,) = summary.state.open_questions()
    assert question.kind.value == "loop" and "max-turns" in question.text
    answer_question(plan3, "Go on, split the work.", repo)
    summary = run_plan(_options(plan3, repo), resume=True)
    assert summary.outcome == "done"
    argv = agentry.invocations("3.1")[2]["argv"]
    assert argv[argv.index("--resume") + 1] == first.session_id
    # resume runs under the limits `orch run` was given
    assert argv[argv.index("--max-turns") + 1] == "3"


def test_needs_human_saves_the_question_and_the_answer_goes_into_the_same_session(
    agentry: Agentry, repo: Path, plan3: Path
) -> None:
    agentry.scenario("success", task_3_2="needs_human")
    summary = run_plan(_options(plan3, repo))
    assert summary.outcome == "needs_human"
    task = summary.state.task("3.2")
    assert task.status is TaskStatus.NEEDS_HUMAN
    assert task.last is not None
    assert task.last.summary == "generator written except the config mount"
    (question,) = summary.state.questions
    assert question.text == "Should config/ be mounted read-only in the override?"
    assert question.session_id == task.last.session_id and question.asked
    with pytest.raises(NeedsHumanError) as caught:
        summary.raise_for_outcome()
    assert caught.value.exit_code == 4
    assert "task 3.2 (Second) needs a human (needs_human): Should config/" in caught.value.message
    assert "kinfra orch answer" in (caught.value.hint or "")

    # no answer yet: resume asks again without running the agent
    summary = run_plan(_options(plan3, repo), resume=True)
    assert summary.outcome == "needs_human" and len(agentry.invocations("3.2")) == 1

    answer = "Yes: read-only.\nAnd keep the mount path as it is."
    answer_question(plan3, answer, repo)
    agentry.scenario("success")
    summary = run_plan(_options(plan3, repo), resume=True)
    assert summary.outcome == "done"
    call = agentry.invocations("3.2")[1]
    assert call["argv"][call["argv"].index("--resume") + 1] == task.last.session_id
    assert answer in call["prompt"]  # verbatim
    (question,) = summary.state.questions
    assert question.answer == answer and question.delivered
    assert question.wait is not None and question.wait >= 0
    assert summary.state.task("3.2").attempts[1].answered == question.number


def test_blocked_is_escalated_the_same_way(agentry: Agentry, repo: Path, plan3: Path) -> None:
    agentry.scenario("success", task_3_1="blocked")
    summary = run_plan(_options(plan3, repo))
    assert summary.outcome == "blocked"
    (question,) = summary.state.questions
    assert (question.kind.value, question.text) == ("blocked", "cannot reach the database")
    with pytest.raises(NeedsHumanError, match="needs a human \\(blocked\\)"):
        summary.raise_for_outcome()


def test_hung_agent_is_a_failed_attempt_and_twice_is_a_loop(
    agentry: Agentry, repo: Path, plan3: Path, kinfra_toml: WriteConfig
) -> None:
    kinfra_toml(idle_timeout=1)
    agentry.scenario("hang")
    summary = run_plan(_options(plan3, repo))
    assert summary.outcome == "needs_human"
    attempts = summary.state.task("3.1").attempts
    assert [a.outcome for a in attempts] == ["idle_timeout", "idle_timeout"]
    assert attempts[0].error == "no output for 1s: killed (hung agent)"
    assert summary.state.questions[0].kind.value == "loop"


def test_without_a_status_block_the_attempt_failed(
    agentry: Agentry, repo: Path, plan3: Path
) -> None:
    agentry.scenario({"name": "success", "status": False})
    summary = run_plan(_options(plan3, repo))
    assert summary.outcome == "needs_human"  # never a false done; twice the same: a loop
    first = summary.state.task("3.1").attempts[0]
    assert (first.outcome, first.status) == ("success", "failed")
    assert first.error == NO_STATUS and first.summary is None


def test_check_command_must_pass_and_commit_carries_the_task_id(
    agentry: Agentry, repo: Path, plan3: Path, kinfra_toml: WriteConfig
) -> None:
    kinfra_toml(
        check="test -f fake_agent_3.1.txt && test ! -f fake_agent_3.2.txt || "
        "{ echo checked at $(date +%s%N) in $PWD; exit 1; }",
        commit=True,
    )
    summary = run_plan(_options(plan3, repo))
    assert summary.outcome == "needs_human"
    assert summary.stopped_at == "3.2"
    first, second = summary.state.task("3.2").attempts
    assert first.error is not None and first.error.startswith("check `test -f fake_agent_3.1.txt")
    assert first.detail is not None and first.detail.startswith("checked at ")
    # the output differs (a time, a path) but not its shape: the same signature, a loop
    assert first.detail != second.detail and first.signature == second.signature
    retry = agentry.invocations("3.2")[1]["prompt"]
    assert first.detail in retry  # the retry is told what the check printed
    assert "Run the project's tests with: `make test`" in agentry.invocations("3.1")[0]["prompt"]
    log = git(repo, "log", "--format=%s").stdout.splitlines()
    assert log[0] == "M3 Task 3.1: First"
    assert "fake_agent_3.1.txt" in git(repo, "show", "--name-only", "HEAD").stdout
    # the project's name comes from kinfra.toml now
    assert summary.state_path == project_home("app") / "runs" / "M3.json"


def test_changed_plan_on_resume_matches_tasks_by_id(
    agentry: Agentry, repo: Path, plan3: Path, kinfra_toml: WriteConfig
) -> None:
    kinfra_toml(backoff=[])
    agentry.scenario("success", task_3_2="api_error")
    run_plan(_options(plan3, repo))
    # reorder, drop 3.3, add 3.4: tasks are matched by id, not position
    text = plan3.read_text()
    body = text.split("## Task 3.3")[0]
    t31, t32 = body.split("## Task 3.2")
    plan3.write_text(
        t31.split("## Task 3.1")[0]
        + "## Task 3.2"
        + t32
        + "## Task 3.1"
        + t31.split("## Task 3.1")[1]
        + "## Task 3.4: Fourth\n\n**Acceptance Criteria:**\n- four\n"
    )
    agentry.scenario("success")
    summary = run_plan(_options(plan3, repo), resume=True)
    assert summary.outcome == "done"
    assert summary.ran == ("3.2", "3.4")
    assert len(agentry.invocations("3.1")) == 1
    assert any(n.startswith("the plan changed since the run started") for n in summary.notes)
    assert "task 3.4 is new in the plan" in summary.notes
    assert "task 3.3 is no longer in the plan; its record is kept" in summary.notes
    removed = summary.state.task("3.3")
    assert not removed.in_plan
    assert summary.state.counts()["pending"] == 0


def test_state_from_a_newer_kinfra_is_refused(agentry: Agentry, repo: Path, plan3: Path) -> None:
    path = project_home("app") / "runs" / "M3.json"
    atomic_write_json(path, {"version": 99, "tasks": []})
    with pytest.raises(StateFileError, match="version 99, newer than"):
        run_plan(_options(plan3, repo), resume=True)
    assert json.loads(path.read_text())["version"] == 99
    assert agentry.invocations() == []
    # the lock was released despite the error
    assert not (path.parent / "M3.lock").exists()


def test_two_features_with_the_same_milestone_id_keep_separate_runs(
    agentry: Agentry, repo: Path, tmp_path: Path, plan3: Path
) -> None:
    plans = []
    for feature in ("genome", "config"):
        plan = tmp_path / "docs" / "designs" / feature / "implementation" / "M3_three.md"
        plan.parent.mkdir(parents=True)
        plan.write_text(plan3.read_text())
        plans.append(plan)
    assert run_plan(_options(plans[0], repo)).outcome == "done"
    # The second feature's M3 is a run of its own, not "M3 already has a run".
    second = run_plan(_options(plans[1], repo))
    assert second.outcome == "done"
    runs = project_home("app") / "runs"
    assert second.state_path == runs / "config-M3.json"
    assert (runs / "genome-M3.json").is_file()
    assert len(agentry.invocations()) == 6
