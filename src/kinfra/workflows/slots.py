"""The slot pool: provision slots, start one behind the gate, stop it, report.

Everything about a slot's identity comes from ``domain.slotplan``; every
registry change goes through ``RegistryStore.transaction``; every docker call
through ``adapters.compose``.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kinfra.adapters import compose, netcheck
from kinfra.adapters import secrets as secret_refs
from kinfra.adapters.registry import (
    ProjectRecord,
    Registry,
    RegistryStore,
    SlotRecord,
    SlotStatus,
)
from kinfra.adapters.statefile import atomic_write_text
from kinfra.domain import compose_yaml
from kinfra.domain.config import Config
from kinfra.domain.slotplan import (
    LOCAL_PROD_SLOT,
    SlotPlan,
    build_override,
    env_file_values,
    plan_slot,
    render_env_file,
)
from kinfra.errors import (
    ComposeError,
    ConfigError,
    DockerUnavailableError,
    GateFailedError,
    KinfraError,
    PortConflictError,
    ProvisionError,
    SandboxStartError,
    SlotClaimedError,
)
from kinfra.paths import ENV_FILE, OVERRIDE_FILE, VALIDATED_FILE, project_home
from kinfra.workflows.gate import CheckResult, Outcome, run_checks
from kinfra.workflows.project import Project
from kinfra.workflows.shared import require_shared, shared_env

Say = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass
class Progress:
    """Callbacks the CLI passes in to show what is happening."""

    step: Say = _quiet  # a phase starts or ends: "starting shop-slot-1"
    detail: Say = _quiet  # a line of compose output
    check: Callable[[CheckResult], None] = lambda _: None


def slot_dir(config: Config, slot_id: int) -> Path:
    return project_home(config.name) / f"slot-{slot_id}"


# --- provisioning ------------------------------------------------------------


@dataclass
class ProvisionReport:
    dry_run: bool
    created: list[int] = field(default_factory=list)
    refreshed: list[int] = field(default_factory=list)
    kept_claimed: list[int] = field(default_factory=list)
    beyond_count: list[int] = field(default_factory=list)
    running_unclaimed: list[int] = field(default_factory=list)
    plans: list[SlotPlan] = field(default_factory=list)


def provision(
    project: Project,
    count: int | None = None,
    dry_run: bool = False,
    store: RegistryStore | None = None,
) -> ProvisionReport:
    config = project.config
    count = config.sandbox.pool_size if count is None else count
    if count < 1:
        raise ProvisionError(f"--count must be at least 1, got {count}")
    store = store or RegistryStore()
    report = ProvisionReport(dry_run=dry_run)
    plans = [plan_slot(config, slot_id) for slot_id in range(1, count + 1)]
    report.plans = plans

    with _maybe_transaction(store, dry_run) as registry:
        _check_ownership(registry, project)
        _check_port_layout(registry, config, count)
        record = registry.projects.get(config.name) or ProjectRecord(
            name=config.name, root=str(project.root), prefix=config.prefix
        )
        if not record.slots:
            record.root = str(project.root)
        for plan in plans:
            existing = record.slots.get(plan.slot_id)
            if existing is not None and existing.claimed_by is not None:
                report.kept_claimed.append(plan.slot_id)
                continue
            (report.refreshed if existing else report.created).append(plan.slot_id)
            if dry_run:
                continue
            instance_id = existing.instance_id if existing else _new_instance_id(plan)
            slot = SlotRecord(
                slot_id=plan.slot_id,
                infrastructure_path=str(slot_dir(config, plan.slot_id)),
                profile=plan.profile,
                workers=dict(plan.workers),
                ports=dict(plan.ports),
                compose_project=plan.compose_project,
                instance_id=instance_id,
                status=existing.status if existing else SlotStatus.STOPPED,
            )
            write_slot_files(config, plan, slot, code_dir=None)
            record.slots[plan.slot_id] = slot
        report.beyond_count = sorted(s for s in record.slots if s > count)
        if not dry_run:
            record.prefix = config.prefix
            registry.projects[config.name] = record
        report.running_unclaimed = _running_unclaimed(record)
    return report


@contextlib.contextmanager
def _maybe_transaction(store: RegistryStore, dry_run: bool):  # type: ignore[no-untyped-def]
    if dry_run:
        yield store.load()
    else:
        with store.transaction() as registry:
            yield registry


def _new_instance_id(plan: SlotPlan) -> str:
    return f"{plan.compose_project}-{secrets.token_hex(4)}"


def _check_ownership(registry: Registry, project: Project) -> None:
    config = project.config
    mine = registry.projects.get(config.name)
    # A record with no slots yet was made by `kinfra local-prod init` from the
    # production clone: the pool belongs to whichever checkout provisions it.
    if mine is not None and mine.slots and Path(mine.root) != project.root:
        raise ProvisionError(
            f"project name '{config.name}' is already registered on this machine by {mine.root}",
            hint="give this checkout another [project] name (and prefix) in kinfra.toml",
        )
    for other in registry.projects.values():
        if other.name != config.name and other.prefix == config.prefix:
            raise ProvisionError(
                f"prefix '{config.prefix}' is already used by project '{other.name}' ({other.root}); "
                "compose project names would collide",
                hint="choose another [project] prefix in kinfra.toml",
            )


def _check_port_layout(registry: Registry, config: Config, count: int) -> None:
    """No host port of any slot (0..count) may equal one of another project's slots."""
    taken: dict[int, str] = {}
    for other, slot in registry.all_slots():
        if other.name == config.name:
            continue
        for name, number in slot.ports.items():
            taken[number] = f"{other.name} slot {slot.slot_id} ({name})"
    for other in registry.projects.values():
        local_prod = other.local_prod or {}
        if other.name != config.name:
            for name, number in (local_prod.get("ports") or {}).items():
                taken[int(number)] = f"{other.name} local-prod ({name})"
    mine: dict[int, str] = {}
    for slot_id in range(0, count + 1):
        for port in config.ports:
            host_port = port.host_port(slot_id)
            owner = f"{config.name} slot {slot_id} ({port.name})"
            if slot_id == 0:
                owner = f"{config.name} local-prod ({port.name})"
            clash = taken.get(host_port) or mine.get(host_port)
            if clash:
                raise ProvisionError(
                    f"host port {host_port} would belong to both {clash} and {owner}",
                    hint="move the [ports] bases in kinfra.toml apart, or provision fewer slots",
                )
            mine[host_port] = owner
    if max(mine, default=0) > 65535:
        raise ProvisionError(f"{count} slots push host ports past 65535")


