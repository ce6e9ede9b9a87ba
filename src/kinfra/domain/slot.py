"""What a slot is, computed from the config: pure, no I/O.

A slot's ports, compose project name, profile, worker counts, directory,
environment file and compose override all derive from (config, slot id).
``Slot`` is the one value every path uses (up, down, status, slots, doctor,
detection, local-prod as slot 0): the registry stores none of it, so after a
change to kinfra.toml nothing can read a stale copy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kinfra.domain.compose_yaml import Override, Reset
from kinfra.domain.config import Config, Profile

LOCAL_PROD_SLOT = 0


@dataclass(frozen=True)
class Slot:
    """One slot, derived from the config: ports, compose project, profile, workers, directory."""

    project: str
    slot_id: int
    compose_project: str
    profile: Profile
    ports: Mapping[str, int]  # port name -> host port
    schemes: Mapping[str, str]  # port name -> http / https / tcp
    workers: Mapping[str, int]  # worker service -> replicas
    bind: str
    directory: Path  # where kinfra writes the slot's files

    @property
    def is_local_prod(self) -> bool:
        return self.slot_id == LOCAL_PROD_SLOT

    def url(self, name: str) -> str:
        scheme = self.schemes[name]
        host = "localhost"
        if scheme in ("http", "https"):
            return f"{scheme}://{host}:{self.ports[name]}"
        return f"{host}:{self.ports[name]}"

    @property
    def urls(self) -> dict[str, str]:
        return {name: self.url(name) for name in self.ports}

    @property
    def check_host(self) -> str:
        """Where health checks connect: the bind address, or loopback for a wildcard."""
        if self.bind in ("0.0.0.0", ""):
            return "127.0.0.1"
        return "::1" if self.bind == "::" else self.bind

    @property
    def check_netloc_host(self) -> str:
        """``check_host`` as it goes into a URL (IPv6 in brackets)."""
        host = self.check_host
        return f"[{host}]" if ":" in host else host


def compose_project_name(prefix: str, slot_id: int) -> str:
    if slot_id == LOCAL_PROD_SLOT:
        return f"{prefix}-local-prod"
    return f"{prefix}-slot-{slot_id}"


def slot_directory(project_home: Path, slot_id: int) -> Path:
    return project_home / ("local-prod" if slot_id == LOCAL_PROD_SLOT else f"slot-{slot_id}")


def plan_slot(config: Config, slot_id: int, project_home: Path) -> Slot:
    """Slot ``slot_id`` of ``config``; ``project_home`` is $KINFRA_HOME/<project>."""
    profile = Profile.LIGHT if slot_id == LOCAL_PROD_SLOT else config.sandbox.profile_of(slot_id)
    replicas = config.profiles[profile].replicas
    return Slot(
        project=config.name,
        slot_id=slot_id,
        compose_project=compose_project_name(config.prefix, slot_id),
        profile=profile,
        ports={p.name: p.host_port(slot_id) for p in config.ports},
        schemes={p.name: p.scheme for p in config.ports},
        workers={service: replicas for service in config.sandbox.workers},
        bind=config.sandbox.bind,
        directory=slot_directory(project_home, slot_id),
    )


def env_file_values(config: Config, slot: Slot, instance_id: str) -> dict[str, str]:
    """The variables of ``.env.sandbox``: what tools and compose interpolation
    need to know about this slot. Never secrets."""
    values = {
        "KINFRA_PROJECT": config.name,
        "SLOT_NUMBER": str(slot.slot_id),
        "COMPOSE_PROJECT_NAME": slot.compose_project,
        "KINFRA_INSTANCE_ID": instance_id,
        "KINFRA_PROFILE": slot.profile.value,
    }
    for name, host_port in slot.ports.items():
        values[f"{name.upper()}_PORT"] = str(host_port)
    for name, url in slot.urls.items():
        if url.startswith(("http://", "https://")):
            values[f"{name.upper()}_URL"] = url
    values.update(config.env)
    return values


def render_env_file(values: Mapping[str, str], header: str) -> str:
    lines = [f"# {line}" for line in header.splitlines()]
    lines += [f"{key}={value}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def parse_env_file(text: str) -> dict[str, str]:
    """KEY=value lines; ``export`` prefixes, comments and matching quotes handled."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def build_override(
    config: Config,
    slot: Slot,
    code_dir: Path | None,
    shared_root: Path | None = None,
    services_with_ports: Iterable[str] = (),
) -> dict[str, Any]:
    """The slot's compose override document.

    - every named port published as the slot's host port, replacing (``!override``)
      whatever the base file publishes for that service;
    - services that publish ports kinfra does not manage get ``ports: !reset``
      so that no host port is left at a compose default;
    - ``container_name`` reset, since two slots cannot share a container name;
    - worker replicas from the slot's profile;
    - the code mounts of ``code_dir`` (a worktree) and the shared data dirs.
    """
    services: dict[str, dict[str, Any]] = {}

    def service(name: str) -> dict[str, Any]:
        return services.setdefault(name, {"container_name": Reset()})

    for port in config.ports:
        entry = {
            "target": port.target,
            "published": str(slot.ports[port.name]),
            "host_ip": slot.bind,
            "protocol": "tcp",
        }
        ports = service(port.service).setdefault("ports", Override())
        ports.append(entry)
    for name in services_with_ports:
        if name not in services or "ports" not in services[name]:
            service(name)["ports"] = Reset()
    for worker, replicas in slot.workers.items():
        service(worker)["deploy"] = {"replicas": replicas}
    binds: list[tuple[tuple[str, ...], Path, str, bool]] = []
    if code_dir is not None:
        binds += [(m.services, code_dir / m.source, m.target, m.read_only) for m in config.mounts]
    if shared_root is not None:
        binds += [(d.services, shared_root / d.name, d.target, d.read_only) for d in config.shared]
    for names, source, target, read_only in binds:
        for name in names:
            service(name).setdefault("volumes", []).append(
                {"type": "bind", "source": str(source), "target": target, "read_only": read_only}
            )
    return {"services": services}
