"""Readers for ``kinfra orch status``, ``history`` and ``costs``.

``status`` reads the run state files (and whether a live process holds each
milestone's lock); ``history`` and ``costs`` read the telemetry JSON lines,
where every agent attempt is a span carrying its cost and tokens. Nothing here
writes.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from kinfra.adapters.lock import lock_holder
from kinfra.orch.context import RunContext, resolve_context, run_key
from kinfra.orch.plan import read_plan
from kinfra.orch.state import Question, RunState, load_state
from kinfra.orch.telemetry import read_records

_ATTEMPT_SPAN = "invoke_agent "
_RUN_SPAN = "invoke_workflow "


def _context(workdir: Path | None) -> RunContext:
    return resolve_context(workdir)


def run_status(plan_path: Path | None = None, workdir: Path | None = None) -> list[dict[str, Any]]:
    """One entry per milestone with a state file (or only the given plan's)."""
    ctx = _context(workdir)
    if plan_path is not None:
        plan = read_plan(plan_path)
        keys = [(run_key(plan_path, plan.milestone), plan.milestone)]
    else:
        keys = [(p.stem, p.stem) for p in sorted(ctx.runs_dir.glob("*.json"))]
    result: list[dict[str, Any]] = []
    for key, milestone in keys:
        state = load_state(ctx.state_path(key))
        if state is None:
            if plan_path is not None:
                result.append({"milestone": milestone, "state": None, "tasks": []})
            continue
        holder = lock_holder(ctx.lock_path(key))
        result.append(_state_entry(state, holder.pid if holder else None))
    return result


def _state_entry(state: RunState, running_pid: int | None) -> dict[str, Any]:
    tasks = []
    for task in state.tasks:
        last = task.last
        tasks.append(
            {
                "id": task.id,
                "title": task.title,
                "status": task.status.value,
                "in_plan": task.in_plan,
                "attempts": len(task.attempts),
                "cost_usd": task.cost_usd,
                "tokens": task.tokens,
                "turns": task.turns,
                "duration": round(task.duration, 3),
                "session_id": last.session_id if last else None,
                "last_error": task.last_error,
                "question": last.question if last else None,
                "note": last.note if last else None,
                "failed_attempts": sum(1 for a in task.attempts if a.counts),
                "api_errors": sum(1 for a in task.attempts if a.api_error),
                "signature": last.signature if last else None,
            }
        )
    counts = state.counts()
    return {
        "milestone": state.milestone,
        "run_id": state.run_id,
        "plan": state.plan_path,
        "agent": state.agent,
        "workdir": state.workdir,
        "created": state.created,
        "updated": state.updated,
        "running_pid": running_pid,
        "counts": counts,
        "cost_usd": state.cost_usd,
        "tasks": tasks,
        "e2e": _e2e_entry(state),
        "questions": [_question_entry(q) for q in state.questions],
    }


def _e2e_entry(state: RunState) -> dict[str, Any]:
    e2e = state.e2e
    last = e2e.last_run
    return {
        "status": e2e.status.value,
        "runs": [
            {
                "number": r.number,
                "mode": r.mode,
                "result": r.result.value if r.result else None,
                "started": r.started,
                "ended": r.ended,
                "evidence": r.evidence,
            }
            for r in e2e.runs
        ],
        "fixes": len(e2e.fixes),
        "cost_usd": e2e.cost_usd,
        "last_result": last.result.value if last and last.result else None,
    }


def _question_entry(q: Question) -> dict[str, Any]:
    from kinfra.orch.escalation import seconds_since

    waited = seconds_since(q.asked) if q.open else None
    return {
        "number": q.number,
        "task": q.task_id,
        "kind": q.kind.value,
        "question": q.text,
        "asked": q.asked,
        "open": q.open,
        "waiting_seconds": round(waited, 1) if waited is not None else None,
        "answer": q.answer,
        "answered": q.answered,
        "time_to_answer": q.wait,
        "delivered": q.delivered,
    }


def _spans(ctx: RunContext) -> list[dict[str, Any]]:
    paths = sorted(ctx.runs_dir.glob("*.telemetry.jsonl"))
    return [r for r in read_records(paths) if r.get("kind") == "span"]


def run_history(limit: int = 10, workdir: Path | None = None) -> list[dict[str, Any]]:
    """The last ``limit`` orchestrator executions, newest first. A run whose
    process was killed has no run span; its attempts still tell its story."""
    ctx = _context(workdir)
    runs: dict[str, dict[str, Any]] = {}
    for span in _spans(ctx):
        attrs = span.get("attributes") or {}
        run_id = attrs.get("kinfra.run.id")
        if not isinstance(run_id, str):
            continue
        entry = runs.setdefault(
            run_id,
            {
                "run_id": run_id,
                "milestone": attrs.get("kinfra.milestone"),
                "run_key": attrs.get("kinfra.run_key"),
                "started": span["start"],
                "ended": span["end"],
                "outcome": None,
                "e2e": None,
                "tasks": [],
                "attempts": 0,
                "cost_usd": 0.0,
            },
        )
        entry["started"] = min(entry["started"], span["start"])
        entry["ended"] = max(entry["ended"], span["end"])
        name = str(span.get("name", ""))
        if name.startswith(_RUN_SPAN):
            entry["outcome"] = attrs.get("kinfra.outcome")
            entry["run_key"] = attrs.get("kinfra.run_key") or entry["run_key"]
            entry["tasks_done"] = attrs.get("kinfra.tasks.done")
            entry["tasks_total"] = attrs.get("kinfra.tasks.total")
            entry["e2e"] = attrs.get("kinfra.e2e.status")
            entry["e2e_runs"] = attrs.get("kinfra.e2e.runs")
            entry["e2e_fixes"] = attrs.get("kinfra.e2e.fixes")
        elif name.startswith(_ATTEMPT_SPAN):
            entry["attempts"] += 1
            entry["cost_usd"] = math.fsum([entry["cost_usd"], _cost(attrs)])
            task = attrs.get("kinfra.task.id")
            if task not in entry["tasks"]:
                entry["tasks"].append(task)
    ordered = sorted(runs.values(), key=lambda e: float(e["started"]), reverse=True)[:limit]
    for entry in ordered:
        if entry["outcome"] is None:
            key = entry.get("run_key") or entry["milestone"]
            holder = lock_holder(ctx.lock_path(str(key)))
            entry["outcome"] = (
                "running" if holder and holder.run_id == entry["run_id"] else "interrupted"
            )
        entry["duration"] = round(entry["ended"] - entry["started"], 3)
        entry["started"] = _iso(entry["started"], ms=True)
        entry["ended"] = _iso(entry["ended"])
    return ordered


def run_costs(
    since: date | None = None, by_milestone: bool = False, workdir: Path | None = None
) -> dict[str, Any]:
    """Cost and tokens of every agent attempt (since a date), as the agent reported them."""
    ctx = _context(workdir)
    threshold = (
        datetime(since.year, since.month, since.day, tzinfo=UTC).timestamp() if since else None
    )
    costs: list[float] = []
    tokens: dict[str, int] = {}
    attempts = 0
    unknown: dict[tuple[str, str], int] = {}  # (agent, outcome) -> attempts without cost
    groups: dict[str, dict[str, Any]] = {}
    for span in _spans(ctx):
        if not str(span.get("name", "")).startswith(_ATTEMPT_SPAN):
            continue
        if threshold is not None and float(span.get("start", 0)) < threshold:
            continue
        attrs = span.get("attributes") or {}
        attempts += 1
        cost = attrs.get("kinfra.cost_usd")
        if not isinstance(cost, int | float):
            agent = str(span.get("name", "")).removeprefix(_ATTEMPT_SPAN) or "?"
            why = (agent, str(attrs.get("kinfra.outcome") or "?"))
            unknown[why] = unknown.get(why, 0) + 1
        costs.append(_cost(attrs))
        span_tokens = {
            key.removeprefix("kinfra.tokens."): int(value)
            for key, value in attrs.items()
            if key.startswith("kinfra.tokens.") and isinstance(value, int)
        }
        for kind, count in span_tokens.items():
            tokens[kind] = tokens.get(kind, 0) + count
        if by_milestone:
            key = str(attrs.get("kinfra.milestone"))
            group = groups.setdefault(
                key, {"milestone": key, "costs": [], "attempts": 0, "tokens": {}}
            )
            group["costs"].append(_cost(attrs))
            group["attempts"] += 1
            for kind, count in span_tokens.items():
                group["tokens"][kind] = group["tokens"].get(kind, 0) + count
    result: dict[str, Any] = {
        "project": ctx.project,
        "since": since.isoformat() if since else None,
        "cost_usd": math.fsum(costs),
        "attempts": attempts,
        "attempts_without_cost": sum(unknown.values()),
        "without_cost": [
            {
                "agent": agent,
                "outcome": outcome,
                "attempts": count,
                "why": _no_cost_reason(agent, outcome),
            }
            for (agent, outcome), count in sorted(unknown.items())
        ],
        "tokens": tokens,
    }
    if by_milestone:
        result["milestones"] = [
            {
                "milestone": g["milestone"],
                "cost_usd": math.fsum(g["costs"]),
                "attempts": g["attempts"],
                "tokens": g["tokens"],
            }
            for g in sorted(groups.values(), key=lambda g: str(g["milestone"]))
        ]
    return result


def _no_cost_reason(agent: str, outcome: str) -> str:
    if agent == "codex":
        return "codex reports tokens, not cost"
    if agent == "command":
        return "a command agent reports no cost"
    if outcome in ("interrupted", "timeout", "idle_timeout", "crashed"):
        return "stopped before its result event (tokens are those its stream showed)"
    if outcome == "not_found":
        return "the agent program is not installed"
    return "its result carried no cost"


def _cost(attrs: dict[str, Any]) -> float:
    value = attrs.get("kinfra.cost_usd")
    return float(value) if isinstance(value, int | float) else 0.0


def _iso(timestamp: float, ms: bool = False) -> str:
    spec = "milliseconds" if ms else "seconds"
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec=spec)
