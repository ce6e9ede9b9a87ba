"""The pure parts of autonomy: failure signatures and the retry decision, API
error recognition, reset times and the backoff schedule, the E2E verdict, and
the [orchestrator] keys that configure them."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest

from kinfra.domain.config import parse_config
from kinfra.errors import ConfigError
from kinfra.orch.agents.base import AgentOutcome, AgentResult
from kinfra.orch.backoff import ApiErrorKind, api_failure, next_wait, reset_time, sleep
from kinfra.orch.retry import Verdict, decide, failure_signature, normalize_failure
from kinfra.orch.state import Attempt
from kinfra.orch.status_block import parse_e2e_report

# --- signatures and the retry decision --------------------------------------------------


def test_a_signature_ignores_timestamps_paths_ids_and_numbers() -> None:
    one = (
        "check `make test` failed (exit 2): FAILED /tmp/a1/tests/test_x.py::test_sum - "
        "assert 3 == 4 at 2026-12-01T22:26:51.524Z (run 4f716490-9b13-4265-b606-3ddc5fa6599b)"
    )
    two = (
        "check `make test` failed (exit 1): FAILED /home/b/tests/test_x.py::test_sum - "
        "assert 5 == 4 at 2026-12-02T08:00:00Z (run 0c0ffee0-9b13-4265-b606-3ddc5fa6599b)"
    )
    assert normalize_failure(one) == normalize_failure(two)
    assert failure_signature(one) == failure_signature(two)
    other = "check `make test` failed (exit 1): FAILED tests/test_y.py::test_mul - KeyError"
    assert failure_signature(other) != failure_signature(one)
    assert normalize_failure("Commit deadbeef1 at 10:42:07") == "commit <id> at <time>"


def _failed(number: int, signature: str, **kw: object) -> Attempt:
    values: dict[str, object] = {"status": "failed", "signature": signature, "error": "boom"}
    values.update(kw)
    return Attempt(number, None, "t", **values)  # type: ignore[arg-type]


def test_retry_until_a_loop_or_the_budget_is_used() -> None:
    assert decide([_failed(1, "a")], 3).verdict is Verdict.RETRY
    assert decide([_failed(1, "a"), _failed(2, "b")], 3).verdict is Verdict.RETRY
    loop = decide([_failed(1, "a"), _failed(2, "a")], 3)
    assert (loop.verdict, loop.used) == (Verdict.LOOP, 2)
    assert loop.question is not None and loop.question.startswith("loop detected")
    used = decide([_failed(1, "a"), _failed(2, "b"), _failed(3, "c")], 3)
    assert (used.verdict, used.used) == (Verdict.EXHAUSTED, 3)
    assert decide([_failed(1, "a")], 1).verdict is Verdict.EXHAUSTED


def test_api_errors_and_interrupts_never_count_and_an_answer_starts_afresh() -> None:
    api = Attempt(2, None, "t", status="failed", api_error="overloaded", outcome="api_error")
    interrupted = Attempt(3, None, "t", status="pending", outcome="interrupted")
    history = [_failed(1, "a"), api, interrupted, _failed(4, "b")]
    assert decide(history, 3).used == 2
    # an API error between two identical failures does not hide the loop
    assert decide([_failed(1, "a"), api, _failed(4, "a")], 3).verdict is Verdict.LOOP
    answered = _failed(5, "c", answered=1)
    assert decide([*history, _failed(4, "x"), answered], 3).used == 1


# --- API errors and their waits -----------------------------------------------------------


def _result(outcome: AgentOutcome, error: str) -> AgentResult:
    return AgentResult(outcome, None, None, None, {}, 0.0, None, error=error)


@pytest.mark.parametrize(
    ("outcome", "error", "kind", "status"),
    [
        (
            AgentOutcome.API_ERROR,
            "API error: API Error: Request rejected (429) · mock rate_limit_error (429)",
            ApiErrorKind.RATE_LIMITED,
            429,
        ),
        (
            AgentOutcome.API_ERROR,
            "API Error: Repeated 529 Overloaded errors",
            ApiErrorKind.OVERLOADED,
            None,
        ),
        (AgentOutcome.API_ERROR, "API Error: Connection error.", ApiErrorKind.CONNECTION, None),
        # Codex 0.17x, as its turn.failed says it
        (
            AgentOutcome.ERROR,
            "exceeded retry limit, last status: 429 Too Many Requests",
            ApiErrorKind.RATE_LIMITED,
            429,
        ),
        (
            AgentOutcome.ERROR,
            "unexpected status 529 <unknown status code>: overloaded (529), url: http://x/v1",
            ApiErrorKind.OVERLOADED,
            529,
        ),
        (
            AgentOutcome.ERROR,
            "unexpected status 503 Service Unavailable: down",
            ApiErrorKind.SERVER_ERROR,
            503,
        ),
    ],
)
def test_api_failures_of_both_agents_are_recognised(
    outcome: AgentOutcome, error: str, kind: ApiErrorKind, status: int | None
) -> None:
    failure = api_failure(_result(outcome, error))
    assert failure is not None and (failure.kind, failure.status) == (kind, status)


def test_other_failures_are_not_api_errors() -> None:
    assert api_failure(_result(AgentOutcome.ERROR, "error_during_execution: boom")) is None
    assert api_failure(_result(AgentOutcome.CRASHED, "exited 3: segfault")) is None
    assert api_failure(_result(AgentOutcome.MAX_TURNS, "reached the max-turns limit")) is None


def test_reset_times_the_agents_report() -> None:
    now = time.time()
    assert reset_time(f"Claude AI usage limit reached|{int(now) + 90}", now) == int(now) + 90
    assert reset_time("Rate limited. Please try again in 1.5s.", now) == now + 1.5
    assert reset_time("try again in 2 hours 3 minutes", now) == now + 7380
    assert reset_time("retry-after: 30", now) == now + 30
    at = reset_time("You've hit your usage limit. Try again at 3:05 PM.", now)
    assert at is not None and 0 < at - now <= 86400
    moment = datetime.fromtimestamp(at).astimezone()
    assert (moment.hour, moment.minute) == (15, 5)
    assert reset_time("exit 1 at 12", now) is None  # a bare number is no clock time
    assert reset_time("try again in 900 hours", now) is None  # not believable


def test_the_schedule_and_the_live_message() -> None:
    failure = api_failure(_result(AgentOutcome.API_ERROR, "API Error: Request rejected (429)"))
    assert failure is not None
    schedule = (30.0, 60.0, 120.0, 300.0, 600.0)
    first = next_wait(schedule, 0, failure, 0.0)
    third = next_wait(schedule, 2, failure, 0.0)
    assert first is not None and third is not None
    assert third.message(120) == "API rate limited: retry 3/5 in 120 s"
    assert first.message(7300) == "API rate limited: retry 1/5 in 2 h 01 min"
    assert next_wait(schedule, 5, failure, 0.0) is None  # used up: the task fails
    ticks: list[str] = []
    clock = [0.0]

    def nap(seconds: float) -> None:
        clock[0] += seconds

    sleep(first, ticks.append, clock=lambda: clock[0], nap=nap)
    assert len(ticks) == 30 and ticks[0].endswith("in 30 s") and ticks[-1].endswith("in 1 s")


# --- the E2E verdict -------------------------------------------------------------------


def test_an_e2e_verdict_needs_its_evidence() -> None:
    report = parse_e2e_report("Ran both.\n\nE2E: pass\nEVIDENCE: GET /a -> 200\nGET /b -> 200")
    assert report is not None and report.passed
    assert report.evidence == "GET /a -> 200\nGET /b -> 200"
    fail = parse_e2e_report("**EVIDENCE:** GET /a -> 404\n**E2E:** `fail`")
    assert fail is not None and not fail.passed and fail.evidence == "GET /a -> 404"
    bare = parse_e2e_report("E2E: pass")
    assert bare is not None and not bare.passed  # a pass without evidence is not a pass
    assert parse_e2e_report("all good") is None
    assert parse_e2e_report("E2E: maybe") is None


# --- the keys -------------------------------------------------------------------------


def _orchestrator(**keys: object) -> object:
    config = parse_config(Path("kinfra.toml"), {"project": {"name": "p"}, "orchestrator": keys})
    return config.orchestrator.policy


def test_policy_defaults_and_keys() -> None:
    default = _orchestrator()
    assert default == type(default)()  # type: ignore[call-arg]
    policy = _orchestrator(
        max_attempts=5,
        backoff=[1, 2.5],
        e2e="make e2e",
        e2e_fix_attempts=0,
        notify="notify-send kinfra",
        ask=True,
    )
    assert policy.max_attempts == 5 and policy.backoff == (1.0, 2.5)  # type: ignore[attr-defined]
    assert policy.e2e == "make e2e" and policy.e2e_fix_attempts == 0  # type: ignore[attr-defined]
    assert policy.notify == "notify-send kinfra" and policy.ask  # type: ignore[attr-defined]
    assert _orchestrator(backoff=[]).backoff == ()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"max_attempts": 0}, "max_attempts: must be at least 1"),
        ({"max_attempts": True}, "max_attempts: expected an integer"),
        ({"backoff": 30}, "backoff: expected a list of numbers"),
        ({"backoff": ["30"]}, "backoff: expected a list of numbers"),
        ({"backoff": [-1]}, "backoff: waits must not be negative"),
        ({"e2e": " "}, "e2e: must be a command, or left out"),
        ({"e2e_fix_attempts": -1}, "e2e_fix_attempts: must be at least 0"),
        ({"notify": 3}, "notify: expected a string"),
        ({"ask": "yes"}, "ask: expected true or false"),
        ({"max_atempts": 3}, "max_atempts: unknown key"),
    ],
)
def test_bad_policy_keys_are_one_clear_error(keys: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=f"kinfra.toml: \\[orchestrator\\] {message}"):
        _orchestrator(**keys)
