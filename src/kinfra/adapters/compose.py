"""docker compose, through the one subprocess runner.

A ``ComposeTarget`` is everything needed to address one slot's stack: its
compose project name, the files, the env files. Every call (config, up, down,
ps, logs) is built from it, so no path can use another project name. Docker
being absent, its daemon down, or only Compose v1 present are each turned
into one clear ``DockerUnavailableError``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kinfra.adapters.runner import (
    CommandError,
    CommandNotFoundError,
    Result,
    installed,
    run,
    stream,
)
from kinfra.errors import ComposeError, DockerUnavailableError


@dataclass(frozen=True)
class ComposeTarget:
    """Everything that addresses one stack: project name, directory, files, env files, engine."""

    project_name: str
    project_dir: Path  # relative paths in the compose files resolve here
    files: tuple[Path, ...]
    env_files: tuple[Path, ...]
    context: str | None = None  # a Docker context (another engine); None: the current one

    def env(self) -> dict[str, str] | None:
        return context_env(self.context)

    def args(self) -> list[str]:
        argv = [*compose_program(), "-p", self.project_name]
        argv += ["--project-directory", str(self.project_dir)]
        for env_file in self.env_files:
            argv += ["--env-file", str(env_file)]
        for file in self.files:
            argv += ["-f", str(file)]
        return argv


def context_env(context: str | None) -> dict[str, str] | None:
    """The environment that points Compose at a Docker context. DOCKER_HOST is
    blanked because it would win over DOCKER_CONTEXT."""
    if context is None:
        return None
    return {"DOCKER_CONTEXT": context, "DOCKER_HOST": ""}


@dataclass(frozen=True)
class ContainerState:
    """One container of a stack, as `docker compose ps` reports it."""

    name: str
    service: str
    state: str  # running, exited, created, restarting...
    health: str  # healthy, unhealthy, starting, or "" without a healthcheck
    exit_code: int
    published: tuple[int, ...]

    @property
    def ok(self) -> bool:
        return self.state == "running" and self.health in ("", "healthy")


def stack_state(containers: Sequence[ContainerState]) -> str:
    """stopped / running / degraded, as status commands show a stack."""
    if not containers:
        return "stopped"
    if all(c.ok for c in containers):
        return "running"
    if any(c.state == "running" for c in containers):
        return "degraded"
    return "stopped"


# Where the docker CLI looks for plugins after its config dir and the config's
# cliPluginsExtraDirs, in its order (docker/cli cli-plugins/manager).
SYSTEM_PLUGIN_DIRS = (
    "/usr/local/lib/docker/cli-plugins",
    "/usr/local/libexec/docker/cli-plugins",
    "/usr/lib/docker/cli-plugins",
    "/usr/libexec/docker/cli-plugins",
)
_PLUGIN = "docker-compose"


def not_installed() -> DockerUnavailableError:
    return DockerUnavailableError(
        "Docker is not installed (no `docker` on PATH)",
        hint="install Docker Engine or Docker Desktop with Compose v2",
    )


def compose_program() -> list[str]:
    """The command that runs Compose v2: the plugin binary the docker CLI would
    run, called directly, else ``docker compose``.

    Going through ``docker`` costs a CLI start plus a plugin-metadata probe,
    ~30 ms on every call (measured); the plugin run on its own reads the same
    config file, context and DOCKER_* variables. Docker itself must still be
    installed: kinfra never uses a Compose that ``docker compose`` would not.
    """
    if not installed("docker"):
        raise not_installed()
    plugin = find_compose_plugin()
    return [str(plugin)] if plugin is not None else ["docker", "compose"]


def find_compose_plugin(
    config_dir: Path | None = None, system_dirs: Sequence[str] = SYSTEM_PLUGIN_DIRS
) -> Path | None:
    """The Compose plugin ``docker compose`` would run: the first executable
    ``docker-compose`` in the config dir's cli-plugins, the config's
    ``cliPluginsExtraDirs``, then the system dirs."""
    if config_dir is None:
        config_dir = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    dirs = [config_dir / "cli-plugins", *_extra_plugin_dirs(config_dir), *map(Path, system_dirs)]
    for directory in dirs:
        candidate = directory / _PLUGIN
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def _extra_plugin_dirs(config_dir: Path) -> list[Path]:
    try:
        data = json.loads((config_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return []  # no config (the usual case) or one docker would reject too
    extra = data.get("cliPluginsExtraDirs") if isinstance(data, dict) else None
    if not isinstance(extra, list):
        return []
    return [Path(item) for item in extra if isinstance(item, str)]


def shown(args: Sequence[str]) -> str:
    """A compose command line as the user would type it."""
    words = list(args)
    if words and Path(words[0]).name == _PLUGIN:
        words[:1] = ["docker", "compose"]
    return " ".join(words)


def docker(args: Sequence[str], check: bool = True, **kwargs: Any) -> Result:
    """A docker (or compose) command through the runner; Docker being absent
    or down becomes ``DockerUnavailableError``, a failure ``ComposeError``."""
    try:
        result = run(args, check=False, **kwargs)
    except CommandNotFoundError as exc:
        raise not_installed() from exc
    if not result.ok:
        raise_if_unavailable(result)
        if check:
            raise ComposeError(_first_error_line(result), hint=_hint_for(result)) from CommandError(
                result
            )
    return result


def raise_if_unavailable(result: Result) -> None:
    text = result.output
    remote = re.search(
        r"Cannot connect to the Docker daemon at ((?:tcp|ssh)://[^\s.]+(?:\.[^\s.]+)*)", text
    )
    if remote:  # another engine, through a Docker context or DOCKER_HOST
        raise DockerUnavailableError(
            f"the Docker daemon at {remote.group(1)} cannot be reached",
            hint="check that engine, and the context that names it (`docker context ls`)",
        )
    if (
        "Cannot connect to the Docker daemon" in text
        or "Is the docker daemon running" in text
        or "error during connect" in text
    ):
        raise DockerUnavailableError(
            "the Docker daemon is not running",
            hint="start Docker (Docker Desktop, `systemctl start docker`, or scripts/ensure-docker.sh)",
        )
    if (
        "unknown command: docker compose" in text
        or "'compose' is not a docker command" in text
        or "unknown shorthand flag: 'p' in -p" in text
    ):
        raise DockerUnavailableError(
            "Docker Compose v2 is not installed (`docker compose`); "
            "the old docker-compose v1 is not supported",
            hint="install the docker-compose-plugin package (or Docker Desktop)",
        )
    if "permission denied" in text and "docker.sock" in text:
        raise DockerUnavailableError(
            "no permission to use the Docker daemon",
            hint="add your user to the docker group, or run with sudo",
        )


def _first_error_line(result: Result) -> str:
    lines = [line.strip() for line in result.output.splitlines() if line.strip()]
    interesting = [line for line in lines if "error" in line.lower() or "invalid" in line.lower()]
    detail = (interesting or lines or [f"exit {result.returncode}"])[-1]
    verb = next((a for a in result.args[1:] if a in _VERBS), "compose")
    return f"docker compose {verb} failed: {detail}"


_VERBS = ("config", "up", "down", "ps", "logs", "exec", "build", "ls")


def _hint_for(result: Result) -> str:
    return "full command: " + shown(result.args)


def ping() -> None:
    """Raise ``DockerUnavailableError`` unless the daemon answers."""
    docker(["docker", "version", "--format", "{{.Server.Version}}"])


def config(target: ComposeTarget) -> dict[str, Any]:
    """The merged, validated model; compose's own message when it is invalid."""
    result = docker([*target.args(), "config", "--format", "json"], check=False)
    if not result.ok:
        raise ComposeError(
            "docker compose rejected the configuration: " + _compose_message(result),
            hint="fix the compose file or kinfra.toml; nothing was started",
        )
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def _compose_message(result: Result) -> str:
    lines = [line.strip() for line in result.output.splitlines() if line.strip()]
    return " / ".join(lines[-3:]) if lines else f"exit {result.returncode}"


