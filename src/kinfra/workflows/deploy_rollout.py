"""Switching a target to a release: compose up on its engine, then its gate;
and putting the previous deployment back when the gate fails.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kinfra.adapters import compose, docker_engine
from kinfra.adapters import secrets as secret_refs
from kinfra.adapters.docker_engine import Container
from kinfra.adapters.statefile import atomic_write_text
from kinfra.domain import compose_yaml
from kinfra.domain.config import Config
from kinfra.domain.config_deploy import DeployTarget
from kinfra.domain.config_stack import HealthCheck
from kinfra.domain.deploy import Release, Running, rollout_override
from kinfra.errors import ComposeError, DeployError, GitError, KinfraError
from kinfra.workflows.deploy_engine import Engine, published_port, published_urls
from kinfra.workflows.deploy_images import Service, checkout, compose_target, discard, services
from kinfra.workflows.gate import CheckResult, Outcome, probe_checks
from kinfra.workflows.start import Progress


@dataclass
class Rollout:
    """One deploy command's fixed parts: where, with what config, and how to report."""

    config: Config
    target: DeployTarget
    engine: Engine
    workdir: Path  # private to this deploy (0700): overrides, secrets, checkouts
    env_files: tuple[Path, ...]
    progress: Progress
    secrets: list[str] = field(default_factory=list)  # values, for redaction only
    started: str = ""  # when the command began, for its history line
    clock: float = 0.0  # time.monotonic() then

    @property
    def repo(self) -> Path:
        return self.config.root

    def say(self, text: str) -> None:
        self.progress.step(secret_refs.redact(text, self.secrets))

    def detail(self, line: str) -> None:
        self.progress.detail(secret_refs.redact(line, self.secrets))


@dataclass(frozen=True)
class Started:
    """A release started on the target: whether it passed its gate, and what was seen."""

    ok: bool
    checks: list[CheckResult]
    failed: list[str]  # "api: status 404 (expected 200) after 5s", "containers: backend unhealthy"
    containers: list[Container]
    urls: dict[str, str]


def start(
    rollout: Rollout,
    tree: Path,
    release: Release,
    pins: Mapping[str, str],
    found: list[Service],
    gate: bool = True,
) -> Started:
    """``compose up -d --wait`` of ``release`` on the target, then (with
    ``gate``) its checks."""
    target, engine = rollout.target, rollout.engine
    override = rollout.workdir / "deploy.override.yml"
    document = rollout_override(
        {s.name: s.builds for s in found}, pins, release.labels(target.name)
    )
    header = f"# kinfra deploy of {release.short} ({release.ref}) to {target.name}\n"
    atomic_write_text(override, compose_yaml.dump(document, header))
    rollout.say(f"starting {target.project} on {engine.context} ({release.short}, {release.ref})")
    up_target = compose_target(tree, target, rollout.env_files, (override,), engine.context)
    result = compose.up(up_target, target.wait_timeout, rollout.detail)
    containers = docker_engine.containers(engine.context, target.project)
    if not result.ok:
        bad = [f"{c.service} {c.health or c.state}" for c in containers if not c.ok]
        if not containers:
            lines = [line.strip() for line in result.output.splitlines() if line.strip()]
            bad = [lines[-1] if lines else "docker compose up failed"]
        failed = ["containers: " + secret_refs.redact(", ".join(bad), rollout.secrets)]
        return Started(False, [], failed, containers, {})
    rollout.say("containers running and healthy")

    def locate(check: HealthCheck) -> tuple[str, int] | str:
        port = rollout.config.port(check.port)
        host_port = published_port(containers, port.service, port.target)
        if host_port is None:
            return f"{port.service}:{port.target} is not published on {engine.context}"
        return engine.address, host_port

    checks = probe_checks(target.checks if gate else (), locate, rollout.progress.check)
    failed = [
        f"{c.name}: {c.outcome.value} ({c.detail})"
        for c in checks
        if c.outcome is not Outcome.PASSED
    ]
    urls = published_urls(rollout.config, containers, engine.address)
    return Started(not failed, checks, failed, containers, urls)


@contextlib.contextmanager
def release_tree(rollout: Rollout, release: Release, name: str) -> Iterator[Path]:
    """A clean checkout of the release's commit inside the deploy's work dir."""
    try:
        tree = checkout(rollout.repo, release.sha, rollout.workdir / name)
    except GitError as exc:
        raise DeployError(
            f"commit {release.short} ({release.ref}) is not in this repository",
            hint="git fetch, then try again",
        ) from exc
    try:
        yield tree
    finally:
        discard(rollout.repo, tree)


def restore(rollout: Rollout, previous: Running) -> tuple[bool, str]:
    """Put the previous deployment back (its images by ID, its commit's compose
    files, its own labels); returns whether it runs again and what happened,
    in words. Never raises for a restore that fails: the caller is already
    reporting a failure."""
    target = rollout.target
    if previous.release is None:
        if previous.images:
            return False, (
                "the previous deployment was not made by kinfra (no release labels), "
                "so it could not be restored; the failed one is left running"
            )
        with contextlib.suppress(KinfraError):
            compose.down(target.project, context=rollout.engine.context)
        return False, "there was no previous deployment: the failed one was stopped (volumes kept)"
    release = previous.release
    rollout.say(f"restoring {release.short} ({release.ref}) on {target.name}")
    try:
        with release_tree(rollout, release, "restore") as tree:
            found = services(tree, target, rollout.env_files)
            # Its containers healthy is the bar: it passed its own gate when it
            # was deployed, and today's checks may be the very thing that changed.
            started = start(rollout, tree, release, previous.images, found, gate=False)
    except (DeployError, ComposeError) as exc:
        return False, f"restoring {release.short} failed too: {exc.message}"
    if not started.ok:
        return False, (
            f"restored {release.short} ({release.ref}), but it fails too: "
            + "; ".join(started.failed)
        )
    return (
        True,
        f"restored {release.short} ({release.ref}), deployed by {release.user} at {release.time}",
    )
