"""The bundled plans with the real ``claude`` CLI on the mock model server,
through the ``kinfra`` command line: the question goes out and its answer back
into the same session; a loop stops the retries; the E2E runs against the
worktree's real slot, fails, is fixed by the agent and passes; the agent runs
an E2E itself; an API rate limit is waited out until its reported reset."""

from __future__ import annotations

import json
from pathlib import Path

from kinfra.paths import project_home
from kinfra.testing import bundled
from kinfra.testing.dockerkit import unique_prefix
from kinfra.testing.example import kinfra, make_example_project
from kinfra.testing.model_server import Fail, ModelServer, WriteFile, done, failures

TOOLS = ["Bash", "Edit", "Read", "Write"]


def _state(project: str, key: str) -> dict[str, object]:
    data: dict[str, object] = json.loads(
        (project_home(project) / "runs" / f"{key}.json").read_text()
    )
    return data


def _shop(tmp_path: Path, **orchestrator: object) -> tuple[str, Path]:
    """A copy of the shop example (no slot needed), named uniquely."""
    name = unique_prefix()
    config = bundled.shop_orchestrator_config(allowed_tools=TOOLS, **orchestrator)
    return name, make_example_project(tmp_path, name, with_origin=False, extra_config=config)


def test_ambiguous_task_asks_and_the_answer_finishes_it_in_the_same_session(
    real_claude: ModelServer, tmp_path: Path
) -> None:
    name, repo = _shop(tmp_path)
    plan = bundled.plan_path(repo, "ambiguous_task")
    bundled.mock_scripts(real_claude, "ambiguous_task")

    result = kinfra(repo, "orch", "run", str(plan))
    assert result.returncode == 4, result.stderr
    assert f"needs a human (needs_human): {bundled.CURRENCY_QUESTION}" in result.stderr
    status = kinfra(repo, "orch", "status").stdout
    assert "? task 1.1 (needs_human), waiting" in status and bundled.CURRENCY_QUESTION in status

    result = kinfra(repo, "orch", "answer", str(plan), "-", input="EUR, please.\n")
    assert result.returncode == 0, result.stderr
    result = kinfra(repo, "orch", "resume", str(plan))
    assert result.returncode == 0, result.stderr
    assert "✓ milestone M1: all tasks done" in result.stdout

    assert '"currency": "EUR"' in (repo / "app" / "prices.json").read_text()
    requests = real_claude.requests()
    assert len(requests) == 4  # ls, the question; after the answer: Write, the final message
    assert len({r.session_id for r in requests}) == 1  # one session throughout
    answered = requests[2]
    assert "The answer, verbatim:\n\nEUR, please.\n" in answered.user_texts()[-1]
    # the earlier turns came along: the session, not a new one
    assert any("ls app" in json.dumps(m) for m in answered.messages)
    state = _state(name, "ambiguous_task-M1")
    (question,) = state["questions"]  # type: ignore[misc]
    assert question["answer"] == "EUR, please.\n" and question["delivered"]
    assert question["wait"] is not None


def test_doomed_to_fail_stops_on_a_loop(real_claude: ModelServer, tmp_path: Path) -> None:
    name, repo = _shop(tmp_path)
    plan = bundled.plan_path(repo, "doomed_to_fail")
    bundled.mock_scripts(real_claude, "doomed_to_fail")
    result = kinfra(repo, "orch", "run", str(plan))
    assert result.returncode == 4, result.stderr
    assert (
        "needs a human (loop): loop detected: the task failed the same way twice" in result.stderr
    )
    state = _state(name, "doomed_to_fail-M1")
    attempts = state["tasks"][0]["attempts"]  # type: ignore[index]
    assert len(attempts) == 2  # a loop: fewer than max_attempts (3)
    assert attempts[0]["signature"] == attempts[1]["signature"]
    assert attempts[0]["detail"] != attempts[1]["detail"]  # two checksums, one failure
    assert (repo / "app" / "data.bin").read_text() == "still zero\n"


