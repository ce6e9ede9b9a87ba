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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kinfra import paths
from kinfra.adapters import compose
from kinfra.adapters import secrets as secret_refs
from kinfra.adapters.registry import (
    CLAIMED_AT_FORMAT,
    ProjectRecord,
    RegistryStore,
    SlotRecord,
    SlotStatus,
)
from kinfra.domain.config import CONFIG_FILE, Config, Profile, load_config
from kinfra.domain.slotplan import LOCAL_PROD_SLOT, SlotPlan, compose_project_name, plan_slot
from kinfra.errors import KinfraError, LocalProdError, NotInProjectError
from kinfra.paths import project_home
from kinfra.workflows import slots
from kinfra.workflows.project import find_project

_GENERATED = (
    paths.ENV_FILE,
    paths.OVERRIDE_FILE,
    paths.VALIDATED_FILE,
    secret_refs.SECRETS_FILE,
)


@dataclass(frozen=True)
class LocalProd:
    project: str
    clone: Path
    config: Config
    plan: SlotPlan
    record: dict[str, Any]

    @property
    def slot(self) -> SlotRecord:
        """Slot 0 as a slot record, so the one start path serves it too."""
        return SlotRecord(
            slot_id=LOCAL_PROD_SLOT,
            infrastructure_path=str(local_prod_dir(self.project)),
            profile=Profile.LIGHT,
            workers=dict(self.plan.workers),
            ports=dict(self.plan.ports),
            compose_project=self.plan.compose_project,
            instance_id=str(self.record["instance_id"]),
            claimed_by=str(self.clone),
            claim_kind="local-prod",
            status=SlotStatus(self.record.get("status", "stopped")),
        )


def local_prod_dir(project: str) -> Path:
    """Where kinfra keeps local-prod's generated files. Always derived from
    kinfra's own layout, never read back from the registry: a hand-edited
    ``directory`` there must not decide where files are written or deleted."""
    return project_home(project) / "local-prod"


# --- registration ---------------------------------------------------------------------


def init(cwd: Path | None = None, store: RegistryStore | None = None) -> LocalProd:
    """Register the full clone containing ``cwd`` as the project's local-prod."""
    project = find_project(cwd)
    clone = project.root.resolve()
    here = (project.here or project.root).resolve()
    if here != clone:
        raise LocalProdError(
            f"{here} is a git worktree; local-prod runs from a full clone",
            hint=f"clone the repository (git clone {clone} <dir>) and run "
            "`kinfra local-prod init` there",
        )
    config = project.config
    plan = plan_slot(config, LOCAL_PROD_SLOT)
    store = store or RegistryStore()
    with store.transaction() as registry:
        record = registry.projects.get(config.name)
        if record is not None and record.local_prod:
            raise LocalProdError(
                f"{config.name} already has a local-prod at {record.local_prod.get('clone')}",
                hint="`kinfra local-prod destroy` unregisters it first (the clone is kept)",
            )
        created = record is None
        if record is None:
            record = ProjectRecord(name=config.name, root=str(clone), prefix=config.prefix)
            registry.projects[config.name] = record
        record.local_prod = {
            "clone": str(clone),
            "compose_project": plan.compose_project,
            "ports": dict(plan.ports),
            "directory": str(local_prod_dir(config.name)),
            "instance_id": f"{plan.compose_project}-{datetime.now(UTC):%Y%m%d%H%M%S}",
            "status": SlotStatus.STOPPED.value,
            "registered_at": datetime.now(UTC).strftime(CLAIMED_AT_FORMAT),
            "created_project_record": created,
        }
        return _load(config.name, record.local_prod)


def find_local_prod(cwd: Path | None = None, store: RegistryStore | None = None) -> LocalProd:
    """The registered local-prod of the project ``cwd`` belongs to; outside any
    project, the only one registered on this machine."""
    return _load(*_registered(cwd, store or RegistryStore()))