def up(target: ComposeTarget, wait_timeout: float, on_line: Callable[[str], None]) -> Result:
    """``up -d --wait``: returns the result (also on failure) for the caller to judge."""
    argv = [*target.args(), "up", "-d", "--wait", "--wait-timeout", str(int(wait_timeout))]
    return _stream(argv, on_line, target.env())


def build(target: ComposeTarget, on_line: Callable[[str], None]) -> Result:
    """``build`` of the services that have a build section, on the target's engine."""
    return _stream([*target.args(), "build"], on_line, target.env())


def _stream(argv: list[str], on_line: Callable[[str], None], env: dict[str, str] | None) -> Result:
    try:
        result = stream(argv, on_line=on_line, check=False, env=env)
    except CommandNotFoundError as exc:
        raise not_installed() from exc
    if not result.ok:
        raise_if_unavailable(result)
    return result


def down(
    project_name: str,
    volumes: bool = False,
    timeout: float | None = None,
    context: str | None = None,
) -> None:
    """Stop and remove a project's containers and network; volumes only if asked.

    Addressed by project name alone (compose finds its resources by label), so
    it works even when the files or the worktree behind the slot are gone.
    """
    argv = [*compose_program(), "-p", project_name, "down", "--remove-orphans"]
    if volumes:
        argv.append("--volumes")
    if timeout is not None:
        argv += ["--timeout", str(int(timeout))]
    docker(argv, env=context_env(context))


