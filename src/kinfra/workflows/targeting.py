"""Which slot a sandbox command acts on when no --slot is given."""

from __future__ import annotations

from kinfra.adapters.registry import RegistryStore
from kinfra.errors import KinfraError
from kinfra.workflows.project import Project


def resolve_slot_id(
    project: Project, explicit: int | None, store: RegistryStore | None = None
) -> int:
    """An explicit --slot wins; otherwise the slot the current checkout claims."""
    if explicit is not None:
        return explicit
    here = project.here or project.root
    record = (store or RegistryStore()).load().project(project.name)
    claimed = record.slot_claimed_by(here) if record else None
    if claimed is None:
        raise KinfraError(
            f"no --slot given and {here} holds no slot",
            hint="pass --slot N (see `kinfra sandbox slots`), or run inside an impl worktree",
        )
    return claimed.slot_id
