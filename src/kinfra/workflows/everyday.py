"""Everyday questions asked from inside a checkout: which instance is mine,
what state is it in, are its secrets resolvable."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from kinfra.adapters import compose
from kinfra.adapters import secrets as secret_refs
from kinfra.detect import Instance, detect
from kinfra.errors import ComposeError, DockerUnavailableError
from kinfra.workflows.project import find_project


@dataclass(frozen=True)
class InstanceStatus:
    instance: Instance
    containers: list[compose.ContainerState]
    note: str | None  # when Docker could not be asked

    @property
    def state(self) -> str:
        if self.instance.compose_project is None:
            return "unknown"
        if not self.containers:
            return "stopped"
        if all(c.ok for c in self.containers):
            return "running"
        if any(c.state == "running" for c in self.containers):
            return "degraded"
        return "stopped"


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
