"""Everything a start can be refused for, checked before anything changes.

`kinfra impl` and `kinfra sandbox up` run ``preflight`` before any claim,
admission, worktree, branch or slot file exists, so that a mistake found in
a second (a YAML error, a busy port, Docker down) leaves nothing behind to
undo. The order is the order a user fixes things in: the compose
configuration first (``docker compose config`` of the exact files the start
would use, written to a scratch directory: it needs no daemon, and no code
directory to exist), then the ports (exit 3), then the daemon. The memory
budget comes after, in the caller: it is the one check that can queue.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from kinfra.adapters import compose
from kinfra.adapters import secrets as secret_refs
from kinfra.adapters.registry import RegistryStore, SlotRecord, normalize
from kinfra.background import Background
from kinfra.errors import PortConflictError
from kinfra.project import Project
from kinfra.workflows.shared import require_shared
from kinfra.workflows.slot_files import (
    compose_target,
    scratch_slot,
    write_secrets_file,
    write_slot_files,
)
from kinfra.workflows.start import check_ports_free
from kinfra.workflows.validation import check_published_ports, inputs_digest, remember


def preflight_claim(
    project: Project, code_dir: Path, pick: Callable[[], SlotRecord], store: RegistryStore
) -> tuple[SlotRecord, dict[str, str]]:
    """``preflight`` of the slot a claim would get (``pick``: from a fresh
    read of the registry). A port busy only because another run claimed that
    slot meanwhile, and is starting it, is not this start's problem: the
    next free slot is checked instead, until none is left."""
    while True:
        slot = pick()
        try:
            return slot, preflight(project, slot.slot_id, slot.instance_id, code_dir)
        except PortConflictError:
            now = store.load().require_project(project.name).slot(slot.slot_id)
            if now.claim is None or now.claim.path == normalize(code_dir):
                raise


def preflight(project: Project, slot_id: int, instance_id: str, code_dir: Path) -> dict[str, str]:
    """Raise the error a start of ``slot_id`` for ``code_dir`` would meet
    before its stack exists; change nothing. Returns the resolved secrets,
    for the start to use (a secret manager is asked once per start)."""
    config = project.config
    slot = project.slot(slot_id)
    daemon = Background(compose.ping)  # alongside: the rest needs no daemon
    secret_values: dict[str, str] = {}
    try:
        shared = require_shared(config)
        secret_values = secret_refs.resolve_all(config.secrets, config.root)
        with scratch_slot(config, slot, "preflight") as preview:
            write_slot_files(config, preview, instance_id, code_dir, shared_root=shared)
            write_secrets_file(preview.directory, secret_values)
            target = compose_target(config, preview)
            check_published_ports(compose.config(target), slot)
            # The start writes the same files into the slot's folder: this
            # validation counts for them, and the start does not redo it.
            remember(slot.directory, inputs_digest(target, files_of=slot.directory))
        check_ports_free(slot)
    except BaseException as exc:
        with contextlib.suppress(Exception):
            daemon.result()  # not left running; the first problem is the one reported
        secret_refs.redact_exception(exc, secret_values.values())  # compose may echo them
        raise
    daemon.result()
    return secret_values
