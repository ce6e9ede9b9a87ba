"""kinfra deploy: ship a commit to a target, canary it, promote it, roll it back.

Each command holds the target's lock (one deploy per target at a time, the
orchestrator's lock rules), works in a private directory it removes again
(secrets file 0600, overrides, clean checkouts), records one history line,
and leaves the target running either the new release, after its gate
passed, or the previous one, restored.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kinfra.adapters import docker_engine, git
from kinfra.adapters import secrets as secret_refs
from kinfra.adapters.lock import RunLock
from kinfra.background import Background
from kinfra.domain.config_deploy import DeployTarget
from kinfra.domain.deploy import Action, HistoryRecord, Outcome, Release, Running
from kinfra.errors import DeployError, GateFailedError, Interrupted, KinfraError
from kinfra.interrupts import deferred_interrupts
from kinfra.paths import project_home
from kinfra.project import Project
from kinfra.workflows import deploy_history
from kinfra.workflows.deploy_engine import (
    Engine,
    Survey,
    connect,
    drop_tags,
    keep_rollback_point,
    require_target,
    running,
    survey,
)
from kinfra.workflows.deploy_images import Service, build, discard, services, ship
from kinfra.workflows.deploy_rollout import Rollout, release_tree, restore, start
from kinfra.workflows.deploy_source import now, resolve_release, whoami
from kinfra.workflows.gate import CheckResult
from kinfra.workflows.slot_files import write_secrets_file
from kinfra.workflows.start import Progress


@dataclass(frozen=True)
class DeployReport:
    """What a deploy, promote or rollback did on its target."""

    action: Action
    target: DeployTarget
    engine: Engine
    release: Release
    checks: list[CheckResult]
    urls: dict[str, str]
    previous: Release | None
    shipped: list[str] = field(default_factory=list)  # images that had to travel


def deploy(
    project: Project,
    name: str,
    ref: str | None = None,
    force: bool = False,
    canary: bool = False,
    progress: Progress | None = None,
) -> DeployReport:
    """Build ``ref`` from a clean checkout and switch target ``name`` (its
    canary with ``canary``) to it behind the target's gate."""
    config = project.config
    target = require_target(config, name)
    if canary:
        if target.canary is None:
            raise DeployError(
                f"target {name} has no canary",
                hint=f'set canary = "<another target>" in [deploy.{name}] of {config.path.name}',
            )
        target = require_target(config, target.canary)
    lookup = Background(connect, target)  # a docker CLI start, alongside git's
    release = resolve_release(project.here or project.root, ref, force)
    with (
        _rollout(project, target, progress, lookup.result()) as rollout,
        _recorded(rollout, Action.DEPLOY, release),
    ):
        # The target is read while the images are checked out and built here.
        before = Background(survey, rollout.engine, target.project)
        with release_tree(rollout, release, "tree") as tree:
            found = services(tree, target, rollout.env_files)
            rollout.say(
                f"building the images of {release.short} ({release.ref}) from a clean checkout"
            )
            built = build(
                tree, target, rollout.env_files, found, release.sha, rollout.workdir, rollout.detail
            )
            seen = before.result()
            shipped = ship(
                {ref: image for ref, image in built.values()},
                rollout.engine.context,
                registry=target.registry,
                on_step=rollout.say,
                present=seen.images,
            )
            pins = {service: image for service, (_, image) in built.items()}
            return _switch(rollout, Action.DEPLOY, release, tree, pins, found, shipped, seen)


