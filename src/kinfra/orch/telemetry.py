"""OpenTelemetry for orchestrator runs, with no collector needed.

A span per run (``invoke_workflow <milestone>``) with a child per agent attempt
(``invoke_agent <agent>``, gen_ai.* attributes) and per E2E command run, and
metrics (names below; GenAI semantic-convention names where one exists):
tasks by status, attempts by outcome, retries, detected loops, escalations and
the time each waited for its answer, API backoff waits, E2E runs and fixes,
cost in USD, tokens by type, attempt and task durations (histograms).

The embedded default writes spans and metrics as JSON lines next to the run
state (``<milestone>.telemetry.jsonl``); ``kinfra orch status/history/costs``
read them, and ``kinfra orch metrics`` serves them to Prometheus. With
``OTEL_EXPORTER_OTLP_ENDPOINT`` set they are exported over OTLP too (needs the
optional ``opentelemetry-exporter-otlp-proto-http``).

The providers are injected: tests pass in-memory exporters and readers; no
global provider is ever set. Every span attribute kinfra sets is set here.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from kinfra.orch.agents.base import AgentResult

TASKS_METRIC = "kinfra.orch.tasks"  # tasks that reached a status in a run
ATTEMPTS_METRIC = "kinfra.orch.attempts"  # agent attempts by outcome and kind (task, e2e, fix)
RETRIES_METRIC = "kinfra.orch.retries"  # failed attempts that were retried, by reason
LOOPS_METRIC = "kinfra.orch.loops"  # the same failure twice in a row
ESCALATIONS_METRIC = "kinfra.orch.escalations"  # questions for a human, by kind
ANSWER_WAIT_METRIC = "kinfra.orch.question.wait"  # seconds from question to answer
BACKOFF_METRIC = "kinfra.orch.backoff.waits"  # API-error waits, by kind of error
BACKOFF_TIME_METRIC = "kinfra.orch.backoff.time"  # seconds spent waiting for the API
E2E_RUNS_METRIC = "kinfra.orch.e2e.runs"  # E2E runs by result and mode
E2E_FIXES_METRIC = "kinfra.orch.e2e.fixes"  # agent attempts fixing a failed E2E
COST_METRIC = "kinfra.orch.cost"  # USD, as the agent reported it
TOKENS_METRIC = "gen_ai.client.token.usage"  # GenAI semconv, per agent attempt
OPERATION_METRIC = "gen_ai.client.operation.duration"  # GenAI semconv: an agent attempt
DURATION_METRIC = "kinfra.orch.task.duration"  # a task, from its first attempt to its end

# Histogram buckets. An agent attempt lasts minutes, not the ~1 s of a model
# call the GenAI convention's advisory buckets are made for.
DURATION_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400)
WAIT_BUCKETS = (10, 30, 60, 300, 600, 1800, 3600, 7200, 14400, 28800, 86400)
TOKEN_BUCKETS = tuple(4**i for i in range(14))  # the GenAI convention's: 1, 4, ... 67108864

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
    """Writes finished spans as JSON lines to the run's telemetry file."""

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
                                bounds=list(point.explicit_bounds),
                                buckets=list(point.bucket_counts),
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
        counter = meter.create_counter
        self.tasks = counter(TASKS_METRIC, "{task}", "Tasks that reached a status")
        self.attempts = counter(ATTEMPTS_METRIC, "{attempt}", "Agent attempts by outcome")
        self.retries = counter(RETRIES_METRIC, "{attempt}", "Failed attempts retried")
        self.loops = counter(LOOPS_METRIC, "{loop}", "Same failure twice in a row")
        self.escalations = counter(ESCALATIONS_METRIC, "{question}", "Questions for a human")
        self.backoffs = counter(BACKOFF_METRIC, "{wait}", "Waits after an API error")
        self.backoff_time = counter(BACKOFF_TIME_METRIC, "s", "Time spent waiting for the API")
        self.e2e_runs = counter(E2E_RUNS_METRIC, "{run}", "E2E runs by result")
        self.e2e_fixes = counter(E2E_FIXES_METRIC, "{attempt}", "Attempts fixing a failed E2E")
        self.cost = counter(COST_METRIC, "USD", "Agent cost reported by the agent")
        histogram = meter.create_histogram
        self.tokens = histogram(
            TOKENS_METRIC,
            "{token}",
            "Tokens used by an agent attempt, by type",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )
        self.operation = histogram(
            OPERATION_METRIC,
            "s",
            "Wall time of an agent attempt",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.duration = histogram(
            DURATION_METRIC,
            "s",
            "Wall time of a task, first attempt to final status",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.answer_wait = histogram(
            ANSWER_WAIT_METRIC,
            "s",
            "Time a question waited for its answer",
            explicit_bucket_boundaries_advisory=WAIT_BUCKETS,
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

    @contextlib.contextmanager
    def e2e_span(self, milestone: str, mode: str, attributes: Mapping[str, Any]) -> Iterator[Span]:
        """A run of the E2E command (in agent mode the agent's attempt span is the record)."""
        with self.tracer.start_as_current_span(
            f"e2e {milestone}",
            attributes={"kinfra.milestone": milestone, "kinfra.e2e.mode": mode, **attributes},
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            yield span

    @staticmethod
    def end_e2e(span: Span, result: str) -> None:
        span.set_attribute("kinfra.e2e.result", result)
        if result != "pass":
            mark_error(span, f"E2E {result}")

    @staticmethod
    def attempt_attributes(
        *,
        run_id: str,
        milestone: str,
        task_id: str,
        title: str,
        number: int,
        kind: str,
        resumed: bool,
        provider: str,
        model: str | None,
    ) -> dict[str, str | int | bool]:
        """The attributes an attempt's span starts with."""
        attributes: dict[str, str | int | bool] = {
            "kinfra.run.id": run_id,
            "kinfra.milestone": milestone,
            "kinfra.task.id": task_id,
            "kinfra.task.title": title,
            "kinfra.attempt": number,
            "kinfra.attempt.kind": kind,
            "kinfra.resumed_session": resumed,
            "gen_ai.provider.name": provider,
        }
        if model:
            attributes["gen_ai.request.model"] = model
        return attributes

    @staticmethod
    def end_attempt(span: Span, result: AgentResult, status: str, error: str | None) -> None:
        """What an attempt's result adds to its span."""
        span.set_attribute("kinfra.outcome", result.outcome.value)
        span.set_attribute("kinfra.task.status", status)
        span.set_attribute("kinfra.duration", result.duration)
        if result.session_id:
            span.set_attribute("gen_ai.conversation.id", result.session_id)
        if result.cost_usd is not None:
            span.set_attribute("kinfra.cost_usd", result.cost_usd)
            span.set_attribute("gen_ai.usage.cost", result.cost_usd)
        if result.turns is not None:
            span.set_attribute("kinfra.turns", result.turns)
        _span_tokens(span, result.tokens)
        if result.models:
            span.set_attribute("gen_ai.response.model", result.models[0])
        if result.subtype:
            span.set_attribute("kinfra.agent.subtype", result.subtype)
        if error:
            mark_error(span, error)

    @staticmethod
    def end_interrupted(span: Span, tokens: Mapping[str, int]) -> None:
        span.set_attribute("kinfra.outcome", "interrupted")
        _span_tokens(span, tokens)
        mark_error(span, "interrupted")

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

    # ``milestone`` in the record_* methods is the run's key (``<feature>-<milestone>``).

    def record_attempt(
        self,
        *,
        agent: str,
        provider: str,
        milestone: str,
        task_id: str,
        kind: str,
        outcome: str,
        cost_usd: float | None,
        tokens: Mapping[str, int],
        duration: float,
    ) -> None:
        """One agent attempt (``kind``: task, e2e or fix)."""
        base = {"kinfra.milestone": milestone, "gen_ai.agent.name": agent}
        self.attempts.add(1, {**base, "kinfra.outcome": outcome, "kinfra.attempt.kind": kind})
        per_task = {**base, "kinfra.task.id": task_id}
        if cost_usd:
            self.cost.add(cost_usd, per_task)
        genai = {
            **per_task,
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.provider.name": provider,
        }
        for kind_of_token, count in tokens.items():
            if count:
                self.tokens.record(count, {**genai, "gen_ai.token.type": kind_of_token})
        operation = dict(genai)
        if outcome != "success":
            operation["error.type"] = outcome
        self.operation.record(duration, operation)

    def record_task(self, *, milestone: str, status: str, duration: float | None = None) -> None:
        """A task reached ``status`` in this run; ``duration`` once it is final."""
        attributes = {"kinfra.milestone": milestone, "kinfra.task.status": status}
        self.tasks.add(1, attributes)
        if duration is not None:
            self.duration.record(duration, attributes)

    def record_retry(self, *, milestone: str, reason: str) -> None:
        self.retries.add(1, {"kinfra.milestone": milestone, "kinfra.retry.reason": reason})

    def record_loop(self, *, milestone: str) -> None:
        self.loops.add(1, {"kinfra.milestone": milestone})

    def record_escalation(self, *, milestone: str, kind: str) -> None:
        self.escalations.add(1, {"kinfra.milestone": milestone, "kinfra.question.kind": kind})

    def record_answer(self, *, milestone: str, kind: str, wait: float) -> None:
        self.answer_wait.record(
            max(wait, 0.0), {"kinfra.milestone": milestone, "kinfra.question.kind": kind}
        )

    def record_backoff(self, *, milestone: str, api_error: str, seconds: float) -> None:
        attributes = {"kinfra.milestone": milestone, "kinfra.api_error": api_error}
        self.backoffs.add(1, attributes)
        self.backoff_time.add(max(seconds, 0.0), attributes)

    def record_e2e(self, *, milestone: str, mode: str, result: str) -> None:
        self.e2e_runs.add(
            1, {"kinfra.milestone": milestone, "kinfra.e2e.mode": mode, "kinfra.e2e.result": result}
        )

    def record_e2e_fix(self, *, milestone: str) -> None:
        self.e2e_fixes.add(1, {"kinfra.milestone": milestone})

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


def _span_tokens(span: Span, tokens: Mapping[str, int]) -> None:
    if "input" in tokens:
        span.set_attribute("gen_ai.usage.input_tokens", tokens["input"])
    if "output" in tokens:
        span.set_attribute("gen_ai.usage.output_tokens", tokens["output"])
    for kind, count in tokens.items():
        span.set_attribute(f"kinfra.tokens.{kind}", count)


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
