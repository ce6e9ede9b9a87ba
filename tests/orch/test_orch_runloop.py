"""The run loop, in-process, with the fake Claude Code and real git repos."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from kinfra.adapters.statefile import atomic_write_json
from kinfra.errors import NeedsHumanError, OrchestratorError, StateFileError, TaskFailedError
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


def test_failed_task_stops_the_run_and_resume_tries_it_again(
    agentry: Agentry, repo: Path, plan3: Path
) -> None:
    agentry.scenario("success", task_3_2=["crash", "success"])
    summary = run_plan(_options(plan3, repo))
    assert summary.outcome == "failed"
    assert summary.stopped_at == "3.2"
    assert summary.ran == ("3.1", "3.2")
    state = summary.state
    assert state.task("3.3").status is TaskStatus.PENDING
    crashed = state.task("3.2").attempts[0]
    assert crashed.outcome == "crashed"
    assert crashed.error is not None and "without a result event (exit 3)" in crashed.error
    with pytest.raises(TaskFailedError, match=r"task 3.2 \(Second\) failed on attempt 1"):
        summary.raise_for_outcome()

    summary = run_plan(_options(plan3, repo), resume=True)
    assert summary.outcome == "done"
    assert summary.ran == ("3.2", "3.3")  # 3.1 is done: never run again
    assert len(agentry.invocations("3.1")) == 1
    assert [a.outcome for a in summary.state.task("3.2").attempts] == ["crashed", "success"]
    # a crash starts a fresh session, with the previous error in the prompt
    second = agentry.invocations("3.2")[1]
    assert "--resume" not in second["argv"]


def test_max_turns_is_resumed_in_the_same_session(
    agentry: Agentry, repo: Path, plan3: Path
) -> None:
    agentry.scenario("success", task_3_1=["max_turns", "success"])
    summary = run_plan(_options(plan3, repo, max_turns=3))
    assert summary.outcome == "failed"
    first = summary.state.task("3.1").attempts[0]
    assert first.error == "reached the max-turns limit (3 turns)"
    assert first.turns == 3
    session = first.session_id
    summary = run_plan(_options(plan3, repo), resume=True)
    assert summary.outcome == "done"
    argv = agentry.invocations("3.1")[1]["argv"]
    assert argv[argv.index("--resume") + 1] == session
    # resume runs under the limits `orch run` was given
    assert argv[argv.index("--max-turns") + 1] == "3"
    attempt = summary.state.task("3.1").attempts[1]
    assert attempt.resumed_session and attempt.session_id == session


def test_needs_human_is_recorded_and_exits_distinctly(
    agentry: Agentry, repo: Path, plan3: Path
) -> None:
    agentry.scenario("success", task_3_2="needs_human")
    summary = run_plan(_options(plan3, repo))
    assert summary.outcome == "needs_human"
    task = summary.state.task("3.2")
    assert task.status is TaskStatus.NEEDS_HUMAN
    assert task.last is not None
    assert task.last.question == "Should config/ be mounted read-only in the override?"
    assert task.last.summary == "generator written except the config mount"
    with pytest.raises(NeedsHumanError) as caught:
        summary.raise_for_outcome()
    assert caught.value.exit_code == 4
    assert "Should config/ be mounted read-only" in caught.value.message

    # resume continues the agent's session, telling it the human has looked
    agentry.scenario("success")
    summary = run_plan(_options(plan3, repo), resume=True)
    assert summary.outcome == "done"
    call = agentry.invocations("3.2")[1]
    assert call["argv"][call["argv"].index("--resume") + 1] == task.last.session_id
    assert call["prompt_head"].startswith("You stopped Task 3.2 (Second) to ask for a human")


def test_api_error_fails_the_task(agentry: Agentry, repo: Path, plan3: Path) -> None:
    agentry.scenario("api_error")
    summary = run_plan(_options(plan3, repo))
    attempt = summary.state.task("3.1").attempts[0]
    assert (summary.outcome, attempt.outcome) == ("failed", "api_error")


def test_hung_agent_becomes_a_failed_attempt(
    agentry: Agentry, repo: Path, plan3: Path, kinfra_toml: WriteConfig
) -> None:
    kinfra_toml(idle_timeout=1)
    agentry.scenario("hang")
    summary = run_plan(_options(plan3, repo))
    attempt = summary.state.task("3.1").attempts[0]
    assert summary.outcome == "failed"
    assert attempt.outcome == "idle_timeout"
    assert attempt.error == "no output for 1s: killed (hung agent)"


def test_without_status_block_the_task_is_not_done(
    agentry: Agentry, repo: Path, plan3: Path
) -> None:
    agentry.scenario({"name": "success", "status": False})
    summary = run_plan(_options(plan3, repo))
    assert summary.outcome == "failed"
    attempt = summary.state.task("3.1").attempts[0]
    assert (attempt.outcome, attempt.status) == ("success", "failed")
    assert attempt.error == NO_STATUS and attempt.summary is None


def test_check_command_must_pass_and_commit_carries_the_task_id(
    agentry: Agentry, repo: Path, plan3: Path, kinfra_toml: WriteConfig
) -> None:
    kinfra_toml(check="test -f fake_agent_3.1.txt && test ! -f fake_agent_3.2.txt", commit=True)
    summary = run_plan(_options(plan3, repo))
    assert summary.outcome == "failed"
    assert summary.stopped_at == "3.2"
    error = summary.state.task("3.2").last_error
    assert error is not None and error.startswith("check `test -f fake_agent_3.1.txt")
    assert "Run the project's tests with: `make test`" in agentry.invocations("3.1")[0]["prompt"]
    log = git(repo, "log", "--format=%s").stdout.splitlines()
    assert log[0] == "M3 Task 3.1: First"
    assert "fake_agent_3.1.txt" in git(repo, "show", "--name-only", "HEAD").stdout
    # the project's name comes from kinfra.toml now
    assert summary.state_path == project_home("app") / "runs" / "M3.json"


def test_changed_plan_on_resume_matches_tasks_by_id(
    agentry: Agentry, repo: Path, plan3: Path
) -> None:
    agentry.scenario("success", task_3_2="crash")
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
