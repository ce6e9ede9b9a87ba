"""kinfra's orchestrator metrics for Prometheus: ``kinfra orch metrics``.

Prometheus scrapes ``/metrics``; this module builds that page from the
telemetry every run already writes (``$KINFRA_HOME/<project>/runs/
*.telemetry.jsonl``, delta points appended at each task's end) and from the
run state files (the questions still open). Why a scraped endpoint rather than
remote write: runs are short CLI processes, while the JSON lines are durable;
a page computed from them loses nothing when Prometheus (or this exporter) was
down during a run, needs no Prometheus flag, and no new dependency.

Names follow the OpenTelemetry-to-Prometheus convention: dots become
underscores, the unit is a suffix (``_seconds``, ``_usd``), counters end in
``_total``, histograms give ``_bucket``/``_sum``/``_count``; attributes become
labels the same way (``kinfra.milestone`` -> ``kinfra_milestone``), and every
series carries ``kinfra_project``.

Reading is incremental: each file is read from where the previous scrape
stopped (the files only grow); a file that shrank is read again from the start.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from kinfra.orch import telemetry as t

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
QUESTIONS_OPEN = "kinfra_orch_questions_open"
_INVALID = re.compile(r"[^a-zA-Z0-9_]")
_UNITS = {"s": "seconds", "USD": "usd"}
_HELP = {
    t.TASKS_METRIC: "Tasks that reached a status in a run",
    t.ATTEMPTS_METRIC: "Agent attempts by outcome and kind (task, e2e, fix)",
    t.RETRIES_METRIC: "Failed attempts that were retried, by reason",
    t.LOOPS_METRIC: "Loops detected: the same failure twice in a row",
    t.ESCALATIONS_METRIC: "Questions for a human, by kind",
    t.ANSWER_WAIT_METRIC: "Time a question waited for its answer",
    t.BACKOFF_METRIC: "Waits after an API error, by kind of error",
    t.BACKOFF_TIME_METRIC: "Time spent waiting for the API",
    t.E2E_RUNS_METRIC: "E2E runs by result and mode",
    t.E2E_FIXES_METRIC: "Agent attempts fixing a failed E2E",
    t.COST_METRIC: "Agent cost in USD, as the agent reported it",
    t.TOKENS_METRIC: "Tokens used by an agent attempt, by type",
    t.OPERATION_METRIC: "Wall time of an agent attempt",
    t.DURATION_METRIC: "Wall time of a task, first attempt to final status",
}

Labels = tuple[tuple[str, str], ...]


def prometheus_name(name: str, unit: str, histogram: bool) -> str:
    """``kinfra.orch.cost`` (USD, counter) -> ``kinfra_orch_cost_usd_total``."""
    base = _INVALID.sub("_", name)
    suffix = _UNITS.get(unit, "")
    if suffix and not base.endswith("_" + suffix):
        base += "_" + suffix
    return base if histogram else base + "_total"


def label_name(key: str) -> str:
    return _INVALID.sub("_", key)


@dataclass
class _Histogram:
    """One histogram series, summed over telemetry records: buckets, count and sum."""

    bounds: tuple[float, ...]
    buckets: list[float]  # per bucket, not cumulative; one more than bounds (+Inf)
    count: float = 0.0
    total: float = 0.0

    def add(self, record: dict[str, Any]) -> None:
        count = _number(record.get("count"))
        self.count += count
        self.total += _number(record.get("sum"))
        bounds = record.get("bounds")
        buckets = record.get("buckets")
        if (
            isinstance(bounds, list)
            and tuple(_number(b) for b in bounds) == self.bounds
            and isinstance(buckets, list)
            and len(buckets) == len(self.buckets)
        ):
            for index, value in enumerate(buckets):
                self.buckets[index] += _number(value)
        else:  # written with other buckets: counted, in +Inf only
            self.buckets[-1] += count


@dataclass
class _Family:
    """One metric of the page, with its series by labels (values, or histograms)."""

    name: str  # the Prometheus name
    source: str  # the OpenTelemetry name
    histogram: bool
    values: dict[Labels, float] = field(default_factory=dict)
    histograms: dict[Labels, _Histogram] = field(default_factory=dict)


@dataclass
class _FileCursor:
    """How far a telemetry file was read, and its last line while incomplete."""

    offset: int = 0
    pending: bytes = b""  # a last line not yet complete


class MetricsCollector:
    """Totals over every telemetry file under ``home``, kept between scrapes."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self._lock = threading.Lock()
        self._cursors: dict[Path, _FileCursor] = {}
        self._families: dict[str, _Family] = {}

    def render(self) -> str:
        """The exposition page (text format 0.0.4)."""
        with self._lock:
            self._read_all()
            lines: list[str] = []
            for family in sorted(self._families.values(), key=lambda f: f.name):
                lines += _render_family(family)
            lines += _render_questions(self.home)
            return "\n".join(lines) + "\n"

    def _read_all(self) -> None:
        seen = set()
        for path in sorted(self.home.glob("*/runs/*.telemetry.jsonl")):
            seen.add(path)
            self._read(path)
        for gone in set(self._cursors) - seen:
            # Its totals stay: counters never go down while the exporter runs.
            del self._cursors[gone]

    def _read(self, path: Path) -> None:
        cursor = self._cursors.setdefault(path, _FileCursor())
        try:
            size = path.stat().st_size
            if size < cursor.offset:
                # Replaced or truncated: the old totals stay, the file is read
                # anew (Prometheus takes a drop for a counter reset anyway).
                cursor.offset, cursor.pending = 0, b""
            with path.open("rb") as handle:
                handle.seek(cursor.offset)
                chunk = handle.read()
        except OSError:
            return
        cursor.offset += len(chunk)
        data = cursor.pending + chunk
        lines = data.split(b"\n")
        cursor.pending = lines.pop()
        project = path.parent.parent.name
        for line in lines:
            try:
                record = json.loads(line)
            except (ValueError, UnicodeDecodeError):
                continue
            if isinstance(record, dict) and record.get("kind") == "metric":
                self._add(project, record)

    def _add(self, project: str, record: dict[str, Any]) -> None:
        name = record.get("name")
        if not isinstance(name, str):
            return
        histogram = "count" in record
        unit = str(record.get("unit") or "")
        prom = prometheus_name(name, unit, histogram)
        family = self._families.get(prom)
        if family is None:
            family = self._families[prom] = _Family(prom, name, histogram)
        if family.histogram != histogram:
            return
        attributes = record.get("attributes")
        labels = _labels(project, attributes if isinstance(attributes, dict) else {})
        if histogram:
            entry = family.histograms.get(labels)
            if entry is None:
                bounds = record.get("bounds")
                known = tuple(_number(b) for b in bounds) if isinstance(bounds, list) else ()
                entry = family.histograms[labels] = _Histogram(known, [0.0] * (len(known) + 1))
            entry.add(record)
        else:
            family.values[labels] = family.values.get(labels, 0.0) + _number(record.get("value"))


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value) if math.isfinite(value) else 0.0


