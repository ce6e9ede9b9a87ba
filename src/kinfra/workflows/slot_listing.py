"""`kinfra sandbox slots` for the project of the current checkout.

Docker is asked first, on a thread: the `docker ps` behind the live status
(~15 ms) runs while the project, its config and the registry are imported and
read, rather than after them. Hence the light imports at the top.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kinfra.adapters import compose
from kinfra.background import Background

if TYPE_CHECKING:
    from kinfra.project import Project
    from kinfra.workflows.pool import SlotListing


def list_slots_here() -> tuple[Project, SlotListing]:
    live = Background(compose.list_projects)
    from kinfra.project import find_project
    from kinfra.workflows.pool import list_slots

    project = find_project(whole_config=False)
    return project, list_slots(project, live=live)