def _running_unclaimed(record: ProjectRecord) -> list[int]:
    try:
        live = compose.list_projects()
    except (DockerUnavailableError, ComposeError):
        return []
    return sorted(
        s.slot_id
        for s in record.slots.values()
        if s.claimed_by is None and live.get(s.compose_project, "").startswith("running")
    )


# --- files of a slot -----------------------------------------------------------


def write_slot_files(
    config: Config,
    plan: SlotPlan,
    slot: SlotRecord,
    code_dir: Path | None,
    shared_root: Path | None = None,
) -> None:
    """(Re)write the slot's .env.sandbox and compose override, atomically.

    With ``shared_root`` (a start, after ``require_shared``) the override also
    mounts the shared data dirs and names them in the services' environment.
    """
    directory = slot.directory
    directory.mkdir(parents=True, exist_ok=True)
    values = env_file_values(config, plan, slot.instance_id)
    values.update(shared_env(config))
    header = f"Generated by kinfra for {config.name} slot {plan.slot_id}. Do not edit."
    atomic_write_text(directory / ENV_FILE, render_env_file(values, header))
    document = build_override(
        config,
        plan,
        code_dir,
        shared_root=shared_root,
        services_with_ports=_services_publishing_ports(config),
    )
    if shared_root is not None:
        _name_shared_dirs(config, document)
    header = (
        f"# Generated by kinfra for {config.name} slot {plan.slot_id} "
        f"(compose project {plan.compose_project}).\n"
        f"# Code mounted from: {code_dir or 'nothing (no claimant)'}\n"
        "# Regenerated on every start; do not edit.\n"
    )
    atomic_write_text(directory / OVERRIDE_FILE, compose_yaml.dump(document, header))


def _name_shared_dirs(config: Config, document: dict[str, Any]) -> None:
    """SHARED_<NAME>_DIR=<container path> in each service that mounts a shared dir."""
    services = document["services"]
    for shared in config.shared:
        for name in shared.services:
            environment = services[name].setdefault("environment", {})
            environment[f"SHARED_{shared.name.upper()}_DIR"] = shared.target


def _services_publishing_ports(config: Config) -> list[str]:
    """Services whose base definition publishes ports, read from the project's
    compose files directly (no docker call). Includes/extends are caught later
    by the check on the merged config."""
    names: list[str] = []
    for file in config.compose_files:
        path = config.root / file
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"compose file {path} cannot be read: {exc.strerror}",
                hint="check [project] compose_files in kinfra.toml",
            ) from exc
        document = compose_yaml.load(text, str(path))
        services = document.get("services") or {}
        for name, body in services.items():
            if isinstance(body, dict) and body.get("ports") and name not in names:
                names.append(name)
    return names


