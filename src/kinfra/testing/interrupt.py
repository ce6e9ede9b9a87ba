"""Interrupting a real kinfra process at an exact step of its life.

kinfra writes a line per step to ``$KINFRA_TRACE`` and stops itself
(SIGSTOP) at the step named by ``$KINFRA_TRACE_STOP`` (see ``kinfra.trace``).
The git hook and filter ``instrument_repo`` installs do the same from inside
git (a branch created or deleted, a file being checked out), and the stack of
``GATED_COMPOSE`` holds `compose up` and `compose down` open while a gate file
exists, leaving evidence that they are under way. So every kill lands on a
step seen to be reached, never on a guess of how long something takes.

Linux only (it reads /proc to see which processes of a group are stopped);
the product itself does not depend on this.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from kinfra.testing.gitrepo import git

# A one-service stack whose start and stop can be held open by the test:
# - while <gate>/hold-start exists the health check fails (and leaves
#   <gate>/health-polled as evidence), so `compose up --wait` waits;
# - while <gate>/hold-stop exists the service ignores SIGTERM (and leaves
#   <gate>/term-seen), so `compose down` waits out the grace period.
GATED_COMPOSE = """\
services:
  db:
    image: busybox:1.36
    network_mode: bridge  # no network of its own to create and remove: ~0.5 s a start
    command:
      - sh
      - -c
      - >-
        trap 'touch /gate/term-seen; [ -f /gate/hold-stop ] || exit 0' TERM;
        mkdir -p /www && echo gated > /www/index.html && httpd -p 5432 -h /www;
        while true; do sleep 0.1; done
    ports:
      - "5432:5432"
    volumes:
      - {gate}:/gate
    stop_grace_period: 2s
    healthcheck:
      test: ["CMD-SHELL", "if [ -f /gate/hold-start ]; then touch /gate/health-polled; exit 1; fi"]
      interval: 200ms
      timeout: 2s
      retries: 1000
"""

_MARK = """\
mark() {
  [ -n "$KINFRA_TRACE" ] || return 0
  echo "$1 $$" >> "$KINFRA_TRACE"
  if [ "$KINFRA_TRACE_STOP" = "$1" ]; then kill -STOP $$; fi
}
"""

# Marks the branch kinfra creates (`git worktree add -b`) or deletes.
_REF_HOOK = (
    "#!/bin/sh\n"
    + _MARK
    + """\
