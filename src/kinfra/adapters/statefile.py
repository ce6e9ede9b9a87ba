"""Versioned JSON state files: atomic writes, strict reads, an OS file lock.

Used by the registry and the orchestrator's run state. A write goes to a temp
file in the same folder, is fsynced, then renamed over the target, so a reader
(or a crash) never sees half a file. A read refuses a file from a newer kinfra
and reports a corrupt one; it never substitutes an empty state for either.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kinfra.errors import LockedError, StateFileError


def atomic_write_text(path: Path, text: str, mode: int = 0o644) -> None:
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
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n", mode)


def read_versioned_json(path: Path, *, kind: str, current_version: int) -> dict[str, Any] | None:
    """Read a state file; None when it does not exist.

    ``kind`` names the file in messages ("registry", "run state").
    """
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateFileError(f"cannot read {kind} {path}: {exc.strerror}") from exc
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise StateFileError(
            f"{kind} {path} is corrupt (invalid JSON at line {exc.lineno}, column {exc.colno})",
            hint=f"kinfra left it untouched; repair it by hand or move it aside "
            f"(mv {path} {path}.bad) and re-run the command that creates it",
        ) from exc
    if not isinstance(data, dict) or not isinstance(data.get("version"), int):
        raise StateFileError(
            f"{kind} {path} is corrupt (no integer 'version' at the top level)",
            hint=f"kinfra left it untouched; repair it or move it aside (mv {path} {path}.bad)",
        )
    version = data["version"]
    if version > current_version:
        raise StateFileError(
            f"{kind} {path} has version {version}, newer than this kinfra understands "
            f"({current_version})",
            hint="upgrade kinfra (pip install -U kinfra); the file was not changed",
        )
    if version < 1:
        raise StateFileError(f"{kind} {path} has an invalid version {version}")
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
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


@contextlib.contextmanager
def file_lock(lock_path: Path, *, blocking: bool = True, what: str = "lock") -> Iterator[None]:
    """An exclusive advisory OS lock (flock), held for the ``with`` block.

    flock is per open file description, released by the kernel when the
    process dies, so a crashed kinfra never leaves a stale registry lock.
    """
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
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
