"""``[deploy.<target>]`` of kinfra.toml: where a project ships, and how it is judged up.

Pure, like the rest of the config. A target is another Docker engine reached
through a Docker context; whether that context exists is asked of Docker when
a deploy command runs (``workflows.deploy_engine``), not here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# Package-private helpers of the main config module: one table reader, one
# shape of [[checks]] and of [secrets] for slots and targets alike.
from kinfra.domain.config import _parse_env_table, _Table
from kinfra.domain.config_stack import HealthCheck, parse_checks
from kinfra.errors import ConfigError

_TARGET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
# `kinfra deploy <word>` reads these as subcommands, never as targets.
RESERVED = ("promote", "status", "rollback", "history", "target")
# Compose project names: lowercase letters, digits, '_' and '-'.
_COMPOSE_PROJECT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


@dataclass(frozen=True)
class DeployTarget:
    """A [deploy.<target>]: its engine (a Docker context), compose files, env file and gate."""

    name: str
    context: str  # a Docker context name (`docker context ls`)
    compose_files: tuple[str, ...]  # relative to the repository, read at the deployed ref
    env_file: str | None  # relative to the main checkout
    project: str  # the compose project name on that engine
    canary: str | None  # the target a --canary deploy goes to first
    registry: str | None  # push images there instead of `docker save | docker load`
    address: str | None  # host for checks and URLs (default: the context's endpoint host)
    wait_timeout: float
    secrets: Mapping[str, str]
    checks: tuple[HealthCheck, ...]
    config_file: Path  # the kinfra.toml it came from, for key-level messages

    def key_error(self, key: str, problem: str, hint: str | None = None) -> ConfigError:
        """A problem with one key found after parsing (an unknown context, say),
        worded like every other config error."""
        return ConfigError(
            f"{self.config_file.name}: [deploy.{self.name}] {key}: {problem}",
            hint=hint or f"fix {self.config_file}",
        )


def parse_deploy(
    t: _Table,
    *,
    project: str,
    compose_files: tuple[str, ...],
    port_names: set[str],
    wait_timeout: float,
) -> Mapping[str, DeployTarget]:
    targets: dict[str, DeployTarget] = {}
    for name, tt in t.subtables():
        if not _TARGET_NAME.match(name):
            raise t.error(
                name, "target names are lowercase letters, digits and '-', at most 40 characters"
            )
        if name in RESERVED:
            raise t.error(
                name, f"'{name}' is a `kinfra deploy` subcommand; name the target otherwise"
            )
        files = tt.str_list("compose_files", compose_files)
        if not files:
            raise tt.error("compose_files", "must name at least one compose file")
        for key, paths in (("compose_files", files), ("env_file", (tt.text("env_file", ""),))):
            for item in paths:
                if item.startswith("/") or ".." in Path(item).parts:
                    raise tt.error(key, f"{item!r} must be a path inside the repository")
        compose_project = tt.text("project", project)
        if not _COMPOSE_PROJECT.match(compose_project):
            raise tt.error(
                "project",
                f"{compose_project!r} is not a compose project name "
                "(lowercase letters, digits, '_' and '-')",
            )
        context = tt.text("context")
        if not context or context.startswith("-"):
            raise tt.error("context", "must name a Docker context (see `docker context ls`)")
        target = DeployTarget(
            name=name,
            context=context,
            compose_files=files,
            env_file=tt.text("env_file", None),
            project=compose_project,
            canary=tt.text("canary", None),
            registry=tt.text("registry", None),
            address=tt.text("address", None),
            wait_timeout=tt.number("wait_timeout", wait_timeout),
            secrets=_parse_env_table(tt.table("secrets"), secret=True),
            checks=parse_checks(tt.tables("checks"), port_names),
            config_file=t.file,
        )
        if target.registry is not None and not re.match(
            r"^[a-z0-9][a-z0-9.:/_-]*$", target.registry
        ):
            raise tt.error(
                "registry", f"{target.registry!r} is not a registry (host[:port][/path])"
            )
        tt.done()
        targets[name] = target
    for name, target in targets.items():
        if target.canary is None:
            continue
        where = t.table(name, required=True)
        if target.canary == name:
            raise where.error("canary", "a target cannot be its own canary")
        canary = targets.get(target.canary)
        if canary is None:
            raise where.error("canary", f"{target.canary!r} is not a target under [deploy]")
        if canary.context == target.context and canary.project == target.project:
            raise where.error(
                "canary",
                f"'{target.canary}' is the same compose project ({target.project}) on the same "
                "context; give the canary its own [deploy] project",
            )
    return targets
