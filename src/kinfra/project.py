"""The kinfra project a command runs in, and its slots.

Below the workflows (it needs only git, the config and the paths), so that
``kinfra.detect`` and the orchestrator can find a project without importing
anything above them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from kinfra.domain.config import CONFIG_FILE, Config, Profile, load_config
from kinfra.domain.slot import Slot, plan_slot
from kinfra.errors import NotInProjectError
from kinfra.paths import project_home


@dataclass(frozen=True)
class Project:
    """The kinfra project a command runs in: config, main checkout, and the checkout it ran in."""

    config: Config
    root: Path  # the main checkout: owns the config, the registry entry, the worktrees
    here: Path | None  # the checkout (main or linked worktree) the command ran in

    @property
    def name(self) -> str:
        return self.config.name

    def slot(self, slot_id: int) -> Slot:
        return slot_of(self.config, slot_id)

    def profiles(self) -> dict[int, Profile]:
        """Each pool slot's profile, as the registry's claim needs it."""
        sandbox = self.config.sandbox
        return {i: sandbox.profile_of(i) for i in range(1, sandbox.pool_size + 1)}


def slot_of(config: Config, slot_id: int) -> Slot:
    """Slot ``slot_id`` of the project configured by ``config`` (0: local-prod)."""
    return plan_slot(config, slot_id, project_home(config.name))


def slots_of(config: Config, slot_ids: Iterable[int]) -> list[Slot]:
    """``slot_of`` for several slots of one project (the machine's port map
    plans every slot of every project)."""
    home = project_home(config.name)
    return [plan_slot(config, slot_id, home) for slot_id in slot_ids]


def find_project(cwd: Path | None = None, *, whole_config: bool = True) -> Project:
    """The project of the repository containing ``cwd`` (default: the current dir).

    The config is always read from the main checkout, so every worktree of a
    project sees the same ports and pool, whatever branch it is on. A command
    that acts reads the file itself and checks every section before it does
    anything. A listing (``whole_config`` False) reads it through the config
    cache and checks only what it shows (the rest, if it is ever read).
    """
    from kinfra.adapters import git  # `kinfra ports` and the like need no git

    start = (cwd or Path.cwd()).resolve()
    root = git.main_checkout(start)
    here = git.toplevel(start)
    path = root / CONFIG_FILE
    if not path.is_file():
        raise NotInProjectError(
            f"no {CONFIG_FILE} in {root}",
            hint="run `kinfra init` at the repository root to create one",
        )
    if whole_config:
        config = load_config(path)
    else:
        from kinfra.adapters.config_cache import cached_configs

        with cached_configs() as read:
            config = read(path)
    return Project(config=config, root=root, here=here)
