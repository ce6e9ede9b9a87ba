"""The light side of the pool: stopping a slot, and the listing of every
slot with the status Docker reports now (one slot's: ``slot_status``).

Kept apart from ``workflows.start`` (gate, secrets, compose YAML) so that
`kinfra sandbox slots`, `kinfra done` and `kinfra sandbox down`, run often
and by scripts, import only the registry and the docker adapter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kinfra import trace
from kinfra.adapters import compose
from kinfra.adapters.registry import ClaimKind, Registry, RegistryStore, SlotRecord, SlotStatus
from kinfra.domain.slot import Slot, parse_env_file
from kinfra.errors import ComposeError, DockerUnavailableError
from kinfra.paths import ENV_FILE, SECRETS_FILE
from kinfra.project import Project

if TYPE_CHECKING:
    from kinfra.background import Background
    from kinfra.workflows.budget import Usage


def stop_slot(
    project: Project,
    slot_id: int,
    volumes: bool = False,
    release_manual: bool = True,
    store: RegistryStore | None = None,
) -> SlotRecord:
    """Stop a slot (volumes kept unless asked). A "manual" claim is given back;
    an impl worktree keeps its claim until `kinfra done`."""
    name = project.name
    store = store or RegistryStore()
    store.load().require_project(name).slot(slot_id)  # provisioned, or a clear error
    slot = project.slot(slot_id)
    trace.step("slot:stopping")
    try:
        compose.down(slot.compose_project, volumes=volumes)
    except DockerUnavailableError:
        raise  # Docker was never reached: nothing about the slot changed
    except BaseException:
        with store.transaction() as registry:
            registry.set_status(name, slot_id, SlotStatus.FAILED)
        raise
    # Secrets stay on disk only while the stack runs; a start writes them again.
    (slot.directory / SECRETS_FILE).unlink(missing_ok=True)
    with store.transaction() as registry:
        record = registry.set_status(name, slot_id, SlotStatus.STOPPED)
        if release_manual and record.claim is not None and record.claim.kind is ClaimKind.MANUAL:
            record = registry.release(name, slot_id)
    return record


@dataclass(frozen=True)
class SlotView:
    """One slot of `kinfra sandbox slots`: its record, what Docker reports, its memory."""

    slot: Slot
    record: SlotRecord
    live: str  # what Docker reports now: running(3), exited(2), stopped, unknown
    expected_mb: int  # its profile's memory
    # The ports a claimed slot still runs when kinfra.toml changed them (its
    # next start publishes ``slot.ports``); None when nothing is pending.
    ports_now: dict[str, int] | None = None
    used_mb: float | None = None  # what its containers use now (`docker stats`)

    @property
    def running(self) -> bool:
        return self.live.startswith("running")


@dataclass
class SlotListing:
    """Every slot of a project (`kinfra sandbox slots`), and the machine's memory budget."""

    views: list[SlotView] = field(default_factory=list)
    note: str | None = None  # when Docker could not be asked
    memory: Usage | None = None  # the machine's budget, None when it is unknown


def list_slots(
    project: Project,
    store: RegistryStore | None = None,
    live: Background[dict[str, str]] | None = None,
) -> SlotListing:
    """Every slot of the project with Docker's live status and real memory use,
    and the machine's memory budget. ``live``: Docker's answer already asked
    for (``compose.list_projects`` on a thread), else it is asked here."""
    registry = (store or RegistryStore()).load()
    record = registry.project(project.name)
    if record is None:
        return SlotListing()
    listing = SlotListing()
    try:
        projects = live.result() if live is not None else compose.list_projects()
    except (DockerUnavailableError, ComposeError) as exc:
        projects = {}
        listing.note = f"live status unknown: {exc.message}"
    slots = [project.slot(slot_id) for slot_id in sorted(record.slots)]
    running = [
        s.compose_project
        for s in slots
        if projects.get(s.compose_project, "").startswith("running")
    ]
    used: dict[str, float] = {}
    if running:
        from kinfra.background import Background

        # `docker stats` samples for about a second: it runs while the rest is read.
        usage = Background(_usage_or_nothing, running)
    if registry.queue or registry.starting or _kinfra_running(registry, projects):
        from kinfra.workflows.budget import budget_of, machine_usage

        budget = budget_of(project.config)
        if budget is not None:
            listing.memory = machine_usage(registry, budget, None if listing.note else projects)
    if running:
        used = usage.result()
    for slot in slots:
        slot_record = record.slots[slot.slot_id]
        status = (
            projects.get(slot.compose_project, "stopped") if listing.note is None else "unknown"
        )
        pending = None
        if slot_record.claim is not None or status.startswith("running"):
            now = ports_in_effect(slot)
            pending = now if now is not None and now != dict(slot.ports) else None
        listing.views.append(
            SlotView(
                slot,
                slot_record,
                status,
                project.config.profiles[slot.profile].memory_mb,
                pending,
                used.get(slot.compose_project),
            )
        )
    return listing


def _kinfra_running(registry: Registry, live: dict[str, str]) -> bool:
    """Whether any stack named like a registered project's slot runs (the
    machine's budget is worth reading then)."""
    prefixes = tuple(f"{p.prefix}-" for p in registry.projects.values())
    return any(n.startswith(prefixes) and s.startswith("running") for n, s in live.items())


def _usage_or_nothing(compose_projects: list[str]) -> dict[str, float]:
    try:
        return compose.memory_usage(compose_projects)
    except (DockerUnavailableError, ComposeError):
        return {}


def ports_in_effect(slot: Slot) -> dict[str, int] | None:
    """The ports the slot's files were last written with (its last start, or
    provisioning): what a running stack publishes until its next start. None
    when the slot has no files yet."""
    try:
        values = parse_env_file((slot.directory / ENV_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None
    found = {}
    for name in slot.ports:
        text = values.get(f"{name.upper()}_PORT", "")
        if text.isascii() and text.isdigit():
            found[name] = int(text)
    return found