def test_e2e_fails_is_fixed_by_claude_and_passes_on_the_real_slot_then_claude_runs_one(
    real_claude: ModelServer, tmp_path: Path, docker_prefix: str
) -> None:
    repo, worktrees = bundled.make_shop(
        tmp_path, docker_prefix, e2e=bundled.E2E_COMMAND, allowed_tools=TOOLS
    )
    wt = worktrees["e2e_will_fail_fixable"]
    plan = bundled.plan_path(wt, "e2e_will_fail_fixable")
    bundled.mock_scripts(real_claude, "e2e_will_fail_fixable")
    result = kinfra(wt, "orch", "run", str(plan))
    assert result.returncode == 0, result.stderr
    assert "✓ milestone M1: all tasks done and its E2E passed" in result.stdout
    assert "✗ E2E failed:" in result.stderr and "✓ E2E passed:" in result.stderr
    state = _state(docker_prefix, "e2e_will_fail_fixable-M1")
    e2e = state["e2e"]
    assert [r["result"] for r in e2e["runs"]] == ["fail", "pass"]  # type: ignore[index]
    assert "expected items and total" in e2e["runs"][0]["evidence"]  # type: ignore[index]
    (fix,) = [a for a in e2e["attempts"] if a["kind"] == "fix"]  # type: ignore[index]
    assert fix["status"] == "done" and fix["cost_usd"]
    told = real_claude.requests("The E2E test of milestone M1 (E2E will fail, fixably) failed")[
        0
    ].user_texts()[-1]
    assert "expected items and total" in told  # the fix was told what failed
    assert (wt / "app" / "cart.json").read_text() == bundled.CART_FIXED

    # without an E2E command the agent runs the plan's E2E section itself
    (repo / "kinfra.toml").write_text(
        (repo / "kinfra.toml").read_text().replace(f'e2e = "{bundled.E2E_COMMAND}"\n', "")
    )
    plan = bundled.plan_path(wt, "e2e_will_pass")
    bundled.mock_scripts(real_claude, "e2e_will_pass")
    result = kinfra(wt, "orch", "run", str(plan))
    assert result.returncode == 0, result.stderr
    (run,) = _state(docker_prefix, "e2e_will_pass-M1")["e2e"]["runs"]  # type: ignore[index]
    assert (run["mode"], run["result"]) == ("agent", "pass")
    assert run["evidence"].startswith("GET $API_URL/app/status.json -> 200")
    (request,) = real_claude.requests("Run the E2E test of milestone M1 (E2E will pass)")[:1]
    prompt = request.user_texts()[-1]
    assert "## E2E Test: status is served" in prompt and "API_URL=http://localhost:" in prompt


def test_a_rate_limit_is_waited_out_until_its_reset_without_using_an_attempt(
    real_claude: ModelServer, tmp_path: Path
) -> None:
    name, repo = _shop(tmp_path, backoff=[600])
    plan = bundled.plan_path(repo, "hello_world")
    limited = Fail(429, "Rate limited. Please try again in 1 second.")
    # the CLI's own retries (2 in tests) give up; kinfra waits for the reset, not 10 minutes
    write = WriteFile("app/hello.txt", "hello world\n")
    real_claude.script(limited, limited, limited, write, done("wrote it"), key="Hello world")
    result = kinfra(repo, "orch", "run", str(plan))
    assert result.returncode == 0, result.stderr
    assert "API rate limited: retry 1/1 in 2 s" in result.stderr
    waited, finished = _state(name, "hello_world-M1")["tasks"][0]["attempts"]  # type: ignore[index]
    assert (waited["outcome"], waited["api_error"], waited["status"]) == (
        "api_error",
        "rate_limited",
        "failed",
    )
    assert 1.5 <= waited["backoff"] <= 3.0
    assert finished["resumed_session"] and finished["session_id"] == waited["session_id"]
    assert (repo / "app" / "hello.txt").read_text() == "hello world\n"


def test_codex_api_errors_are_waited_out_too(real_codex: ModelServer, tmp_path: Path) -> None:
    name, repo = _shop(tmp_path, agent="codex", backoff=[0.2, 0.2, 0.2, 0.2])
    plan = bundled.plan_path(repo, "hello_world")
    real_codex.script(
        *failures(500, 8),  # more than codex retries itself
        WriteFile("app/hello.txt", "hello world\n"),
        done("wrote it"),
        key="Hello world",
    )
    result = kinfra(repo, "orch", "run", str(plan))
    assert result.returncode == 0, result.stderr
    assert "API server error: retry 1/4 in 0 s" in result.stderr
    attempts = _state(name, "hello_world-M1")["tasks"][0]["attempts"]  # type: ignore[index]
    waited, finished = attempts[:-1], attempts[-1]
    assert waited and all(a["api_error"] == "server_error" for a in waited)
    assert finished["status"] == "done" and finished["resumed_session"]
    assert finished["session_id"] == waited[0]["session_id"]  # codex's thread, resumed
    assert (repo / "app" / "hello.txt").read_text() == "hello world\n"
