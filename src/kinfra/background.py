"""One call run on a thread while the caller does something else (and a map
over a few such threads).

For quick commands that overlap two independent subprocesses: lighter to
import than ``concurrent.futures`` (which pulls in logging, ~4 ms at start).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
A = TypeVar("A")


class Background(Generic[T]):
    """Starts ``function(*args)`` at once; ``result()`` waits for it and
    returns its value or raises its exception in the caller's thread."""

    def __init__(self, function: Callable[..., T], *args: object) -> None:
        self._value: tuple[T] | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(function, args), daemon=True)
        self._thread.start()

    def _run(self, function: Callable[..., T], args: tuple[object, ...]) -> None:
        try:
            self._value = (function(*args),)
        except BaseException as exc:  # handed to the caller by result()
            self._error = exc

    def result(self) -> T:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._value is not None  # no error, so the function returned
        return self._value[0]


def map_in_threads(function: Callable[[A], T], items: Sequence[A], threads: int) -> list[T]:
    """``[function(item) for item in items]``, spread over at most ``threads``
    threads (subprocesses side by side, a bounded number at once), in order.
    The first error met is raised in the caller's thread."""
    lanes = [
        Background(_each, function, items[first::threads])
        for first in range(min(threads, len(items)))
    ]
    results: list[T] = []
    answers = [lane.result() for lane in lanes]
    for index in range(len(items)):
        results.append(answers[index % threads][index // threads])
    return results


def _each(function: Callable[[A], T], items: Sequence[A]) -> list[T]:
    return [function(item) for item in items]
