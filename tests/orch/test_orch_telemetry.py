"""Telemetry: the span tree, attributes and metrics seen by in-memory exporters;
the JSON lines default read back by `costs` and `history`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from kinfra.errors import OrchestratorError
from kinfra.orch.report import run_costs, run_history, run_status
from kinfra.orch.runloop import RunOptions, run_plan
from kinfra.orch.telemetry import (
    ATTEMPTS_METRIC,
    COST_METRIC,
    DURATION_METRIC,
    ESCALATIONS_METRIC,
    LOOPS_METRIC,
    OPERATION_METRIC,
    RETRIES_METRIC,
    TASKS_METRIC,
    TOKENS_METRIC,
    Telemetry,
)
from kinfra.paths import project_home

if TYPE_CHECKING:
    from conftest import Agentry, WriteConfig


def test_span_tree_attributes_metrics_and_traceparent(
    agentry: Agentry, repo: Path, plan3: Path
) -> None:
    agentry.scenario({"name": "success", "cost": 0.25}, task_3_3=["crash", "crash"])
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    telemetry = Telemetry(tracer_provider, MeterProvider(metric_readers=[reader]))

    summary = run_plan(RunOptions(plan3, workdir=repo), telemetry=telemetry)
    assert summary.outcome == "needs_human"  # 3.3 crashed twice the same way: a loop

    finished = spans.get_finished_spans()
    (root,) = [s for s in finished if s.parent is None]
    assert root.name == "invoke_workflow M3"
    assert root.attributes is not None
    assert root.attributes["kinfra.run.id"] == summary.run_id
    assert root.attributes["kinfra.outcome"] == "needs_human"
    assert root.attributes["kinfra.tasks.done"] == 2
    children = [s for s in finished if s.parent is not None]
    assert [s.name for s in children] == ["invoke_agent claude"] * 4
    assert all(s.parent is not None and s.parent.span_id == root.context.span_id for s in children)
    first = children[0].attributes
    assert first is not None
    assert first["gen_ai.operation.name"] == "invoke_agent"
    assert first["gen_ai.agent.name"] == "claude"
    assert first["gen_ai.provider.name"] == "anthropic"
    assert first["kinfra.task.id"] == "3.1"
    assert first["kinfra.attempt"] == 1
    assert first["kinfra.attempt.kind"] == "task"
    assert first["kinfra.cost_usd"] == 0.25
    assert first["gen_ai.usage.input_tokens"] == 400
    assert first["gen_ai.conversation.id"] == agentry.invocations("3.1")[0]["session_id"]
    assert children[2].attributes is not None
    assert children[2].attributes["kinfra.outcome"] == "crashed"
    assert children[2].status.status_code.name == "ERROR"

    # TRACEPARENT handed to the agent names the attempt span: its spans nest under it
    traceparent = agentry.invocations("3.2")[0]["traceparent"]
    version, trace_id, span_id, _flags = traceparent.split("-")
    assert version == "00"
    assert int(trace_id, 16) == children[1].context.trace_id
    assert int(span_id, 16) == children[1].context.span_id

    data = reader.get_metrics_data()
    assert data is not None
    metrics = {
        m.name: m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
    }
    assert {
        TASKS_METRIC,
        ATTEMPTS_METRIC,
        COST_METRIC,
        TOKENS_METRIC,
        DURATION_METRIC,
        OPERATION_METRIC,
        RETRIES_METRIC,
        LOOPS_METRIC,
        ESCALATIONS_METRIC,
    } <= set(metrics)
    cost_points = list(metrics[COST_METRIC].data.data_points)
    assert sum(p.value for p in cost_points) == 0.5  # type: ignore[attr-defined]
    token_types = {
        p.attributes["gen_ai.token.type"]
        for p in metrics[TOKENS_METRIC].data.data_points
        if p.attributes
    }
    assert token_types == {"input", "output", "cache_read", "cache_creation"}
    statuses = {
        p.attributes["kinfra.task.status"]: p.value  # type: ignore[attr-defined]
        for p in metrics[TASKS_METRIC].data.data_points
        if p.attributes
    }
    assert statuses == {"done": 2, "needs_human": 1}
    histogram = list(metrics[DURATION_METRIC].data.data_points)
    assert all(isinstance(p, HistogramDataPoint) for p in histogram)
    assert sum(p.count for p in histogram) == 3  # type: ignore[attr-defined]
    operations = list(metrics[OPERATION_METRIC].data.data_points)
    assert sum(p.count for p in operations) == 4  # type: ignore[attr-defined]
    (retry,) = metrics[RETRIES_METRIC].data.data_points
    assert retry.attributes == {"kinfra.milestone": "M3", "kinfra.retry.reason": "crashed"}
    (loop,) = metrics[LOOPS_METRIC].data.data_points
    assert loop.value == 1  # type: ignore[attr-defined]
    (escalation,) = metrics[ESCALATIONS_METRIC].data.data_points
    assert escalation.attributes is not None
    assert escalation.attributes["kinfra.question.kind"] == "loop"


def test_jsonl_default_costs_sum_exactly_and_history(
    agentry: Agentry, repo: Path, plan3: Path, kinfra_toml: WriteConfig
) -> None:
    kinfra_toml(backoff=[])  # an API error fails the task at once
    agentry.scenario(
        {"name": "success", "cost": 0.1},
        task_3_1={"name": "success", "cost": 0.2},
        task_3_2=[{"name": "api_error"}, {"name": "success", "cost": 0.3}],
    )
    first = run_plan(RunOptions(plan3, workdir=repo))
    second = run_plan(RunOptions(plan3, workdir=repo), resume=True)
    assert second.outcome == "done"

    costs = run_costs(workdir=repo, by_milestone=True)
    assert costs["cost_usd"] == 0.6  # 0.2 + 0.3 + 0.1 as the agent reported them
    assert costs["attempts"] == 4
    # the API error's result reports one turn's tokens
    assert costs["tokens"]["input"] == 3 * 400 + 100
    assert costs["milestones"] == [
        {"milestone": "M3", "cost_usd": 0.6, "attempts": 4, "tokens": costs["tokens"]}
    ]
    assert run_costs(workdir=repo, since=__import__("datetime").date(2999, 1, 1))["attempts"] == 0

    history = run_history(10, workdir=repo)
    assert [h["run_id"] for h in history] == [second.run_id, first.run_id]
    assert history[0]["outcome"] == "done" and history[1]["outcome"] == "failed"
    assert history[1]["tasks"] == ["3.1", "3.2"]
    assert history[0]["cost_usd"] == 0.4

    # metrics are JSON lines too: delta points whose sum is the total
    path = project_home("app") / "runs" / "M3.telemetry.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    cost_lines = [r for r in records if r["kind"] == "metric" and r["name"] == COST_METRIC]
    assert round(sum(r["value"] for r in cost_lines), 9) == 0.6
    durations = [r for r in records if r["kind"] == "metric" and r["name"] == DURATION_METRIC]
    assert sum(r["count"] for r in durations) == 4  # 3.1, 3.2 failed, 3.2 done, 3.3
    assert all(len(r["buckets"]) == len(r["bounds"]) + 1 for r in durations)

    (status,) = run_status(workdir=repo)
    assert status["counts"]["done"] == 3
    assert status["running_pid"] is None
    assert [t["attempts"] for t in status["tasks"]] == [1, 2, 1]


def test_otlp_endpoint_needs_the_optional_exporter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    try:
        import opentelemetry.exporter.otlp.proto.http  # noqa: F401
    except ImportError:
        with pytest.raises(OrchestratorError, match="the OTLP exporter is not installed"):
            Telemetry.to_jsonl(tmp_path / "t.jsonl")
    else:  # installed: both the JSONL file and OTLP get the spans
        telemetry = Telemetry.to_jsonl(tmp_path / "t.jsonl")
        with telemetry.run_span("M1", {}):
            pass
        telemetry.tracer_provider.force_flush()
        assert "invoke_workflow M1" in (tmp_path / "t.jsonl").read_text()


def test_bad_otlp_setup_leaves_no_run_behind(
    agentry: Agentry, repo: Path, plan3: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    try:
        import opentelemetry.exporter.otlp.proto.http  # noqa: F401
    except ImportError:
        with pytest.raises(OrchestratorError):
            run_plan(RunOptions(plan3, workdir=repo))
        runs = project_home("app") / "runs"
        assert not (runs / "M3.json").exists() and not (runs / "M3.lock").exists()
    else:
        assert run_plan(RunOptions(plan3, workdir=repo)).outcome == "done"