def ps(project_name: str) -> list[ContainerState]:
    result = docker([*compose_program(), "-p", project_name, "ps", "--all", "--format", "json"])
    return [_container(item) for item in _json_records(result.stdout)]


def _json_records(text: str) -> list[dict[str, Any]]:
    """compose prints either one JSON array or one object per line, by version."""
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        records: list[dict[str, Any]] = json.loads(text)
        return records
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _container(item: dict[str, Any]) -> ContainerState:
    published = tuple(
        sorted(
            {
                int(p["PublishedPort"])
                for p in item.get("Publishers") or []
                if p.get("PublishedPort")
            }
        )
    )
    return ContainerState(
        name=str(item.get("Name", "")),
        service=str(item.get("Service", "")),
        state=str(item.get("State", "")),
        health=str(item.get("Health", "")),
        exit_code=int(item.get("ExitCode", 0) or 0),
        published=published,
    )


def list_projects() -> dict[str, str]:
    """Every compose project Docker knows: name -> status ("running(3)", "exited(2)").

    Asks the docker CLI for containers by compose label rather than running
    `docker compose ls`: the same answer, an order of magnitude faster, which
    keeps `kinfra sandbox slots` and `kinfra worktrees` quick.
    """
    result = docker(
        [
            "docker",
            "ps",
            "--all",
            "--filter",
            "label=com.docker.compose.project",
            "--format",
            '{{.Label "com.docker.compose.project"}}\t{{.State}}',
        ]
    )
    states: dict[str, list[str]] = {}
    for line in result.stdout.splitlines():
        name, _, state = line.partition("\t")
        if name:
            states.setdefault(name, []).append(state.strip())
    summary = {}
    for name, project_states in states.items():
        running = project_states.count("running")
        if running:
            summary[name] = f"running({running})"
        else:
            summary[name] = f"exited({len(project_states)})"
    return summary


def running_services(project_name: str) -> dict[str, int]:
    """service -> number of running containers of one compose project.

    From `docker ps` by label: ~15 ms where `docker compose ps` takes ~100,
    which matters inside the startability gate.
    """
    result = docker(
        [
            "docker", "ps",
            "--filter", f"label=com.docker.compose.project={project_name}",
            "--filter", "status=running",
            "--format", '{{.Label "com.docker.compose.service"}}',
        ]
    )  # fmt: skip
    counts: dict[str, int] = {}
    for service in result.stdout.split():
        counts[service] = counts.get(service, 0) + 1
    return counts


def logs(target_project: str, services: Sequence[str], follow: bool, tail: int | None) -> int:
    argv = [*compose_program(), "-p", target_project, "logs"]
    if follow:
        argv.append("--follow")
    if tail is not None:
        argv += ["--tail", str(tail)]
    argv += list(services)
    result = docker(argv, check=False, capture=False)
    return result.returncode


def exec_in(project_name: str, service: str, command: Sequence[str], interactive: bool) -> int:
    argv = [*compose_program(), "-p", project_name, "exec"]
    if not interactive:
        argv.append("-T")
    argv += [service, *command]
    return docker(argv, check=False, capture=False).returncode


_SIZE_UNITS = {"b": 1 / 2**20, "kib": 1 / 1024, "kb": 1 / 1024, "mib": 1, "mb": 1,
               "gib": 1024, "gb": 1024, "tib": 2**20, "tb": 2**20}  # fmt: skip


def memory_usage(project_names: Sequence[str]) -> dict[str, float]:
    """compose project -> megabytes its running containers use now (`docker stats`).

    `docker stats --no-stream` samples for about a second, so it is asked
    once, for the containers of every project wanted.
    """
    if not project_names:
        return {}
    wanted = set(project_names)
    listed = docker(
        [
            "docker", "ps",
            "--filter", "label=com.docker.compose.project",
            "--format", '{{.ID}}\t{{.Label "com.docker.compose.project"}}',
        ]
    )  # fmt: skip
    owner: dict[str, str] = {}
    for line in listed.stdout.splitlines():
        container, _, project = line.partition("\t")
        if project in wanted:
            owner[container[:12]] = project
    if not owner:
        return {}
    stats = docker(["docker", "stats", "--no-stream", "--format", "{{.ID}}\t{{.MemUsage}}", *owner])
    usage: dict[str, float] = {}
    for line in stats.stdout.splitlines():
        container, _, text = line.partition("\t")
        holder = owner.get(container[:12])
        used = _megabytes(text.split("/")[0])
        if holder is not None and used is not None:
            usage[holder] = usage.get(holder, 0.0) + used
    return usage


def _megabytes(text: str) -> float | None:
    """``12.5MiB`` (docker's memory figures) in megabytes."""
    import re

    match = re.match(r"\s*([\d.]+)\s*([a-zA-Z]+)", text)
    if match is None or match.group(2).lower() not in _SIZE_UNITS:
        return None
    return float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]
