"""Background runs one call on a thread and hands back its value or its error."""

from __future__ import annotations

import threading

import pytest

from kinfra.background import Background, map_in_threads
from kinfra.errors import GitError


def test_value_comes_back_from_another_thread() -> None:
    seen: list[str] = []

    def work(a: int, b: int) -> int:
        seen.append(threading.current_thread().name)
        return a + b

    assert Background(work, 2, 3).result() == 5
    assert seen and seen[0] != threading.main_thread().name


def test_error_is_raised_in_the_caller() -> None:
    def fail() -> None:
        raise GitError("git status failed: boom")

    with pytest.raises(GitError, match="boom"):
        Background(fail).result()


def test_none_is_a_value() -> None:
    assert Background(lambda: None).result() is None


def test_map_in_threads_keeps_the_order_and_bounds_the_threads() -> None:
    lock = threading.Lock()
    running: list[str] = []

    def work(item: int) -> int:
        with lock:
            running.append(threading.current_thread().name)
        return item * 10

    assert map_in_threads(work, list(range(7)), threads=3) == [0, 10, 20, 30, 40, 50, 60]
    assert len(set(running)) == 3
    assert map_in_threads(work, [], threads=3) == []
    assert map_in_threads(work, [4], threads=3) == [40]


def test_map_in_threads_raises_the_first_error() -> None:
    def work(item: int) -> int:
        if item == 2:
            raise GitError(f"git status failed on {item}")
        return item

    with pytest.raises(GitError, match="failed on 2"):
        map_in_threads(work, [1, 2, 3], threads=2)
