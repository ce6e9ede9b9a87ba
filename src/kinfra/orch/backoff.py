"""API errors: waited out on a schedule, never counted as attempts (seed 001).

When an agent stops because its model API failed (rate limited, overloaded,
5xx, connection lost; after the CLI's own short retries), the task is tried
again after ``[orchestrator] backoff`` seconds (default 30, 60, 120, 300,
600), each retry continuing the same session. When the agent reported when a
rate limit resets, that time is waited for instead. After the last wait the
task fails (exit 1; ``resume`` starts the schedule again).

Both adapters' outputs are recognised here, from the real CLIs' texts:
Claude Code ends with a result ``is_error`` (``API Error: Request rejected
(429) ...``, ``terminal_reason: api_error``); Codex with ``turn.failed``
(``exceeded retry limit, last status: 429 Too Many Requests``, ``unexpected
status 529 ...``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from kinfra.orch.agents.base import AgentOutcome, AgentResult

MAX_RESET_WAIT = 7 * 24 * 3600.0  # a reported reset further away than this is not believed


class ApiErrorKind(str, Enum):
    """The kind of API failure an agent stopped on, as waits and messages name it."""

    RATE_LIMITED = "rate_limited"
    OVERLOADED = "overloaded"
    SERVER_ERROR = "server_error"
    CONNECTION = "connection"

    @property
    def label(self) -> str:
        return {
            ApiErrorKind.RATE_LIMITED: "API rate limited",
            ApiErrorKind.OVERLOADED: "API overloaded",
            ApiErrorKind.SERVER_ERROR: "API server error",
            ApiErrorKind.CONNECTION: "API unreachable",
        }[self]


@dataclass(frozen=True)
class ApiFailure:
    """An API failure in an agent's result: its kind, HTTP status, and when a limit resets."""

    kind: ApiErrorKind
    status: int | None
    reset_at: float | None  # epoch seconds, when the agent said when a limit resets


@dataclass(frozen=True)
class Wait:
    """The wait before retry ``number`` of ``of``."""

    seconds: float
    number: int
    of: int
    failure: ApiFailure

    def message(self, remaining: float) -> str:
        """``API rate limited: retry 3/5 in 120 s``."""
        return f"{self.failure.kind.label}: retry {self.number}/{self.of} in {_duration(remaining)}"


_STATUS = re.compile(
    r"(?:\((\d{3})\)|status:?\s*(\d{3})\b|API Error:\s*(\d{3})\b|\b(\d{3}) Too Many Requests"
    r"|\b(5\d\d) (?:Internal Server Error|Bad Gateway|Service Unavailable|Gateway Timeout))",
    re.I,
)
_RATE = re.compile(r"rate.?limit|too many requests|usage limit|\b429\b", re.I)
_OVERLOAD = re.compile(r"overloaded|\b529\b", re.I)
_SERVER = re.compile(
    r"\b5\d\d\b|internal server error|bad gateway|service unavailable|api_error", re.I
)
_CONNECTION = re.compile(
    r"connection (?:error|refused|reset|closed)|econnrefused|econnreset|network error"
    r"|error sending request|stream disconnected|timed out",
    re.I,
)
# Codex on a failed API call; Claude Code's API_ERROR outcome needs no pattern.
_CODEX_API = re.compile(
    r"exceeded retry limit|unexpected status \d{3}|stream disconnected|error sending request",
    re.I,
)


def api_failure(result: AgentResult, now: float | None = None) -> ApiFailure | None:
    """The API failure that ended this attempt, or None when it ended otherwise."""
    text = result.error or ""
    if result.outcome is not AgentOutcome.API_ERROR and not (
        result.outcome in (AgentOutcome.ERROR, AgentOutcome.CRASHED) and _CODEX_API.search(text)
    ):
        return None
    status = None
    for match in _STATUS.finditer(text):
        code = int(next(g for g in match.groups() if g))
        if code == 429 or 500 <= code <= 599:
            status = code
    if status == 429 or _RATE.search(text):
        kind = ApiErrorKind.RATE_LIMITED
    elif status == 529 or _OVERLOAD.search(text):
        kind = ApiErrorKind.OVERLOADED
    elif status is not None or _SERVER.search(text):
        kind = ApiErrorKind.SERVER_ERROR
    elif _CONNECTION.search(text):
        kind = ApiErrorKind.CONNECTION
    else:
        kind = ApiErrorKind.SERVER_ERROR
    return ApiFailure(kind, status, reset_time(text, now if now is not None else time.time()))


