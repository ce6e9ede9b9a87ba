"""OpenTelemetry for orchestrator runs, with no collector needed.

A span per run (``invoke_workflow <milestone>``) with a child per agent attempt
(``invoke_agent <agent>``, gen_ai.* attributes), and metrics: tasks by status,
attempts by outcome, cost in USD, tokens by type, task duration (histogram).

The embedded default writes spans and metrics as JSON lines next to the run
state (``<milestone>.telemetry.jsonl``); ``kinfra orch status/history/costs``
read them. With ``OTEL_EXPORTER_OTLP_ENDPOINT`` set they are exported over OTLP
too (needs the optional ``opentelemetry-exporter-otlp-proto-http``).

The providers are injected: tests pass in-memory exporters and readers; no
global provider is ever set.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    HistogramDataPoint,
    MetricExporter,
    MetricExportResult,
    MetricReader,
    MetricsData,
    NumberDataPoint,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import Span, StatusCode, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from kinfra.adapters.statefile import append_jsonl, read_jsonl
from kinfra.errors import OrchestratorError

TASKS_METRIC = "kinfra.orch.tasks"
ATTEMPTS_METRIC = "kinfra.orch.attempts"
COST_METRIC = "kinfra.orch.cost"
TOKENS_METRIC = "kinfra.orch.tokens"
DURATION_METRIC = "kinfra.orch.task.duration"

_NEVER_MS = 10**9  # the JSONL metric reader exports on flush, not on a timer


class _JsonlFile:
    """Appends whole lines to one file, from any thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def append(self, records: Sequence[dict[str, Any]]) -> None:
        with self._lock:
            append_jsonl(self.path, list(records))


def span_record(span: ReadableSpan) -> dict[str, Any]:
    context = span.get_span_context()
    parent = span.parent
    start = span.start_time or 0
    end = span.end_time or start
    return {
        "kind": "span",
        "name": span.name,
        "trace_id": f"{context.trace_id:032x}" if context else None,
        "span_id": f"{context.span_id:016x}" if context else None,
        "parent_id": f"{parent.span_id:016x}" if parent else None,
        "start": start / 1e9,
        "end": end / 1e9,
        "duration": (end - start) / 1e9,
        "status": span.status.status_code.name,
        "attributes": dict(span.attributes or {}),
    }


class JsonlSpanExporter(SpanExporter):
    def __init__(self, path: Path) -> None:
        self._file = _JsonlFile(path)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            self._file.append([span_record(s) for s in spans])
        except OSError:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