def compose_target(config: Config, slot: SlotRecord) -> compose.ComposeTarget:
    directory = slot.directory
    files = (*(config.root / f for f in config.compose_files), directory / OVERRIDE_FILE)
    env_files = [directory / ENV_FILE]
    if config.secrets and (directory / secret_refs.SECRETS_FILE).is_file():
        env_files.append(directory / secret_refs.SECRETS_FILE)
    return compose.ComposeTarget(
        project_name=slot.compose_project,
        project_dir=config.root,
        files=files,
        env_files=tuple(env_files),
    )


# --- start -----------------------------------------------------------------------


@dataclass(frozen=True)
class StartReport:
    slot: SlotRecord
    plan: SlotPlan
    code_dir: Path
    urls: dict[str, str]
    checks: list[CheckResult]


def start_slot(
    project: Project,
    slot_id: int,
    code_dir: Path | None = None,
    progress: Progress | None = None,
    store: RegistryStore | None = None,
) -> StartReport:
    """Start a slot's stack for ``code_dir`` and run the startability gate.

    An unclaimed slot is claimed ("manual") for ``code_dir`` (default: the
    checkout the command runs in), so that running slots are always claimed.
    A slot claimed by a worktree runs that worktree's code.
    """
    config = project.config
    progress = progress or Progress()
    store = store or RegistryStore()
    record = store.load().require_project(config.name)
    slot = record.slot(slot_id)
    if slot.claimed_by is not None:
        claimant = Path(slot.claimed_by)
        if code_dir is not None and code_dir.resolve() != claimant:
            raise SlotClaimedError(
                f"Slot {slot_id} is claimed by {claimant.name}",
                hint=f"it runs the code of {claimant}; pick another slot with --slot",
            )
        code_dir = claimant
    code_dir = (code_dir or project.here or project.root).resolve()
    if not code_dir.is_dir():
        raise SandboxStartError(
            f"code directory {code_dir} does not exist",
            hint="the worktree may have been removed; run `kinfra doctor`",
        )
    plan = plan_slot(config, slot_id)
    _check_ports_free(plan)

    newly_claimed = False
    if slot.claimed_by is None:
        with store.transaction() as registry:
            # One checkout, one slot: `done` and targeting find a worktree's
            # slot by its path, so a second claim would be left behind.
            held = registry.require_project(config.name).slot_claimed_by(code_dir)
            if held is not None and held.slot_id != slot_id:
                raise SlotClaimedError(
                    f"{code_dir.name} already holds slot {held.slot_id}",
                    hint=f"use that slot, or stop it first: `kinfra sandbox down --slot {held.slot_id}`",
                )
            slot = registry.claim(config.name, slot_id, code_dir, kind="manual")
        newly_claimed = True
    try:
        return _start_claimed(project, slot, plan, code_dir, progress, store)
    except GateFailedError:
        raise  # containers stay up for inspection, claim kept: a running slot is claimed
    except BaseException:
        if newly_claimed:
            # Interrupted (or failed) mid-start: take down whatever came up, so
            # no running slot is left without its claim.
            with contextlib.suppress(KinfraError):
                compose.down(plan.compose_project)
            with store.transaction() as registry:
                registry.release(config.name, slot_id, claimant=code_dir)
        raise


def prevalidate(config: Config, slot: SlotRecord, code_dir: Path) -> None:
    """Write a slot's files for ``code_dir`` and validate them ahead of time.

    ``kinfra impl`` runs this in the background while git creates the
    worktree, so the start that follows finds its inputs already validated
    (see ``_validate``). Best effort by design: any problem is left for the
    real start to find and report. Skipped with secrets, so that a secret
    manager is asked once per start, never twice.
    """
    if config.secrets:
        return
    try:
        shared_root = require_shared(config)
        plan = plan_slot(config, slot.slot_id)
        write_slot_files(config, plan, slot, code_dir, shared_root=shared_root)
        _write_secrets_file(slot.directory, {})
        _validate(compose_target(config, slot), plan)
    except (KinfraError, OSError):
        return