def promote(project: Project, name: str, progress: Progress | None = None) -> DeployReport:
    """Run on target ``name`` exactly the images (by ID) its canary runs."""
    config = project.config
    target = require_target(config, name)
    if target.canary is None:
        raise DeployError(
            f"target {name} has no canary to promote from",
            hint=f'set canary = "<another target>" in [deploy.{name}] of {config.path.name}',
        )
    canary = require_target(config, target.canary)
    canary_engine = connect(canary)
    on_canary, containers = running(canary_engine, canary.project)
    if on_canary.release is None:
        raise DeployError(
            f"nothing deployed by kinfra runs on the canary {canary.name} ({canary.project} on {canary.context})",
            hint=f"deploy it first: kinfra deploy {name} --canary",
        )
    sick = [f"{c.service} {c.health or c.state}" for c in containers if not c.ok]
    if sick:
        raise DeployError(
            f"the canary {canary.name} is not healthy ({', '.join(sick)}); nothing was promoted",
            hint=f"see `kinfra deploy status {canary.name}`",
        )
    release = Release(on_canary.release.sha, on_canary.release.ref, whoami(), now())
    images = dict(on_canary.images)
    with (
        _rollout(project, target, progress) as rollout,
        _recorded(rollout, Action.PROMOTE, release),
    ):
        # From the local engine when it still has them (no remote read), else the canary's.
        local = docker_engine.image_ids(None, set(images.values()))
        source = None if set(images.values()) <= set(local.values()) else canary_engine.context
        shipped = ship(
            {image: image for image in images.values()},
            rollout.engine.context,
            source=source,
            on_step=rollout.say,
        )
        with release_tree(rollout, release, "tree") as tree:
            found = services(tree, target, rollout.env_files)
            seen = survey(rollout.engine, target.project)
            report = _switch(rollout, Action.PROMOTE, release, tree, images, found, shipped, seen)
        now_running, _ = running(rollout.engine, target.project)
        if dict(now_running.images) != images:
            raise DeployError(
                f"{target.name} does not run the canary's images after the promote "
                f"({now_running.images} != {images})",
                hint="compare `docker inspect` of both projects' containers",
            )
        return report


def rollback(project: Project, name: str, progress: Progress | None = None) -> DeployReport:
    """Switch target ``name`` back to its rollback point (the deployment before the
    current one); the one replaced becomes the new rollback point."""
    config = project.config
    target = require_target(config, name)
    with _rollout(project, target, progress) as rollout:
        seen = survey(rollout.engine, target.project)
        point = seen.point
        if not point:
            raise DeployError(
                f"{name} has no rollback point (no {target.project} images tagged kinfra-prev "
                f"on {target.context})",
                hint="a rollback point is kept by every deploy that replaces a running one",
            )
        if dict(seen.running.images) == point:
            raise DeployError(
                f"nothing to roll back to: {name} already runs its rollback point",
                hint=f"see `kinfra deploy history {name}`",
            )
        release = deploy_history.describe_point(config.name, name, point)
        if release is None:
            raise DeployError(
                f"the rollback point of {name} is not in this machine's deploy history "
                f"({deploy_history.history_path(config.name)})",
                hint="roll back from the machine that deployed, or deploy the wanted ref with --ref",
            )
        with (
            _recorded(rollout, Action.ROLLBACK, release),
            release_tree(rollout, release, "tree") as tree,
        ):
            found = services(tree, target, rollout.env_files)
            return _switch(rollout, Action.ROLLBACK, release, tree, point, found, [], seen)


# --- the parts every command shares -------------------------------------------------


@contextlib.contextmanager
def _rollout(
    project: Project, target: DeployTarget, progress: Progress | None, engine: Engine | None = None
) -> Iterator[Rollout]:
    """The target's lock, its engine, its secrets file and private work dir."""
    config = project.config
    engine = engine or connect(target)
    values = secret_refs.resolve_all(target.secrets, config.root)  # before anything starts
    env_files = []
    if target.env_file is not None:
        env_file = config.root / target.env_file
        if not env_file.is_file():
            raise target.key_error("env_file", f"{env_file} does not exist")
        env_files.append(env_file)
    home = project_home(config.name) / "deploys"
    lock = RunLock(
        home / f"{target.name}.lock",
        os.urandom(4).hex(),
        busy=f"deploy target {target.name} is already being deployed",
    )
    with lock:
        workdir = home / target.name
        if workdir.exists():  # what a killed deploy left
            _clear(config.root, workdir)
            git.prune_worktrees(config.root)
        workdir.mkdir(mode=0o700, parents=True)
        try:
            if values:
                write_secrets_file(workdir, values)
                env_files.append(workdir / secret_refs.SECRETS_FILE)
            yield Rollout(
                config, target, engine, workdir, tuple(env_files),
                progress or Progress(), list(values.values()),
            )  # fmt: skip
        except BaseException as exc:
            secret_refs.redact_exception(exc, values.values())
            raise
        finally:
            _clear(config.root, workdir)


