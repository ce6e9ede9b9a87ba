"""The one subprocess wrapper.

Every external command (git, docker, op, tmux...) goes through ``run``. It
returns the exit code and the captured output; with ``check=True`` a non-zero
exit raises ``CommandError``, whose text shows the command, the code and the
tail of its output, so a failure deep in a workflow still says what happened.
The environment merge and the staged stop of a streamed command come from
``kinfra.adapters.process``, the one place for process control.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kinfra.adapters.process import StopReason, child_env, stop_group, stream_process
from kinfra.errors import KinfraError

_TAIL_LINES = 20


@dataclass(frozen=True)
class Result:
    """A finished command: its arguments, exit code and captured output."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def output(self) -> str:
        """stderr and stdout together, for messages."""
        return "\n".join(part for part in (self.stderr.strip(), self.stdout.strip()) if part)


class CommandError(KinfraError):
    """An external command exited non-zero; the message has the command, exit code, output tail."""

    def __init__(self, result: Result, hint: str | None = None) -> None:
        self.result = result
        tail = "\n".join(result.output.splitlines()[-_TAIL_LINES:])
        message = f"command failed (exit {result.returncode}): {shlex.join(result.args)}"
        if tail:
            message += "\n" + tail
        super().__init__(message, hint)


class CommandNotFoundError(KinfraError):
    """The program to run is not on PATH."""

    def __init__(self, program: str) -> None:
        super().__init__(f"{program} is not installed (not found on PATH)")
        self.program = program


def installed(program: str) -> bool:
    """Whether ``program`` is an executable on PATH (shutil.which's question,
    without importing shutil and its compression modules at every start)."""
    for directory in os.get_exec_path():
        candidate = os.path.join(directory, program)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return True
    return False


def run(
    args: Sequence[str | Path],
    *,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    capture: bool = True,
    input: str | None = None,
    timeout: float | None = None,
    stdin_file: Path | None = None,
    stdout_file: Path | None = None,
) -> Result:
    """Run a command to completion.

    ``env`` is added to the current environment, not a replacement for it.
    With ``capture=False`` the command shares our stdout/stderr (for logs -f,
    shells) and the result carries empty output. ``stdin_file`` and
    ``stdout_file`` connect the command to files, byte for byte (a tar
    stream); stderr is still captured.
    """
    argv = tuple(str(a) for a in args)
    with contextlib.ExitStack() as files:
        streams: dict[str, Any] = {"capture_output": capture}
        if stdout_file is not None:
            out = files.enter_context(stdout_file.open("wb"))
            streams = {"stdout": out, "stderr": subprocess.PIPE}
        if stdin_file is not None:
            streams["stdin"] = files.enter_context(stdin_file.open("rb"))
        return _run(argv, cwd, child_env(env), input, timeout, check, streams)


def _run(
    argv: tuple[str, ...],
    cwd: Path | str | None,
    env: dict[str, str] | None,
    input: str | None,
    timeout: float | None,
    check: bool,
    streams: dict[str, Any],
) -> Result:
    try:
        proc = subprocess.run(
            argv,
            cwd=cwd,
            env=env,
            input=input,
            text=True,
            timeout=timeout,
            check=False,
            **streams,
        )
    except FileNotFoundError as exc:
        if exc.filename in (argv[0], None):
            raise CommandNotFoundError(argv[0]) from exc
        raise
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        result = Result(argv, -1, out, err + f"\n(timed out after {timeout}s)")
        raise CommandError(result) from exc
    result = Result(argv, proc.returncode, proc.stdout or "", proc.stderr or "")
    if check and not result.ok:
        raise CommandError(result)
    return result


def stream(
    args: Sequence[str | Path],
    *,
    on_line: Callable[[str], None],
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    grace: float = 10.0,
) -> Result:
    """Run a command, handing each output line (stdout and stderr merged) to
    ``on_line`` as it arrives, for progress display; the full output is kept
    in the result for error messages. The command runs in its own process
    group: when the caller is interrupted (or ``on_line`` fails), the whole
    group is stopped (INT, TERM, KILL), as a terminal's Ctrl-C would, rather
    than waited for."""
    argv = tuple(str(a) for a in args)
    lines: list[str] = []

    def keep(line: str) -> None:
        lines.append(line)
        on_line(line)

    proc = stream_process(argv, cwd=cwd, on_line=keep, env=env, grace=grace, merge_stderr=True)
    if proc.stop is StopReason.NOT_FOUND:
        raise CommandNotFoundError(argv[0])
    code = proc.returncode if proc.returncode is not None else -1
    result = Result(argv, code, "", "\n".join(lines))
    if check and not result.ok:
        raise CommandError(result)
    return result


def pipe(
    first: Sequence[str | Path],
    second: Sequence[str | Path],
    *,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    grace: float = 10.0,
) -> Result:
    """``first | second`` (``docker save … | docker --context X load``): bytes
    flow between the two processes without passing through Python.

    The result is the first failing command's (the producer's when both
    fail), else the consumer's, so an error names the step that broke.
    """
    args_a = tuple(str(a) for a in first)
    args_b = tuple(str(a) for a in second)
    full_env = child_env(env)
    # Each in its own process group, as every child that may be stopped: the
    # staged stop below reaches it and anything it started.
    try:
        producer = subprocess.Popen(
            args_a, env=full_env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, start_new_session=True,
        )  # fmt: skip
    except FileNotFoundError as exc:
        raise CommandNotFoundError(args_a[0]) from exc
    assert producer.stdout is not None
    try:
        consumer = subprocess.Popen(
            args_b, env=full_env, stdin=producer.stdout, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, start_new_session=True,
        )  # fmt: skip
    except FileNotFoundError as exc:
        stop_group(producer.pid, grace, proc=producer)
        raise CommandNotFoundError(args_b[0]) from exc
    # The consumer owns the read end now: if it dies, the producer gets SIGPIPE.
    producer.stdout.close()
    try:
        out_b, err_b = consumer.communicate()
        assert producer.stderr is not None
        err_a = producer.stderr.read()
        producer.stderr.close()
        code_a = producer.wait()
    except BaseException:
        # Interrupted: stop both (INT, TERM, KILL) rather than wait for them.
        for proc in (producer, consumer):
            stop_group(proc.pid, grace, proc=proc)
        raise
    if code_a != 0:
        result = Result(args_a, code_a, "", err_a.decode(errors="replace"))
    else:
        result = Result(
            args_b, consumer.returncode, out_b.decode(errors="replace"),
            err_b.decode(errors="replace"),
        )  # fmt: skip
    if check and not result.ok:
        raise CommandError(result)
    return result
