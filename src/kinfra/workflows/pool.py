"""The light side of the pool: stopping a slot, one slot's status, and the
listing of every slot with the status Docker reports now.

Kept apart from ``workflows.start`` (gate, secrets, compose YAML) so that
`kinfra sandbox slots`, `kinfra done` and `kinfra sandbox down`, run often
and by scripts, import only the registry and the docker adapter.
"""

from __future__ import annotations

from dataclasses import dataclass

from kinfra.adapters import compose
from kinfra.adapters.registry import ClaimKind, RegistryStore, SlotRecord, SlotStatus
from kinfra.domain.slot import Slot, parse_env_file
from kinfra.errors import ComposeError, DockerUnavailableError
from kinfra.paths import ENV_FILE, SECRETS_FILE
from kinfra.project import Project


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
    try:
        compose.down(slot.compose_project, volumes=volumes)
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
    slot: Slot
    record: SlotRecord
    live: str  # what Docker reports now: running(3), exited(2), stopped, unknown
    # The ports a claimed slot still runs when kinfra.toml changed them (its
    # next start publishes ``slot.ports``); None when nothing is pending.
    ports_now: dict[str, int] | None = None

    @property
    def running(self) -> bool:
        return self.live.startswith("running")


def list_slots(
    project: Project, store: RegistryStore | None = None
) -> tuple[list[SlotView], str | None]:
    """Every slot of the project with Docker's live status. The second value is
    a note when Docker could not be asked."""
    store = store or RegistryStore()
    record = store.load().project(project.name)
    if record is None:
        return [], None
    note = None
    try:
        live = compose.list_projects()
    except (DockerUnavailableError, ComposeError) as exc:
        live = {}
        note = f"live status unknown: {exc.message}"
    views = []
    for slot_id, slot_record in sorted(record.slots.items()):
        slot = project.slot(slot_id)
        status = live.get(slot.compose_project, "stopped") if note is None else "unknown"
        pending = None
        if slot_record.claim is not None or status.startswith("running"):
            now = ports_in_effect(slot)
            pending = now if now is not None and now != dict(slot.ports) else None
        views.append(SlotView(slot, slot_record, status, pending))
    return views, note


@dataclass(frozen=True)
class SlotStatusReport:
    slot: Slot
    record: SlotRecord
    containers: list[compose.ContainerState]

    @property
    def state(self) -> str:
        return compose.stack_state(self.containers)


def slot_status(
    project: Project, slot_id: int, store: RegistryStore | None = None
) -> SlotStatusReport:
    record = (store or RegistryStore()).load().require_project(project.name).slot(slot_id)
    slot = project.slot(slot_id)
    return SlotStatusReport(slot, record, compose.ps(slot.compose_project))


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
