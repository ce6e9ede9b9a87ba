"""`kinfra sandbox provision`: create or refresh a project's slots.

Provisioning registers the slots (instance id, status) and writes their
files. Ports and names are never stored: they derive from kinfra.toml, and
provisioning is where they are checked against every other project's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

from kinfra.adapters import compose
from kinfra.adapters.registry import ProjectRecord, Registry, RegistryStore, SlotRecord, normalize
from kinfra.domain.compose_inspect import render_port_line
from kinfra.domain.config import Config
from kinfra.domain.port_plan import PortRequest, plan_bases
from kinfra.domain.slot import LOCAL_PROD_SLOT, Slot
from kinfra.errors import ComposeError, DockerUnavailableError, ProvisionError
from kinfra.project import Project
from kinfra.workflows.machine import listening, machine_reservations
from kinfra.workflows.pool import ports_in_effect
from kinfra.workflows.slot_files import write_slot_files


@dataclass
class ProvisionReport:
    """What `kinfra sandbox provision` did (or, with --dry-run, would do) to each slot."""

    dry_run: bool
    created: list[int] = field(default_factory=list)
    refreshed: list[int] = field(default_factory=list)
    kept_claimed: list[int] = field(default_factory=list)
    # Claimed slots whose ports changed in kinfra.toml: slot -> the ports it
    # runs now. The new ones (its Slot's) take effect at its next start.
    ports_change: dict[int, dict[str, int]] = field(default_factory=dict)
    beyond_count: list[int] = field(default_factory=list)
    running_unclaimed: list[int] = field(default_factory=list)
    slots: list[Slot] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def provision(
    project: Project,
    count: int | None = None,
    dry_run: bool = False,
    store: RegistryStore | None = None,
) -> ProvisionReport:
    config = project.config
    count = config.sandbox.pool_size if count is None else count
    if count < 1:
        raise ProvisionError(f"--count must be at least 1, got {count}")
    store = store or RegistryStore()
    report = ProvisionReport(dry_run=dry_run)
    report.slots = [project.slot(slot_id) for slot_id in range(1, count + 1)]

    with _maybe_transaction(store, dry_run) as registry:
        _check_ownership(registry, project)
        _check_port_layout(registry, config, count, report)
        record = registry.projects.get(config.name)
        if record is None:
            record = ProjectRecord(
                name=config.name, root=normalize(project.root), prefix=config.prefix
            )
        if not record.slots:
            record.root = normalize(project.root)
        for slot in report.slots:
            existing = record.slots.get(slot.slot_id)
            if existing is not None and existing.claim is not None:
                report.kept_claimed.append(slot.slot_id)
                old = ports_in_effect(slot)
                if old is not None and old != dict(slot.ports):
                    report.ports_change[slot.slot_id] = old
                continue
            (report.refreshed if existing else report.created).append(slot.slot_id)
            if dry_run:
                continue
            updated = existing or SlotRecord(slot.slot_id, _new_instance_id(slot))
            write_slot_files(config, slot, updated.instance_id, code_dir=None)
            record.slots[slot.slot_id] = updated
        report.beyond_count = sorted(s for s in record.slots if s > count)
        if not dry_run:
            record.prefix = config.prefix
            registry.projects[config.name] = record
        report.running_unclaimed = _running_unclaimed(project, record)
    return report


@contextlib.contextmanager
def _maybe_transaction(store: RegistryStore, dry_run: bool) -> Iterator[Registry]:
    if dry_run:
        yield store.load()
    else:
        with store.transaction() as registry:
            yield registry


def _new_instance_id(slot: Slot) -> str:
    return f"{slot.compose_project}-{os.urandom(4).hex()}"


def _check_ownership(registry: Registry, project: Project) -> None:
    config = project.config
    mine = registry.projects.get(config.name)
    # A record with no slots yet was made by `kinfra local-prod init` from the
    # production clone: the pool belongs to whichever checkout provisions it.
    if mine is not None and mine.slots and mine.root != normalize(project.root):
        raise ProvisionError(
            f"project name '{config.name}' is already registered on this machine by {mine.root}",
            hint="give this checkout another [project] name (and prefix) in kinfra.toml",
        )
    for other in registry.projects.values():
        if other.name != config.name and other.prefix == config.prefix:
            raise ProvisionError(
                f"prefix '{config.prefix}' is already used by project '{other.name}' ({other.root}); "
                "compose project names would collide",
                hint="choose another [project] prefix in kinfra.toml",
            )


def _check_port_layout(
    registry: Registry, config: Config, count: int, report: ProvisionReport
) -> None:
    """No host port of any slot (0..count) may equal one of another project's
    slots (0..its pool size). A clash names both owners, and its hint gives
    the ``[ports]`` lines that would fit."""
    reserved, notes = machine_reservations(registry, skip=config.name)
    report.notes += notes
    for slot_id in range(0, count + 1):
        for port in config.ports:
            host_port = port.host_port(slot_id)
            if host_port in reserved:
                owner = f"{_owner(config.name, slot_id)} ({port.name})"
                raise ProvisionError(
                    f"host port {host_port} would belong to both {reserved[host_port]} and {owner}",
                    hint=_fitting_ports_hint(
                        config, max(count, config.sandbox.pool_size), reserved
                    ),
                )
    if count + max((p.base for p in config.ports), default=0) > 65535:
        raise ProvisionError(f"{count} slots push host ports past 65535")


def _fitting_ports_hint(config: Config, pool_size: int, reserved: dict[int, str]) -> str:
    requests = [PortRequest(p.name, p.base) for p in config.ports]
    choices = plan_bases(requests, pool_size, reserved, busy=listening)
    lines = [
        render_port_line(dataclasses.replace(port, base=choice.base))
        for port, choice in zip(config.ports, choices, strict=True)
    ]
    return "these [ports] lines in kinfra.toml fit this machine:\n    " + "\n    ".join(lines)


def _owner(project: str, slot_id: int) -> str:
    return f"{project} local-prod" if slot_id == LOCAL_PROD_SLOT else f"{project} slot {slot_id}"


def _running_unclaimed(project: Project, record: ProjectRecord) -> list[int]:
    try:
        live = compose.list_projects()
    except (DockerUnavailableError, ComposeError):
        return []
    return sorted(
        s.slot_id
        for s in record.slots.values()
        if s.claim is None
        and live.get(project.slot(s.slot_id).compose_project, "").startswith("running")
    )