def _check_ports_free(plan: SlotPlan) -> None:
    busy = [
        (name, port)
        for name, port in plan.ports.items()
        if not netcheck.port_is_free(plan.bind or "127.0.0.1", port)
    ]
    if not busy:
        return
    # Ports held by this slot's own running containers are fine (a restart).
    own: set[int] = set()
    with contextlib.suppress(ComposeError):
        for container in compose.ps(plan.compose_project):
            own.update(container.published)
    foreign = [(name, port) for name, port in busy if port not in own]
    if foreign:
        name, port = foreign[0]
        others = ", ".join(str(p) for _, p in foreign[1:])
        raise PortConflictError(
            f"port {port} ({name} of {plan.compose_project}) is already in use by another process"
            + (f"; also busy: {others}" if others else ""),
            hint=f"free it (see `lsof -i :{port}`) or stop what holds it; nothing was started",
        )


def _start_claimed(
    project: Project,
    slot: SlotRecord,
    plan: SlotPlan,
    code_dir: Path,
    progress: Progress,
    store: RegistryStore,
) -> StartReport:
    config = project.config

    def set_status(status: SlotStatus) -> SlotRecord:
        with store.transaction() as registry:
            return registry.set_status(config.name, plan.slot_id, status)

    return start_stack(config, slot, plan, code_dir, progress, set_status)


def start_stack(
    config: Config,
    slot: SlotRecord,
    plan: SlotPlan,
    code_dir: Path,
    progress: Progress,
    set_status: Callable[[SlotStatus], SlotRecord],
) -> StartReport:
    """Write the files, start compose, run the gate: the one start path, for a
    pool slot and for local-prod (slot 0) alike. ``set_status`` records the
    outcome wherever the caller keeps it.

    Shared dirs and secrets are checked first, so a missing one stops the
    start before any container exists. Secret values are redacted from every
    error raised out of here (compose may echo them).
    """
    shared_root = require_shared(config)
    secret_values = secret_refs.resolve_all(config.secrets, config.root)
    try:
        return _start_stack(
            config, slot, plan, code_dir, progress, set_status, shared_root, secret_values
        )
    except BaseException as exc:
        if not isinstance(exc, GateFailedError):
            # Nothing is running that needs them: secrets stay on disk only
            # while a stack runs (a failed gate leaves it up for inspection).
            (slot.directory / secret_refs.SECRETS_FILE).unlink(missing_ok=True)
        _redact_chain(exc, secret_values.values())
        raise


def _start_stack(
    config: Config,
    slot: SlotRecord,
    plan: SlotPlan,
    code_dir: Path,
    progress: Progress,
    set_status: Callable[[SlotStatus], SlotRecord],
    shared_root: Path | None,
    secret_values: dict[str, str],
) -> StartReport:
    write_slot_files(config, plan, slot, code_dir, shared_root=shared_root)
    _write_secrets_file(slot.directory, secret_values)
    target = compose_target(config, slot)
    _validate(target, plan)

    def detail(line: str) -> None:
        progress.detail(secret_refs.redact(line, secret_values.values()))

    progress.step(f"starting {plan.compose_project} (slot {plan.slot_id}, {plan.profile.value})")
    result = compose.up(target, config.sandbox.wait_timeout, detail)
    if not result.ok:
        _raise_start_failure(plan, result.output, set_status)
    progress.step("containers running and healthy")

    checks = _worker_checks(plan, progress.check)
    checks += run_checks(config, plan, progress.check)
    failed = [c for c in checks if c.outcome is not Outcome.PASSED]
    slot = set_status(SlotStatus.FAILED if failed else SlotStatus.RUNNING)
    if failed:
        summary = "; ".join(f"{c.name}: {c.outcome.value} ({c.detail})" for c in failed)
        raise GateFailedError(
            f"slot {plan.slot_id} started but failed the startability gate: {summary}",
            hint=_inspect_hint(plan),
        )
    return StartReport(slot, plan, code_dir, plan.urls(config), checks)


def _inspect_hint(plan: SlotPlan) -> str:
    if plan.slot_id == LOCAL_PROD_SLOT:
        return "look at `kinfra local-prod logs`; stop it with `kinfra local-prod down`"
    return (
        f"look at `kinfra sandbox logs --slot {plan.slot_id}`; "
        f"stop it with `kinfra sandbox down --slot {plan.slot_id}`"
    )


def _write_secrets_file(directory: Path, values: dict[str, str]) -> None:
    path = directory / secret_refs.SECRETS_FILE
    if not values:
        path.unlink(missing_ok=True)
        return
    # atomic_write_text creates the temp file 0600 and keeps that mode: the
    # values are never readable by anyone else, not even for a moment.
    atomic_write_text(path, secret_refs.render_env_file(values), mode=0o600)


