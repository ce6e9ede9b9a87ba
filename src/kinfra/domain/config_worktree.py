"""``[worktree]`` and ``[session]`` of kinfra.toml: what a new worktree gets
(files copied from the main checkout, a setup command) and the terminal session
`kinfra impl --session` opens in it.

Read when a command first needs them (``Config.worktree``, ``Config.session``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kinfra.domain.config import _Table


@dataclass(frozen=True)
class WorktreeSettings:
    """[worktree]: files copied into a new impl worktree, and the setup command run there."""

    copy: tuple[str, ...]
    setup: str | None


@dataclass(frozen=True)
class SessionSettings:
    """[session]: the command `kinfra impl --session` runs in the worktree's session."""

    command: str


def parse_worktree(t: _Table) -> WorktreeSettings:
    settings = WorktreeSettings(copy=t.str_list("copy", ()), setup=t.text("setup", None))
    for item in settings.copy:
        if item.startswith("/") or ".." in PurePath(item).parts:
            raise t.error("copy", f"{item!r} must be a path inside the repository")
    t.done()
    return settings


def parse_session(t: _Table) -> SessionSettings:
    settings = SessionSettings(command=t.text("command", "claude"))
    t.done()
    return settings
