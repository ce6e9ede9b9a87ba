"""Records of `kinfra impl` and `kinfra done` runs in flight.

A run that is killed (kill -9, a closed laptop, a crashed machine) leaves
its worktree, branch, claim and stack half-way. Before its first change it
writes ``$KINFRA_HOME/<project>/pending/<worktree directory>.json`` naming
what it does, for which worktree, and its own pid and start time; it removes
the record when it has finished (or has undone what it started). A record
whose process is gone is therefore proof of an interrupted run, and tells
`doctor --fix` and a re-run of the same command what to finish or undo.

Records are written and taken over under the registry's lock (the caller's
``RegistryStore.transaction()``), together with the claim, so that two runs
for one worktree can never both go ahead.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path

from kinfra.adapters.lock import host_name, process_alive, process_start_time
from kinfra.adapters.statefile import atomic_write_json, read_versioned_json
from kinfra.domain.jsonshape import ShapeError, build
from kinfra.errors import InvalidOperationError, LockedError, StateFileError
from kinfra.paths import project_home

PENDING_VERSION = 1
_KIND = "pending-operation record"


class OpKind(str, Enum):
    """The command a pending record belongs to: `kinfra impl` or `kinfra done`."""

    IMPL = "impl"
    DONE = "done"


@dataclass(frozen=True)
class PendingOp:
    """One `impl` or `done` in flight: what it does to which worktree, and which process runs it."""

    kind: OpKind
    worktree: str  # absolute path of the worktree it creates or removes
    branch: str
    short: str  # <feature>-<milestone>: what `kinfra done` is given
    target: str  # what the command was given: genome/M1 for impl, genome-M1 for done
    pid: int
    pid_start: str | None
    host: str
    started_at: str  # UTC, ISO 8601
    # `done`'s options, so that finishing it later means what the user asked.
    force: bool = False
    keep_branch: bool = False
    version: int = PENDING_VERSION

    @property
    def path(self) -> Path:
        return Path(self.worktree)

    @property
    def alive(self) -> bool:
        """Its process still runs (another machine's, on a shared home, is
        assumed to)."""
        if self.host != host_name():
            return True
        return process_alive(self.pid, self.pid_start)

    @property
    def started(self) -> datetime:
        return datetime.strptime(self.started_at, STARTED_AT_FORMAT).replace(tzinfo=UTC)

    @property
    def command(self) -> str:
        return f"kinfra {self.kind.value} {self.target}"


def pending_dir(project: str) -> Path:
    return project_home(project) / "pending"


def record_path(project: str, worktree: Path) -> Path:
    return pending_dir(project) / f"{worktree.name}.json"


def read(path: Path) -> PendingOp | None:
    """The record at ``path``; None when there is none. Corrupt: StateFileError."""
    data = read_versioned_json(path, kind=_KIND, current_version=PENDING_VERSION)
    if data is None:
        return None
    try:
        op = build(PendingOp, data, "record")
        op.started  # noqa: B018 - a time kinfra can read, or the record is corrupt
        return op
    except (ShapeError, ValueError) as exc:
        raise StateFileError(
            f"{_KIND} {path} is corrupt ({exc})",
            hint=f"kinfra left it untouched; look at it, then move it aside (mv {path} {path}.bad)",
        ) from exc


def load(project: str, worktree: Path) -> PendingOp | None:
    return read(record_path(project, worktree))


def all_records(project: str) -> list[Path]:
    """Every record file of the project (corrupt ones too), by name."""
    with contextlib.suppress(FileNotFoundError):
        return sorted(p for p in pending_dir(project).iterdir() if p.suffix == ".json")
    return []


def begin(
    project: str,
    kind: OpKind,
    worktree: Path,
    branch: str,
    short: str,
    target: str,
    takes_over: tuple[OpKind, ...],
    *,
    force: bool = False,
    keep_branch: bool = False,
) -> PendingOp | None:
    """Write this process's record for ``worktree``; return the record of an
    interrupted run it replaces (None: there was none).

    Call it under the registry lock. A live run for the same worktree is
    refused, and so is an interrupted one of a kind not in ``takes_over``
    (an interrupted `done` must be finished before `impl` starts over).
    """
    path = record_path(project, worktree)
    previous = read(path)
    if previous is not None:
        refuse_unless(previous, takes_over)
    atomic_write_json(
        path,
        asdict(
            PendingOp(
                kind=kind,
                worktree=str(worktree),
                branch=branch,
                short=short,
                target=target,
                pid=os.getpid(),
                pid_start=process_start_time(os.getpid()),
                host=host_name(),
                started_at=datetime.now(UTC).strftime(STARTED_AT_FORMAT),
                force=force,
                keep_branch=keep_branch,
            )
        ),
    )
    return previous


STARTED_AT_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def refuse_unless(op: PendingOp, takes_over: tuple[OpKind, ...]) -> None:
    """Raise unless ``op`` is an interrupted run of a kind in ``takes_over``."""
    if op.alive and op.pid != os.getpid():
        raise LockedError(
            f"`{op.command}` is running for {op.path.name} (pid {op.pid}, since {op.started_at})",
            hint="wait for it to finish; nothing was done",
        )
    if not op.alive and op.kind not in takes_over:
        raise InvalidOperationError(
            f"`{op.command}` was interrupted (pid {op.pid} is gone) and must be finished first",
            hint=f"run `{op.command}` again (or `kinfra doctor --fix`); nothing was done",
        )


def finish(project: str, worktree: Path, restore: PendingOp | None = None) -> None:
    """Remove this process's record: the run reached a consistent end. With
    ``restore`` (the interrupted run this one took over, which failed before
    finishing its work) that record is put back, so the interruption stays
    known to `doctor` and to the next run."""
    path = record_path(project, worktree)
    with contextlib.suppress(StateFileError):
        current = read(path)
        if current is not None and current.pid != os.getpid():
            return  # taken over by another run meanwhile: its record, not ours
    if restore is not None:
        atomic_write_json(path, asdict(restore))
        return
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def drop(path: Path) -> None:
    """Remove a record whose run was finished or undone by someone else."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
