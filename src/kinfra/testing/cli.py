"""Run the real kinfra CLI as a subprocess, the way a user does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from kinfra.adapters.process import child_env


def kinfra(
    cwd: Path,
    *args: str,
    env: dict[str, str] | None = None,
    input: str | None = None,
    timeout: float = 240,
) -> subprocess.CompletedProcess[str]:
    """`python -m kinfra ARGS` as a real process; never a traceback."""
    result = subprocess.run(
        [sys.executable, "-m", "kinfra", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=child_env(env or {}),
        input=input,
        timeout=timeout,
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert "internal error" not in result.stderr, result.stderr
    return result


def ok(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run kinfra, require exit 0, return stdout."""
    result = kinfra(cwd, *args, env=env)
    assert result.returncode == 0, f"kinfra {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def assert_one_error_line(
    result: subprocess.CompletedProcess[str], code: int, *needles: str
) -> None:
    """A refusal as the README promises it: exit ``code``, one
    ``kinfra: error:`` line (a hint may follow), nothing on stdout, no
    traceback, and the error naming what is wrong."""
    shown = f"exit {result.returncode}\n{result.stdout}{result.stderr}"
    assert result.returncode == code, shown
    lines = result.stderr.rstrip("\n").splitlines()
    assert lines and lines[0].startswith("kinfra: error: "), shown
    assert all(line.startswith("  hint: ") for line in lines[1:]), shown
    assert result.stdout == "", shown
    for needle in needles:
        assert needle in lines[0], shown
