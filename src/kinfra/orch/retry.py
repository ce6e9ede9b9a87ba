"""Retry policy and loop detection (seed 001 M4).

A failed attempt (the check failed, no STATUS block, max turns, a crash, a
timeout, denied tools...) is retried, up to ``[orchestrator] max_attempts``
per task. The count runs across resumes and is never reset by them; only a
human's answer starts a new budget. Two consecutive failures with the same
*signature* (the failure's text normalized: no timestamps, paths, ids or
numbers) stop the retries early: a loop. Both endings become a question for
a human (exit 4). API errors are not attempts: ``backoff`` waits them out.

Pure: the decisions are functions of the task's recorded attempts.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from kinfra.orch.state import Attempt

_PATTERNS = (
    # ISO dates and times, clock times, durations like 1.5s / 200ms
    (
        re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?"),
        "<time>",
    ),
    (re.compile(r"\b\d{4}-\d{2}-\d{2}\b"), "<date>"),
    (re.compile(r"\b\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\b"), "<time>"),
    # uuids and long hex ids (commits, request ids, addresses)
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I), "<id>"),
    (re.compile(r"\b0x[0-9a-f]+\b", re.I), "<id>"),
    (re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,}\b", re.I), "<id>"),
    # paths: absolute, home-relative, ./ and ../, and dir/dir/file forms
    (re.compile(r"(?:~|\.{1,2})?/?(?:[\w.+@-]+/)+[\w.+@-]*|(?:~|\.{1,2})?/[\w.+@-]+"), "<path>"),
    (re.compile(r"\d+(?:\.\d+)?"), "<n>"),
)
_SPACE = re.compile(r"\s+")
DETAIL_LIMIT = 4000  # characters of check output kept for the next attempt


def normalize_failure(text: str) -> str:
    """The failure's text without what changes between two runs of the same
    failure (timestamps, paths, ids, numbers), lower case, spaces collapsed."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return _SPACE.sub(" ", text).strip().lower()


def failure_signature(text: str) -> str:
    return hashlib.sha256(normalize_failure(text).encode("utf-8")).hexdigest()[:16]


def output_tail(output: str, lines: int = 40) -> str:
    """The last ``lines`` lines of a command's output, at most DETAIL_LIMIT characters."""
    tail = "\n".join(output.rstrip().splitlines()[-lines:])
    return tail[-DETAIL_LIMIT:]


class Verdict(str, Enum):
    """What follows a failed attempt: another attempt, or a human (a loop, attempts used up)."""

    RETRY = "retry"
    LOOP = "loop"  # the same failure twice in a row: ask a human
    EXHAUSTED = "exhausted"  # max_attempts failed attempts: ask a human


@dataclass(frozen=True)
class Decision:
    """The retry policy's verdict on a task, the count behind it, and the question for a human."""

    verdict: Verdict
    used: int  # failed attempts counted against the budget
    allowed: int
    question: str | None = None  # what the human is asked, when not RETRY


def budget(attempts: Sequence[Attempt]) -> list[Attempt]:
    """The failed attempts that count: those since the last attempt that was
    given a human's answer (that one included)."""
    start = 0
    for index, attempt in enumerate(attempts):
        if attempt.answered is not None:
            start = index
    return [a for a in attempts[start:] if a.counts]


def decide(attempts: Sequence[Attempt], max_attempts: int, what: str = "task") -> Decision:
    """After a failed attempt (the last of ``attempts``): retry, or stop and ask."""
    failed = budget(attempts)
    used = len(failed)
    if used >= 2 and failed[-1].signature and failed[-1].signature == failed[-2].signature:
        last = failed[-1]
        return Decision(
            Verdict.LOOP,
            used,
            max_attempts,
            f"loop detected: the {what} failed the same way twice in a row "
            f"(attempts {failed[-2].number} and {last.number}): {describe(last)}. "
            "What should change?",
        )
    if used >= max_attempts:
        return Decision(
            Verdict.EXHAUSTED,
            used,
            max_attempts,
            f"the {what} failed {used} times (max_attempts = {max_attempts}); "
            f"the last failure: {describe(failed[-1])}. What should change?",
        )
    return Decision(Verdict.RETRY, used, max_attempts)


def describe(attempt: Attempt) -> str:
    """One line about a failed attempt: its error, else its outcome."""
    return (attempt.error or attempt.outcome or "failed").splitlines()[0][:300]


def retry_reason(attempt: Attempt) -> str:
    """A low-cardinality name for why an attempt failed (a metric label)."""
    if attempt.outcome and attempt.outcome != "success":
        return attempt.outcome
    error = attempt.error or ""
    if error.startswith("check "):
        return "check_failed"
    if "STATUS" in error:
        return "no_status"
    return "failed"
