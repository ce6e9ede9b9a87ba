"""Everyday questions asked from inside a checkout: which instance is mine,
what state is it in, are its secrets resolvable."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kinfra.adapters import compose
from kinfra.adapters import secrets as secret_refs
from kinfra.detect import Instance, detect
from kinfra.errors import ComposeError, DockerUnavailableError, KinfraError
from kinfra.project import Project, find_project


@dataclass(frozen=True)
class InstanceStatus:
    """The detected instance (`kinfra status`) and its containers' state."""

    instance: Instance
    containers: list[compose.ContainerState]
    note: str | None  # when Docker could not be asked

    @property
    def state(self) -> str:
        if self.instance.compose_project is None:
            return "unknown"
        return compose.stack_state(self.containers)


def instance_status(
    cwd: Path | None = None,
    *,
    url: str | None = None,
    port: int | None = None,
    slot: int | None = None,
) -> InstanceStatus:
    """The detected instance with its containers' state and health."""
    instance = detect(cwd, url=url, port=port, slot=slot)
    containers: list[compose.ContainerState] = []
    note = None
    if instance.compose_project is not None:
        try:
            containers = compose.ps(instance.compose_project)
        except (DockerUnavailableError, ComposeError) as exc:
            note = f"container state unknown: {exc.message}"
    return InstanceStatus(instance, containers, note)


def check_secrets(cwd: Path | None = None) -> list[secret_refs.SecretStatus]:
    """ok / missing / error for each secret of the project; values never leave."""
    config = find_project(cwd).config
    return secret_refs.check(config.secrets, config.root)


def probe_url(url: str) -> bool:
    """Whether something answers at the URL's host:port (for `status` of a bare --url)."""
    from urllib.parse import urlsplit

    from kinfra.adapters import netcheck

    with contextlib.suppress(ValueError):
        parts = urlsplit(url)
        if parts.hostname and parts.port:
            return netcheck.tcp_probe(parts.hostname, parts.port).ok
    return False


# --- inside a slot ------------------------------------------------------------------

# One exec, no probe: a separate probe would consume the caller's stdin.
_SHELL = "if command -v bash >/dev/null 2>&1; then exec bash; else exec sh; fi"
SHELL_COMMAND = ("sh", "-c", _SHELL)


def default_service(project: Project) -> str:
    """Where a shell lands without a service name: the service running the code."""
    config = project.config
    if config.mounts:
        return config.mounts[0].services[0]
    if config.ports:
        return config.ports[0].service
    raise KinfraError("kinfra.toml names no service", hint="pass the service name")


def _compose_project(project: Project, slot_id: int) -> str:
    from kinfra.adapters.registry import RegistryStore

    RegistryStore().load().require_project(project.name).slot(slot_id)  # provisioned
    return project.slot(slot_id).compose_project


def exec_in_slot(
    project: Project, slot_id: int, service: str, command: Sequence[str], interactive: bool
) -> int:
    """Run a command in a slot's service; its exit code is returned."""
    if not command:
        raise KinfraError("no command given", hint="kinfra sandbox exec <service> -- <command...>")
    return compose.exec_in(_compose_project(project, slot_id), service, command, interactive)


def shell_in_slot(project: Project, slot_id: int, service: str | None, interactive: bool) -> int:
    """bash in a slot's service, or sh where the image has no bash."""
    target = service or default_service(project)
    return compose.exec_in(_compose_project(project, slot_id), target, SHELL_COMMAND, interactive)
