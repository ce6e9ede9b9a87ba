"""kinfra deploy status / history: what runs where, since when, and what can be undone."""

from __future__ import annotations

from dataclasses import dataclass

from kinfra.adapters import git
from kinfra.adapters.docker_engine import Container
from kinfra.domain.config_deploy import DeployTarget
from kinfra.domain.deploy import HistoryRecord, Release
from kinfra.errors import DeployError, KinfraError
from kinfra.project import Project
from kinfra.workflows import deploy_history
from kinfra.workflows.deploy_engine import (
    probe,
    published_urls,
    require_target,
    rollback_point,
    running,
)


@dataclass(frozen=True)
class TargetStatus:
    """What `kinfra deploy status` shows of one target."""

    target: DeployTarget
    endpoint: str  # the engine the context reaches ("" when unknown)
    problem: str  # why the engine could not be asked ("" when it could)
    release: Release | None
    containers: list[Container]
    urls: dict[str, str]
    base: str | None  # what "commits since" counts up to (origin/main...)
    commits_since: int | None  # None: the deployed commit is not in this repository
    rollback: Release | None  # the rollback point's release, as the history describes it
    rollback_exists: bool  # kinfra-prev images other than what runs are on the engine

    @property
    def state(self) -> str:
        if self.problem:
            return "unreachable"
        if not self.containers:
            return "not deployed"
        if all(c.ok for c in self.containers):
            return "running"
        return "degraded" if any(c.state == "running" for c in self.containers) else "stopped"


def status(project: Project, name: str | None = None) -> list[TargetStatus]:
    config = project.config
    if name is not None:
        targets = [require_target(config, name)]
    else:
        targets = list(config.deploy.values())
        if not targets:
            raise DeployError(
                f"no deploy targets in {config.path.name}",
                hint="add a [deploy.<target>] table (see the README's kinfra.toml section)",
            )
    base = git.default_base(project.root)
    return [_one(project, target, base) for target in targets]


def _one(project: Project, target: DeployTarget, base: str | None) -> TargetStatus:
    engine, problem = probe(target)
    if engine is None:
        return TargetStatus(target, "", problem, None, [], {}, base, None, None, False)
    endpoint = engine.endpoint
    try:
        now, containers = running(engine, target.project)
        point = rollback_point(engine, target.project)
    except KinfraError as exc:
        return TargetStatus(target, endpoint, exc.message, None, [], {}, base, None, None, False)
    release = now.release
    since = None
    if release is not None and base is not None and git.ref_exists(project.root, release.sha):
        counted = git.git("rev-list", "--count", f"{release.sha}..{base}", cwd=project.root)
        since = int(counted.stdout.strip() or 0)
    exists = bool(point) and dict(point) != dict(now.images)
    described = deploy_history.describe_point(project.name, target.name, point) if exists else None
    urls = published_urls(project.config, containers, engine.address)
    return TargetStatus(
        target, endpoint, "", release, containers, urls, base, since, described, exists
    )


def history(
    project: Project, name: str | None = None, limit: int | None = None
) -> list[HistoryRecord]:
    """Newest last, at most ``limit`` records."""
    if name is not None:
        require_target(project.config, name)
    records = deploy_history.read(project.name, name)
    return records[-limit:] if limit else records
