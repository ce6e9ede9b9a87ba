"""local-prod: one production-like instance per project, on reserved slot 0.

It runs from a full clone (never a worktree) registered once with ``init``.
Every command after that acts on the *registered* clone, found in the
registry, wherever it is run from: the current directory only tells which
project is meant. ``destroy`` stops the stack, unregisters it and removes
kinfra's generated files (the slot-0 directory under $KINFRA_HOME); it never
touches the clone or any worktree.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kinfra import paths
from kinfra.adapters import compose
from kinfra.adapters import secrets as secret_refs
from kinfra.adapters.registry import (
    LocalProdRecord,
    RegistryStore,
    SlotStatus,
    normalize,
    utc_now,
)
from kinfra.domain.config import CONFIG_FILE, Config, load_config
from kinfra.domain.slot import LOCAL_PROD_SLOT, Slot, compose_project_name, slot_directory
from kinfra.errors import KinfraError, LocalProdError, NotInProjectError
from kinfra.paths import project_home
from kinfra.project import find_project, slot_of
from kinfra.workflows import start

_GENERATED = (
    paths.ENV_FILE,
    paths.OVERRIDE_FILE,
    paths.VALIDATED_FILE,
    secret_refs.SECRETS_FILE,
)


@dataclass(frozen=True)
class LocalProd:
    """A project's registered local-prod: its clone, the clone's config, and slot 0."""

    project: str
    config: Config
    slot: Slot  # slot 0 of the clone's config
    record: LocalProdRecord

    @property
    def clone(self) -> Path:
        return self.record.clone


def local_prod_dir(project: str) -> Path:
    """Where kinfra keeps local-prod's generated files. Always derived from
    kinfra's own layout, never read from the registry, so nothing recorded
    there can decide where files are written or deleted."""
    return slot_directory(project_home(project), LOCAL_PROD_SLOT)


# --- registration ---------------------------------------------------------------------


def init(cwd: Path | None = None, store: RegistryStore | None = None) -> LocalProd:
    """Register the full clone containing ``cwd`` as the project's local-prod."""
    project = find_project(cwd)
    clone = normalize(project.root)
    here = (project.here or project.root).resolve()
    if here != clone:
        raise LocalProdError(
            f"{here} is a git worktree; local-prod runs from a full clone",
            hint=f"clone the repository (git clone {clone} <dir>) and run "
            "`kinfra local-prod init` there",
        )
    config = project.config
    slot = project.slot(LOCAL_PROD_SLOT)
    store = store or RegistryStore()
    with store.transaction() as registry:
        record = registry.projects.get(config.name)
        if record is not None and record.local_prod is not None:
            raise LocalProdError(
                f"{config.name} already has a local-prod at {record.local_prod.clone}",
                hint="`kinfra local-prod destroy` unregisters it first (the clone is kept)",
            )
        created = record is None
        if record is None:
            record = registry.add_project(config.name, clone, config.prefix)
        now = utc_now()
        record.local_prod = LocalProdRecord(
            clone=clone,
            instance_id=f"{slot.compose_project}-{now.replace('-', '').replace(':', '')}",
            registered_at=now,
            created_project_record=created,
        )
        return LocalProd(config.name, config, slot, record.local_prod)


def find_local_prod(cwd: Path | None = None, store: RegistryStore | None = None) -> LocalProd:
    """The registered local-prod of the project ``cwd`` belongs to; outside any
    project, the only one registered on this machine."""
    return _load(*_registered(cwd, store or RegistryStore()))


def _registered(
    cwd: Path | None, store: RegistryStore, exact: bool = False, project: str | None = None
) -> tuple[str, LocalProdRecord]:
    """The project name and registration of the local-prod meant from ``cwd``.

    ``project`` names it outright. With ``exact`` (a destructive command) it
    is never guessed: outside any project it must be named, even when only
    one is registered."""
    registry = store.load()
    if project is not None:
        record = registry.project(project)
        if record is None or record.local_prod is None:
            known = ", ".join(p.name for p in registry.projects.values() if p.local_prod)
            raise LocalProdError(
                f"{project} has no local-prod registered (registered: {known or 'none'})",
                hint="name one of those; nothing was done",
            )
        return project, record.local_prod
    try:
        name: str | None = find_project(cwd).name
    except NotInProjectError:
        name = None
    if name is not None:
        record = registry.project(name)
        if record is None or record.local_prod is None:
            raise LocalProdError(
                f"{name} has no local-prod registered",
                hint="run `kinfra local-prod init` in a full clone of the project",
            )
        return name, record.local_prod
    registered = [p for p in registry.projects.values() if p.local_prod is not None]
    if exact and registered:
        listed = ", ".join(f"{p.name} ({p.local_prod.clone})" for p in registered if p.local_prod)
        raise LocalProdError(
            f"not inside a project, so which local-prod to destroy is not clear "
            f"(registered: {listed})",
            hint="run it inside a checkout of that project, or name it: "
            "`kinfra local-prod destroy --project NAME`; nothing was done",
        )
    if len(registered) != 1:
        names = ", ".join(p.name for p in registered) or "none"
        raise LocalProdError(
            f"not inside a project, and {len(registered)} local-prods are registered ({names})",
            hint="run the command inside a checkout of the project you mean",
        )
    only = registered[0]
    assert only.local_prod is not None
    return only.name, only.local_prod


