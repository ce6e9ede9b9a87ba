"""kinfra orch ...: run a milestone plan with a headless coding agent.

Exit codes of run/resume: 0 all tasks (and the E2E) done, 1 a task failed
(resume tries it again), 4 a human is needed (answer with ``kinfra orch
answer``), 130/143 interrupted.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from kinfra.cli.clickutil import Group, argument

if TYPE_CHECKING:
    from kinfra.orch.runloop import RunEvent, RunOptions, RunSummary
    from kinfra.orch.state import Question

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

    def _live(self, line: str) -> None:
        sys.stderr.write("\r\x1b[K" + line[:150])
        sys.stderr.flush()
        self.shown = True

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
            self._live(line)
            return
        if event.kind == "waiting":
            if self.tty:  # once a second; without a terminal the note said it once
                self._live(f"  {event.task_id}  {event.message}")
            return
        self._clear()
        if event.kind == "note":
            render.note(event.message)
        elif event.kind == "task_start" and event.attempt is not None:
            how = " (continuing its session)" if event.attempt.resumed_session else ""
            render.plain(
                f"▶ {_what(event.task_id)}: {event.message} — attempt {event.attempt.number}{how}",
                err=True,
            )
        elif event.kind == "task_end" and event.status is not None and event.attempt:
            a = event.attempt
            figures = f"{a.duration or 0:.1f}s, {a.turns or 0} turns" + (
                f", ${a.cost_usd:.2f}" if a.cost_usd is not None else ""
            )
            mark = "✓" if event.status.value == "done" else "✗"
            text = f"{mark} {_what(event.task_id)} {event.status.value} ({figures})"
            if event.message:
                text += f": {event.message}"
            render.plain(text, err=True)
        elif event.kind == "question":
            render.plain(f"? {_what(event.task_id)} asks: {event.message}", err=True)
        elif event.kind == "e2e_start":
            render.plain(f"▶ E2E: {event.message}", err=True)
        elif event.kind == "e2e_end":
            mark = "✓" if event.message.startswith("E2E passed") else "✗"
            render.plain(f"{mark} {event.message}", err=True)


def _what(task_id: str | None) -> str:
    if task_id in ("E2E", "E2E-fix"):
        return "E2E fix" if task_id == "E2E-fix" else "E2E"
    return f"task {task_id}"


def _terminal_ask(question: Question) -> str | None:
    """Ask on the terminal; the answer ends with an empty line (or EOF)."""
    from kinfra.cli import render

    render.plain(
        f"\n? {_what(question.task_id)} needs an answer ({question.kind.value}):\n"
        f"  {question.text}\n"
        "Your answer (end with an empty line; nothing to stop and answer later):",
        err=True,
    )
    lines: list[str] = []
    for line in sys.stdin:
        if not line.strip():
            break
        lines.append(line.rstrip("\n"))
    return "\n".join(lines) or None


def _terminal_confirm(prompt: str) -> bool:
    return click.confirm(prompt, default=True, err=True)


def _terminal(options: RunOptions, ask: bool, confirm_fixes: bool) -> RunOptions:
    """The run's terminal hooks: questions asked there (--ask, or the config's
    ask, takes effect only on a terminal) and --confirm-fixes."""
    from dataclasses import replace

    from kinfra.cli import render
    from kinfra.errors import KinfraError

    tty = sys.stdin.isatty()
    if ask and not tty:
        render.note("--ask needs a terminal: a question ends the run with exit 4, as without it")
    if confirm_fixes and not tty:
        raise KinfraError(
            "--confirm-fixes needs a terminal to ask on",
            hint="run it in a terminal, or leave --confirm-fixes out",
        )
    return replace(
        options,
        ask=ask,
        asker=_terminal_ask if tty else None,
        confirm_fix=_terminal_confirm if confirm_fixes else None,
    )


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
    e2e = " and its E2E passed" if summary.state.e2e.status.value == "passed" else ""
    render.ok(f"milestone {summary.milestone}: all tasks done{e2e}")


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
@click.option(
    "--ask", is_flag=True, help="Ask questions here, on the terminal, instead of exiting 4."
)
@click.option("--confirm-fixes", is_flag=True, help="Ask before each fix after a failed E2E.")
def run_command(
    plan: Path,
    agent: str | None,
    max_turns: int | None,
    model: str | None,
    task_timeout: float | None,
    workdir: Path | None,
    restart: bool,
    in_container: bool,
    ask: bool,
    confirm_fixes: bool,
) -> None:
    """Run every task of a plan, in order, then its E2E step; stop at the
    first that is not done."""
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
    options = _terminal(options, ask, confirm_fixes)
    _run(lambda: run_plan(options, on_event=_Live()))


@app.command("resume")
@_PLAN
@click.option("--workdir", type=click.Path(path_type=Path), help="The worktree to work in.")
@click.option(
    "--ask", is_flag=True, help="Ask questions here, on the terminal, instead of exiting 4."
)
@click.option("--confirm-fixes", is_flag=True, help="Ask before each fix after a failed E2E.")
def resume_command(plan: Path, workdir: Path | None, ask: bool, confirm_fixes: bool) -> None:
    """Continue a run from its first task that is not done (an answered
    question goes to the agent first)."""
    from kinfra.orch.runloop import RunOptions, run_plan

    options = _terminal(RunOptions(plan_path=plan, workdir=workdir), ask, confirm_fixes)
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
    from kinfra.orch.escalation import format_wait

    for entry in entries:
        if entry.get("run_id") is None:
            render.out(f"{entry['milestone']}: never run")
            continue
        counts = entry["counts"]
        running = f", running (pid {entry['running_pid']})" if entry["running_pid"] else ""
        e2e = entry["e2e"]
        e2e_text = ""
        if e2e["runs"] or e2e["status"] != "pending":
            e2e_text = f", E2E {e2e['status']} ({len(e2e['runs'])} runs, {e2e['fixes']} fixes)"
        render.out(
            f"{entry['milestone']}: {counts['done']}/{sum(counts.values())} done{e2e_text}, "
            f"${entry['cost_usd']:.2f}{running}  run {entry['run_id']}  updated {entry['updated']}"
        )
        for question in entry["questions"]:
            if question["open"]:
                where = "E2E" if question["task"] == "E2E" else f"task {question['task']}"
                render.out(
                    f"  ? {where} ({question['kind']}), waiting {format_wait(question['waiting_seconds'])}: "
                    f"{question['question'][:200]}"
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
        for run in e2e["runs"]:
            evidence = (run["evidence"] or "").strip().splitlines()
            render.out(
                f"  E2E run {run['number']} ({run['mode']}): {run['result'] or 'no verdict'}"
                + (f" — {evidence[-1][:100]}" if evidence else "")
            )


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
            _e2e_cell(r),
            f"{r['duration']:.0f}s",
            f"${r['cost_usd']:.2f}",
            r["run_id"],
        ]
        for r in runs
    ]
    render.table(
        ["started", "milestone", "outcome", "tasks", "tries", "e2e", "time", "cost", "run"], rows
    )


def _e2e_cell(run: dict[str, Any]) -> str:
    if not run.get("e2e"):
        return "-"
    return f"{run['e2e']} ({run.get('e2e_runs') or 0} runs, {run.get('e2e_fixes') or 0} fixes)"


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


@app.command("answer")
@_PLAN
@argument("text", required=False, help='The answer ("-" reads it from stdin).')
@click.option(
    "--file", "answer_file", type=click.Path(path_type=Path), help="Read the answer from a file."
)
@click.option("--workdir", type=click.Path(path_type=Path), help=_WORKDIR_HELP)
def answer_command(
    plan: Path, text: str | None, answer_file: Path | None, workdir: Path | None
) -> None:
    """Answer the milestone's open question; the next run/resume gives it to
    the agent, verbatim, in the session that asked."""
    from kinfra.cli import render
    from kinfra.errors import KinfraError
    from kinfra.orch.escalation import format_wait, record_answer

    if (text is None) == (answer_file is None):
        raise KinfraError(
            "give the answer once: as TEXT, as - (stdin), or with --file F",
            hint='kinfra orch answer PLAN "use EUR"',
        )
    if answer_file is not None:
        try:
            text = answer_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise KinfraError(f"cannot read the answer from {answer_file}: {exc}") from None
    elif text == "-":
        text = sys.stdin.read()
    assert text is not None
    receipt = record_answer(plan, text, workdir)
    question = receipt.question
    render.ok(
        f"answered question {question.number} of {receipt.milestone} "
        f"(task {question.task_id}, waited {format_wait(question.wait or 0)})"
    )
    render.note(f"`kinfra orch resume {receipt.plan}` gives the answer to the agent")


@app.command("questions")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def questions_command(as_json: bool) -> None:
    """Every open question on this machine, oldest first."""
    from kinfra.cli import render
    from kinfra.orch.escalation import format_wait, machine_questions

    listed = machine_questions()
    found = listed.questions
    for problem in listed.unreadable:
        render.warn(problem)
    if as_json:
        render.print_json([_question_json(q) for q in found])
        return
    if not found:
        render.out("no open questions")
        return
    rows = [
        [
            q.project,
            q.milestone,
            q.question.task_id,
            q.question.kind.value,
            format_wait(q.waited),
            q.question.text[:80],
        ]
        for q in found
    ]
    render.table(["project", "milestone", "task", "kind", "waiting", "question"], rows)


def _question_json(q: Any) -> dict[str, Any]:
    return {
        "project": q.project,
        "milestone": q.milestone,
        "plan": q.plan,
        "state": str(q.state_path),
        "number": q.question.number,
        "task": q.question.task_id,
        "kind": q.question.kind.value,
        "question": q.question.text,
        "asked": q.question.asked,
        "waiting_seconds": round(q.waited, 1),
        "session_id": q.question.session_id,
    }


@app.command("metrics")
@click.option(
    "--listen",
    metavar="HOST:PORT",
    help="Serve /metrics there for Prometheus to scrape (e.g. 127.0.0.1:9464).",
)
def metrics_command(listen: str | None) -> None:
    """The orchestrator metrics of every project on this machine, in
    Prometheus's text format (printed once, or served with --listen)."""
    from kinfra.cli import render
    from kinfra.errors import KinfraError
    from kinfra.orch.metrics import MetricsCollector, serve
    from kinfra.paths import kinfra_home

    collector = MetricsCollector(kinfra_home())
    if listen is None:
        render.out(collector.render(), end="")
        return
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise KinfraError(f"--listen {listen!r} is not HOST:PORT", hint="e.g. 127.0.0.1:9464")
    serve(
        (host.strip("[]") or "127.0.0.1", int(port)),
        collector.render,
        lambda url: render.note(f"serving {url} (Ctrl-C stops)"),
    )


@app.command("dashboard")
@click.option(
    "-o", "--output", type=click.Path(path_type=Path), help="Write it to this file (else stdout)."
)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def dashboard_command(output: Path | None, force: bool) -> None:
    """The Grafana dashboard (JSON) for `kinfra orch metrics` in Prometheus."""
    import json

    from kinfra.cli import render
    from kinfra.errors import KinfraError
    from kinfra.orch.dashboard import dashboard

    text = json.dumps(dashboard(), indent=2) + "\n"
    if output is None:
        render.out(text, end="")
        return
    if output.exists() and not force:
        raise KinfraError(f"{output} exists", hint="pass --force to overwrite it")
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise KinfraError(f"cannot write {output}: {exc.strerror or exc}") from None
    render.ok(f"wrote {output} (import it in Grafana; its datasource is your Prometheus)")
