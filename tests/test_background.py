"""Background runs one call on a thread and hands back its value or its error."""

from __future__ import annotations

import threading

import pytest

from kinfra.background import Background
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