def _clear(repo: Path, workdir: Path) -> None:
    if not workdir.exists():
        return
    for name in ("tree", "restore"):
        discard(repo, workdir / name)
    shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def _recorded(rollout: Rollout, action: Action, release: Release) -> Iterator[None]:
    """A history line for a command that broke before its switch was recorded."""
    rollout.started, rollout.clock = now(), time.monotonic()
    try:
        yield
    except GateFailedError:
        raise  # _switch recorded it
    except KinfraError as exc:
        secret_refs.redact_exception(exc, rollout.secrets)
        _append(rollout, action, release, Outcome.FAILED, error=exc.message)
        raise


def _append(
    rollout: Rollout,
    action: Action,
    release: Release,
    outcome: Outcome,
    images: Mapping[str, str] | None = None,
    previous: Running | None = None,
    failed: list[str] | None = None,
    error: str = "",
) -> None:
    target = rollout.target
    deploy_history.append(
        rollout.config.name,
        HistoryRecord(
            action=action,
            target=target.name,
            context=target.context,
            project=target.project,
            release=release,
            outcome=outcome,
            started=rollout.started or now(),
            seconds=time.monotonic() - (rollout.clock or time.monotonic()),
            images=dict(images or {}),
            previous=previous.release if previous else None,
            previous_images=dict(previous.images) if previous else {},
            failed_checks=tuple(secret_refs.redact(f, rollout.secrets) for f in failed or ()),
            error=secret_refs.redact(error, rollout.secrets),
        ),
    )


def _switch(
    rollout: Rollout,
    action: Action,
    release: Release,
    tree: Path,
    pins: Mapping[str, str],
    found: list[Service],
    shipped: list[str],
    seen: Survey,
) -> DeployReport:
    """Keep what runs (``seen``) as the rollback point, start ``release``, gate
    it; on a failed gate restore what ran and raise (exit 2) naming the
    failed checks."""
    target, engine = rollout.target, rollout.engine
    before, point = seen.running, seen.point
    # Tagging the rollback point needs no wait: the switch pins images by ID.
    tagging = Background(keep_rollback_point, engine, target.project, before.images, point)
    try:
        started = start(rollout, tree, release, pins, found)
    except Interrupted:
        # Stopped mid-switch: what ran before is the safe state to leave behind,
        # and a second Ctrl-C must not cut that short.
        with deferred_interrupts():
            with contextlib.suppress(KinfraError):
                tagging.result()
            restored, what = restore(rollout, before)
            outcome = Outcome.RESTORED if restored else Outcome.FAILED
            _append(
                rollout, action, release, outcome, dict(pins), before, error=f"interrupted; {what}"
            )
        raise
    stale = tagging.result()
    if started.ok:
        drop_tags(engine, stale)
        images = {c.service: c.image for c in started.containers}
        _append(rollout, action, release, Outcome.DEPLOYED, images, before)
        return DeployReport(
            action, target, engine, release, started.checks, started.urls, before.release, shipped
        )
    restored, what = restore(rollout, before)
    outcome = Outcome.RESTORED if restored else Outcome.FAILED
    if restored and point:
        # What runs is what ran: the rollback point is again the one before it.
        drop_tags(engine, keep_rollback_point(engine, target.project, point, before.images))
    _append(rollout, action, release, outcome, dict(pins), before, started.failed, error=what)
    raise GateFailedError(
        f"{action.value} of {release.short} to {target.name} failed its gate: "
        f"{'; '.join(started.failed)}. {what[:1].upper()}{what[1:]}",
        hint=f"see `kinfra deploy status {target.name}` and `kinfra deploy history {target.name}`",
    )
