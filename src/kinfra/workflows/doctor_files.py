"""`kinfra doctor`'s checks of what a slot's files and status say against what
Docker and the registry say.

- A slot's status in the registry says what Docker says.
- A running slot publishes the ports its plan gives (after a change of
  kinfra.toml, only from its next start).
- Resolved secrets are on disk only while the slot's stack runs.
- An impl worktree's ``.env.sandbox`` names the slot the registry says it
  holds (tools inside the worktree read that file to find their ports).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from pathlib import Path

from kinfra.adapters.registry import ClaimKind, ProjectRecord, SlotStatus
from kinfra.paths import SECRETS_FILE
from kinfra.workflows.findings import Checkup, Finding, FindingKind, Fix
from kinfra.workflows.pool import ports_in_effect
from kinfra.workflows.worktrees import env_file_slot, write_worktree_env


def check_slot_files(c: Checkup, record: ProjectRecord) -> None:
    project, live, fix = c.project, c.live, c.fix
    for record_slot in sorted(record.slots.values(), key=lambda s: s.slot_id):
        if record_slot.claim is not None and record_slot.claim.path in c.open_runs:
            continue  # that run's business
        slot = project.slot(record_slot.slot_id)
        running = c.running(slot.compose_project)
        # A running unclaimed slot and a claimed one that is down have findings
        # of their own (in doctor.py), whose repair sets the status.
        claimed = record_slot.claim is not None
        if live is not None and running == claimed:
            _status(c, record_slot.slot_id, record_slot.status, running)
        if running:
            now = ports_in_effect(slot)
            if now is not None and now != dict(slot.ports):
                c.add(
                    Finding(
                        FindingKind.PORTS_PENDING,
                        f"slot {slot.slot_id} runs with ports {_ports(now)}; kinfra.toml now "
                        f"gives it {_ports(slot.ports)}",
                        f"restart it to publish them (`kinfra sandbox up --slot {slot.slot_id}` "
                        "after `kinfra sandbox down`)",
                        slot.slot_id,
                    )
                )
        secrets = slot.directory / SECRETS_FILE
        if live is not None and not running and _older_than(secrets, SECRETS_GRACE_SECONDS):
            finding = c.add(
                Finding(
                    FindingKind.SECRETS_LEFT,
                    f"{secrets} holds resolved secrets, but slot {slot.slot_id} is not running",
                    "`kinfra doctor --fix` deletes it (the next start resolves them again)",
                    slot.slot_id,
                )
            )
            if fix:
                with contextlib.suppress(FileNotFoundError):
                    secrets.unlink()
                finding.fixed = Fix.FIXED
        claim = record_slot.claim
        if claim is not None and claim.kind is ClaimKind.IMPL and claim.path.is_dir():
            said = env_file_slot(claim.path)
            if said != slot.slot_id:
                finding = c.add(
                    Finding(
                        FindingKind.ENV_FILE_WRONG,
                        f"{claim.path.name}'s .env.sandbox "
                        + ("is missing or unreadable" if said is None else f"names slot {said}")
                        + f", but it holds slot {slot.slot_id}",
                        "`kinfra doctor --fix` writes it again from the registry",
                        slot.slot_id,
                    )
                )
                if fix:
                    write_worktree_env(project.config, slot, record_slot.instance_id, claim.path)
                    finding.fixed = Fix.FIXED


def _status(c: Checkup, slot_id: int, status: SlotStatus, running: bool) -> None:
    """Only the plain contradictions: "running" for a stack Docker does not
    run, or "stopped" for one it runs. "failed" is a fact about the last
    start or stop, kept until the next one."""
    if status is SlotStatus.FAILED or (status is SlotStatus.RUNNING) == running:
        return
    actual = SlotStatus.RUNNING if running else SlotStatus.STOPPED
    finding = c.add(
        Finding(
            FindingKind.STATUS_OUTDATED,
            f"the registry says slot {slot_id} is {status.value}; Docker says {actual.value}",
            "`kinfra doctor --fix` records what Docker says",
            slot_id,
        )
    )
    if c.fix:
        with c.store.transaction() as registry:
            registry.set_status(c.project.name, slot_id, actual)
        finding.fixed = Fix.FIXED


# A start writes the secrets file just before `compose up` reads it: one
# younger than this may belong to a start under way.
SECRETS_GRACE_SECONDS = 60


def _older_than(path: Path, seconds: float) -> bool:
    try:
        return time.time() - path.stat().st_mtime > seconds
    except OSError:
        return False


def _ports(ports: Mapping[str, int]) -> str:
    return " ".join(f"{name}:{port}" for name, port in sorted(ports.items()))
