"""The one streaming process controller (for agents; run-to-completion commands
go through kinfra.adapters.runner).

The child runs in its own session, hence its own process group, so that it and
everything it spawned can be stopped together, and so that a Ctrl-C in the
terminal reaches kinfra only. Its stdout is read line by line as it comes (a
reader thread feeds a queue; the calling thread applies the deadlines), with:

- a wall-clock timeout for the whole run;
- an idle watchdog: no output for ``idle_timeout`` seconds;
- a staged stop of the whole group: SIGINT, then SIGTERM, then SIGKILL, each
  after ``grace`` seconds without the group going away.

Whatever happens — normal exit, timeout, or an exception in the caller's
callbacks (including kinfra's ``Interrupted`` on SIGINT/SIGTERM) — the group is
stopped before this function returns or raises.
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
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import IO

from kinfra.adapters.runner import CommandNotFoundError, run

_EOF = object()
_STDERR_LINES = 40


class StopReason(str, Enum):
    EXITED = "exited"  # the process ended by itself
    TIMEOUT = "timeout"  # wall-clock timeout: group stopped
    IDLE = "idle"  # no output for idle_timeout seconds: group stopped
    NOT_FOUND = "not_found"  # the program does not exist


@dataclass(frozen=True)
class ProcessResult:
    pid: int
    returncode: int | None
    stop: StopReason
    duration: float  # seconds from spawn to exit
    stderr_tail: str
    lines: int  # stdout lines seen


def stream_process(
    argv: Sequence[str],
    *,
    cwd: Path,
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
) -> ProcessResult:
    """Run ``argv``, calling ``on_line`` for each stdout line (without newline).

    ``env`` is added to the current environment. ``on_start(pid)`` runs right
    after the spawn; ``on_tick`` about every ``tick`` seconds while waiting.
    ``log_path`` receives the raw stdout, for post-mortems.
    """
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=full_env,
            stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        if exc.filename in (argv[0], None):
            return ProcessResult(0, None, StopReason.NOT_FOUND, 0.0, f"{argv[0]}: not found", 0)
        raise
    ended_at: float | None = None
    stop = StopReason.EXITED
    lines = 0
    stderr_tail: deque[str] = deque(maxlen=_STDERR_LINES)
    lines_q: queue.Queue[object] = queue.Queue()
    assert proc.stdout is not None and proc.stderr is not None
    threads = [
        threading.Thread(target=_pump, args=(proc.stdout, lines_q), daemon=True),
        threading.Thread(target=_drain, args=(proc.stderr, stderr_tail), daemon=True),
    ]
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
            # linger (or have handed stdout to nobody and hang): keep deadlines.
            remaining = [idle_timeout or 5.0]
            if deadline is not None:
                remaining.append(max(deadline - time.monotonic(), 0.0))
            try:
                proc.wait(timeout=min(remaining))
            except subprocess.TimeoutExpired:
                stop = StopReason.IDLE
        if proc.poll() is not None:
            ended_at = time.monotonic()
    finally:
        # Also on exceptions (Interrupted): never leave the agent behind.
        stop_group(proc, grace)
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


def stop_group(proc: subprocess.Popen[bytes], grace: float) -> None:
    """Stop the process group led by ``proc``: INT, TERM, KILL, each given
    ``grace`` seconds. Returns at once when the group is already gone."""
    pgid = proc.pid
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        proc.poll()  # reap the leader so that it does not count as alive
        if not group_alive(pgid):
            break
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        if _wait_gone(pgid, grace if sig != signal.SIGKILL else max(grace, 2.0), proc):
            break
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=1.0)


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
        result = run(["ps", "-A", "-o", "pgid=,stat="], check=False, timeout=5)
    except CommandNotFoundError:
        return True
    for row in result.stdout.splitlines():
        parts = row.split()
        if len(parts) >= 2 and parts[0] == str(pgid) and not parts[1].startswith("Z"):
            return True
    return False


def kill_stray_group(pgid: int, grace: float = 5.0) -> bool:
    """Stop a process group we did not spawn in this process (an agent left
    behind by a killed orchestrator). Returns whether one was running."""
    if not group_alive(pgid):
        return False
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return True
        if _wait_gone(pgid, grace):
            return True
    return True
