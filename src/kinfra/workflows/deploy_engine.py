"""A deploy target's engine: reaching it, and what it runs and keeps.

The engine is the truth about a target: the labels of its containers say
which release runs, and its ``kinfra-prev`` tags are the rollback point.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from kinfra.adapters import docker_engine
from kinfra.adapters.docker_engine import Container
from kinfra.background import Background
from kinfra.domain.config import Config
from kinfra.domain.config_deploy import DeployTarget
from kinfra.domain.deploy import PREV_REPOSITORY, Release, Running, prev_service, prev_tag
from kinfra.errors import DeployError, KinfraError


@dataclass(frozen=True)
class Engine:
    """A target's engine as its Docker context reaches it, and where its ports are reached."""

    context: str
    endpoint: str  # the context's docker endpoint: tcp://host:2376, ssh://user@host...
    address: str  # where the target's published ports are reached


def require_target(config: Config, name: str) -> DeployTarget:
    target = config.deploy.get(name)
    if target is None:
        known = ", ".join(config.deploy) or "none"
        raise DeployError(
            f"no deploy target {name!r} in {config.path.name} (targets: {known})",
            hint=f"add a [deploy.{name}] table to {config.path}",
        )
    return target


def connect(target: DeployTarget) -> Engine:
    """The target's engine, checked reachable, so that nothing is built for an
    engine that is not there. An unknown context is a config error naming the
    key and listing the contexts Docker has."""
    # Both asked at once: the engine's answer does not wait for the context's.
    version = Background(docker_engine.server_version, target.context)
    endpoint = docker_engine.context_endpoint(target.context)
    if endpoint is None:
        names = docker_engine.context_names()
        raise target.key_error(
            "context",
            f"no Docker context named {target.context!r} "
            f"(docker context ls: {', '.join(names) or 'none'})",
            hint="create it (`docker context create NAME --docker host=ssh://user@host`) "
            "or name an existing one",
        )
    version.result()  # reachable, or a DeployError saying why not
    return Engine(target.context, endpoint, target.address or host_of(endpoint))


def probe(target: DeployTarget) -> tuple[Engine | None, str]:
    """The engine, or why it cannot be used: for status, which reports rather than fails."""
    try:
        return connect(target), ""
    except KinfraError as exc:  # unknown context, unreachable engine
        return None, exc.message


def host_of(endpoint: str) -> str:
    """The host of a docker endpoint; a local socket's engine publishes on loopback."""
    parts = urlsplit(endpoint)
    if parts.scheme in ("tcp", "ssh", "http", "https") and parts.hostname:
        return parts.hostname
    return "127.0.0.1"


def running(engine: Engine, project: str) -> tuple[Running, list[Container]]:
    """The release that runs (from its containers' labels) and their images."""
    found = docker_engine.containers(engine.context, project)
    live = [c for c in found if c.state == "running"]
    release = next(
        (r for r in (Release.from_labels(c.labels) for c in live) if r is not None), None
    )
    # Every container counts for the images (a one-shot service may have exited).
    return Running(release, {c.service: c.image for c in found}), found


@dataclass(frozen=True)
class Survey:
    """What a switch needs to know of the target beforehand."""

    running: Running
    point: dict[str, str]  # the rollback point: service -> image ID
    images: frozenset[str]  # every image ID the engine has


def survey(engine: Engine, project: str) -> Survey:
    """Three reads of the engine, side by side (each a round trip to it)."""
    point = Background(rollback_point, engine, project)
    images = Background(docker_engine.all_image_ids, engine.context)
    now, _ = running(engine, project)
    return Survey(now, point.result(), frozenset(images.result()))


def rollback_point(engine: Engine, project: str) -> dict[str, str]:
    """service -> image ID of the ``kinfra-prev`` tags of ``project``."""
    found = {}
    for tag, image in docker_engine.tags_of(engine.context, PREV_REPOSITORY).items():
        service = prev_service(project, tag)
        if service is not None:
            found[service] = image
    return found


def keep_rollback_point(
    engine: Engine, project: str, images: Mapping[str, str], point: Mapping[str, str]
) -> list[str]:
    """Tag ``images`` (service -> ID) as the rollback point in place of
    ``point``; returns the tags of services the new point lacks, for
    ``drop_tags`` once the switch is done (the images behind them may be the
    very ones being started). Nothing running, nothing to keep: the old
    point stays."""
    if not images:
        return []
    tagging = [
        Background(docker_engine.tag, engine.context, image, prev_tag(project, service))
        for service, image in images.items()
    ]  # one engine round trip each: run side by side
    for call in tagging:
        call.result()
    return [prev_tag(project, service) for service in sorted(set(point) - set(images))]


def drop_tags(engine: Engine, tags: list[str]) -> None:
    docker_engine.untag(engine.context, tags)


def published_urls(config: Config, containers: list[Container], address: str) -> dict[str, str]:
    """The URL of each [ports] name that the target publishes."""
    urls = {}
    for port in config.ports:
        host_port = published_port(containers, port.service, port.target)
        if host_port is None:
            continue
        if port.scheme in ("http", "https"):
            urls[port.name] = f"{port.scheme}://{address}:{host_port}"
        else:
            urls[port.name] = f"{address}:{host_port}"
    return urls


def published_port(containers: list[Container], service: str, target: int) -> int | None:
    for container in containers:
        if (
            container.service == service
            and container.state == "running"
            and target in container.ports
        ):
            return container.ports[target]
    return None
