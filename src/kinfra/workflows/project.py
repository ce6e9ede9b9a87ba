"""Finding the kinfra project a command runs in."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kinfra.adapters import git
from kinfra.domain.config import CONFIG_FILE, Config, load_config
from kinfra.errors import NotInProjectError


@dataclass(frozen=True)
class Project:
    config: Config
    root: Path  # the main checkout: owns the config, the registry entry, the worktrees
    here: Path | None  # the checkout (main or linked worktree) the command ran in

    @property
    def name(self) -> str:
        return self.config.name


def find_project(cwd: Path | None = None) -> Project:
    """The project of the repository containing ``cwd`` (default: the current dir).

    The config is always read from the main checkout, so every worktree of a
    project sees the same ports and pool, whatever branch it is on.
    """
    start = (cwd or Path.cwd()).resolve()
    root = git.main_checkout(start)
    here = git.toplevel(start)
    path = root / CONFIG_FILE
    if not path.is_file():
        raise NotInProjectError(
            f"no {CONFIG_FILE} in {root}",
            hint="run `kinfra init` at the repository root to create one",
        )
    return Project(config=load_config(path), root=root, here=here)