def _registered(cwd: Path | None, store: RegistryStore) -> tuple[str, dict[str, Any]]:
    """The project name and registry record of the local-prod meant from ``cwd``."""
    registry = store.load()
    try:
        name: str | None = find_project(cwd).name
    except NotInProjectError:
        name = None
    if name is not None:
        record = registry.project(name)
        if record is None or not record.local_prod:
            raise LocalProdError(
                f"{name} has no local-prod registered",
                hint="run `kinfra local-prod init` in a full clone of the project",
            )
        return name, dict(record.local_prod)
    registered = [p for p in registry.projects.values() if p.local_prod]
    if len(registered) != 1:
        names = ", ".join(p.name for p in registered) or "none"
        raise LocalProdError(
            f"not inside a project, and {len(registered)} local-prods are registered ({names})",
            hint="run the command inside a checkout of the project you mean",
        )
    return registered[0].name, dict(registered[0].local_prod or {})


def _load(name: str, record: dict[str, Any]) -> LocalProd:
    clone = Path(str(record["clone"]))
    if not (clone / CONFIG_FILE).is_file():
        raise LocalProdError(
            f"the local-prod clone of {name} ({clone}) is gone or has no {CONFIG_FILE}",
            hint="`kinfra local-prod destroy` unregisters it",
        )
    config = load_config(clone / CONFIG_FILE)
    return LocalProd(name, clone, config, plan_slot(config, LOCAL_PROD_SLOT), dict(record))


def _set_status(store: RegistryStore, lp: LocalProd, status: SlotStatus) -> SlotRecord:
    with store.transaction() as registry:
        record = registry.require_project(lp.project)
        if record.local_prod:
            record.local_prod = {**record.local_prod, "status": status.value}
    return LocalProd(lp.project, lp.clone, lp.config, lp.plan, {**lp.record, "status": status}).slot


# --- lifecycle ---------------------------------------------------------------------------


def up(
    cwd: Path | None = None,
    progress: slots.Progress | None = None,
    store: RegistryStore | None = None,
) -> slots.StartReport:
    store = store or RegistryStore()
    lp = find_local_prod(cwd, store)
    slots._check_ports_free(lp.plan)
    return slots.start_stack(
        lp.config,
        lp.slot,
        lp.plan,
        lp.clone,
        progress or slots.Progress(),
        lambda status: _set_status(store, lp, status),
    )


def down(cwd: Path | None = None, store: RegistryStore | None = None) -> LocalProd:
    store = store or RegistryStore()
    lp = find_local_prod(cwd, store)
    try:
        compose.down(lp.plan.compose_project)
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
    local_prod: LocalProd
    containers: list[compose.ContainerState]
    urls: dict[str, str]

    @property
    def state(self) -> str:
        return compose.stack_state(self.containers)


def status(cwd: Path | None = None) -> LocalProdStatus:
    lp = find_local_prod(cwd)
    containers = compose.ps(lp.plan.compose_project)
    return LocalProdStatus(lp, containers, lp.plan.urls(lp.config))


def logs(cwd: Path | None, services: Sequence[str], follow: bool, tail: int | None) -> int:
    lp = find_local_prod(cwd)
    return compose.logs(lp.plan.compose_project, services, follow, tail)


def shell(cwd: Path | None, service: str | None, interactive: bool) -> int:
    from kinfra.workflows.everyday import SHELL_COMMAND, default_service

    lp = find_local_prod(cwd)
    project = find_project(lp.clone)
    target = service or default_service(project)
    return compose.exec_in(lp.plan.compose_project, target, SHELL_COMMAND, interactive)


@dataclass(frozen=True)
class DestroyReport:
    project: str
    clone: Path
    removed: list[Path]


def destroy(
    cwd: Path | None = None, volumes: bool = False, store: RegistryStore | None = None
) -> DestroyReport:
    """Stop local-prod, unregister it, delete kinfra's generated files. The
    target comes from the registry, never from the current directory, and
    nothing under the clone (or any worktree) is touched.

    It works from the registry alone when the clone is gone: the stack is
    addressed by its compose project name, which kinfra derives from the
    project's registered prefix.
    """
    store = store or RegistryStore()
    name, record = _registered(cwd, store)
    clone = Path(str(record.get("clone", "")))
    try:
        compose_project = _load(name, record).plan.compose_project
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
        created = bool((project_record.local_prod or {}).get("created_project_record"))
        project_record.local_prod = None
        if created and not project_record.slots:
            del registry.projects[name]
    return DestroyReport(name, clone, removed)
