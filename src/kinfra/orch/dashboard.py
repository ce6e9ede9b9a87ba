"""The Grafana dashboard for orchestrator runs (``kinfra orch dashboard``).

Every panel queries the series ``kinfra orch metrics`` serves (see
``kinfra.orch.metrics`` for the names); tests evaluate each panel's PromQL
against a real Prometheus fed by runs of the bundled plans. Pure: builds a
JSON document.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

UID = "kinfra-orchestrator"
TITLE = "kinfra orchestrator"
_P = 'kinfra_project=~"$project"'  # every query follows the dashboard's project choice


@dataclass(frozen=True)
class Query:
    """One PromQL query of a panel, and its legend."""

    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    """One panel of the Grafana dashboard."""

    title: str
    kind: str  # Grafana panel type: stat, timeseries, barchart, table
    queries: tuple[Query, ...]
    unit: str = "short"
    description: str = ""


def _sum_increase(metric: str, by: str = "", where: str = "", window: str = "$__range") -> str:
    selector = f"{metric}{{{_P}{',' + where if where else ''}}}"
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} (increase({selector}[{window}]))"


def _ratio(metric: str, good: str) -> str:
    return f"{_sum_increase(metric, where=good)} / {_sum_increase(metric)}"


def _quantile(q: float, metric: str, by: str = "", window: str = "$__rate_interval") -> str:
    grouping = f"le, {by}" if by else "le"
    return f"histogram_quantile({q}, sum by ({grouping}) (rate({metric}_bucket{{{_P}}}[{window}])))"


PANELS: tuple[Panel, ...] = (
    Panel(
        "Task success rate",
        "stat",
        (Query(_ratio("kinfra_orch_tasks_total", 'kinfra_task_status="done"'), "done"),),
        "percentunit",
        "Tasks that ended done, of all tasks that reached a status in a run.",
    ),
    Panel(
        "E2E pass rate",
        "stat",
        (Query(_ratio("kinfra_orch_e2e_runs_total", 'kinfra_e2e_result="pass"'), "pass"),),
        "percentunit",
        "E2E runs that passed, of all E2E runs (each fix is followed by a run).",
    ),
    Panel(
        "Task duration P95",
        "timeseries",
        (
            Query(_quantile(0.95, "kinfra_orch_task_duration_seconds"), "P95"),
            Query(_quantile(0.5, "kinfra_orch_task_duration_seconds"), "P50"),
        ),
        "s",
        "From a task's first attempt to its final status, retries included.",
    ),
    Panel(
        "Agent attempt duration P95",
        "timeseries",
        (
            Query(
                _quantile(0.95, "gen_ai_client_operation_duration_seconds", "gen_ai_agent_name"),
                "{{gen_ai_agent_name}}",
            ),
        ),
        "s",
        "One agent invocation (gen_ai.client.operation.duration, invoke_agent).",
    ),
    Panel(
        "Loops detected",
        "stat",
        (Query(_sum_increase("kinfra_orch_loops_total"), "loops"),),
        description="The same failure twice in a row: retries stopped, a human asked.",
    ),
    Panel(
        "Escalations by kind",
        "barchart",
        (
            Query(
                _sum_increase("kinfra_orch_escalations_total", "kinfra_question_kind"),
                "{{kinfra_question_kind}}",
            ),
        ),
        description="Questions for a human: asked by the agent, blocked, loop, "
        "attempts exhausted, E2E fixes exhausted.",
    ),
    Panel(
        "Time to answer",
        "stat",
        (
            Query(_quantile(0.5, "kinfra_orch_question_wait_seconds", window="$__range"), "median"),
            Query(_quantile(1.0, "kinfra_orch_question_wait_seconds", window="$__range"), "max"),
        ),
        "s",
        "How long questions waited for their answer.",
    ),
    Panel(
        "Open questions",
        "stat",
        (Query(f"sum(kinfra_orch_questions_open{{{_P}}})", "open"),),
        description="Questions waiting for `kinfra orch answer` now.",
    ),
    Panel(
        "Attempts by outcome",
        "barchart",
        (
            Query(
                _sum_increase("kinfra_orch_attempts_total", "kinfra_outcome"), "{{kinfra_outcome}}"
            ),
        ),
    ),
    Panel(
        "Retries by reason",
        "barchart",
        (
            Query(
                _sum_increase("kinfra_orch_retries_total", "kinfra_retry_reason"),
                "{{kinfra_retry_reason}}",
            ),
        ),
        description="Failed attempts that were retried automatically.",
    ),
    Panel(
        "API backoff waits",
        "stat",
        (
            Query(
                _sum_increase("kinfra_orch_backoff_waits_total", "kinfra_api_error"),
                "{{kinfra_api_error}}",
            ),
        ),
        description="Waits after an API error (rate limited, overloaded, 5xx): no attempt used.",
    ),
    Panel(
        "Time waiting for the API",
        "stat",
        (Query(_sum_increase("kinfra_orch_backoff_time_seconds_total"), "waited"),),
        "s",
    ),
    Panel(
        "E2E fix attempts",
        "stat",
        (Query(_sum_increase("kinfra_orch_e2e_fixes_total", "kinfra_milestone"), "fixes"),),
    ),
    Panel(
        "Cost over time",
        "timeseries",
        (
            Query(
                _sum_increase(
                    "kinfra_orch_cost_usd_total", "kinfra_milestone", window="$__rate_interval"
                ),
                "{{kinfra_milestone}}",
            ),
        ),
        "currencyUSD",
        "As the agents reported it (Codex reports tokens only).",
    ),
    Panel(
        "Tokens over time",
        "timeseries",
        (
            Query(
                _sum_increase(
                    "gen_ai_client_token_usage_sum", "gen_ai_token_type", window="$__rate_interval"
                ),
                "{{gen_ai_token_type}}",
            ),
        ),
    ),
    Panel(
        "Cost per task",
        "table",
        (
            Query(
                _sum_increase("kinfra_orch_cost_usd_total", "kinfra_milestone, kinfra_task_id"),
                "{{kinfra_milestone}} {{kinfra_task_id}}",
            ),
        ),
        "currencyUSD",
    ),
    Panel(
        "Tokens per milestone",
        "table",
        (
            Query(
                _sum_increase(
                    "gen_ai_client_token_usage_sum", "kinfra_milestone, gen_ai_token_type"
                ),
                "{{kinfra_milestone}} {{gen_ai_token_type}}",
            ),
        ),
    ),
)


def dashboard() -> dict[str, Any]:
    """The dashboard, as Grafana imports it (a ``datasource`` and a
    ``project`` variable; panels two to a row)."""
    source = {"type": "prometheus", "uid": "${datasource}"}
    panels = []
    x = y = 0
    for index, panel in enumerate(PANELS):
        width = 24 if panel.kind == "table" else 12
        if x + width > 24:
            x, y = 0, y + 8
        grid = {"h": 8, "w": width, "x": x, "y": y}
        x += width
        panels.append(
            {
                "id": index + 1,
                "type": panel.kind,
                "title": panel.title,
                "description": panel.description,
                "datasource": source,
                "gridPos": grid,
                "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
                "options": {},
                "targets": [
                    {
                        "refId": chr(ord("A") + n),
                        "datasource": source,
                        "expr": query.expr,
                        "legendFormat": query.legend,
                        "instant": panel.kind in ("stat", "barchart", "table"),
                        "range": panel.kind == "timeseries",
                    }
                    for n, query in enumerate(panel.queries)
                ],
            }
        )
    return {
        "uid": UID,
        "title": TITLE,
        "tags": ["kinfra"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "time": {"from": "now-7d", "to": "now"},
        "refresh": "1m",
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "type": "datasource",
                    "query": "prometheus",
                    "label": "Prometheus",
                },
                {
                    "name": "project",
                    "type": "query",
                    "label": "project",
                    "datasource": source,
                    "query": "label_values(kinfra_orch_attempts_total, kinfra_project)",
                    "includeAll": True,
                    "multi": True,
                    "allValue": ".*",
                    "current": {"text": "All", "value": "$__all"},
                    "refresh": 2,
                },
            ]
        },
        "panels": panels,
    }


def panel_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) for every query of every panel."""
    return [(p.title, q.expr) for p in PANELS for q in p.queries]