[ "$1" = committed ] || exit 0
zero=0000000000000000000000000000000000000000
while read -r old new ref; do
  case "$ref" in
    refs/heads/impl/*)
      if [ "$old" = "$zero" ] && [ "$new" != "$zero" ]; then mark git:branch-created; fi
      if [ "$new" = "$zero" ]; then mark git:branch-deleted; fi
      ;;
  esac
done
exit 0
"""
)

# A smudge filter: runs while `git worktree add` checks files out, with the
# worktree still locked "initializing" by git.
_FILTER = "#!/bin/sh\n" + _MARK + "mark git:checkout\nexec cat\n"


def instrument_repo(repo: Path) -> None:
    """Install the marking hook and filter in ``repo`` (and commit a file the
    filter applies to). Inert unless KINFRA_TRACE is set."""
    hooks = Path(git(repo, "rev-parse", "--git-common-dir").stdout.strip())
    hooks = (repo / hooks if not hooks.is_absolute() else hooks) / "hooks"
    hooks.mkdir(exist_ok=True)
    _executable(hooks / "reference-transaction", _REF_HOOK)
    filter_script = hooks / "kinfra-mark-filter"
    _executable(filter_script, _FILTER)
    (repo / ".gitattributes").write_text("*.marked filter=mark\n")
    (repo / "checkout.marked").write_text("checked out through the marking filter\n")
    git(repo, "config", "filter.mark.smudge", str(filter_script))
    git(repo, "config", "filter.mark.clean", "cat")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "marking filter")
    if git_remote(repo):
        git(repo, "push", "-q", "origin", "main")


def git_remote(repo: Path) -> bool:
    return bool(git(repo, "remote").stdout.strip())


def _executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


# --- running and stopping --------------------------------------------------------------


@dataclass
class Traced:
    """A kinfra process started in its own process group, traced."""

    proc: subprocess.Popen[str]
    trace: Path

    @property
    def pgid(self) -> int:
        return self.proc.pid

    def markers(self) -> list[str]:
        return [line.split(" ")[0] for line in _lines(self.trace)]


def start(
    cwd: Path, args: list[str], trace: Path, stop_at: str | None, env: dict[str, str]
) -> Traced:
    full = {**os.environ, **env, "KINFRA_TRACE": str(trace)}
    if stop_at is not None:
        full["KINFRA_TRACE_STOP"] = stop_at
    else:
        full.pop("KINFRA_TRACE_STOP", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kinfra", *args],
        cwd=cwd,
        env=full,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own group: the "whole process group" kill
    )
    return Traced(proc, trace)


def wait_stopped_at(run: Traced, marker: str, timeout: float = 60) -> int:
    """Wait until the process that wrote ``marker`` (``name`` or ``name#N``)
    has stopped itself there; return its pid."""
    name, _, nth = marker.partition("#")
    wanted = int(nth or 1)
    deadline = time.monotonic() + timeout
    while True:
        hits = [line for line in _lines(run.trace) if fnmatchcase(line.split(" ")[0], name)]
        if len(hits) >= wanted:
            pid = int(hits[wanted - 1].split(" ")[1])
            if process_state(pid) == "T":
                return pid
        if run.proc.poll() is not None:
            out, err = run.proc.communicate()
            raise AssertionError(
                f"kinfra ended (exit {run.proc.returncode}) before reaching {marker}; "
                f"steps seen: {run.markers()}\n{out}\n{err}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {marker}; steps seen: {run.markers()}")
        time.sleep(0.01)


def end(run: Traced) -> None:
    """However a test went: the process group gone, the process reaped."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(run.pgid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        run.proc.communicate(timeout=30)


def kill(run: Traced, stopped_pid: int, group: bool) -> None:
    """SIGKILL kinfra alone (its children carry on, as after a real crash) or
    its whole process group. Returns once kinfra is reaped."""
    if group:
        os.killpg(run.pgid, signal.SIGKILL)
    else:
        os.kill(run.proc.pid, signal.SIGKILL)
        if stopped_pid != run.proc.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(stopped_pid, signal.SIGCONT)  # a git child stopped at its mark
    run.proc.communicate(timeout=30)


def drain(run: Traced, timeout: float = 60) -> None:
    """Wait for whatever kinfra left running in its group (an orphaned git
    or compose finishing its work), then end any straggler."""
    deadline = time.monotonic() + timeout
    while group_members(run.pgid) and time.monotonic() < deadline:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pgid, signal.SIGCONT)
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(run.pgid, signal.SIGKILL)


def step_group(
    run: Traced, reached: Callable[[], bool], slice_s: float = 0.002, timeout: float = 30
) -> None:
    """Let the stopped group run in slices of ``slice_s`` seconds, freezing
    it (SIGSTOP) after each, until ``reached()`` holds while it is frozen."""
    deadline = time.monotonic() + timeout
    while True:
        os.killpg(run.pgid, signal.SIGCONT)
        time.sleep(slice_s)
        os.killpg(run.pgid, signal.SIGSTOP)
        _wait_group_stopped(run.pgid)
        if reached():
            return
        if time.monotonic() > deadline or not group_members(run.pgid):
            raise AssertionError("the state waited for was never reached")


def resume(run: Traced) -> None:
    """Let a stopped group carry on."""
    os.killpg(run.pgid, signal.SIGCONT)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def group_members(pgid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat(int(entry))
        # fields[0] is the state, fields[2] the process group.
        if fields and fields[2] == str(pgid) and fields[0] != "Z":
            members.append(int(entry))
    return members


def group_commands(pgid: int) -> list[str]:
    commands = []
    for pid in group_members(pgid):
        with contextlib.suppress(OSError):
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
            commands.append(raw.replace(b"\0", b" ").decode(errors="replace").strip())
    return commands


def process_state(pid: int) -> str:
    fields = _stat(pid)
    return fields[0] if fields else ""


def _wait_group_stopped(pgid: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while running := _not_frozen(pgid):
        states = {pid: process_state(pid) for pid in running}
        assert time.monotonic() < deadline, f"the group did not stop: {states}"
        # A process forked while the group was being stopped missed the signal.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGSTOP)
        time.sleep(0.001)


def _not_frozen(pgid: int) -> list[int]:
    """Members still able to run. A parent frozen in uninterruptible sleep (D)
    with a stopped child counts as frozen: Python's subprocess forks with
    vfork, and a child stopped between vfork and exec holds its parent in D,
    where SIGSTOP cannot reach it until the child goes on."""
    members = {pid: _stat(pid) for pid in group_members(pgid)}
    stopped = {pid for pid, fields in members.items() if fields and fields[0] in ("T", "t")}
    # fields[1] is the parent's pid.
    parents_of_stopped = {int(members[pid][1]) for pid in stopped}
    return [
        pid
        for pid, fields in members.items()
        if fields and pid not in stopped and not (fields[0] == "D" and pid in parents_of_stopped)
    ]


def _stat(pid: int) -> list[str]:
    try:
        text = Path(f"/proc/{pid}/stat").read_text(errors="replace")
    except OSError:
        return []
    return text.rsplit(")", 1)[1].split()


def _lines(path: Path) -> list[str]:
    try:
        return [line for line in path.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        return []
