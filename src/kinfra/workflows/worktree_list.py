"""`kinfra worktrees`: this repository's worktrees and their sandboxes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kinfra.adapters import compose, git
from kinfra.adapters.registry import RegistryStore
from kinfra.background import Background, map_in_threads
from kinfra.domain.config import Config
from kinfra.domain.names import WorktreeKind
from kinfra.errors import ComposeError, DockerUnavailableError, GitError
from kinfra.project import Project
from kinfra.workflows.worktrees import candidates


@dataclass(frozen=True)
class WorktreeView:
    """One line of `kinfra worktrees`."""

    name: str
    kind: WorktreeKind
    branch: str
    path: Path
    exists: bool
    slot_id: int | None
    slot_state: str | None  # running / stopped / unknown; None without a slot
    port: int | None  # the slot's main port (first http port)
    dirty: bool | None  # None when the directory is gone
    session: bool = False  # its agent session (tmux) is alive

    @property
    def sandbox(self) -> str:
        if self.kind is WorktreeKind.SPEC:
            return "-"
        if self.slot_id is None:
            return "no slot"
        port = f", :{self.port}" if self.port is not None else ""
        return f"slot {self.slot_id} ({self.slot_state}{port})"


def list_worktrees(project: Project, store: RegistryStore | None = None) -> list[WorktreeView]:
    root = project.root.resolve()
    record = (store or RegistryStore()).load().project(project.name)
    cands = candidates(project, record, git.list_worktrees(root))
    from kinfra.workflows.sessions import alive_sessions

    # git status per worktree, `docker ps` and `tmux list-sessions` are
    # independent processes: running them side by side keeps the listing fast.
    live_projects = Background(_live_projects)
    alive = Background(alive_sessions, [c.path for c in cands])
    dirty = map_in_threads(_dirty_or_none, [c.path for c in cands], threads=3)
    live = live_projects.result()
    sessions = alive.result()
    main_port = _main_port(project.config)
    views = []
    for cand, is_dirty in zip(cands, dirty, strict=True):
        slot = project.slot(cand.slot.slot_id) if cand.slot is not None else None
        state = None
        if slot is not None:
            state = "unknown" if live is None else _state(live.get(slot.compose_project))
        port = slot.ports.get(main_port) if slot is not None and main_port else None
        views.append(
            WorktreeView(
                cand.path.name,
                cand.name.kind,
                cand.name.branch,
                cand.path,
                cand.exists,
                slot.slot_id if slot else None,
                state,
                port,
                is_dirty,
                cand.path in sessions,
            )
        )
    return views


def _live_projects() -> dict[str, str] | None:
    """compose project -> "running(N)" / "exited(N)"; None when Docker cannot be asked."""
    try:
        return compose.list_projects()
    except (DockerUnavailableError, ComposeError):
        return None


def _dirty_or_none(path: Path) -> bool | None:
    if not path.is_dir():
        return None
    try:
        return git.has_uncommitted(path)
    except GitError:
        return None


def _state(status: str | None) -> str:
    if not status:
        return "stopped"
    return status.split("(")[0]


def _main_port(config: Config) -> str | None:
    for port in config.ports:
        if port.scheme.startswith("http"):
            return port.name
    return config.ports[0].name if config.ports else None
