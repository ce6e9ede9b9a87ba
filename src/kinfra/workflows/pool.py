"""Listing the pool: each slot with the status Docker reports now.

Kept apart from ``workflows.slots`` so that `kinfra sandbox slots`, run often
and by scripts, imports only the registry and one docker call, not the start
machinery (gate, secrets, compose YAML).
"""

from __future__ import annotations

from dataclasses import dataclass

from kinfra.adapters import compose
from kinfra.adapters.registry import RegistryStore, SlotRecord
from kinfra.errors import ComposeError, DockerUnavailableError
from kinfra.workflows.project import Project


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
