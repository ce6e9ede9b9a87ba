"""Step markers, so that a test can interrupt kinfra at each step of its life.

With ``KINFRA_TRACE=FILE`` every step of `impl`, `done` and every atomic
state-file write appends one line ``<step> <pid> <time>`` to FILE. With
``KINFRA_TRACE_STOP=<step>`` (a shell pattern; ``<step>#N`` for its Nth
occurrence) the
process that reaches that step stops itself (SIGSTOP) right after writing the
line: the test sees the line, sees the process stopped, and kills it (or its
process group) exactly there, with no sleep and no race. Unset, a step costs
one dictionary lookup.
"""

from __future__ import annotations

import os
import signal
import time

TRACE_ENV = "KINFRA_TRACE"
STOP_ENV = "KINFRA_TRACE_STOP"

_seen: dict[str, int] = {}


def step(name: str) -> None:
    path = os.environ.get(TRACE_ENV)
    if not path:
        return
    count = _seen.get(name, 0) + 1
    _seen[name] = count
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{name} {os.getpid()} {time.time():.3f}\n".encode())
    finally:
        os.close(fd)
    stop = os.environ.get(STOP_ENV)
    if stop and _matches(name, count, stop):
        os.kill(os.getpid(), signal.SIGSTOP)


def _matches(name: str, count: int, stop: str) -> bool:
    """``stop`` is a step name (a shell pattern: a scratch directory's name
    is not known in advance), with ``#N`` for its Nth occurrence."""
    from fnmatch import fnmatchcase

    pattern, _, nth = stop.partition("#")
    return fnmatchcase(name, pattern) and count == int(nth or 1)
