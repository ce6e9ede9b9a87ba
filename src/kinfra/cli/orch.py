"""kinfra orch ...: run a milestone plan with a headless coding agent.

Exit codes of run/resume: 0 all tasks done, 1 a task failed (resume tries it
again), 4 a task needs a human or is blocked, 130/143 interrupted.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from kinfra.cli.clickutil import Group, argument

if TYPE_CHECKING:
    from kinfra.orch.runloop import RunEvent, RunSummary

app = Group(
    "orch",
    help="Run a milestone plan task by task with a headless coding agent "
    "(resumable, locked, observable).",
    no_args_is_help=True,
)

_PLAN = argument("plan", type=click.Path(path_type=Path), help="The milestone plan (markdown).")
_WORKDIR_HELP = "A checkout of the project."


class _Live:
    """Task lines, plus one live line while a task runs (on a terminal)."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.shown = False

    def _clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
            self.shown = False

    def __call__(self, event: RunEvent) -> None:
        from kinfra.cli import render

        if event.kind == "progress" and event.progress is not None:
            if not self.tty:
                return
            p = event.progress
            minutes, seconds = divmod(int(p.elapsed), 60)
            cost = f"${p.cost_usd:.2f}" if p.cost_usd is not None else "$-"
            line = f"  {event.task_id}  {minutes:02d}:{seconds:02d}  turns {p.turns}  {cost}"
            if p.note or p.last_tool:
                line += f"  {p.note or p.last_tool}"  # a wait for the API says why it is quiet
            sys.stderr.write("\r\x1b[K" + line[:150])
            sys.stderr.flush()
            self.shown = True
            return
        self._clear()
        if event.kind == "note":
            render.note(event.message)
        elif event.kind == "task_start" and event.attempt is not None:
            how = " (continuing its session)" if event.attempt.resumed_session else ""
            render.plain(
                f"▶ task {event.task_id}: {event.message} — attempt {event.attempt.number}{how}",
                err=True,
            )
        elif event.kind == "task_end" and event.status is not None and event.attempt:
            a = event.attempt
            figures = f"{a.duration or 0:.1f}s, {a.turns or 0} turns" + (
                f", ${a.cost_usd:.2f}" if a.cost_usd is not None else ""
            )
            mark = "✓" if event.status.value == "done" else "✗"
            text = f"{mark} task {event.task_id} {event.status.value} ({figures})"
            if event.message:
                text += f": {event.message}"
            render.plain(text, err=True)


def _run(summary_fn: Any) -> None:
    from kinfra.cli import render

    summary: RunSummary = summary_fn()
    counts = summary.state.counts()
    total = sum(counts.values())
    render.out(
        f"{summary.milestone}: {counts['done']}/{total} tasks done, "
        f"${summary.state.cost_usd:.2f} so far (run {summary.run_id}, state {summary.state_path})"
    )
    summary.raise_for_outcome()
    render.ok(f"milestone {summary.milestone}: all tasks done")


@app.command("run")
@_PLAN
@click.option("--agent", help="claude, codex or command.")
@click.option("--max-turns", type=click.IntRange(min=1), help="Per attempt.")
@click.option("--model", help="The agent's model.")
@click.option(
    "--task-timeout", type=click.FloatRange(min=1), help="Seconds per attempt (wall clock)."
)
@click.option(
    "--workdir",
    type=click.Path(path_type=Path),
    help="The worktree to work in (default: the one you stand in).",
)
@click.option("--restart", is_flag=True, help="Replace an existing run's state.")
@click.option(
    "--in-container",
    is_flag=True,
    help='Run each attempt in the worktree\'s agent container ([orchestrator] sandbox = "container"); '
    "resume keeps it.",
)
def run_command(
    plan: Path,
    agent: str | None,
    max_turns: int | None,
    model: str | None,
    task_timeout: float | None,
    workdir: Path | None,
    restart: bool,
    in_container: bool,
) -> None:
    """Run every task of a plan, in order, stopping at the first that is not done."""
    from kinfra.orch.runloop import RunOptions, run_plan

    options = RunOptions(
        plan_path=plan,
        workdir=workdir,
        agent=agent,
        max_turns=max_turns,
        model=model,
        task_timeout=task_timeout,
        restart=restart,
        in_container=in_container,
    )
    _run(lambda: run_plan(options, on_event=_Live()))


@app.command("resume")
@_PLAN
@click.option("--workdir", type=click.Path(path_type=Path), help="The worktree to work in.")
def resume_command(plan: Path, workdir: Path | None) -> None:
    """Continue a run from its first task that is not done."""
    from kinfra.orch.runloop import RunOptions, run_plan

    options = RunOptions(plan_path=plan, workdir=workdir)
    _run(lambda: run_plan(options, resume=True, on_event=_Live()))


