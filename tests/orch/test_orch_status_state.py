"""The status contract parser and the run state file."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from kinfra.errors import StateFileError
from kinfra.orch.agents.base import AgentOutcome, AgentResult
from kinfra.orch.runloop import NO_STATUS, judge
from kinfra.orch.state import (
    Attempt,
    AttemptKind,
    E2EResult,
    E2ERun,
    E2EState,
    E2EStatus,
    Question,
    QuestionKind,
    RunState,
    TaskState,
    TaskStatus,
    load_state,
    save_state,
    state_to_dict,
)
from kinfra.orch.status_block import AgentStatus, parse_status_block


def test_status_block_at_the_end_of_the_final_message() -> None:
    block = parse_status_block(
        "Did things.\n\nSTATUS: needs_human\nQUESTION: Which port\n  should it use?\nSUMMARY: half done"
    )
    assert block is not None
    assert block.status is AgentStatus.NEEDS_HUMAN
    assert block.question == "Which port should it use?"
    assert block.summary == "half done"


def test_status_block_tolerates_markdown_and_takes_the_last_status() -> None:
    text = (
        "Earlier I wrote STATUS: blocked in a code comment:\n"
        "STATUS: blocked\n\n"
        "All good now.\n\n**SUMMARY:** fixed it\n**STATUS:** `done`\n**QUESTION:** none"
    )
    block = parse_status_block(text)
    assert block is not None
    assert (block.status, block.summary, block.question) == (AgentStatus.DONE, "fixed it", None)


@pytest.mark.parametrize("text", [None, "", "no block here", "STATUS: finished"])
def test_no_or_invalid_status_block(text: str | None) -> None:
    assert parse_status_block(text) is None


def _result(outcome: AgentOutcome, final: str | None) -> AgentResult:
    from kinfra.orch.agents.base import with_status

    return with_status(
        AgentResult(outcome, "s", 1, None, {}, 0.1, final, error="boom" if final is None else None)
    )


def test_judge() -> None:
    assert judge(_result(AgentOutcome.SUCCESS, "ok\nSTATUS: done")) == (TaskStatus.DONE, None)
    # no STATUS line: not done, whatever else went well
    assert judge(_result(AgentOutcome.SUCCESS, "all finished!")) == (TaskStatus.FAILED, NO_STATUS)
    assert judge(_result(AgentOutcome.SUCCESS, "STATUS: blocked\nSUMMARY: db down")) == (
        TaskStatus.BLOCKED,
        "blocked: db down",
    )
    assert judge(_result(AgentOutcome.SUCCESS, "STATUS: needs_human\nQUESTION: a or b?")) == (
        TaskStatus.NEEDS_HUMAN,
        "needs a human: a or b?",
    )
    # a failed result is failed whatever its text claims
    assert judge(_result(AgentOutcome.MAX_TURNS, None)) == (TaskStatus.FAILED, "boom")


def _state() -> RunState:
    attempt = Attempt(1, "sid", "2026-01-01T00:00:00Z", cost_usd=0.5, tokens={"input": 3})
    return RunState(
        run_id="r1",
        milestone="M1",
        plan_path="/p/M1_x.md",
        plan_hash="abc",
        agent="claude",
        workdir="/w",
        project="app",
        created="c",
        updated="u",
        tasks=(TaskState("1.1", "A", TaskStatus.DONE, (attempt,)), TaskState("1.2", "B")),
    )


def test_state_round_trips_through_the_versioned_file(tmp_path: Path) -> None:
    path = tmp_path / "runs" / "M1.json"
    save_state(path, _state())
    loaded = load_state(path)
    assert loaded == _state()
    # with questions, answers and E2E results too
    question = Question(1, "1.2", QuestionKind.LOOP, "why?", "2026-01-01T00:00:00Z", "sid", "so")
    fix = Attempt(1, "s2", "t", kind=AttemptKind.FIX, signature="abc", api_error=None, backoff=3.0)
    e2e = E2EState(
        E2EStatus.FAILED,
        (E2ERun(1, "t", "command", "t2", E2EResult.FAIL, "FAIL x"),),
        (fix,),
    )
    full = replace(_state(), questions=(question,), e2e=e2e)
    save_state(path, full)
    assert load_state(path) == full
    assert loaded is not None and loaded.cost_usd == 0.5
    assert loaded.counts()["done"] == 1 and loaded.counts()["pending"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["M1.json"]  # no temp file left


def test_corrupt_state_is_reported_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "M1.json"
    path.write_text('{"version": 1, "tasks": [{"id": "1.1"}]}')
    with pytest.raises(
        StateFileError, match=r"run state .*M1.json is corrupt \(state: 'run_id' is missing"
    ):
        load_state(path)
    data = state_to_dict(_state())
    data["tasks"][0]["attempts"] = [1]  # a wrong type deep inside
    path.write_text(json.dumps(data))
    with pytest.raises(
        StateFileError, match=r"state.tasks\[0\].attempts\[0\]: expected an object, got 1"
    ):
        load_state(path)
    path.write_text('{"version": 1, "tas')
    with pytest.raises(StateFileError, match="invalid JSON"):
        load_state(path)
    assert path.read_text() == '{"version": 1, "tas'


@pytest.mark.parametrize(
    "junk",
    [
        {"questions": [{"number": "1"}]},
        {"questions": [1]},
        {"questions": [{"number": 1, "task_id": "1.1", "kind": "nope", "text": "?", "asked": "t"}]},
        {"e2e": {"status": "flying"}},
        {"e2e": {"runs": [{"number": 1, "started": "t", "mode": "command", "result": 3}]}},
        {"e2e": []},
    ],
)
def test_junk_in_the_new_fields_is_a_corrupt_state(tmp_path: Path, junk: dict[str, object]) -> None:
    from kinfra.orch.state import state_to_dict

    path = tmp_path / "M1.json"
    data = state_to_dict(_state())
    data.update(junk)
    path.write_text(__import__("json").dumps(data))
    with pytest.raises(StateFileError, match="is corrupt"):
        load_state(path)
