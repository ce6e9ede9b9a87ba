"""Notifications: ``[orchestrator] notify = "<command>"``.

The command runs (``sh -c``, in the worktree) on these events: a question was
asked, a loop was detected, a task failed, the E2E failed, the milestone is
done. It gets the event in environment variables (``KINFRA_EVENT``,
``KINFRA_MILESTONE``, ``KINFRA_TASK``, ``KINFRA_QUESTION``,
``KINFRA_RUN_STATE``: the run state file) and as one JSON object on stdin, so
a one-line ``curl`` to ntfy or Slack, or a ``notify-send``, is enough.

A notifier that fails or hangs is reported as a note and never stops the run.
The event holds only kinfra's own fields, and the project's secrets are
redacted from the agent's words in it (a question can quote anything).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

NOTIFY_TIMEOUT = 30.0  # seconds; a hung notifier is stopped, the run goes on


class Event(str, Enum):
    """What a notification is sent for (``KINFRA_EVENT``)."""

    QUESTION = "question"  # a human must answer (asked, blocked, attempts or fixes exhausted)
    LOOP = "loop_detected"
    TASK_FAILED = "task_failed"
    E2E_FAILED = "e2e_failed"
    MILESTONE_DONE = "milestone_done"


@dataclass(frozen=True)
class Notice:
    """One notification: the event and the run it is about, as the notify command gets it."""

    event: Event
    project: str
    milestone: str
    run_id: str
    plan: str
    state_path: Path
    task: str | None = None
    question: str | None = None
    message: str = ""

    def redacted(self, secrets: Iterable[str]) -> Notice:
        from dataclasses import replace

        from kinfra.adapters.secrets import redact

        values = list(secrets)
        return replace(
            self,
            question=redact(self.question, values) if self.question else self.question,
            message=redact(self.message, values),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "event": self.event.value,
            "project": self.project,
            "milestone": self.milestone,
            "task": self.task,
            "question": self.question,
            "message": self.message,
            "run_id": self.run_id,
            "plan": self.plan,
            "run_state": str(self.state_path),
        }

    def environment(self) -> dict[str, str]:
        return {
            "KINFRA_EVENT": self.event.value,
            "KINFRA_PROJECT": self.project,
            "KINFRA_MILESTONE": self.milestone,
            "KINFRA_TASK": self.task or "",
            "KINFRA_QUESTION": self.question or "",
            "KINFRA_MESSAGE": self.message,
            "KINFRA_RUN_ID": self.run_id,
            "KINFRA_RUN_STATE": str(self.state_path),
        }


def send(command: str, notice: Notice, *, cwd: Path, secrets: Iterable[str] = ()) -> str | None:
    """Run the notifier; a one-line problem when it failed (never raises)."""
    from kinfra.adapters.runner import CommandError, CommandNotFoundError, run

    clean = notice.redacted(secrets)
    try:
        result = run(
            ["sh", "-c", command],
            cwd=cwd,
            env=clean.environment(),
            input=json.dumps(clean.to_json()) + "\n",
            check=False,
            timeout=NOTIFY_TIMEOUT,
        )
    except CommandError:
        return f"notifier timed out after {NOTIFY_TIMEOUT:g} s (event {notice.event.value})"
    except (CommandNotFoundError, OSError) as exc:
        return f"notifier could not start: {exc} (event {notice.event.value})"
    if not result.ok:
        tail = (result.stderr or result.stdout).strip().splitlines()
        detail = f": {tail[-1][:200]}" if tail else ""
        return f"notifier failed (exit {result.returncode}, event {notice.event.value}){detail}"
    return None


def secret_values(workdir: Path) -> list[str]:
    """The project's secret values known on the host without a network call
    (literals, env://, dotenv://, and the ``op://`` ones its running slots'
    secrets files hold), to redact from an event."""
    from kinfra.adapters.secrets import SECRETS_FILE, local_values
    from kinfra.domain.slot import parse_env_file
    from kinfra.errors import KinfraError
    from kinfra.project import find_project

    try:
        project = find_project(workdir)
    except KinfraError:
        return []
    config = project.config
    values = local_values(config.secrets, config.root)
    for slot_id in range(1, config.sandbox.pool_size + 1):
        path = project.slot(slot_id).directory / SECRETS_FILE
        try:
            values += parse_env_file(path.read_text(encoding="utf-8")).values()
        except (OSError, UnicodeDecodeError):
            continue
    return values
