"""The one subprocess wrapper."""

from __future__ import annotations

import time

import pytest

from kinfra.adapters.runner import CommandError, CommandNotFoundError, pipe, run, stream


def test_run_reports_command_code_and_output() -> None:
    with pytest.raises(CommandError) as failed:
        run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    message = failed.value.message
    assert "exit 3" in message and "sh -c" in message
    assert "out" in message and "err" in message
    assert run(["sh", "-c", "exit 3"], check=False).returncode == 3


def test_missing_program_is_its_own_error() -> None:
    with pytest.raises(CommandNotFoundError):
        run(["kinfra-no-such-program-xyz"])


def test_interrupted_stream_stops_a_silent_child_instead_of_waiting() -> None:
    # The child prints once, then stays silent for a minute: when the reader
    # is interrupted, the child must be stopped, not waited for.
    def interrupt(line: str) -> None:
        raise KeyboardInterrupt

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        stream(["sh", "-c", "echo ready; exec sleep 60"], on_line=interrupt)
    assert time.monotonic() - started < 20


def test_pipe_passes_bytes_and_names_the_step_that_failed() -> None:
    result = pipe(["sh", "-c", "head -c 300000 /dev/zero"], ["wc", "-c"])
    assert result.stdout.strip() == "300000"
    with pytest.raises(CommandError, match=r"exit 4.*echo broken"):
        pipe(["sh", "-c", "echo broken >&2; exit 4"], ["cat"])
    with pytest.raises(CommandError, match="exit 5"):
        pipe(["sh", "-c", "echo data"], ["sh", "-c", "cat >/dev/null; exit 5"])
