"""Every project on this machine, as the registry lists them, and their ports.

Ports are planned machine-wide, but the registry keeps no ports: another
project's ports come from its own kinfra.toml (in the main checkout the
registry names), through the same ``Slot`` derivation its ``up`` uses. A
project reserves the ports of every slot it can have, 0 (local-prod) to its
pool size, provisioned or not, so that growing a pool never collides.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass, field

from kinfra.adapters.config_cache import cached_configs
from kinfra.adapters.registry import Registry
from kinfra.domain.config import CONFIG_FILE, Config, load_config
from kinfra.domain.slot import LOCAL_PROD_SLOT
from kinfra.errors import KinfraError
from kinfra.project import slots_of


@dataclass
class MachineProjects:
    """The config of every registered project, and why the others could not be read."""

    configs: dict[str, Config] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)  # name -> why


def load_projects(
    registry: Registry, skip: str | None = None, *, listing: bool = False
) -> MachineProjects:
    """The config of every registered project but ``skip``. A project whose
    checkout or config is gone is listed in ``unreadable``, never an error:
    one broken clone must not stop work on every other project. Each config
    is checked as far as ports and budgets need (``parse_config``); a listing
    reads the files through the config cache."""
    found = MachineProjects()
    direct = functools.partial(load_config, all_sections=False)
    reader = cached_configs() if listing else contextlib.nullcontext(direct)
    with reader as read:
        for name, record in sorted(registry.projects.items()):
            if name == skip:
                continue
            path = record.root / CONFIG_FILE
            if record.local_prod is not None and not path.is_file():
                path = record.local_prod.clone / CONFIG_FILE
            try:
                found.configs[name] = read(path)
            except KinfraError as exc:
                found.unreadable[name] = exc.message
    return found


@dataclass(frozen=True)
class PortEntry:
    """One host port a project's slot reserves."""

    project: str
    slot_id: int
    name: str
    port: int
    host: str  # where to look for a listener: the slot's bind address (loopback for a wildcard)
    # A claimed slot still runs the ports it was started with; its plan's
    # ports (another entry) take over at its next start.
    until_restart: bool = False

    @property
    def owner(self) -> str:
        slot = "local-prod" if self.slot_id == LOCAL_PROD_SLOT else f"slot {self.slot_id}"
        until = ", until its next start" if self.until_restart else ""
        return f"{self.project} {slot} ({self.name}{until})"


def port_map(registry: Registry, projects: MachineProjects) -> list[PortEntry]:
    """Every host port the registered projects' slots publish or may publish."""
    entries: list[PortEntry] = []
    for name, config in projects.configs.items():
        record = registry.projects.get(name)
        provisioned = set(record.slots) if record is not None else set()
        slot_ids = sorted(set(range(LOCAL_PROD_SLOT, config.sandbox.pool_size + 1)) | provisioned)
        for slot in slots_of(config, slot_ids):
            slot_id = slot.slot_id
            for port_name, port in slot.ports.items():
                entries.append(PortEntry(name, slot_id, port_name, port, slot.check_host))
            held = record.slots.get(slot_id) if record is not None else None
            if held is not None and held.claim is not None:
                from kinfra.workflows.pool import ports_in_effect  # docker adapter: only here

                old = ports_in_effect(slot) or {}
                for port_name, port in old.items():
                    if slot.ports.get(port_name) != port:
                        entries.append(
                            PortEntry(name, slot_id, port_name, port, slot.check_host, True)
                        )
    return entries


def reserved_ports(entries: list[PortEntry]) -> dict[int, str]:
    """host port -> who has it, for the port planner and its messages."""
    return {entry.port: entry.owner for entry in entries}


def listening(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts connections on host:port right now."""
    from kinfra.adapters import netcheck  # sockets: only for `kinfra ports` and `init`

    return netcheck.listening(host, port)


def machine_reservations(registry: Registry, skip: str) -> tuple[dict[int, str], list[str]]:
    """The ports every project but ``skip`` holds, and notes on the projects
    whose config could not be read (their ports are unknown)."""
    projects = load_projects(registry, skip=skip)
    notes = [f"the ports of {n} are unknown: {why}" for n, why in projects.unreadable.items()]
    return reserved_ports(port_map(registry, projects)), notes


@dataclass
class PortsReport:
    """Every port reserved on the machine (`kinfra ports`), what listens, and notes."""

    ports: list[PortEntry]
    listening: frozenset[PortEntry]  # those something accepts connections on now
    notes: list[str]


def machine_ports(registry: Registry, probe: Callable[[int, str], bool] = listening) -> PortsReport:
    """`kinfra ports`: the machine's port map, with what listens now."""
    projects = load_projects(registry, listing=True)
    entries = port_map(registry, projects)
    notes = [f"{n}: ports unknown ({why})" for n, why in projects.unreadable.items()]
    return PortsReport(entries, frozenset(e for e in entries if probe(e.port, e.host)), notes)
