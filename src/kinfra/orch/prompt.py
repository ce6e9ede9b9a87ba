"""The task prompt: what the agent is asked to do and how to report back."""

from __future__ import annotations

from collections.abc import Mapping

from kinfra.orch.plan import Plan, Task

STATUS_CONTRACT = """\
When you stop, end your final message with these lines (and nothing after them):

STATUS: done | needs_human | blocked
QUESTION: <only with needs_human: the one decision you need from a human>
SUMMARY: <one or two lines: what you did>

Use `done` only when every acceptance criterion holds and the tests pass.
Use `needs_human` when a decision is not yours to make (ambiguous requirement,
destructive action, missing access). Use `blocked` when something outside the
task prevents progress. Only your final message is read."""


def task_prompt(
    plan: Plan,
    task: Task,
    *,
    slot_env: Mapping[str, str],
    test_command: str | None,
    previous_error: str | None = None,
    previous_summary: str | None = None,
) -> str:
    parts = [
        f"You are implementing Task {task.id} of milestone {plan.milestone}"
        + (f" ({plan.title})" if plan.title else "")
        + f", from the plan {plan.source}.",
        "Work only on this task, in the current directory (a git worktree).",
        "",
        "## The task (verbatim from the plan)",
        "",
        task.text,
    ]
    if task.acceptance:
        parts += ["", "## Acceptance criteria (all must hold)", ""]
        parts += [f"- {c.text}" for c in task.acceptance]
    if slot_env:
        parts += ["", "## This worktree's running sandbox (use these, not default ports)", ""]
        parts += [f"- {key}={value}" for key, value in sorted(slot_env.items())]
    if test_command:
        parts += ["", f"## Tests\n\nRun the project's tests with: `{test_command}`"]
    if previous_error or previous_summary:
        parts += ["", "## Previous attempt", ""]
        if previous_error:
            parts.append(f"A previous attempt at this task did not finish: {previous_error}")
        if previous_summary:
            parts.append(f"Its summary of what it did: {previous_summary}")
        parts.append("Check the state of the worktree before continuing.")
    parts += ["", "## Reporting", "", STATUS_CONTRACT]
    return "\n".join(parts) + "\n"


def resume_prompt(task: Task, reason: str, *, asked: bool = False) -> str:
    if asked:
        opening = (
            f"You stopped Task {task.id} ({task.title}) to ask for a human ({reason}). "
            "The human has looked at it: continue the task with the most reasonable "
            "choice, and say which one you made in your SUMMARY."
        )
    else:
        opening = (
            f"Your work on Task {task.id} ({task.title}) was interrupted ({reason}). "
            "Continue where you left off: check what is already done in the worktree, "
            "finish the task and verify its acceptance criteria."
        )
    return opening + "\n\n" + STATUS_CONTRACT + "\n"
