"""Choosing port bases that fit the whole machine: pure, no I/O.

A project's named port ``p`` with base ``b`` publishes ``b + N`` for slot N
(0 = local-prod) up to the pool size, so a base claims the range
``b .. b + pool_size``. A base fits when that range stays within 65535,
meets no other range of the same project, no port of any other project's
slots (``reserved``), and no port something listens on now (``busy``).

The search is deterministic: the compose file's own host port first (moved
to ``HIGH_RANGE + port`` when it is privileged, under 1024), then upwards in
steps of ``range_step(pool_size)`` (the pool's span rounded up to ten, so
bases read 8000, 8010, 8020...), wrapping to ``HIGH_RANGE`` at the top.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

PRIVILEGED_BELOW = 1024
HIGH_RANGE = 10000  # where privileged ports go: 80 -> 10080, 443 -> 10443, 22 -> 10022
MAX_PORT = 65535


def range_step(pool_size: int) -> int:
    return -(-(pool_size + 1) // 10) * 10


@dataclass(frozen=True)
class BaseChoice:
    """A port base that fits, and why it is not the one wanted (when it is not)."""

    base: int
    why_moved: str | None  # None when the wanted port itself fits


def choose_base(
    wanted: int,
    pool_size: int,
    mine: Mapping[str, int],
    reserved: Mapping[int, str],
    busy: Callable[[int], bool],
) -> BaseChoice:
    """The first base from ``wanted`` on that fits.

    ``mine`` are the bases already chosen for this project's other ports
    (name -> base); ``reserved`` maps every other project's host port to its
    owner, for messages; ``busy`` says whether something listens on a port.
    """
    start = wanted if wanted >= PRIVILEGED_BELOW else HIGH_RANGE + wanted
    why = None if start == wanted else f"host port {wanted} is privileged"
    step = range_step(pool_size)
    candidate = start
    for _ in range(2 * MAX_PORT // step + 2):
        clash = _clash(candidate, pool_size, mine, reserved, busy)
        if clash is None:
            return BaseChoice(candidate, why)
        why = why or f"host port {wanted} {clash}"
        candidate += step
        if candidate + pool_size > MAX_PORT:
            candidate = HIGH_RANGE
    raise ValueError(f"no base fits a pool of {pool_size} on this machine")


def _clash(
    base: int,
    pool_size: int,
    mine: Mapping[str, int],
    reserved: Mapping[int, str],
    busy: Callable[[int], bool],
) -> str | None:
    """Why ``base`` does not fit, or None."""
    if base + pool_size > MAX_PORT:
        return f"would pass {MAX_PORT}"
    for name, other in mine.items():
        if abs(base - other) <= pool_size:
            return f"overlaps port '{name}'"
    ports = slot_ports(base, pool_size)
    for port in ports:
        if port in reserved:
            return (
                f"belongs to {reserved[port]}"
                if port == base
                else (f"meets port {port} of {reserved[port]}")
            )
    for port in ports:
        if busy(port):
            return "is in use now" if port == base else f"meets port {port}, in use now"
    return None


@dataclass(frozen=True)
class PortRequest:
    """One named port to place: its name and the host port it would like."""

    name: str
    wanted: int


def plan_bases(
    requests: Sequence[PortRequest],
    pool_size: int,
    reserved: Mapping[int, str],
    busy: Callable[[int], bool],
) -> list[BaseChoice]:
    """A base for each request, in order, none meeting another or ``reserved``."""
    chosen: dict[str, int] = {}
    result = []
    for request in requests:
        choice = choose_base(request.wanted, pool_size, chosen, reserved, busy)
        chosen[request.name] = choice.base
        result.append(choice)
    return result


def slot_ports(base: int, pool_size: int) -> Iterable[int]:
    return range(base, base + pool_size + 1)
