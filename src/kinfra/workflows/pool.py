"""The light side of the pool: the names of a slot's files, stopping a slot,
and listing slots with the status Docker reports now.

Kept apart from ``workflows.slots`` (starting: gate, secrets, compose YAML)
so that `kinfra sandbox slots`, `kinfra done` and `kinfra sandbox down`, run
often and by scripts, import only the registry and the docker adapter.
"""

from __future__ import annotations

from dataclasses import dataclass

from kinfra.adapters import compose
from kinfra.adapters.registry import RegistryStore, SlotRecord, SlotStatus
from kinfra.errors import ComposeError, DockerUnavailableError
from kinfra.paths import SECRETS_FILE
from kinfra.workflows.project import Project


def stop_slot(
    project: Project,
    slot_id: int,
    volumes: bool = False,
    release_manual: bool = True,
    store: RegistryStore | None = None,
) -> SlotRecord:
    """Stop a slot (volumes kept unless asked). A "manual" claim is given back;
    an impl worktree keeps its claim until `kinfra done`."""
    config = project.config
    store = store or RegistryStore()
    slot = store.load().require_project(config.name).slot(slot_id)
    try:
        compose.down(slot.compose_project, volumes=volumes)
    except BaseException:
        with store.transaction() as registry:
            registry.set_status(config.name, slot_id, SlotStatus.FAILED)
        raise
    # Secrets stay on disk only while the stack runs; a start writes them again.
    (slot.directory / SECRETS_FILE).unlink(missing_ok=True)
    with store.transaction() as registry:
        slot = registry.set_status(config.name, slot_id, SlotStatus.STOPPED)
        if release_manual and slot.claim_kind == "manual":
            slot = registry.release(config.name, slot_id)
    return slot


@dataclass(frozen=True)
class SlotView:
    slot: SlotRecord
    live: str  # what Docker reports now: running(3), exited(2), stopped, unknown

    @property
    def running(self) -> bool:
        return self.live.startswith("running")


def list_slots(
    project: Project, store: RegistryStore | None = None
) -> tuple[list[SlotView], str | None]:
    """Every slot of the project with Docker's live status. The second value is
    a note when Docker could not be asked."""
    store = store or RegistryStore()
    record = store.load().project(project.config.name)
    if record is None:
        return [], None
    note = None
    try:
        live = compose.list_projects()
    except (DockerUnavailableError, ComposeError) as exc:
        live = {}
        note = f"live status unknown: {exc.message}"
    views = [
        SlotView(slot, live.get(slot.compose_project, "stopped") if note is None else "unknown")
        for _, slot in sorted(record.slots.items())
    ]
    return views, note
