"""The Prometheus page built from the telemetry JSON lines, and the dashboard
that queries it (its panels are evaluated in a real Prometheus by
test_dashboard_prometheus)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from kinfra.orch import telemetry
from kinfra.orch.dashboard import dashboard, panel_queries
from kinfra.orch.metrics import MetricsCollector, prometheus_name
from kinfra.testing.example import kinfra


def _append(path: Path, *records: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")


def _metric(
    name: str, unit: str, attributes: dict[str, object], **values: object
) -> dict[str, object]:
    return {"kind": "metric", "name": name, "unit": unit, "attributes": attributes, **values}


def test_names_follow_the_opentelemetry_to_prometheus_convention() -> None:
    assert prometheus_name("kinfra.orch.cost", "USD", False) == "kinfra_orch_cost_usd_total"
    assert prometheus_name("kinfra.orch.tasks", "{task}", False) == "kinfra_orch_tasks_total"
    assert (
        prometheus_name("gen_ai.client.operation.duration", "s", True)
        == "gen_ai_client_operation_duration_seconds"
    )


def test_totals_over_every_project_read_incrementally(tmp_path: Path) -> None:
    home = tmp_path / "home"
    shop = home / "shop" / "runs" / "genome-M1.telemetry.jsonl"
    other = home / "blog" / "runs" / "M2.telemetry.jsonl"
    tasks = {"kinfra.milestone": "genome-M1", "kinfra.task.status": "done"}
    _append(shop, _metric(telemetry.TASKS_METRIC, "{task}", tasks, value=2))
    _append(shop, {"kind": "span", "name": "invoke_agent claude"})
    bounds = [1, 5]
    duration = {"kinfra.milestone": "M2", "kinfra.task.status": 'say "hi"\n'}
    _append(
        other,
        _metric(
            telemetry.DURATION_METRIC,
            "s",
            duration,
            count=3,
            sum=7.5,
            bounds=bounds,
            buckets=[1, 1, 1],
        ),
    )
    collector = MetricsCollector(home)
    page = collector.render()
    assert "# TYPE kinfra_orch_tasks_total counter" in page
    assert (
        'kinfra_orch_tasks_total{kinfra_milestone="genome-M1",kinfra_project="shop",'
        'kinfra_task_status="done"} 2' in page
    )
    labels = 'kinfra_milestone="M2",kinfra_project="blog",kinfra_task_status="say \\"hi\\"\\n"'
    assert f'kinfra_orch_task_duration_seconds_bucket{{{labels},le="1"}} 1' in page
    assert f'kinfra_orch_task_duration_seconds_bucket{{{labels},le="5"}} 2' in page
    assert f'kinfra_orch_task_duration_seconds_bucket{{{labels},le="+Inf"}} 3' in page
    assert f"kinfra_orch_task_duration_seconds_sum{{{labels}}} 7.5" in page
    assert f"kinfra_orch_task_duration_seconds_count{{{labels}}} 3" in page

    # appended lines add up; a torn last line waits for its end
    _append(shop, _metric(telemetry.TASKS_METRIC, "{task}", tasks, value=1))
    with shop.open("a") as handle:
        handle.write('{"kind": "metric", "name": "kinfra.orch.tasks", "unit": "{task}", "attr')
    assert 'kinfra_task_status="done"} 3' in collector.render()
    with shop.open("a") as handle:
        handle.write('ibutes": ' + json.dumps(tasks) + ', "value": 4}\n')
    assert 'kinfra_task_status="done"} 7' in collector.render()
    # histogram points written with other buckets still count, in +Inf
    _append(other, _metric(telemetry.DURATION_METRIC, "s", duration, count=2, sum=1.0))
    page = collector.render()
    assert f'kinfra_orch_task_duration_seconds_bucket{{{labels},le="5"}} 2' in page
    assert f'kinfra_orch_task_duration_seconds_bucket{{{labels},le="+Inf"}} 5' in page


def test_open_questions_come_from_the_run_states(tmp_path: Path) -> None:
    from kinfra.orch.state import Question, QuestionKind, RunState, TaskState, save_state

    home = tmp_path / "home"
    state = RunState(
        "r", "M1", "/p/M1.md", "h", "claude", "/w", "shop", "c", "u", (TaskState("1.1", "A"),)
    )
    asked = Question(1, "1.1", QuestionKind.NEEDS_HUMAN, "which?", "2026-01-01T00:00:00Z")
    save_state(home / "shop" / "runs" / "genome-M1.json", state.with_question(asked))
    save_state(home / "shop" / "runs" / "genome-M2.json", state)
    page = MetricsCollector(home).render()
    assert (
        'kinfra_orch_questions_open{kinfra_milestone="genome-M1",kinfra_project="shop"} 1' in page
    )
    assert (
        'kinfra_orch_questions_open{kinfra_milestone="genome-M2",kinfra_project="shop"} 0' in page
    )


def test_every_panel_queries_metrics_kinfra_defines() -> None:
    board = dashboard()
    titles = {p["title"] for p in board["panels"]}
    for wanted in (
        "Task success rate",
        "E2E pass rate",
        "Task duration P95",
        "Loops detected",
        "Escalations by kind",
        "Cost over time",
        "Tokens over time",
    ):
        assert wanted in titles  # the panels seed 001 asks for
    defined = {
        prometheus_name(name, unit, histogram)
        for name, unit, histogram in [
            (telemetry.TASKS_METRIC, "{task}", False),
            (telemetry.ATTEMPTS_METRIC, "{attempt}", False),
            (telemetry.RETRIES_METRIC, "{attempt}", False),
            (telemetry.LOOPS_METRIC, "{loop}", False),
            (telemetry.ESCALATIONS_METRIC, "{question}", False),
            (telemetry.BACKOFF_METRIC, "{wait}", False),
            (telemetry.BACKOFF_TIME_METRIC, "s", False),
            (telemetry.E2E_RUNS_METRIC, "{run}", False),
            (telemetry.E2E_FIXES_METRIC, "{attempt}", False),
            (telemetry.COST_METRIC, "USD", False),
            (telemetry.TOKENS_METRIC, "{token}", True),
            (telemetry.OPERATION_METRIC, "s", True),
            (telemetry.DURATION_METRIC, "s", True),
            (telemetry.ANSWER_WAIT_METRIC, "s", True),
        ]
    } | {"kinfra_orch_questions_open"}
    used = set()
    for _, expr in panel_queries():
        for name in re.findall(r"\b((?:kinfra|gen_ai)_[a-z_]+?)(?:_bucket|_sum|_count)?\{", expr):
            used.add(name)
        assert '$project"' in expr
    assert used <= defined, used - defined
    assert {"datasource", "project"} == {v["name"] for v in board["templating"]["list"]}


def test_the_commands_that_write_them_out(tmp_path: Path) -> None:
    out = tmp_path / "board.json"
    result = kinfra(tmp_path, "orch", "dashboard", "-o", str(out))
    assert result.returncode == 0 and json.loads(out.read_text())["uid"] == "kinfra-orchestrator"
    again = kinfra(tmp_path, "orch", "dashboard", "-o", str(out))
    assert again.returncode == 1 and f"{out} exists" in again.stderr
    assert kinfra(tmp_path, "orch", "dashboard", "-o", str(out), "--force").returncode == 0
    assert json.loads(kinfra(tmp_path, "orch", "dashboard").stdout) == dashboard()
    bad = kinfra(tmp_path, "orch", "metrics", "--listen", "nowhere")
    assert bad.returncode == 1 and "--listen 'nowhere' is not HOST:PORT" in bad.stderr
    page = kinfra(tmp_path, "orch", "metrics")
    assert page.returncode == 0 and "# TYPE kinfra_orch_questions_open gauge" in page.stdout