class JsonlMetricExporter(MetricExporter):
    """Delta points, one line per data point: summing lines gives totals."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            preferred_temporality={
                Counter: AggregationTemporality.DELTA,
                Histogram: AggregationTemporality.DELTA,
            }
        )
        self._file = _JsonlFile(path)

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        records: list[dict[str, Any]] = []
        for resource_metrics in metrics_data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    for point in metric.data.data_points:
                        record: dict[str, Any] = {
                            "kind": "metric",
                            "name": metric.name,
                            "unit": metric.unit,
                            "time": point.time_unix_nano / 1e9,
                            "attributes": dict(point.attributes or {}),
                        }
                        if isinstance(point, NumberDataPoint):
                            record["value"] = point.value
                        elif isinstance(point, HistogramDataPoint):
                            if point.count == 0:
                                continue
                            record.update(
                                count=point.count,
                                sum=point.sum,
                                min=point.min,
                                max=point.max,
                            )
                        else:
                            continue
                        records.append(record)
        try:
            self._file.append(records)
        except OSError:
            return MetricExportResult.FAILURE
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass


class Telemetry:
    """The tracer and instruments of one orchestrator process."""

    def __init__(
        self,
        tracer_provider: TracerProvider,
        meter_provider: MeterProvider,
        *,
        owned: bool = False,
    ) -> None:
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self._owned = owned
        self.tracer = tracer_provider.get_tracer("kinfra.orch")
        meter = meter_provider.get_meter("kinfra.orch")
        self.tasks = meter.create_counter(
            TASKS_METRIC, unit="{task}", description="Tasks that reached a status"
        )
        self.attempts = meter.create_counter(
            ATTEMPTS_METRIC, unit="{attempt}", description="Agent attempts by outcome"
        )
        self.cost = meter.create_counter(
            COST_METRIC, unit="USD", description="Agent cost reported by the agent"
        )
        self.tokens = meter.create_counter(
            TOKENS_METRIC, unit="{token}", description="Agent tokens by type"
        )
        self.duration = meter.create_histogram(
            DURATION_METRIC, unit="s", description="Wall time of a task attempt"
        )

    @classmethod
    def to_jsonl(cls, path: Path, *, attributes: Mapping[str, str] | None = None) -> Telemetry:
        """The embedded default: JSON lines at ``path`` (+ OTLP when configured)."""
        resource = Resource.create({"service.name": "kinfra", **(attributes or {})})
        tracer_provider = TracerProvider(resource=resource)
        tracer_provider.add_span_processor(SimpleSpanProcessor(JsonlSpanExporter(path)))
        readers: list[MetricReader] = [
            PeriodicExportingMetricReader(
                JsonlMetricExporter(path), export_interval_millis=_NEVER_MS
            )
        ]
        if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
            span_exporter, metric_exporter = _otlp_exporters()
            tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
            readers.append(PeriodicExportingMetricReader(metric_exporter))
        meter_provider = MeterProvider(metric_readers=readers, resource=resource)
        return cls(tracer_provider, meter_provider, owned=True)

    @contextlib.contextmanager
    def run_span(self, milestone: str, attributes: Mapping[str, Any]) -> Iterator[Span]:
        with self.tracer.start_as_current_span(
            f"invoke_workflow {milestone}",
            attributes={"gen_ai.operation.name": "invoke_workflow", **attributes},
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            yield span

    @contextlib.contextmanager
    def attempt_span(self, agent: str, attributes: Mapping[str, Any]) -> Iterator[Span]:
        with self.tracer.start_as_current_span(
            f"invoke_agent {agent}",
            attributes={
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": agent,
                **attributes,
            },
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            yield span

    @staticmethod
    def traceparent(span: Span) -> dict[str, str]:
        """``TRACEPARENT`` (and ``TRACESTATE``) for the agent's environment, so
        that its own spans nest under the attempt."""
        carrier: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(carrier, context=set_span_in_context(span))
        env = {"TRACEPARENT": carrier["traceparent"]} if "traceparent" in carrier else {}
        if carrier.get("tracestate"):
            env["TRACESTATE"] = carrier["tracestate"]
        return env

    def record_attempt(
        self,
        *,
        agent: str,
        milestone: str,
        task_id: str,
        outcome: str,
        cost_usd: float | None,
        tokens: Mapping[str, int],
        duration: float,
    ) -> None:
        base = {"kinfra.milestone": milestone, "gen_ai.agent.name": agent}
        self.attempts.add(1, {**base, "kinfra.outcome": outcome})
        if cost_usd:
            self.cost.add(cost_usd, base)
        for kind, count in tokens.items():
            if count:
                self.tokens.add(count, {**base, "gen_ai.token.type": kind})
        self.duration.record(
            duration, {**base, "kinfra.task.id": task_id, "kinfra.outcome": outcome}
        )

    def record_task(self, *, milestone: str, status: str) -> None:
        self.tasks.add(1, {"kinfra.milestone": milestone, "kinfra.task.status": status})

    def flush(self) -> None:
        self.tracer_provider.force_flush()
        self.meter_provider.force_flush()

    def shutdown(self) -> None:
        if self._owned:
            self.tracer_provider.shutdown()
            self.meter_provider.shutdown()
        else:
            self.flush()


def mark_error(span: Span, message: str) -> None:
    span.set_status(StatusCode.ERROR, message[:200])


def _otlp_exporters() -> tuple[SpanExporter, MetricExporter]:
    try:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:
        raise OrchestratorError(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but the OTLP exporter is not installed",
            hint="pip install 'kinfra[otlp]' (opentelemetry-exporter-otlp-proto-http), "
            "or unset OTEL_EXPORTER_OTLP_ENDPOINT",
        ) from exc
    return OTLPSpanExporter(), OTLPMetricExporter()


def read_records(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """Every record of the given telemetry files; a torn last line is skipped."""
    return [record for path in paths for record in read_jsonl(path)]
