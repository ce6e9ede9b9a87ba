"""Validating a slot's compose inputs before a start, and remembering it.

``docker compose config`` on the exact files and env files of the ``up``
catches a broken compose file (or a port kinfra does not manage) before any
container exists. It costs ~150 ms, so the digest of every input is kept in
``slot-N/.validated`` after a success: an unchanged slot restarts without
validating the same bytes twice, and any change validates afresh.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from kinfra.adapters import compose
from kinfra.adapters.statefile import atomic_write_text
from kinfra.domain.slot import Slot
from kinfra.errors import ConfigError
from kinfra.paths import VALIDATED_FILE


def validate(target: compose.ComposeTarget, slot: Slot) -> None:
    digest = inputs_digest(target)
    marker = target.env_files[0].parent / VALIDATED_FILE
    # Compared as bytes: whatever a damaged cache holds, it only means "validate".
    if marker.is_file() and marker.read_bytes().strip() == digest.encode():
        return
    marker.unlink(missing_ok=True)
    merged = compose.config(target)
    check_published_ports(merged, slot)
    remember(marker.parent, digest)


def inputs_digest(target: compose.ComposeTarget, files_of: Path | None = None) -> str:
    """The digest of every input of ``target``: each file's path and bytes.
    With ``files_of``, the files read from the target's folder are named as
    if they were in ``files_of`` (a scratch copy of a slot's files counts
    for the slot)."""
    digest = hashlib.sha256()
    for path in (*target.files, *target.env_files):
        named = path
        if files_of is not None and path.parent == target.env_files[0].parent:
            named = files_of / path.name
        digest.update(str(named).encode() + b"\0")
        digest.update(path.read_bytes() if path.is_file() else b"<missing>")
        digest.update(b"\0")
    return digest.hexdigest()


def remember(directory: Path, digest: str) -> None:
    """Record that the inputs with ``digest`` passed validation for the slot
    whose files are in ``directory``."""
    # 0600: the digest covers the secrets file, so it is as private as that.
    atomic_write_text(directory / VALIDATED_FILE, digest + "\n", mode=0o600)


def check_published_ports(merged: dict[str, object], slot: Slot) -> None:
    """Every host port the merged config publishes is one of the slot's."""
    allowed = set(slot.ports.values())
    services = merged.get("services") or {}
    assert isinstance(services, dict)
    for name, body in services.items():
        for port in (body or {}).get("ports") or []:
            published = port.get("published") if isinstance(port, dict) else None
            if published and int(published) not in allowed:
                raise ConfigError(
                    f"service {name} would publish host port {published}, "
                    "which is not one of the slot's named ports",
                    hint="declare it under [ports] in kinfra.toml; nothing was started",
                )
