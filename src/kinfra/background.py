"""One call run on a thread while the caller does something else.

For quick commands that overlap two independent subprocesses: lighter to
import than ``concurrent.futures`` (which pulls in logging, ~4 ms at start).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


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
