"""The orchestrator's autonomy keys of ``[orchestrator]``: how often a task is
retried, how API errors are waited out, the E2E step, notifications and
asking on the terminal (seed 001 M4/M5).

Parsed here, from the same table as the other ``[orchestrator]`` keys, so
that ``domain/config.py`` only hooks it in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kinfra.domain.config import _Table

DEFAULT_BACKOFF = (30.0, 60.0, 120.0, 300.0, 600.0)  # seed 001: 30 s -> 10 min, then give up


@dataclass(frozen=True)
class RunPolicy:
    """[orchestrator] autonomy keys: retries, API backoff, the E2E step, notifications, asking."""

    max_attempts: int = 3  # failed attempts per task before a human is asked
    backoff: tuple[float, ...] = DEFAULT_BACKOFF  # seconds between API-error retries
    e2e: str | None = None  # the E2E command; None: the agent runs the plan's E2E section
    e2e_fix_attempts: int = 5  # fixes after a failed E2E before a human is asked
    notify: str | None = None  # run on events, with KINFRA_* variables and JSON on stdin
    ask: bool = False  # ask questions on the terminal instead of exiting 4


def parse_policy(t: _Table) -> RunPolicy:
    """Read the policy keys of the ``[orchestrator]`` table ``t`` (its caller
    calls ``t.done()``, which rejects any key nobody read)."""
    backoff = t.number_list("backoff", DEFAULT_BACKOFF)
    if any(v < 0 for v in backoff):
        raise t.error("backoff", "waits must not be negative")
    if len(backoff) > 20:
        raise t.error("backoff", f"at most 20 waits, got {len(backoff)}")
    e2e = t.text("e2e", None)
    if e2e is not None and not e2e.strip():
        raise t.error("e2e", "must be a command, or left out")
    notify = t.text("notify", None)
    if notify is not None and not notify.strip():
        raise t.error("notify", "must be a command, or left out")
    attempts = t.integer("max_attempts", RunPolicy.max_attempts, minimum=1)
    if attempts > 100:
        raise t.error("max_attempts", f"at most 100, got {attempts}")
    fixes = t.integer("e2e_fix_attempts", RunPolicy.e2e_fix_attempts, minimum=0)
    if fixes > 100:
        raise t.error("e2e_fix_attempts", f"at most 100, got {fixes}")
    return RunPolicy(
        max_attempts=attempts,
        backoff=backoff,
        e2e=e2e,
        e2e_fix_attempts=fixes,
        notify=notify,
        ask=t.flag("ask", False),
    )
