"""A lock file created atomically with O_EXCL: one orchestrator run per
milestone, one deploy per target.

The file holds the owner's pid, its process start time, the host and the run
id. A lock whose process is gone (or whose pid was reused by another process,
seen by a different start time) is stale and is taken over, with a note. A
live one is refused with its pid. Taking over is serialised by a short flock on
a guard file, so two kinfra processes never both "take over" the same lock.

Liveness is portable: ``os.kill(pid, 0)`` plus the start time from /proc where
it exists and from ``ps -o lstart=`` otherwise (macOS).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from kinfra.adapters.runner import CommandNotFoundError, run
from kinfra.adapters.statefile import file_lock
from kinfra.errors import LockedError, StateFileError

# A lock file that is still empty was just created by a process that has not
# written it yet; after this many seconds an empty lock counts as stale.
_EMPTY_GRACE = 5.0


def host_name() -> str:
    """This machine's name, as locks and records carry it: ``gethostname``'s
    answer without importing ``socket`` (~4 ms at every start)."""
    return os.uname().nodename


@dataclass(frozen=True)
class LockInfo:
    """A lock file's contents: the owner's pid, start time and host, run id, when it was made."""

    pid: int
    start_time: str | None
    host: str
    run_id: str
    created: float


def process_start_time(pid: int) -> str | None:
    """An opaque token that differs between two processes that had the same pid."""
    return _start_time_proc(pid) or _start_time_ps(pid)


def _start_time_proc(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            stat = handle.read()
        # comm (field 2) may contain spaces and parentheses: split after the last ')'.
        fields = stat.rsplit(")", 1)[1].split()
        return f"proc:{fields[19]}"  # field 22, starttime in clock ticks since boot
    except (OSError, IndexError):
        return None


def _start_time_ps(pid: int) -> str | None:
    try:
        result = run(["ps", "-o", "lstart=", "-p", str(pid)], check=False, timeout=5)
    except CommandNotFoundError:
        return None
    value = result.stdout.strip()
    return f"ps:{value}" if result.ok and value else None


def process_alive(pid: int, start_time: str | None = None) -> bool:
    """Whether ``pid`` runs and, when ``start_time`` is given, is the same process."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    if _zombie(pid):
        return False  # killed, not yet reaped by its parent: it will never run again
    if start_time is None:
        return True
    # Measure the way the token was measured (/proc on Linux, ps elsewhere).
    measure = _start_time_ps if start_time.startswith("ps:") else _start_time_proc
    current = measure(pid)
    if current is None:
        return True  # cannot tell: assume it is the same process
    return current == start_time


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False  # no /proc (macOS): ps reports a zombie's start time as gone anyway


class RunLock:
    """``with RunLock(path, run_id) as lock:`` — ``lock.took_over`` says whether a
    stale lock was replaced (and whose)."""

    def __init__(
        self, path: Path, run_id: str, busy: str = "milestone is already being run"
    ) -> None:
        self.path = path
        self.run_id = run_id
        self.busy = busy  # how a refusal starts: "<busy> by kinfra pid N"
        self.took_over: LockInfo | None = None
        self._held = False

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._create():
            return
        guard = self.path.with_name(self.path.name + ".guard")
        with file_lock(guard, what="run lock guard"):
            holder = read_lock(self.path)
            if holder is not None and not is_stale(holder, self.path):
                raise _refusal(self.path, holder, self.busy)
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            if not self._create():
                holder = read_lock(self.path)
                raise _refusal(self.path, holder, self.busy)
            self.took_over = holder or LockInfo(0, None, "?", "?", 0.0)

    def _create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        info = {
            "pid": os.getpid(),
            "start_time": process_start_time(os.getpid()),
            "host": host_name(),
            "run_id": self.run_id,
            "created": time.time(),
        }
        try:
            os.write(fd, (json.dumps(info) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        self._held = True
        return True

    def release(self) -> None:
        if not self._held:
            return
        self._held = False
        holder = read_lock(self.path)
        # Never remove a lock that someone else took over meanwhile.
        if holder is not None and (holder.pid != os.getpid() or holder.run_id != self.run_id):
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def read_lock(path: Path) -> LockInfo | None:
    """The lock's content; None when there is no lock file. An empty or
    unreadable one (junk bytes, wrong types) gives pid 0 and is judged by its
    age."""
    try:
        raw = path.read_bytes()
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateFileError(
            f"cannot read the lock {path}: {exc.strerror}",
            hint=f"it must be a regular file or absent; move aside what is there (mv {path} {path}.bad)",
        ) from exc
    try:
        data = json.loads(raw.decode("utf-8"))
        start_time = data.get("start_time")
        if not isinstance(start_time, str | None):
            raise TypeError("start_time")
        return LockInfo(
            pid=int(data["pid"]),
            start_time=start_time,
            host=str(data.get("host", "")),
            run_id=str(data.get("run_id", "")),
            created=float(data.get("created", mtime)),
        )
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError, OverflowError):
        return LockInfo(0, None, host_name(), "", mtime)


def is_stale(info: LockInfo, path: Path) -> bool:
    if info.pid == 0:
        return time.time() - info.created > _EMPTY_GRACE
    if info.host and info.host != host_name():
        return False  # another machine's process (shared home): cannot check, keep it
    return not process_alive(info.pid, info.start_time)


def lock_holder(path: Path) -> LockInfo | None:
    """The live holder of a lock, or None when it is free or stale."""
    info = read_lock(path)
    if info is None or is_stale(info, path):
        return None
    return info


def _refusal(path: Path, holder: LockInfo | None, busy: str) -> LockedError:
    if holder is None or holder.pid == 0:
        return LockedError(f"{busy} by a kinfra process that is just starting ({path})")
    where = f" on {holder.host}" if holder.host != host_name() else ""
    return LockedError(
        f"{busy} by kinfra pid {holder.pid}{where} (run {holder.run_id})",
        hint=f"wait for it, or stop it (kill {holder.pid}); the lock is {path}",
    )
