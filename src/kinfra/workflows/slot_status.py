"""`kinfra sandbox status`: one slot, its record and its containers."""

from __future__ import annotations

from dataclasses import dataclass

from kinfra.adapters import compose
from kinfra.adapters.registry import RegistryStore, SlotRecord
from kinfra.domain.slot import Slot
from kinfra.project import Project


@dataclass(frozen=True)
class SlotStatusReport:
    """One slot and its containers (`kinfra sandbox status`)."""

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