def _load(name: str, record: LocalProdRecord) -> LocalProd:
    if not (record.clone / CONFIG_FILE).is_file():
        raise LocalProdError(
            f"the local-prod clone of {name} ({record.clone}) is gone or has no {CONFIG_FILE}",
            hint="`kinfra local-prod destroy` unregisters it",
        )
    config = load_config(record.clone / CONFIG_FILE)
    return LocalProd(name, config, slot_of(config, LOCAL_PROD_SLOT), record)


def _set_status(store: RegistryStore, lp: LocalProd, status: SlotStatus) -> None:
    with store.transaction() as registry:
        record = registry.require_project(lp.project)
        if record.local_prod is not None:
            record.local_prod = dataclasses.replace(record.local_prod, status=status)


# --- lifecycle ---------------------------------------------------------------------------


def up(
    cwd: Path | None = None,
    progress: start.Progress | None = None,
    store: RegistryStore | None = None,
) -> start.StartReport:
    store = store or RegistryStore()
    lp = find_local_prod(cwd, store)
    start.check_ports_free(lp.slot)
    return start.start_stack(
        lp.config,
        lp.slot,
        lp.record.instance_id,
        lp.clone,
        progress or start.Progress(),
        lambda status: _set_status(store, lp, status),
    )


def down(cwd: Path | None = None, store: RegistryStore | None = None) -> LocalProd:
    store = store or RegistryStore()
    lp = find_local_prod(cwd, store)
    try:
        compose.down(lp.slot.compose_project)
    except BaseException:
        _set_status(store, lp, SlotStatus.FAILED)
        raise
    finally:
        # Resolved secrets are on disk only while the stack runs.
        (local_prod_dir(lp.project) / secret_refs.SECRETS_FILE).unlink(missing_ok=True)
    _set_status(store, lp, SlotStatus.STOPPED)
    return lp


@dataclass(frozen=True)
class LocalProdStatus:
    """local-prod's containers and URLs (`kinfra local-prod status`)."""

    local_prod: LocalProd
    containers: list[compose.ContainerState]
    urls: dict[str, str]

    @property
    def state(self) -> str:
        return compose.stack_state(self.containers)


def status(cwd: Path | None = None) -> LocalProdStatus:
    lp = find_local_prod(cwd)
    containers = compose.ps(lp.slot.compose_project)
    return LocalProdStatus(lp, containers, lp.slot.urls)


def logs(cwd: Path | None, services: Sequence[str], follow: bool, tail: int | None) -> int:
    lp = find_local_prod(cwd)
    return compose.logs(lp.slot.compose_project, services, follow, tail)


def shell(cwd: Path | None, service: str | None, interactive: bool) -> int:
    from kinfra.workflows.everyday import SHELL_COMMAND, default_service

    lp = find_local_prod(cwd)
    project = find_project(lp.clone)
    target = service or default_service(project)
    return compose.exec_in(lp.slot.compose_project, target, SHELL_COMMAND, interactive)


@dataclass(frozen=True)
class DestroyReport:
    """What `kinfra local-prod destroy` removed; the clone itself is never touched."""

    project: str
    clone: Path
    removed: list[Path]


def destroy(
    cwd: Path | None = None,
    volumes: bool = False,
    store: RegistryStore | None = None,
    project: str | None = None,
) -> DestroyReport:
    """Stop local-prod, unregister it, delete kinfra's generated files. The
    target comes from the registry, never from the current directory, and
    nothing under the clone (or any worktree) is touched.

    It works from the registry alone when the clone is gone: the stack is
    addressed by its compose project name, which kinfra derives from the
    project's registered prefix.
    """
    store = store or RegistryStore()
    name, record = _registered(cwd, store, exact=True, project=project)
    clone = record.clone
    try:
        compose_project = _load(name, record).slot.compose_project
    except KinfraError:  # the clone, or its kinfra.toml, is gone or broken
        project_record = store.load().require_project(name)
        compose_project = compose_project_name(project_record.prefix, LOCAL_PROD_SLOT)
    compose.down(compose_project, volumes=volumes)
    directory = local_prod_dir(name)
    removed: list[Path] = []
    for generated in _GENERATED:
        path = directory / generated
        if path.is_file():
            path.unlink()
            removed.append(path)
    with contextlib.suppress(OSError):
        directory.rmdir()  # only when empty: anything else there is not ours to delete
    with store.transaction() as registry:
        project_record = registry.require_project(name)
        lp_record = project_record.local_prod
        created = lp_record is not None and lp_record.created_project_record
        project_record.local_prod = None
        if created and not project_record.slots:
            del registry.projects[name]
    return DestroyReport(name, clone, removed)
