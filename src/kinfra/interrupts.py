"""Cleanup that a second Ctrl-C cannot cut short.

The CLI turns SIGINT/SIGTERM into ``kinfra.errors.Interrupted`` (see
``kinfra.cli.main``), which unwinds the workflow so its ``except``/``finally``
blocks give back what it took. A user who presses Ctrl-C again while that
cleanup runs (waiting for a thread, stopping a stack, releasing a claim)
would interrupt the cleanup itself and leave a claim behind.
``deferred_interrupts`` holds such signals until the block is done, then
raises them.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

from kinfra.errors import Interrupted

SIGNALS = (signal.SIGINT, signal.SIGTERM)

_Handler = Callable[[int, FrameType | None], Any] | int | None


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Run the block with SIGINT/SIGTERM recorded instead of acted on.

    On exit the previous handlers are back, and if a signal arrived meanwhile
    ``Interrupted(signum)`` is raised (chained to whatever the block raised).
    Signals that were ignored stay ignored. Outside the main thread (where
    Python cannot change handlers, and where signals are never delivered)
    this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def record(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    previous: dict[signal.Signals, _Handler] = {}
    try:
        for signum in SIGNALS:
            handler = signal.getsignal(signum)
            if handler is signal.SIG_IGN:
                continue
            previous[signum] = handler
            signal.signal(signum, record)
        yield
    finally:
        for signum, handler in previous.items():
            # None: a handler not installed from Python; the default is the
            # closest we can restore.
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        if received:
            raise Interrupted(received[0])
