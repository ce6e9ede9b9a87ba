"""The docker CLI against one engine, named by its Docker context.

Contexts are Docker's own way to reach another engine (its remote API over
SSH or TLS), so kinfra needs no agent of its own there: every call here is
``docker --context NAME …`` (None: the engine the docker CLI uses by
default, where images are built), made through ``adapters.docker``.
Failures become a ``DeployError`` naming the context and docker's own
last line.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from kinfra.adapters import docker as docker_cli
from kinfra.adapters.runner import CommandError, Result, pipe
from kinfra.errors import DeployError, DockerUnavailableError


def _argv(context: str | None, args: Sequence[str]) -> list[str]:
    return [*(["--context", context] if context else []), *args]


def docker(context: str | None, *args: str, check: bool = True) -> Result:
    result = docker_cli.docker(_argv(context, args), check=False)
    if check and not result.ok:
        raise _failure(context, args, result)
    return result


def _failure(context: str | None, args: Sequence[str], result: Result) -> DeployError:
    where = f"engine of context {context}" if context else "local engine"
    return DeployError(
        f"docker {' '.join(args[:2])} failed on the {where}: {docker_cli.last_line(result.output)}",
        hint="full command: docker " + " ".join(_argv(context, args)),
    )


# --- contexts -----------------------------------------------------------------------


def context_endpoint(name: str) -> str | None:
    """The docker endpoint of context ``name`` (tcp://host:2376, ssh://user@host,
    unix:///…), or None when there is no such context."""
    result = docker(None, "context", "inspect", name, "--format", "{{.Endpoints.docker.Host}}",
                    check=False)  # fmt: skip
    return result.stdout.strip() if result.ok and result.stdout.strip() else None


def context_names() -> list[str]:
    return docker(None, "context", "ls", "--format", "{{.Name}}").stdout.split()


def server_version(context: str) -> str:
    """The engine's version; a DeployError saying why it cannot be reached."""
    try:
        result = docker(context, "version", "--format", "{{.Server.Version}}", check=False)
    except DockerUnavailableError as exc:  # the daemon's address is in the message
        raise DeployError(
            f"the engine of Docker context {context} cannot be reached: {exc.message}",
            hint=f"check it with `docker --context {context} info`",
        ) from exc
    if not result.ok or not result.stdout.strip():
        raise DeployError(
            f"the engine of Docker context {context} cannot be reached: "
            + docker_cli.last_line(result.output),
            hint=f"check it with `docker --context {context} info`",
        )
    return result.stdout.strip()


# --- images -----------------------------------------------------------------------------


def image_ids(context: str | None, refs: Iterable[str]) -> dict[str, str]:
    """ref -> image ID for each of ``refs`` the engine has (names or IDs)."""
    wanted = list(dict.fromkeys(refs))
    if not wanted:
        return {}
    result = docker(context, "image", "inspect", "--format", "{{.Id}}", *wanted, check=False)
    if not result.ok:
        # One missing image fails the whole call: ask one by one, rarely.
        found = {}
        for ref in wanted:
            one = docker(context, "image", "inspect", "--format", "{{.Id}}", ref, check=False)
            if one.ok and one.stdout.strip():
                found[ref] = one.stdout.strip()
        return found
    return dict(zip(wanted, result.stdout.split(), strict=True))


def all_image_ids(context: str | None) -> set[str]:
    out = docker(context, "image", "ls", "--all", "--quiet", "--no-trunc").stdout
    return set(out.split())


def tag(context: str | None, source: str, target: str) -> None:
    docker(context, "tag", source, target)


def untag(context: str | None, refs: Iterable[str]) -> None:
    """Remove tags (an image still used by a container keeps existing)."""
    names = list(refs)
    if names:
        docker(context, "image", "rm", "--no-prune", *names, check=False)


def tags_of(context: str | None, repository: str) -> dict[str, str]:
    """tag -> image ID of every image of ``repository``."""
    out = docker(context, "image", "ls", repository, "--no-trunc",
                 "--format", "{{.Tag}}\t{{.ID}}").stdout  # fmt: skip
    found = {}
    for line in out.splitlines():
        name, _, image = line.partition("\t")
        if name and image:
            found[name] = image
    return found


def transfer(images: Sequence[str], source: str | None, target: str) -> None:
    """``docker save IMAGES | docker --context TARGET load``: layers the images
    share travel once. Names keep their tags; IDs arrive as the same IDs."""
    if not images:
        return
    try:
        pipe(
            ["docker", *_argv(source, ["save", *images])],
            ["docker", *_argv(target, ["load", "--quiet"])],
        )
    except CommandError as exc:
        raise _failure(target, ["load"], exc.result) from exc


def push(ref: str) -> None:
    docker(None, "push", ref)


def pull(context: str, ref: str) -> None:
    docker(context, "pull", "--quiet", ref)


# --- containers ----------------------------------------------------------------------


@dataclass(frozen=True)
class Container:
    """One container of a compose project on a target's engine, as `docker inspect` describes it."""

    name: str
    service: str
    image: str  # image ID
    state: str
    health: str
    labels: dict[str, str]
    ports: dict[int, int]  # container TCP port -> published host port

    @property
    def ok(self) -> bool:
        return self.state == "running" and self.health in ("", "healthy")


def containers(context: str | None, project: str) -> list[Container]:
    """Every container of compose project ``project`` on the engine, with labels."""
    ids = docker(context, "ps", "--all", "--quiet", "--no-trunc",
                 "--filter", f"label=com.docker.compose.project={project}").stdout.split()  # fmt: skip
    if not ids:
        return []
    result = docker(context, "inspect", *ids, check=False)
    if not result.ok:  # one went away meanwhile
        return containers(context, project) if len(ids) > 1 else []
    return [_container(item) for item in json.loads(result.stdout)]


def _container(item: dict[str, Any]) -> Container:
    labels = dict((item.get("Config") or {}).get("Labels") or {})
    state = item.get("State") or {}
    ports: dict[int, int] = {}
    for spec, bindings in ((item.get("NetworkSettings") or {}).get("Ports") or {}).items():
        number, _, protocol = spec.partition("/")
        for binding in bindings or []:
            if protocol == "tcp" and binding.get("HostPort"):
                ports.setdefault(int(number), int(binding["HostPort"]))
    return Container(
        name=str(item.get("Name", "")).lstrip("/"),
        service=labels.get("com.docker.compose.service", ""),
        image=str(item.get("Image", "")),
        state=str(state.get("Status", "")),
        health=str((state.get("Health") or {}).get("Status", "")),
        labels=labels,
        ports=ports,
    )
