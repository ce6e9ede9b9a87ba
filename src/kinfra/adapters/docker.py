"""The docker CLI for single containers, images, volumes and networks (the
agent container), through the one subprocess runner.

Compose stacks go through ``adapters.compose``, whose ``docker`` these calls
share: Docker missing, down, or not ours to use is one
``DockerUnavailableError``. Other failures raise the runner's
``CommandError`` (command, exit code, output tail) for the workflow to put
in context.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kinfra.adapters import compose
from kinfra.adapters.runner import CommandError, CommandNotFoundError, Result, stream


def docker(
    args: Sequence[str | Path],
    *,
    check: bool = True,
    capture: bool = True,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    input: str | None = None,
    stdin_file: Path | None = None,
    stdout_file: Path | None = None,
) -> Result:
    """``docker ARGS``; ``env`` is added to kinfra's environment (for ``-e NAME``
    without a value, which keeps secrets out of the command line). ``input``,
    ``stdin_file`` and ``stdout_file`` as for ``runner.run`` (a tar stream)."""
    argv = ["docker", *map(str, args)]
    result = compose.docker(
        argv,
        check=False,
        capture=capture,
        env=env,
        timeout=timeout,
        input=input,
        stdin_file=stdin_file,
        stdout_file=stdout_file,
    )
    if check and not result.ok:
        raise CommandError(result)
    return result


def docker_stream(
    args: Sequence[str | Path],
    on_line: Callable[[str], None],
    env: Mapping[str, str] | None = None,
) -> Result:
    """``docker ARGS`` with its output handed over line by line (builds, pulls)."""
    try:
        result = stream(["docker", *args], on_line=on_line, check=False, env=env)
    except CommandNotFoundError as exc:
        raise compose.not_installed() from exc
    if not result.ok:
        compose.raise_if_unavailable(result)
    return result


def last_line(text: str) -> str:
    """The last non-blank line of a command's output (its error, usually)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


# --- images --------------------------------------------------------------------------


def image_id(ref: str) -> str | None:
    """The local image's id, or None when there is no such image here."""
    result = docker(["image", "inspect", "--format", "{{.Id}}", ref], check=False)
    return result.stdout.strip() if result.ok else None


def tag(source: str, target: str) -> None:
    docker(["tag", source, target])


# --- containers ----------------------------------------------------------------------


@dataclass(frozen=True)
class ContainerInfo:
    """One container, as `docker inspect` describes it."""

    name: str
    id: str
    running: bool
    status: str  # created, running, exited, ...
    image: str  # the image id
    labels: Mapping[str, str]
    networks: tuple[str, ...]


def _container(data: Mapping[str, Any]) -> ContainerInfo:
    state = data.get("State") or {}
    config = data.get("Config") or {}
    networks = (data.get("NetworkSettings") or {}).get("Networks") or {}
    return ContainerInfo(
        name=str(data.get("Name", "")).lstrip("/"),
        id=str(data.get("Id", "")),
        running=bool(state.get("Running")),
        status=str(state.get("Status", "")),
        image=str(data.get("Image", "")),
        labels=dict(config.get("Labels") or {}),
        networks=tuple(sorted(networks)),
    )


def container(name: str) -> ContainerInfo | None:
    """The container called ``name``, or None."""
    result = docker(["container", "inspect", name], check=False)
    if not result.ok:
        return None
    items = json.loads(result.stdout)
    return _container(items[0]) if items else None


def containers(labels: Mapping[str, str]) -> list[ContainerInfo]:
    """Every container (running or not) carrying all of ``labels``."""
    filters = [arg for key, value in labels.items() for arg in ("--filter", f"label={key}={value}")]
    ids = docker(["ps", "--all", "--quiet", "--no-trunc", *filters]).stdout.split()
    if not ids:
        return []
    result = docker(["container", "inspect", *ids], check=False)
    # A container removed between the two calls makes inspect fail for all.
    if not result.ok:
        return [c for c in (container(i) for i in ids) if c is not None]
    return [_container(item) for item in json.loads(result.stdout)]


def remove_container(name: str) -> bool:
    """Stop and remove; False when there was no such container."""
    result = docker(["rm", "--force", name], check=False)
    if not result.ok and "No such container" in result.output:
        return False
    if not result.ok:
        raise CommandError(result)
    return True


# --- volumes and networks -----------------------------------------------------------


def volumes(labels: Mapping[str, str], key: str) -> dict[str, str]:
    """Every volume carrying all of ``labels``: name -> its label ``key``'s value."""
    filters = [arg for k, value in labels.items() for arg in ("--filter", f"label={k}={value}")]
    fmt = f'{{{{.Name}}}}\t{{{{.Label "{key}"}}}}'
    listed = docker(["volume", "ls", *filters, "--format", fmt]).stdout.splitlines()
    return dict(line.partition("\t")[::2] for line in listed if line.strip())


def labelled_volumes(having: str, key: str) -> set[tuple[str, str]]:
    """(``having``'s value, ``key``'s value) of every volume with a ``having`` label."""
    fmt = f'{{{{.Label "{having}"}}}}\t{{{{.Label "{key}"}}}}'
    listed = docker(["volume", "ls", "--filter", f"label={having}", "--format", fmt]).stdout
    pairs = (line.partition("\t") for line in listed.splitlines() if line.strip())
    return {(first, second) for first, _, second in pairs}


def remove_volumes(names: Sequence[str]) -> None:
    if names:
        docker(["volume", "rm", "--force", *names])


def compose_network(compose_project: str) -> str | None:
    """The default network of a compose project, when it exists."""
    result = docker(
        [
            "network", "ls",
            "--filter", f"label=com.docker.compose.project={compose_project}",
            "--filter", "label=com.docker.compose.network=default",
            "--format", "{{.Name}}",
        ]
    )  # fmt: skip
    names = result.stdout.split()
    return names[0] if names else None


def create_compose_network(compose_project: str) -> str:
    """The compose project's default network, made the way Compose makes it,
    so that the project's next `up` adopts it instead of refusing it."""
    name = f"{compose_project}_default"
    docker(
        [
            "network", "create",
            "--label", f"com.docker.compose.project={compose_project}",
            "--label", "com.docker.compose.network=default",
            name,
        ]
    )  # fmt: skip
    return name