_EPOCH = re.compile(r"limit reached\|(\d{10})\b", re.I)
_IN = re.compile(
    r"(?:try again|retry|resets?) (?:in|after)\s+((?:\d+(?:\.\d+)?\s*"
    r"(?:ms|milliseconds?|s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?)\b[\s,and]*)+)",
    re.I,
)
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]+)", re.I)
_AT = re.compile(
    r"(?:try again at|resets?(?: at)?)\s+(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2})?(?:Z|[+-]\d{2}:?\d{2})?"
    r"|\d{1,2}(?::\d{2})?\s*(?:am|pm)?)",
    re.I,
)
_RETRY_AFTER = re.compile(r"retry-after:?\s*(\d+(?:\.\d+)?)", re.I)


def reset_time(text: str, now: float) -> float | None:
    """When the agent's text says a rate limit resets (epoch seconds), or None.

    Known forms: Claude Code's ``usage limit reached|<epoch>`` and ``resets
    3pm``; Codex's ``try again in 1.5s`` / ``try again at 3:05 PM``; an
    explicit ``retry-after: 30``."""
    match = _EPOCH.search(text)
    if match:
        return _believable(float(match.group(1)), now)
    match = _IN.search(text)
    if match:
        total = 0.0
        for amount, unit in _PART.findall(match.group(1)):
            total += float(amount) * _unit_seconds(unit)
        return _believable(now + total, now)
    match = _RETRY_AFTER.search(text)
    if match:
        return _believable(now + float(match.group(1)), now)
    match = _AT.search(text)
    if match:
        return _believable(_clock_time(match.group(1), now), now)
    return None


def _unit_seconds(unit: str) -> float:
    unit = unit.lower()
    if unit in ("ms",) or unit.startswith("milli"):
        return 0.001
    if unit.startswith("h"):
        return 3600.0
    if unit in ("m",) or unit.startswith("min"):
        return 60.0
    return 1.0


def _clock_time(text: str, now: float) -> float | None:
    """The next moment (local time) the clock shows ``text``, or an ISO time."""
    text = text.strip()
    if "-" in text:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        return moment.timestamp() if moment.tzinfo else moment.astimezone().timestamp()
    match = re.fullmatch(r"(\d{1,2})(?::(\d{2}))?\s*(am|pm)?", text, re.I)
    if not match or (match.group(2) is None and match.group(3) is None):
        return None  # a bare number is not a clock time
    hour, minute = int(match.group(1)), int(match.group(2) or 0)
    meridiem = (match.group(3) or "").lower()
    if meridiem:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if meridiem == "pm" else 0)
    if hour > 23 or minute > 59:
        return None
    current = datetime.fromtimestamp(now).astimezone()
    moment = current.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if moment.timestamp() <= now:
        moment += timedelta(days=1)
    return moment.timestamp()


def _believable(moment: float | None, now: float) -> float | None:
    if moment is None or moment <= now or moment - now > MAX_RESET_WAIT:
        return None
    return moment


def next_wait(
    schedule: Sequence[float], waited_before: int, failure: ApiFailure, now: float
) -> Wait | None:
    """The wait before the next retry, after ``waited_before`` retries of the
    same task in this run; None when the schedule is used up."""
    if waited_before >= len(schedule):
        return None
    seconds = float(schedule[waited_before])
    if failure.reset_at is not None:
        seconds = max(failure.reset_at - now, 0.0) + 1.0  # a second's margin past the reset
    return Wait(seconds, waited_before + 1, len(schedule), failure)


def sleep(
    wait: Wait,
    on_tick: Callable[[str], None],
    clock: Callable[[], float] = time.monotonic,
    nap: Callable[[float], None] = time.sleep,
) -> None:
    """Wait, telling ``on_tick`` the remaining time once a second. Ctrl-C
    interrupts it (the run's state was saved before the wait began)."""
    end = clock() + wait.seconds
    while True:
        remaining = end - clock()
        if remaining <= 0:
            return
        on_tick(wait.message(remaining))
        nap(min(1.0, remaining))


def _duration(seconds: float) -> str:
    seconds = max(round(seconds), 0)
    if seconds <= 600:  # the default schedule's waits read as written: "in 120 s"
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
