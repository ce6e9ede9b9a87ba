"""Every project on this machine, as the registry lists them, with its config.

Ports are planned machine-wide, but the registry keeps no ports: another
project's ports come from its own kinfra.toml (in the main checkout the
registry names), through the same ``Slot`` derivation its ``up`` uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kinfra.adapters.registry import Registry
from kinfra.domain.config import CONFIG_FILE, Config, load_config
from kinfra.errors import KinfraError


@dataclass
class MachineProjects:
    configs: dict[str, Config] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)  # name -> why


def load_projects(registry: Registry, skip: str | None = None) -> MachineProjects:
    """The config of every registered project but ``skip``. A project whose
    checkout or config is gone is listed in ``unreadable``, never an error:
    one broken clone must not stop work on every other project."""
    found = MachineProjects()
    for name, record in sorted(registry.projects.items()):
        if name == skip:
            continue
        path = record.root / CONFIG_FILE
        if record.local_prod is not None and not path.is_file():
            path = record.local_prod.clone / CONFIG_FILE
        try:
            found.configs[name] = load_config(path)
        except KinfraError as exc:
            found.unreadable[name] = exc.message
    return found