def _labels(project: str, attributes: dict[str, Any]) -> Labels:
    pairs = {"kinfra_project": project}
    for key, value in attributes.items():
        pairs[label_name(str(key))] = str(value).lower() if isinstance(value, bool) else str(value)
    return tuple(sorted(pairs.items()))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _label_text(labels: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{key}="{_escape(value)}"' for key, value in labels)
    return "{" + inner + "}" if inner else ""


def _value(number: float) -> str:
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    return repr(float(number)) if number != int(number) else str(int(number))


def _render_family(family: _Family) -> list[str]:
    help_text = _HELP.get(family.source, family.source)
    kind = "histogram" if family.histogram else "counter"
    lines = [f"# HELP {family.name} {help_text}", f"# TYPE {family.name} {kind}"]
    if not family.histogram:
        for labels, value in sorted(family.values.items()):
            lines.append(f"{family.name}{_label_text(labels)} {_value(value)}")
        return lines
    for labels, entry in sorted(family.histograms.items()):
        running = 0.0
        for bound, count in zip((*entry.bounds, math.inf), entry.buckets, strict=True):
            running += count
            le = "+Inf" if math.isinf(bound) else _value(bound)
            lines.append(
                f"{family.name}_bucket{_label_text((*labels, ('le', le)))} {_value(running)}"
            )
        lines.append(f"{family.name}_sum{_label_text(labels)} {_value(entry.total)}")
        lines.append(f"{family.name}_count{_label_text(labels)} {_value(entry.count)}")
    return lines


def _render_questions(home: Path) -> list[str]:
    """A gauge from the state files: questions waiting for an answer."""
    from kinfra.errors import KinfraError
    from kinfra.orch.state import load_state

    lines = [
        f"# HELP {QUESTIONS_OPEN} Questions waiting for a human's answer",
        f"# TYPE {QUESTIONS_OPEN} gauge",
    ]
    for path in sorted(home.glob("*/runs/*.json")):
        try:
            state = load_state(path)
        except KinfraError:
            continue  # a corrupt state is reported by `orch status`, not here
        if state is None:
            continue
        # The run's name, the metrics' milestone label: two features may both have an M1.
        labels = (("kinfra_milestone", path.stem), ("kinfra_project", path.parent.parent.name))
        lines.append(f"{QUESTIONS_OPEN}{_label_text(labels)} {len(state.open_questions())}")
    return lines


def serve(
    address: tuple[str, int], render: Callable[[], str], on_ready: Callable[[str], None]
) -> None:
    """Serve ``/metrics`` at ``address`` until interrupted."""

    class Handler(BaseHTTPRequestHandler):
        """Serves the metrics page at ``/metrics``."""

        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] != "/metrics":
                self.send_error(404, "only /metrics is served")
                return
            body = render().encode("utf-8")
            self.send_response(200)
            self.send_header("content-type", CONTENT_TYPE)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per scrape would drown the terminal

    from kinfra.errors import OrchestratorError

    try:
        server = ThreadingHTTPServer(address, Handler)
    except OSError as exc:
        raise OrchestratorError(
            f"cannot listen on {address[0]}:{address[1]}: {exc.strerror or exc}",
            hint="pick another address with --listen HOST:PORT",
        ) from exc
    server.daemon_threads = True
    try:
        host, port = str(server.server_address[0]), int(server.server_address[1])
        on_ready(f"http://{host}:{port}/metrics")
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
