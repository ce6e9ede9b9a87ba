"""kinfra.toml files, read through a cache of their decoded TOML.

Only the listings use it: `kinfra ports` reads the kinfra.toml of every
project on the machine, `kinfra sandbox slots` and `kinfra worktrees` their
own, and importing tomllib alone costs more than a listing's own work
(~7 ms). Every other command reads the files themselves.

The decoded tables are kept in ``$KINFRA_HOME/config-cache.json``, each under
the file's path and identity (size, modification and change times, inode,
device): any write to the file, or another file in its place, makes kinfra
decode it afresh. The checks of ``parse_config`` run on every read, cached
or not. The cache is only ever a shortcut: missing, unreadable or corrupt,
it is ignored and written again; a failed write is ignored; without a
$KINFRA_HOME nothing is written. A file with a ``[secrets]`` table (or a
deploy target's) is never kept, since a value there may be the secret
itself; the cache is private (0600) all the same.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kinfra.adapters.statefile import atomic_write_json
from kinfra.domain.config import Config, decode_config, parse_config
from kinfra.paths import kinfra_home

CACHE_VERSION = 1


def cache_path() -> Path:
    # A dot in the name: never the directory of a project (names have none).
    return kinfra_home() / "config-cache.json"


@contextlib.contextmanager
def cached_configs() -> Iterator[Callable[[Path], Config]]:
    """A reader of kinfra.toml files (``read(path) -> Config``, raising
    ``ConfigError`` like ``load_config``); what it decoded afresh is saved
    to the cache when the block ends."""
    entries = _load()
    fresh: dict[str, Any] = {}

    def read(path: Path) -> Config:
        key = str(path.absolute())
        identity = _identity(path)
        entry = entries.get(key)
        if identity is not None and isinstance(entry, dict) and entry.get("id") == identity:
            data = entry.get("toml")
            if isinstance(data, dict):
                return parse_config(path, data)
        data = decode_config(path)
        if identity is not None and not _holds_secrets(data):
            fresh[key] = {"id": identity, "toml": data}
        return parse_config(path, data)

    try:
        yield read
    finally:  # a broken config's TOML too: it is checked again on every read
        if fresh:
            _save({**entries, **fresh})


def _holds_secrets(data: dict[str, Any]) -> bool:
    """Whether the file names any secret: a [secrets] value may be the secret
    itself, and kinfra writes secrets nowhere but a running slot's
    ``.env.secrets``. Such a file is decoded afresh at every read."""
    targets = data.get("deploy")
    tables = [data.get("secrets")]
    if isinstance(targets, dict):
        tables += [t.get("secrets") for t in targets.values() if isinstance(t, dict)]
    return any(table for table in tables)


def _identity(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


def _load() -> dict[str, Any]:
    try:
        data = json.loads(cache_path().read_bytes())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
        return {}
    entries = data.get("entries")
    return entries if isinstance(entries, dict) else {}


def _save(entries: dict[str, Any]) -> None:
    path = cache_path()
    if not path.parent.is_dir():
        return  # no $KINFRA_HOME yet: a read creates nothing
    # Files gone since (a deleted clone, a temp checkout) leave the cache.
    kept = {path: entry for path, entry in entries.items() if os.path.exists(path)}
    with contextlib.suppress(OSError, TypeError, ValueError):  # TypeError: a TOML date
        atomic_write_json(path, {"version": CACHE_VERSION, "entries": kept}, 0o600)
