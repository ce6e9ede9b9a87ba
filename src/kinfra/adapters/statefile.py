"""Versioned JSON state files: atomic writes, strict reads, an OS file lock.

Used by the registry, the orchestrator's run state and the records of
operations in flight. A write goes to a temp file in the same folder, is
fsynced, then renamed over the target, so a reader (or a crash) never sees
half a file. A read refuses a file from a newer kinfra and reports a corrupt
one, whatever its bytes; it never substitutes an empty state for either.

A state file that is a symlink (a registry kept in a dotfiles repository) is
read and written *through* the link: the rename lands on the link's target,
in the target's folder, so the link and its target never fork. A link whose
target is missing is an error, never an empty state. Generated files
(``atomic_write_text`` without ``through_links``) replace a link instead: a
link planted in a worktree must never redirect kinfra's writes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kinfra import trace
from kinfra.errors import LockedError, StateFileError


def atomic_write_text(
    path: Path, text: str, mode: int = 0o644, *, through_links: bool = False
) -> None:
    if through_links:
        path = real_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A name no other writer uses (what tempfile.mkstemp does, without
    # importing tempfile and random at every start).
    tmp = path.parent / f".{path.name}.{os.getpid()}.{os.urandom(6).hex()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        trace.step(f"write:{path.parent.name}/{path.name}")  # a kill here leaves the temp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not all filesystems allow it.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_json(path: Path, data: Any, mode: int = 0o644) -> None:
    """A state file's atomic write, through a symlink to its target."""
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    atomic_write_text(path, text, mode, through_links=True)


def real_path(path: Path) -> Path:
    """Where a state file really is: the target of a symlink (followed to the
    end), else the path itself."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


TEMP_SUFFIX = ".tmp"


def temp_owner(name: str) -> int | None:
    """The pid that wrote the temp file ``name`` (``.<file>.<pid>.<hex>.tmp``),
    or None for any other name."""
    if not (name.startswith(".") and name.endswith(TEMP_SUFFIX)):
        return None
    parts = name[: -len(TEMP_SUFFIX)].rsplit(".", 2)
    if len(parts) != 3 or not parts[1].isdigit() or len(parts[2]) != 12:
        return None
    return int(parts[1])


def read_versioned_json(path: Path, *, kind: str, current_version: int) -> dict[str, Any] | None:
    """Read a state file; None when it does not exist.

    ``kind`` names the file in messages ("registry", "run state"). Any bytes
    that are not a JSON object with an integer version give one
    ``StateFileError`` naming the file and the way out.
    """
    aside = f"kinfra left it untouched; repair it by hand or move it aside (mv {path} {path}.bad)"
    if path.is_symlink() and not path.exists():
        raise StateFileError(
            f"{kind} {path} is a symlink to {os.readlink(path)}, which does not exist",
            hint="restore the file it points to (an unmounted disk?), or remove the link "
            "to start afresh; kinfra never treats a missing target as an empty state",
        )
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateFileError(
            f"cannot read {kind} {path}: {exc.strerror}",
            hint=f"it must be a readable file; kinfra left it untouched (mv {path} {path}.bad)",
        ) from exc
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError as exc:
        raise _corrupt(kind, path, f"not text: binary bytes at offset {exc.start}", aside) from exc
    except json.JSONDecodeError as exc:
        where = f"invalid JSON at line {exc.lineno}, column {exc.colno}"
        raise _corrupt(kind, path, where, aside) from exc
    except (ValueError, RecursionError) as exc:
        raise _corrupt(kind, path, f"invalid JSON: {exc}", aside) from exc
    version = data.get("version") if isinstance(data, dict) else None
    if not isinstance(version, int) or isinstance(version, bool):
        raise _corrupt(kind, path, "no integer 'version' at the top level", aside)
    if version > current_version:
        raise StateFileError(
            f"{kind} {path} has version {version}, newer than this kinfra understands "
            f"({current_version})",
            hint="upgrade kinfra (pip install -U kinfra); the file was not changed",
        )
    if version < 1:
        raise _corrupt(kind, path, f"invalid version {version}", aside)
    assert isinstance(data, dict)
    return data


def append_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    """Append records as JSON lines in one write to an O_APPEND file, so that
    concurrent writers never interleave inside a line."""
    if not records:
        return
    text = "".join(json.dumps(r, sort_keys=True, default=str) + "\n" for r in records)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every object line of a JSON-lines file (none when it does not exist); a
    torn or foreign line is skipped rather than failing the whole read."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    records = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):  # torn, junk, or nested too deeply
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def _corrupt(kind: str, path: Path, what: str, aside: str) -> StateFileError:
    return StateFileError(
        f"{kind} {path} is corrupt ({what})",
        hint=f"{aside} and re-run the command that creates it",
    )


@contextlib.contextmanager
def file_lock(lock_path: Path, *, blocking: bool = True, what: str = "lock") -> Iterator[None]:
    """An exclusive advisory OS lock (flock), held for the ``with`` block.

    flock is per open file description, released by the kernel when the
    process dies, so a crashed kinfra never leaves a stale registry lock.
    """
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StateFileError(
            f"cannot open the {what} {lock_path}: {exc.strerror}",
            hint="it must be a regular file kinfra can write (or absent); move aside what is there",
        ) from exc
    try:
        flags = fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB
        try:
            fcntl.flock(fd, flags)
        except BlockingIOError as exc:
            raise LockedError(f"{what} {lock_path} is held by another kinfra process") from exc
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
