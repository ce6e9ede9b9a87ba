"""Process control in one place: the environment a child gets, how a child is
launched, how it is read as it runs, and how it is stopped.

Every child kinfra starts goes through here (``kinfra.adapters.runner`` for
commands, the orchestrator's agents for streams):

- ``child_env``: the one environment merge (the current environment with the
  caller's variables on top);
- ``stream_process``: the child runs in its own session, hence its own process
  group, so that it and everything it spawned can be stopped together and a
  Ctrl-C in the terminal reaches kinfra only. Its stdout is read line by line as
  it comes (a reader thread feeds a queue; the calling thread applies a
  wall-clock timeout and an idle watchdog: no output for ``idle_timeout`` s);
- ``stop_group``: the one staged stop, SIGINT, then SIGTERM, then SIGKILL to
  the whole group, each after ``grace`` seconds without the group going away.
  Whatever ends a stream (exit, timeout, an exception in a callback, kinfra's
  ``Interrupted``), the group is stopped before ``stream_process`` returns.

A ``Launcher`` decides what actually runs on the host for a command and how a
stop signal reaches it. ``HOST`` runs the command as it is; a launcher that
runs it elsewhere (``docker exec`` into a container, say) rewrites the command
line and delivers the stop signals there.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import IO, Protocol

_EOF = object()
_STDERR_LINES = 40
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)


def child_env(extra: Mapping[str, str] | None) -> dict[str, str] | None:
    """The environment of a child: ours with ``extra`` on top (None: ours as it is)."""
    if extra is None:
        return None
    env = dict(os.environ)
    env.update(extra)
    return env


# --- launching ---------------------------------------------------------------------


@dataclass(frozen=True)
class Launch:
    """A command to start: argv, working directory, variables added to the environment."""

    argv: tuple[str, ...]
    cwd: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)


class Launcher(Protocol):
    """Where a command really runs and how a stop signal reaches it (``HOST``: here, as it is)."""

    def launch(self, spec: Launch) -> Launch:
        """What to start on the host to run ``spec``."""
        ...

    def send_signal(self, pgid: int, signum: int) -> None:
        """Deliver a stop signal to what was started as process group ``pgid``;
        ProcessLookupError when it is gone."""
        ...


class HostLauncher:
    """The command runs here, as it is."""

    def launch(self, spec: Launch) -> Launch:
        return spec

    def send_signal(self, pgid: int, signum: int) -> None:
        os.killpg(pgid, signum)


HOST = HostLauncher()


# --- stopping ------------------------------------------------------------------------


def stop_group(
    pgid: int,
    grace: float,
    *,
    proc: subprocess.Popen[bytes] | None = None,
    launcher: Launcher = HOST,
) -> bool:
    """Stop process group ``pgid``: SIGINT, SIGTERM, SIGKILL, each given
    ``grace`` seconds (SIGKILL at least 2). ``proc``, when we spawned the
    leader, is reaped along the way. Returns whether anything was running."""
    was_running = False
    for signum in STOP_SIGNALS:
        if proc is not None:
            proc.poll()  # reap the leader so that it does not count as alive
        if not group_alive(pgid):
            break
        was_running = True
        try:
            launcher.send_signal(pgid, signum)
        except ProcessLookupError:
            break
        wait = grace if signum != signal.SIGKILL else max(grace, 2.0)
        if _wait_gone(pgid, wait, proc):
            break
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=1.0)
    return was_running


def _wait_gone(pgid: int, seconds: float, proc: subprocess.Popen[bytes] | None = None) -> bool:
    deadline = time.monotonic() + seconds
    next_ps = time.monotonic() + 0.2
    while True:
        if proc is not None:
            proc.poll()
        if not _group_signalable(pgid):
            return True
        now = time.monotonic()
        if now >= next_ps:
            # Only zombies left? (init may reap orphans late.)
            if not group_alive(pgid):
                return True
            next_ps = now + 0.2
        if now >= deadline:
            return False
        time.sleep(0.02)


def _group_signalable(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs. Zombies (dead, not yet
    reaped by init) do not count: ``ps`` is asked when ``killpg(pgid, 0)``
    cannot tell, which works on Linux and macOS alike."""
    if not _group_signalable(pgid):
        return False
    try:
        listing = subprocess.run(
            ["ps", "-A", "-o", "pgid=,stat="], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return True
    for row in listing.stdout.splitlines():
        parts = row.split()
        if len(parts) >= 2 and parts[0] == str(pgid) and not parts[1].startswith("Z"):
            return True
    return False


# --- streaming -------------------------------------------------------------------------


class StopReason(str, Enum):
    """Why a streamed process ended."""

    EXITED = "exited"  # the process ended by itself
    TIMEOUT = "timeout"  # wall-clock timeout: group stopped
    IDLE = "idle"  # no output for idle_timeout seconds: group stopped
    NOT_FOUND = "not_found"  # the program does not exist


@dataclass(frozen=True)
class ProcessResult:
    """How a streamed process ended: exit code, why it stopped, how long it ran, stderr's tail."""

    pid: int
    returncode: int | None
    stop: StopReason
    duration: float  # seconds from spawn to exit
    stderr_tail: str
    lines: int  # stdout lines seen


def stream_process(
    argv: Sequence[str],
    *,
    cwd: Path | str | None,
    on_line: Callable[[str], None],
    env: Mapping[str, str] | None = None,
    stdin_text: str | None = None,
    timeout: float | None = None,
    idle_timeout: float | None = None,
    grace: float = 5.0,
    on_start: Callable[[int], None] | None = None,
    on_tick: Callable[[], None] | None = None,
    tick: float = 0.5,
    log_path: Path | None = None,
    merge_stderr: bool = False,
    launcher: Launcher = HOST,
) -> ProcessResult:
    """Run ``argv``, calling ``on_line`` for each stdout line (without newline).

    ``env`` is added to the current environment. ``on_start(pid)`` runs right
    after the spawn; ``on_tick`` about every ``tick`` seconds while waiting.
    ``log_path`` receives the raw stdout (appended), for post-mortems.
    ``merge_stderr`` sends stderr through ``on_line`` too.
    """
    spec = launcher.launch(Launch(tuple(argv), Path(cwd) if cwd else None, env or {}))
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            list(spec.argv),
            cwd=spec.cwd,
            env=child_env(spec.env),
            stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        if exc.filename in (spec.argv[0], None):
            return ProcessResult(
                0, None, StopReason.NOT_FOUND, 0.0, f"{spec.argv[0]}: not found", 0
            )
        raise
    ended_at: float | None = None
    stop = StopReason.EXITED
    lines = 0
    stderr_tail: deque[str] = deque(maxlen=_STDERR_LINES)
    lines_q: queue.Queue[object] = queue.Queue()
    assert proc.stdout is not None
    threads = [threading.Thread(target=_pump, args=(proc.stdout, lines_q), daemon=True)]
    if proc.stderr is not None:
        threads.append(
            threading.Thread(target=_drain, args=(proc.stderr, stderr_tail), daemon=True)
        )
    if stdin_text is not None:
        assert proc.stdin is not None
        threads.append(threading.Thread(target=_feed, args=(proc.stdin, stdin_text), daemon=True))
    for thread in threads:
        thread.start()
    log = open(log_path, "a", encoding="utf-8") if log_path else None  # noqa: SIM115
    try:
        if on_start:
            on_start(proc.pid)
        deadline = started + timeout if timeout else None
        last_output = time.monotonic()
        while True:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                stop = StopReason.TIMEOUT
                break
            if idle_timeout and now - last_output >= idle_timeout:
                stop = StopReason.IDLE
                break
            wait = tick
            if deadline is not None:
                wait = min(wait, deadline - now)
            if idle_timeout:
                wait = min(wait, last_output + idle_timeout - now)
            try:
                item = lines_q.get(timeout=max(wait, 0.001))
            except queue.Empty:
                if on_tick:
                    on_tick()
                continue
            if item is _EOF:
                break
            assert isinstance(item, bytes)
            last_output = time.monotonic()
            text = item.decode("utf-8", errors="replace").rstrip("\r\n")
            lines += 1
            if log:
                log.write(text + "\n")
            on_line(text)
        if stop is StopReason.EXITED:
            # stdout is closed; the process normally exits right away, but may
            # go on without output (or hang): the deadlines still hold.
            remaining = [idle_timeout] if idle_timeout else []
            if deadline is not None:
                remaining.append(max(deadline - time.monotonic(), 0.0))
            try:
                proc.wait(timeout=min(remaining) if remaining else None)
            except subprocess.TimeoutExpired:
                timed_out = deadline is not None and time.monotonic() >= deadline
                stop = StopReason.TIMEOUT if timed_out else StopReason.IDLE
        if proc.poll() is not None:
            ended_at = time.monotonic()
    finally:
        # Also on exceptions (Interrupted): never leave the child behind.
        stop_group(proc.pid, grace, proc=proc, launcher=launcher)
        if ended_at is None:
            ended_at = time.monotonic()
        if log:
            log.close()
        for thread in threads:
            thread.join(timeout=1.0)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError, ValueError):
                    stream.close()
    return ProcessResult(
        pid=proc.pid,
        returncode=proc.returncode if stop is StopReason.EXITED else None,
        stop=stop,
        duration=ended_at - started,
        stderr_tail="\n".join(stderr_tail),
        lines=lines,
    )


def _pump(stream: IO[bytes], out: queue.Queue[object]) -> None:
    try:
        for line in iter(stream.readline, b""):
            out.put(line)
    except (OSError, ValueError):
        pass
    finally:
        out.put(_EOF)


def _drain(stream: IO[bytes], tail: deque[str]) -> None:
    with contextlib.suppress(OSError, ValueError):
        for line in iter(stream.readline, b""):
            tail.append(line.decode("utf-8", errors="replace").rstrip("\r\n"))


def _feed(stream: IO[bytes], text: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        stream.write(text.encode("utf-8"))
    with contextlib.suppress(OSError, ValueError):
        stream.close()
