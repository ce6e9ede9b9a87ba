"""`kinfra doctor`'s view of runs that never finished: records of interrupted
`impl`/`done` runs, memory tickets of dead processes, and the temp files and
scratch folders of writes a kill cut short.

An interrupted `done` is finished (by `done`'s own code, with all its
checks). An interrupted `impl` is undone as far as it never became a
worktree (a worktree git never finished creating, a claim for nothing); one
whose worktree exists is left for `kinfra impl` to finish (or `kinfra done`
to give up), since only the user knows which is wanted.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path

from kinfra.adapters import git, pending
from kinfra.adapters.lock import process_alive
from kinfra.adapters.pending import OpKind, PendingOp
from kinfra.adapters.statefile import real_path, temp_owner
from kinfra.errors import KinfraError, StateFileError
from kinfra.paths import kinfra_home, project_home, registry_path
from kinfra.workflows.findings import Checkup, Finding, FindingKind, Fix
from kinfra.workflows.pool import stop_slot
from kinfra.workflows.recovery import (
    clear_git_locks,
    partial_state,
    refuse_if_not_kinfras,
    remove_partial,
)
from kinfra.workflows.worktrees import candidates, done, release_slot


def check_records(c: Checkup) -> None:
    """Report (and with --fix resolve) every record of a run in flight, and
    note in ``c.open_runs`` the worktrees of the runs still open (running, or
    interrupted and not resolved)."""
    for path in pending.all_records(c.project.name):
        try:
            op = pending.read(path)
        except StateFileError as exc:
            c.add(Finding(FindingKind.CORRUPT_RECORD, exc.message, exc.hint or ""))
            continue
        if op is None:
            continue
        if op.alive:
            c.report.notes.append(
                f"`{op.command}` is running (pid {op.pid}, since {op.started_at}); left alone"
            )
            c.open_runs.add(op.path)
            continue
        if op.kind is OpKind.DONE:
            finding = _finish_done(c, op)
        else:
            entry = next((e for e in c.entries if e.path.resolve() == op.path), None)
            finding = _undo_impl(c, op, entry)
        if finding.fixed is not Fix.FIXED:
            c.open_runs.add(op.path)


def _finish_done(c: Checkup, op: PendingOp) -> Finding:
    finding = c.add(
        Finding(
            FindingKind.INTERRUPTED_DONE,
            f"`{op.command}` was interrupted (pid {op.pid}, at {op.started_at}); "
            f"{op.path} is half taken down",
            f"`kinfra doctor --fix` or `kinfra done {op.path.name}` finishes it",
        )
    )
    if c.fix:
        try:
            done(c.project, op.path.name, store=c.store)
            finding.fixed = Fix.FIXED
        except KinfraError as exc:
            finding.fixed = Fix.FAILED
            finding.advice = exc.message
    return finding


def _undo_impl(c: Checkup, op: PendingOp, entry: git.WorktreeEntry | None) -> Finding:
    whole = entry is not None and not entry.unfinished and (op.path / ".git").exists()
    again = f"kinfra impl {op.target}"
    finding = c.add(
        Finding(
            FindingKind.INTERRUPTED_IMPL,
            f"`{op.command}` was interrupted (pid {op.pid}, at {op.started_at})"
            + ("; its worktree exists" if whole else "; it never finished its worktree"),
            f"run `{again}` again to finish it, or `kinfra done {op.short}` to give it up"
            if whole
            else f"`kinfra doctor --fix` undoes it (the branch is kept); then `{again}` starts over",
        )
    )
    if whole or not c.fix:
        return finding
    root = c.project.root.resolve()
    try:
        clear_git_locks(root, op)
        state = partial_state(op.path, entry, op)
        if state is not None:
            refuse_if_not_kinfras(root, op.path, state, op)
            remove_partial(root, op.path, entry)
        _give_back_claims(c, op.path)
    except KinfraError as exc:
        finding.fixed = Fix.FAILED
        finding.advice = exc.message
        return finding
    pending.drop(pending.record_path(c.project.name, op.path))
    finding.fixed = Fix.FIXED
    return finding


def _give_back_claims(c: Checkup, path: Path) -> None:
    if c.record is None:
        return
    for slot in sorted(c.record.slots.values(), key=lambda s: s.slot_id):
        if slot.claim is not None and slot.claim.path == path:
            stop_slot(c.project, slot.slot_id, release_manual=False, store=c.store)
            release_slot(c.project, slot, path, c.store)


# --- the memory queue -----------------------------------------------------------------


def check_tickets(c: Checkup) -> None:
    """Tickets of the memory queue whose process is gone: a waiter or a start
    that was killed. They hold memory nobody uses until the next admission
    drops them; --fix drops them now."""
    registry = c.store.load()
    dead = [
        t for t in (*registry.queue, *registry.starting) if not process_alive(t.pid, t.pid_start)
    ]
    findings = [
        c.add(
            Finding(
                FindingKind.DEAD_TICKET,
                f"the memory queue holds `{t.label}` (pid {t.pid}, since {t.since}), "
                "whose process is gone",
                "`kinfra doctor --fix` drops it",
            )
        )
        for t in dead
    ]
    if c.fix and dead:
        gone = {t.ticket for t in dead}
        with c.store.transaction() as registry:
            registry.queue = [t for t in registry.queue if t.ticket not in gone]
            registry.starting = [t for t in registry.starting if t.ticket not in gone]
        for finding in findings:
            finding.fixed = Fix.FIXED


# --- temp files and scratch folders ----------------------------------------------------

# ``.<purpose>-<pid>-<random>``: a scratch folder kinfra tries a slot's files in.
_SCRATCH = re.compile(r"^\.[a-z]+-(\d+)-[^/]+$")


def check_temp_files(c: Checkup) -> None:
    """Temp files of atomic writes, and scratch folders, whose writer is gone:
    in $KINFRA_HOME (and wherever a symlinked registry really lives), the
    project's state and slot folders, and the roots of its worktrees."""
    worktrees = [w.path for w in candidates(c.project, c.record, c.entries) if w.exists]
    places = {kinfra_home(), real_path(registry_path()).parent, *worktrees}
    found: set[Path] = set()
    for place in places:
        with contextlib.suppress(OSError):
            found.update(p for p in place.iterdir() if p.is_file())
    with contextlib.suppress(OSError):
        for directory, dirs, files in os.walk(project_home(c.project.name)):
            found.update(Path(directory) / name for name in files)
            found.update(Path(directory) / name for name in dirs if _SCRATCH.match(name))
    for path in sorted(found):
        scratch = _SCRATCH.match(path.name) if path.is_dir() else None
        pid = int(scratch.group(1)) if scratch else temp_owner(path.name)
        if pid is None or process_alive(pid):
            continue
        what = "scratch folder of a run" if scratch else "temp file of a write"
        finding = c.add(
            Finding(
                FindingKind.LEFTOVER_TEMP,
                f"{path} is the {what} that was interrupted (pid {pid} is gone)",
                "`kinfra doctor --fix` deletes it (what it was for is intact)",
            )
        )
        if c.fix:
            if scratch:
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            finding.fixed = Fix.FIXED
