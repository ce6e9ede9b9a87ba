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


def resume_prompt(task: Task, reason: str) -> str:
    """For an attempt cut short (interrupted, max turns, a timeout): go on."""
    opening = (
        f"Your work on Task {task.id} ({task.title}) was interrupted ({reason}). "
        "Continue where you left off: check what is already done in the worktree, "
        "finish the task and verify its acceptance criteria."
    )
    return opening + "\n\n" + STATUS_CONTRACT + "\n"


# --- autonomy: answers, retries, the E2E step ----------------------------------------------


def answer_prompt(what: str, question: str, answer: str) -> str:
    """The human's answer, verbatim, back into the session that asked."""
    return (
        f"A human answered the question you asked while working on {what}.\n\n"
        f"Your question: {question}\n\n"
        "The answer, verbatim:\n\n"
        f"{answer}\n\n"
        "Continue with this answer, finish the work and verify it.\n\n" + STATUS_CONTRACT + "\n"
    )


def retry_prompt(task: Task, number: int, allowed: int, failure: str, detail: str | None) -> str:
    """What the next attempt is told about the failed one."""
    parts = [
        f"Your attempt at Task {task.id} ({task.title}) failed: {failure}",
    ]
    if detail:
        parts += ["", "The end of the output:", "", "```", detail, "```"]
    parts += [
        "",
        f"This is attempt {number} of {allowed}. Find the cause in the worktree, fix it, "
        "and verify every acceptance criterion before you report done.",
        "",
        STATUS_CONTRACT,
    ]
    return "\n".join(parts) + "\n"


E2E_CONTRACT = """\
When you stop, end your final message with these lines (and nothing after them):

E2E: pass | fail
EVIDENCE: <what you ran and what it returned, for each step>

Report `pass` only when every step gave its expected result, with the output
that shows it. Do not change any file in this step: only run the test."""


def e2e_prompt(plan: Plan, slot_env: Mapping[str, str]) -> str:
    """The agent runs the plan's E2E section(s) against the running sandbox."""
    parts = [
        f"Run the E2E test of milestone {plan.milestone}"
        + (f" ({plan.title})" if plan.title else "")
        + f", from the plan {plan.source}, against this worktree's running sandbox.",
        "Every task of the milestone is done; this step checks the result end to end.",
    ]
    for section in plan.e2e:
        parts += ["", f"## {section.name}", "", section.text]
    if slot_env:
        parts += ["", "## The sandbox (use these, not default ports)", ""]
        parts += [f"- {key}={value}" for key, value in sorted(slot_env.items())]
    parts += ["", "## Reporting", "", E2E_CONTRACT]
    return "\n".join(parts) + "\n"


def e2e_fix_prompt(plan: Plan, number: int, allowed: int, evidence: str) -> str:
    """After a failed E2E run: fix the code so that the E2E passes."""
    title = f" ({plan.title})" if plan.title else ""
    parts = [
        f"The E2E test of milestone {plan.milestone}{title} failed against this worktree's "
        "running sandbox. Find the cause in the code and fix it, so that the E2E passes.",
        "",
        "What the E2E run reported:",
        "",
        "```",
        evidence.strip() or "(no output)",
        "```",
    ]
    if plan.e2e:
        parts += ["", "The E2E test (verbatim from the plan):"]
        for section in plan.e2e:
            parts += ["", f"## {section.name}", "", section.text]
    parts += [
        "",
        f"This is fix {number} of at most {allowed}; the E2E runs again after it.",
        "",
        STATUS_CONTRACT,
    ]
    return "\n".join(parts) + "\n"
