"""`kinfra doctor`'s view of runs that never finished: records of interrupted
`impl`/`done` runs, and temp files of writes a kill cut short.

An interrupted `done` is finished (by `done`'s own code, with all its
checks). An interrupted `impl` is undone as far as it never became a
worktree (a worktree git never finished creating, a claim for nothing); one
whose worktree exists is left for `kinfra impl` to finish (or `kinfra done`
to give up), since only the user knows which is wanted.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from kinfra.adapters import git, pending
from kinfra.adapters.lock import process_alive
from kinfra.adapters.pending import OpKind, PendingOp
from kinfra.adapters.registry import ProjectRecord, RegistryStore
from kinfra.adapters.statefile import real_path, temp_owner
from kinfra.errors import KinfraError, StateFileError
from kinfra.paths import kinfra_home, project_home, registry_path
from kinfra.project import Project
from kinfra.workflows.findings import DoctorReport, Finding, FindingKind, Fix
from kinfra.workflows.recovery import (
    clear_git_locks,
    partial_state,
    refuse_if_not_kinfras,
    remove_partial,
)


def check_records(
    project: Project,
    record: ProjectRecord | None,
    entries: list[git.WorktreeEntry],
    report: DoctorReport,
    fix: bool,
    store: RegistryStore,
) -> set[Path]:
    """Report (and with ``fix`` resolve) every record of a run in flight.
    Returns the worktrees of the runs still open (running, or interrupted and
    not resolved): the other checks leave those alone."""
    ops: dict[Path, PendingOp] = {}
    open_paths: set[Path] = set()
    for path in pending.all_records(project.name):
        try:
            op = pending.read(path)
        except StateFileError as exc:
            report.findings.append(Finding(FindingKind.CORRUPT_RECORD, exc.message, exc.hint or ""))
            continue
        if op is None:
            continue
        ops[op.path] = op
        if op.alive:
            report.notes.append(
                f"`{op.command}` is running (pid {op.pid}, since {op.started_at}); left alone"
            )
            open_paths.add(op.path)
            continue
        if op.kind is OpKind.DONE:
            finding = _finish_done(project, op, fix, store)
        else:
            entry = next((e for e in entries if e.path.resolve() == op.path), None)
            finding = _undo_impl(project, record, op, entry, fix, store)
        report.findings.append(finding)
        if finding.fixed is not Fix.FIXED:
            open_paths.add(op.path)
    return open_paths


def _finish_done(project: Project, op: PendingOp, fix: bool, store: RegistryStore) -> Finding:
    finding = Finding(
        FindingKind.INTERRUPTED_DONE,
        f"`{op.command}` was interrupted (pid {op.pid}, at {op.started_at}); "
        f"{op.path} is half taken down",
        f"`kinfra doctor --fix` or `kinfra done {op.path.name}` finishes it",
    )
    if fix:
        from kinfra.workflows.worktrees import done

        try:
            done(project, op.path.name, store=store)
            finding.fixed = Fix.FIXED
        except KinfraError as exc:
            finding.fixed = Fix.FAILED
            finding.advice = exc.message
    return finding


def _undo_impl(
    project: Project,
    record: ProjectRecord | None,
    op: PendingOp,
    entry: git.WorktreeEntry | None,
    fix: bool,
    store: RegistryStore,
) -> Finding:
    whole = entry is not None and not entry.unfinished and (op.path / ".git").exists()
    again = f"kinfra impl {op.target}"
    finding = Finding(
        FindingKind.INTERRUPTED_IMPL,
        f"`{op.command}` was interrupted (pid {op.pid}, at {op.started_at})"
        + ("; its worktree exists" if whole else "; it never finished its worktree"),
        f"run `{again}` again to finish it, or `kinfra done {op.short}` to give it up"
        if whole
        else f"`kinfra doctor --fix` undoes it (the branch is kept); then `{again}` starts over",
    )
    if whole or not fix:
        return finding
    try:
        clear_git_locks(project.root.resolve(), op)
        state = partial_state(op.path, entry, op)
        if state is not None:
            refuse_if_not_kinfras(project.root.resolve(), op.path, state, op)
            remove_partial(project.root.resolve(), op.path, entry)
        _give_back_claims(project, record, op.path, store)
    except KinfraError as exc:
        finding.fixed = Fix.FAILED
        finding.advice = exc.message
        return finding
    pending.drop(pending.record_path(project.name, op.path))
    finding.fixed = Fix.FIXED
    return finding


def _give_back_claims(
    project: Project, record: ProjectRecord | None, path: Path, store: RegistryStore
) -> None:
    from kinfra.workflows.pool import stop_slot
    from kinfra.workflows.worktrees import owns_record, release_slot

    if record is None or not owns_record(project, record):
        return
    for slot in sorted(record.slots.values(), key=lambda s: s.slot_id):
        if slot.claim is not None and slot.claim.path == path:
            stop_slot(project, slot.slot_id, release_manual=False, store=store)
            release_slot(project, slot, path, store)


# --- the memory queue -----------------------------------------------------------------


def check_tickets(report: DoctorReport, fix: bool, store: RegistryStore) -> None:
    """Tickets of the memory queue whose process is gone: a waiter or a start
    that was killed. They hold memory nobody uses until the next admission
    drops them; --fix drops them now."""
    registry = store.load()
    dead = [
        t for t in (*registry.queue, *registry.starting) if not process_alive(t.pid, t.pid_start)
    ]
    for ticket in dead:
        finding = Finding(
            FindingKind.DEAD_TICKET,
            f"the memory queue holds `{ticket.label}` (pid {ticket.pid}, since {ticket.since}), "
            "whose process is gone",
            "`kinfra doctor --fix` drops it",
        )
        report.findings.append(finding)
    if fix and dead:
        gone = {t.ticket for t in dead}
        with store.transaction() as registry:
            registry.queue = [t for t in registry.queue if t.ticket not in gone]
            registry.starting = [t for t in registry.starting if t.ticket not in gone]
        for finding in report.findings[-len(dead) :]:
            finding.fixed = Fix.FIXED


# --- temp files ----------------------------------------------------------------------


def check_temp_files(
    project: Project, worktrees: list[Path], report: DoctorReport, fix: bool
) -> None:
    """Temp files of atomic writes whose writer is gone: in $KINFRA_HOME (and
    wherever a symlinked registry really lives), the project's state and
    slot folders, and the roots of its worktrees."""
    places = {kinfra_home(), real_path(registry_path()).parent, *worktrees}
    found: set[Path] = set()
    for place in places:
        with contextlib.suppress(OSError):
            found.update(p for p in place.iterdir() if p.is_file())
    with contextlib.suppress(OSError):
        for directory, _, files in os.walk(project_home(project.name)):
            found.update(Path(directory) / name for name in files)
    for path in sorted(found):
        pid = temp_owner(path.name)
        if pid is None or process_alive(pid):
            continue
        finding = Finding(
            FindingKind.LEFTOVER_TEMP,
            f"{path} is the temp file of a write that was interrupted (pid {pid} is gone)",
            "`kinfra doctor --fix` deletes it (the file it was for is intact)",
        )
        if fix:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            finding.fixed = Fix.FIXED
        report.findings.append(finding)
