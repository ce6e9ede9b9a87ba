"""Starting a slot: claim it if free, write its files, validate, ``up``, gate.

``start_stack`` is the one start path, for a pool slot and for local-prod
(slot 0) alike; ``start_slot`` wraps it with the pool's claim rules.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kinfra import trace
from kinfra.adapters import compose, netcheck
from kinfra.adapters import secrets as secret_refs
from kinfra.adapters.registry import ClaimKind, RegistryStore, SlotRecord, SlotStatus
from kinfra.domain.config import Config, OnClaim
from kinfra.domain.slot import Slot
from kinfra.errors import (
    ComposeError,
    GateFailedError,
    KinfraError,
    PortConflictError,
    SandboxStartError,
    SlotClaimedError,
)
from kinfra.project import Project
from kinfra.workflows.gate import CheckResult, Outcome, run_gate
from kinfra.workflows.shared import require_shared
from kinfra.workflows.slot_files import compose_target, write_secrets_file, write_slot_files
from kinfra.workflows.validation import validate

Say = Callable[[str], None]
SetStatus = Callable[[SlotStatus], None]


def _quiet(_: str) -> None:
    pass


@dataclass
class Progress:
    """Callbacks the CLI passes in to show what is happening."""

    step: Say = _quiet  # a phase starts or ends: "starting shop-slot-1"
    detail: Say = _quiet  # a line of compose output
    check: Callable[[CheckResult], None] = lambda _: None


@dataclass(frozen=True)
class StartReport:
    """A started slot: the code it mounts, its URLs, its gate checks."""

    slot: Slot
    code_dir: Path
    urls: dict[str, str]
    checks: list[CheckResult]


def start_slot(
    project: Project,
    slot_id: int,
    code_dir: Path | None = None,
    progress: Progress | None = None,
    store: RegistryStore | None = None,
    fresh: bool = False,
    secret_values: dict[str, str] | None = None,
) -> StartReport:
    """Start a slot's stack for ``code_dir`` and run the startability gate.

    An unclaimed slot is claimed ("manual") for ``code_dir`` (default: the
    checkout the command runs in), so that running slots are always claimed.
    A slot claimed by a worktree runs that worktree's code. With ``fresh``
    (or a new claim under ``[sandbox] on_claim = "reset"``) the slot's named
    volumes are reset to the project's golden data first.
    """
    config = project.config
    progress = progress or Progress()
    store = store or RegistryStore()
    record = store.load().require_project(config.name).slot(slot_id)
    code_dir = start_code_dir(project, record, code_dir)
    slot = project.slot(slot_id)
    check_ports_free(slot)

    newly_claimed = False
    if record.claim is None:
        with store.transaction() as registry:
            # One checkout, one slot: `done` and targeting find a worktree's
            # slot by its path, so a second claim would be left behind.
            held = registry.require_project(config.name).slot_claimed_by(code_dir)
            if held is not None and held.slot_id != slot_id:
                raise SlotClaimedError(
                    f"{code_dir.name} already holds slot {held.slot_id}",
                    hint=f"use that slot, or stop it first: `kinfra sandbox down --slot {held.slot_id}`",
                )
            record = registry.claim(config.name, slot_id, code_dir, kind=ClaimKind.MANUAL)
        newly_claimed = True

    def set_status(status: SlotStatus) -> None:
        with store.transaction() as registry:
            registry.set_status(config.name, slot_id, status)

    try:
        if fresh or (newly_claimed and config.sandbox.on_claim is OnClaim.RESET):
            _reset(project, slot, progress)
        return start_stack(
            config, slot, record.instance_id, code_dir, progress, set_status, secret_values
        )
    except GateFailedError:
        raise  # containers stay up for inspection, claim kept: a running slot is claimed
    except BaseException:
        if newly_claimed:
            # Interrupted (or failed) mid-start: take down whatever came up, so
            # no running slot is left without its claim.
            with contextlib.suppress(KinfraError):
                compose.down(slot.compose_project)
            with store.transaction() as registry:
                registry.release(config.name, slot_id, claimant=code_dir)
        raise


def start_code_dir(project: Project, record: SlotRecord, code_dir: Path | None) -> Path:
    """The code a start of the slot mounts: its claimant's (``code_dir`` must
    agree), else ``code_dir``, else the checkout the command runs in."""
    if record.claim is not None:
        claimant = record.claim.path
        if code_dir is not None and code_dir.resolve() != claimant:
            raise SlotClaimedError(
                f"Slot {record.slot_id} is claimed by {claimant.name}",
                hint=f"it runs the code of {claimant}; pick another slot with --slot",
            )
        code_dir = claimant
    code_dir = (code_dir or project.here or project.root).resolve()
    if not code_dir.is_dir():
        raise SandboxStartError(
            f"code directory {code_dir} does not exist",
            hint="the worktree may have been removed; run `kinfra doctor`",
        )
    return code_dir


def _reset(project: Project, slot: Slot, progress: Progress) -> None:
    from kinfra.workflows.data import reset_data

    compose.down(slot.compose_project)  # no container may hold a volume being reset
    report = reset_data(project, slot)
    restored = ", ".join(report.restored) or "nothing (no snapshot)"
    emptied = f"; emptied {', '.join(report.emptied)}" if report.emptied else ""
    progress.step(f"data reset: restored {restored}{emptied}")


def prevalidate(config: Config, slot: Slot, instance_id: str, code_dir: Path) -> None:
    """Write a slot's files for ``code_dir`` and validate them ahead of time.

    ``kinfra impl`` runs this in the background while git creates the
    worktree, so the start that follows finds its inputs already validated
    (see ``validation``). Best effort by design: any problem is left for the
    real start to find and report. Skipped with secrets, so that a secret
    manager is asked once per start, never twice.
    """
    if config.secrets:
        return
    try:
        shared_root = require_shared(config)
        write_slot_files(config, slot, instance_id, code_dir, shared_root=shared_root)
        write_secrets_file(slot.directory, {})
        validate(compose_target(config, slot), slot)
    except (KinfraError, OSError):
        return


def check_ports_free(slot: Slot) -> None:
    busy = [
        (name, port)
        for name, port in slot.ports.items()
        if not netcheck.port_is_free(slot.bind or "127.0.0.1", port)
    ]
    if not busy:
        return
    # Ports held by this slot's own running containers are fine (a restart).
    own: set[int] = set()
    with contextlib.suppress(ComposeError):
        for container in compose.ps(slot.compose_project):
            own.update(container.published)
    foreign = [(name, port) for name, port in busy if port not in own]
    if foreign:
        name, port = foreign[0]
        others = ", ".join(str(p) for _, p in foreign[1:])
        raise PortConflictError(
            f"port {port} ({name} of {slot.compose_project}) is already in use by another process"
            + (f"; also busy: {others}" if others else ""),
            hint=f"free it (see `lsof -i :{port}`) or stop what holds it; nothing was started",
        )


def start_stack(
    config: Config,
    slot: Slot,
    instance_id: str,
    code_dir: Path,
    progress: Progress,
    set_status: SetStatus,
    secret_values: dict[str, str] | None = None,
) -> StartReport:
    """Write the files, start compose, run the gate. ``set_status`` records
    the outcome wherever the caller keeps it (a pool slot, local-prod).

    Shared dirs and secrets are checked first, so a missing one stops the
    start before any container exists. Secret values are redacted from every
    error raised out of here (compose may echo them).
    """
    shared_root = require_shared(config)
    if secret_values is None:  # else resolved by the preflight of this start
        secret_values = secret_refs.resolve_all(config.secrets, config.root)
    try:
        write_slot_files(config, slot, instance_id, code_dir, shared_root=shared_root)
        write_secrets_file(slot.directory, secret_values)
        return _up_and_gate(config, slot, code_dir, progress, set_status, secret_values)
    except BaseException as exc:
        if not isinstance(exc, GateFailedError):
            # Nothing is running that needs them: secrets stay on disk only
            # while a stack runs (a failed gate leaves it up for inspection).
            (slot.directory / secret_refs.SECRETS_FILE).unlink(missing_ok=True)
        secret_refs.redact_exception(exc, secret_values.values())
        raise


def _up_and_gate(
    config: Config,
    slot: Slot,
    code_dir: Path,
    progress: Progress,
    set_status: SetStatus,
    secret_values: dict[str, str],
) -> StartReport:
    target = compose_target(config, slot)
    validate(target, slot)

    def detail(line: str) -> None:
        progress.detail(secret_refs.redact(line, secret_values.values()))

    progress.step(f"starting {slot.compose_project} (slot {slot.slot_id}, {slot.profile.value})")
    trace.step("slot:starting")
    result = compose.up(target, config.sandbox.wait_timeout, detail)
    if not result.ok:
        _raise_start_failure(slot, result.output, set_status)
    trace.step("slot:containers-up")
    progress.step("containers running and healthy")

    checks = run_gate(config, slot, progress.check)
    failed = [c for c in checks if c.outcome is not Outcome.PASSED]
    set_status(SlotStatus.FAILED if failed else SlotStatus.RUNNING)
    if failed:
        summary = "; ".join(f"{c.name}: {c.outcome.value} ({c.detail})" for c in failed)
        raise GateFailedError(
            f"slot {slot.slot_id} started but failed the startability gate: {summary}",
            hint=_inspect_hint(slot),
        )
    return StartReport(slot, code_dir, slot.urls, checks)


def _inspect_hint(slot: Slot) -> str:
    if slot.is_local_prod:
        return "look at `kinfra local-prod logs`; stop it with `kinfra local-prod down`"
    return (
        f"look at `kinfra sandbox logs --slot {slot.slot_id}`; "
        f"stop it with `kinfra sandbox down --slot {slot.slot_id}`"
    )


def _raise_start_failure(slot: Slot, output: str, set_status: SetStatus) -> None:
    containers = []
    with contextlib.suppress(ComposeError):
        containers = compose.ps(slot.compose_project)
    unhealthy = [c for c in containers if not c.ok]
    if containers and unhealthy:
        set_status(SlotStatus.FAILED)
        described = ", ".join(
            f"{c.service} {c.health or c.state}"
            + (f" (exit {c.exit_code})" if c.state == "exited" else "")
            for c in unhealthy
        )
        raise GateFailedError(
            f"slot {slot.slot_id} containers did not become healthy: {described}",
            hint=_inspect_hint(slot),
        )
    # Nothing usable came up: take down whatever half-started.
    with contextlib.suppress(ComposeError):
        compose.down(slot.compose_project)
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    detail = " / ".join(lines[-3:]) if lines else "docker compose up failed"
    raise SandboxStartError(f"Failed to start sandbox: {detail}")
