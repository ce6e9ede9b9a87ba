"""The labels that mark an agent container and its volumes, and the
container's name: what `kinfra done` needs to find a worktree's agent box
without importing the rest of ``kinfra.domain.agent_box``."""

from __future__ import annotations

from pathlib import Path

LABEL_PROJECT = "kinfra.agent.project"
LABEL_BOX = "kinfra.agent.box"  # the container's name, on it and on its volumes
LABEL_WORKTREE = "kinfra.agent.worktree"  # the worktree's path on the host
LABEL_VOLUME = "kinfra.agent.volume"  # a volume's role
LABEL_USER = "kinfra.agent.user"  # "uid:gid" commands run as in the container
LABEL_INPUTS = "kinfra.agent.inputs"  # on images: the digest of their inputs


def container_name(worktree: Path) -> str:
    """The agent container of the worktree at ``worktree``."""
    return f"{worktree.name}-agent"
