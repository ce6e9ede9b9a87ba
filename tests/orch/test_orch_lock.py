"""One run per milestone: O_EXCL lock, live holders refused, stale ones taken over."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from kinfra.adapters.lock import (
    RunLock,
    _start_time_ps,
    process_alive,
    process_start_time,
    read_lock,
)
from kinfra.errors import LockedError
from kinfra.orch.runloop import RunOptions, run_plan
from kinfra.paths import project_home

if TYPE_CHECKING:
    from conftest import Agentry


def _write_lock(path: Path, pid: int, start: str | None, run_id: str = "old-run") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    info = {
        "pid": pid,
        "start_time": start,
        "host": socket.gethostname(),
        "run_id": run_id,
        "created": time.time(),
    }
    path.write_text(json.dumps(info))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_lock_file_holds_pid_start_time_host_and_run_id(tmp_path: Path) -> None:
    path = tmp_path / "M1.lock"
    with RunLock(path, "run-1"):
        info = read_lock(path)
        assert info is not None
        assert (info.pid, info.host, info.run_id) == (os.getpid(), socket.gethostname(), "run-1")
        assert info.start_time == process_start_time(os.getpid())
        with pytest.raises(LockedError, match=f"already being run by kinfra pid {os.getpid()}"):
            RunLock(path, "run-2").acquire()
    assert not path.exists()


def test_live_holder_is_refused_with_its_pid(agentry: Agentry, repo: Path, plan3: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        lock = project_home("app") / "runs" / "M3.lock"
        _write_lock(lock, holder.pid, process_start_time(holder.pid))
        with pytest.raises(LockedError) as caught:
            run_plan(RunOptions(plan3, workdir=repo))
        assert f"pid {holder.pid}" in caught.value.message
        assert agentry.invocations() == []
        assert read_lock(lock) is not None  # a live lock is never removed
    finally:
        holder.kill()
        holder.wait()


def test_stale_lock_is_taken_over_with_a_note(agentry: Agentry, repo: Path, plan3: Path) -> None:
    lock = project_home("app") / "runs" / "M3.lock"
    dead = _dead_pid()
    _write_lock(lock, dead, "proc:1")
    summary = run_plan(RunOptions(plan3, workdir=repo))
    assert summary.outcome == "done"
    assert summary.notes[0] == (f"took over a stale lock of pid {dead} (run old-run): process gone")
    assert not lock.exists()  # released at the end


def test_reused_pid_with_another_start_time_is_stale(
    agentry: Agentry, repo: Path, plan3: Path
) -> None:
    lock = project_home("app") / "runs" / "M3.lock"
    # our own pid is alive, but the lock was written by a process that started earlier
    _write_lock(lock, os.getpid(), "proc:0" if Path("/proc").is_dir() else "ps:Thu Jan  1 1970")
    summary = run_plan(RunOptions(plan3, workdir=repo))
    assert summary.notes[0].startswith(f"took over a stale lock of pid {os.getpid()}")


def test_liveness_is_portable_through_ps() -> None:
    # the fallback used where /proc does not exist (macOS)
    value = _start_time_ps(os.getpid())
    assert value is not None and value.startswith("ps:")
    assert process_alive(os.getpid(), value)
    assert process_alive(os.getpid(), "ps:Thu Jan  1 00:00:00 1970") is False
    assert process_alive(_dead_pid()) is False
