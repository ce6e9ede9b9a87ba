"""`kinfra done`'s read-only questions to git and Docker, asked at once on
threads.

Before its first change, `done` used to wait on Python importing and reading
the project (~60 ms) and then on git answering its checks, one call after
another. Asked first (``done_here``), git and Docker answer while the rest is
imported: hence the light imports here. Every check still runs, on these
answers, before anything changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kinfra.adapters import git
from kinfra.background import Background
from kinfra.domain.agent_labels import LABEL_BOX, LABEL_PROJECT, container_name
from kinfra.errors import DockerUnavailableError

if TYPE_CHECKING:
    from kinfra.workflows.worktrees import DoneResult


@dataclass(frozen=True)
class DoneReads:
    """`kinfra done`'s read-only questions to git and Docker, being answered on threads."""

    worktrees: Background[list[git.WorktreeEntry]]
    base: Background[str | None]  # what unpushed work is measured against (git.default_base)
    agent_boxes: Background[set[tuple[str, str]]]  # (project, container) of agent volumes

    def has_agent(self, project: str, worktree: Path) -> bool:
        """Whether the worktree has (or had) an agent container: every container
        has its home and logs volumes."""
        return (project, container_name(worktree)) in self.agent_boxes.result()


def ask(root: Path) -> DoneReads:
    """Start the questions about the repository whose main checkout is ``root``."""
    return DoneReads(
        worktrees=Background(git.list_worktrees, root),
        base=Background(git.default_base, root),
        agent_boxes=Background(_agent_boxes),
    )


def done_here(wanted: str, *, force: bool, keep_branch: bool, reset_data: bool) -> DoneResult:
    """`kinfra done WANTED`, for the project of the current directory."""
    start = Path.cwd().resolve()
    reads = ask(git.main_checkout(start).resolve())
    from kinfra.project import find_project
    from kinfra.workflows.worktrees import done

    return done(
        find_project(start),
        wanted,
        force=force,
        keep_branch=keep_branch,
        reset_data=reset_data,
        reads=reads,
    )


def _agent_boxes() -> set[tuple[str, str]]:
    from kinfra.adapters import docker  # imported on this thread, while the main one imports

    try:
        return docker.labelled_volumes(LABEL_PROJECT, LABEL_BOX)
    except DockerUnavailableError:
        return set()  # nothing to remove that kinfra could remove now