def _redact_chain(exc: BaseException, values: Iterable[str]) -> None:
    """Scrub secret values from an exception, its cause chain and their args."""
    values = [v for v in values if v]
    if not values:
        return
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, KinfraError):
            current.message = secret_refs.redact(current.message, values)
            if current.hint:
                current.hint = secret_refs.redact(current.hint, values)
        current.args = tuple(
            secret_refs.redact(a, values) if isinstance(a, str) else a for a in current.args
        )
        current = current.__cause__ or current.__context__


_WORKER_WAIT = 30.0


def _worker_checks(plan: SlotPlan, on_result: Callable[[CheckResult], None]) -> list[CheckResult]:
    """Gate step: each worker service runs as many replicas as the profile says."""
    if not plan.workers:
        return []
    expected = {service: n for service, n in plan.workers.items()}
    started = time.monotonic()
    running: dict[str, int] = {}
    while True:
        counts = compose.running_services(plan.compose_project)
        running = {service: counts.get(service, 0) for service in expected}
        if running == expected or time.monotonic() - started > _WORKER_WAIT:
            break
        time.sleep(0.5)
    seconds = time.monotonic() - started
    results = []
    for service, want in expected.items():
        have = running[service]
        outcome = Outcome.PASSED if have == want else Outcome.FAILED
        detail = f"{have}/{want} running ({plan.profile.value} profile)"
        result = CheckResult(f"workers:{service}", service, outcome, detail, seconds)
        on_result(result)
        results.append(result)
    return results


def _validate(target: compose.ComposeTarget, plan: SlotPlan) -> None:
    """``docker compose config`` on the exact files and env files of the up.

    The digest of every input is remembered after a successful validation,
    so an unchanged slot restarts without paying ~150 ms for compose to parse
    the same bytes again; any change to any input validates afresh.
    """
    digest = hashlib.sha256()
    for path in (*target.files, *target.env_files):
        digest.update(str(path).encode() + b"\0")
        digest.update(path.read_bytes() if path.is_file() else b"<missing>")
        digest.update(b"\0")
    marker = target.env_files[0].parent / VALIDATED_FILE
    if marker.is_file() and marker.read_text().strip() == digest.hexdigest():
        return
    marker.unlink(missing_ok=True)
    merged = compose.config(target)
    _check_published_ports(merged, plan)
    # 0600: the digest covers the secrets file, so it is as private as that.
    atomic_write_text(marker, digest.hexdigest() + "\n", mode=0o600)


def _check_published_ports(merged: dict[str, object], plan: SlotPlan) -> None:
    allowed = set(plan.ports.values())
    services = merged.get("services") or {}
    assert isinstance(services, dict)
    for name, body in services.items():
        for port in (body or {}).get("ports") or []:
            published = port.get("published") if isinstance(port, dict) else None
            if published and int(published) not in allowed:
                raise ConfigError(
                    f"service {name} would publish host port {published}, "
                    "which is not one of the slot's named ports",
                    hint="declare it under [ports] in kinfra.toml; nothing was started",
                )


def _raise_start_failure(
    plan: SlotPlan, output: str, set_status: Callable[[SlotStatus], SlotRecord]
) -> None:
    containers = []
    with contextlib.suppress(ComposeError):
        containers = compose.ps(plan.compose_project)
    unhealthy = [c for c in containers if not c.ok]
    if containers and unhealthy:
        set_status(SlotStatus.FAILED)
        described = ", ".join(
            f"{c.service} {c.health or c.state}"
            + (f" (exit {c.exit_code})" if c.state == "exited" else "")
            for c in unhealthy
        )
        raise GateFailedError(
            f"slot {plan.slot_id} containers did not become healthy: {described}",
            hint=_inspect_hint(plan),
        )
    # Nothing usable came up: take down whatever half-started.
    with contextlib.suppress(ComposeError):
        compose.down(plan.compose_project)
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    detail = " / ".join(lines[-3:]) if lines else "docker compose up failed"
    raise SandboxStartError(f"Failed to start sandbox: {detail}")


# --- stop, status, listing ------------------------------------------------------------


@dataclass(frozen=True)
class SlotStatusReport:
    slot: SlotRecord
    plan: SlotPlan
    containers: list[compose.ContainerState]
    urls: dict[str, str]

    @property
    def state(self) -> str:
        return compose.stack_state(self.containers)


def slot_status(
    project: Project, slot_id: int, store: RegistryStore | None = None
) -> SlotStatusReport:
    config = project.config
    store = store or RegistryStore()
    slot = store.load().require_project(config.name).slot(slot_id)
    plan = plan_slot(config, slot_id)
    containers = compose.ps(slot.compose_project)
    return SlotStatusReport(slot, plan, containers, plan.urls(config))