@app.command("plan")
@_PLAN
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plan_command(plan: Path, as_json: bool) -> None:
    """Show what the parser reads in a plan (or report why it cannot)."""
    from kinfra.cli import render
    from kinfra.orch.plan import plan_to_dict, read_plan

    parsed = read_plan(plan)
    if as_json:
        render.print_json(plan_to_dict(parsed))
        return
    render.out(f"milestone {parsed.milestone}: {parsed.title}  ({len(parsed.tasks)} tasks)")
    rows = [
        [t.id, t.title, t.type or "-", str(len(t.acceptance)), str(t.line)] for t in parsed.tasks
    ]
    render.table(["task", "title", "type", "criteria", "line"], rows)
    for section in parsed.e2e:
        where = f"in task {section.task_id}" if section.task_id else "plan-level"
        render.out(f"E2E: {section.name} ({where}, line {section.line})")
    for warning in parsed.warnings:
        render.warn(str(warning))


@app.command("status")
@argument(
    "plan", type=click.Path(path_type=Path), required=False, help="Only this plan's milestone."
)
@click.option("--workdir", type=click.Path(path_type=Path), help=_WORKDIR_HELP)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status_command(plan: Path | None, workdir: Path | None, as_json: bool) -> None:
    """Where each milestone's run stands: tasks, attempts, cost."""
    from kinfra.cli import render
    from kinfra.orch.report import run_status

    entries = run_status(plan, workdir)
    if as_json:
        render.print_json(entries)
        return
    if not entries:
        render.out("no orchestrator runs in this project yet")
        return
    for entry in entries:
        if entry.get("run_id") is None:
            render.out(f"{entry['milestone']}: never run")
            continue
        counts = entry["counts"]
        running = f", running (pid {entry['running_pid']})" if entry["running_pid"] else ""
        render.out(
            f"{entry['milestone']}: {counts['done']}/{sum(counts.values())} done, "
            f"${entry['cost_usd']:.2f}{running}  run {entry['run_id']}  updated {entry['updated']}"
        )
        if plan is None:
            continue
        rows = []
        for task in entry["tasks"]:
            detail = task["question"] or task["last_error"] or ""
            rows.append(
                [
                    task["id"],
                    task["status"] + ("" if task["in_plan"] else " (removed)"),
                    str(task["attempts"]),
                    f"{task['duration']:.0f}s",
                    str(task["turns"]),
                    f"${task['cost_usd']:.2f}",
                    (task["title"] + (f" — {detail}" if detail else ""))[:90],
                ]
            )
        render.table(["task", "status", "tries", "time", "turns", "cost", "title"], rows)


@app.command("history")
@click.option(
    "-n", "limit", type=click.IntRange(min=1), default=10, show_default=True, help="How many runs."
)
@click.option("--workdir", type=click.Path(path_type=Path), help=_WORKDIR_HELP)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def history_command(limit: int, workdir: Path | None, as_json: bool) -> None:
    """The last orchestrator runs of this project, newest first."""
    from kinfra.cli import render
    from kinfra.orch.report import run_history

    runs = run_history(limit, workdir)
    if as_json:
        render.print_json(runs)
        return
    if not runs:
        render.out("no orchestrator runs recorded yet")
        return
    rows = [
        [
            r["started"],
            str(r["milestone"]),
            str(r["outcome"]),
            ",".join(str(t) for t in r["tasks"]),
            str(r["attempts"]),
            f"{r['duration']:.0f}s",
            f"${r['cost_usd']:.2f}",
            r["run_id"],
        ]
        for r in runs
    ]
    render.table(["started", "milestone", "outcome", "tasks", "tries", "time", "cost", "run"], rows)


@app.command("costs")
@click.option("--since", help="YYYY-MM-DD")
@click.option("--by-milestone", is_flag=True, help="One line per milestone.")
@click.option("--workdir", type=click.Path(path_type=Path), help=_WORKDIR_HELP)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def costs_command(
    since: str | None, by_milestone: bool, workdir: Path | None, as_json: bool
) -> None:
    """What the agents reported spending (USD and tokens)."""
    from kinfra.cli import render
    from kinfra.errors import KinfraError
    from kinfra.orch.report import run_costs

    since_date = None
    if since:
        try:
            since_date = date.fromisoformat(since)
        except ValueError:
            raise KinfraError(f"--since {since!r} is not a date", hint="use YYYY-MM-DD") from None
    result = run_costs(since_date, by_milestone, workdir)
    if as_json:
        render.print_json(result)
        return
    tokens = ", ".join(f"{k} {v:,}" for k, v in sorted(result["tokens"].items())) or "no tokens"
    render.out(
        f"{result['project']}: ${result['cost_usd']:.4f} over {result['attempts']} attempts"
        + (f" since {result['since']}" if result["since"] else "")
        + f" ({tokens})"
    )
    for entry in result["without_cost"]:
        count = entry["attempts"]
        render.note(
            f"{count} {entry['agent']} attempt{'s' if count > 1 else ''} ({entry['outcome']}) "
            f"reported no cost: {entry['why']}"
        )
    if by_milestone:
        rows = [
            [m["milestone"], f"${m['cost_usd']:.4f}", str(m["attempts"])]
            for m in result["milestones"]
        ]
        render.table(["milestone", "cost", "attempts"], rows)
