"""`kinfra doctor`: compare the registry, git's worktrees and Docker's stacks.

Three sources of truth drift apart when someone deletes a worktree by hand,
kills kinfra mid-way, or starts a stack outside it. The doctor reports each
mismatch and, with --fix, repairs the ones that have one safe repair. It never
deletes a directory and never releases a slot whose stack it could not stop.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from kinfra.adapters import compose, git
from kinfra.adapters.registry import (
    CLAIMED_AT_FORMAT,
    ClaimKind,
    ProjectRecord,
    RegistryStore,
    SlotRecord,
)
from kinfra.domain.slot import compose_project_name
from kinfra.errors import ComposeError, DockerUnavailableError, KinfraError
from kinfra.project import Project
from kinfra.workflows.pool import stop_slot
from kinfra.workflows.worktrees import owns_record


class FindingKind(str, Enum):
    STALE_CLAIM = "stale claim"
    IMPL_IN_PROGRESS = "impl in progress"
    RUNNING_UNCLAIMED = "running without claim"
    UNKNOWN_STACK = "unknown slot stack"
    CLAIMED_DOWN = "claimed but down"
    STALE_GIT_ENTRY = "stale git worktree entry"


@dataclass
class Finding:
    kind: FindingKind
    message: str
    advice: str = ""
    slot_id: int | None = None
    fixed: str = ""  # "" (not attempted), "fixed" or "failed"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.name.lower(),
            "message": self.message,
            "advice": self.advice,
            "slot": self.slot_id,
            "fixed": self.fixed or None,
        }


@dataclass
class DoctorReport:
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def unresolved(self) -> list[Finding]:
        return [f for f in self.findings if f.fixed != "fixed"]

    def to_json(self) -> dict[str, Any]:
        return {
            "findings": [f.to_json() for f in self.findings],
            "notes": self.notes,
            "unresolved": len(self.unresolved),
        }


def doctor(project: Project, fix: bool = False, store: RegistryStore | None = None) -> DoctorReport:
    store = store or RegistryStore()
    report = DoctorReport()
    root = project.root.resolve()
    record = store.load().project(project.name)
    entries = git.list_worktrees(root)
    live = _live(report)
    if record is None:
        report.notes.append("no slots provisioned for this project on this machine")
    elif not owns_record(project, record):
        _note_foreign_claims(record, report)
    else:
        _check_slots(project, record, entries, live, report, fix, store)
        if live is not None:
            _check_unknown(project, record, store, live, report)
    _check_git(root, entries, report, fix)
    return report


def _note_foreign_claims(record: ProjectRecord, report: DoctorReport) -> None:
    """The pool belongs to another clone of the project (the one that
    provisioned it): its claims name that clone's worktrees, which this
    checkout's git cannot see. Reported, never repaired from here."""
    report.notes.append(
        f"the slots of {record.name} belong to another checkout ({record.root}); "
        "run `kinfra doctor` there to check them"
    )
    for slot in sorted(record.slots.values(), key=lambda s: s.slot_id):
        if slot.claim is not None:
            report.notes.append(
                f"slot {slot.slot_id} is held by another checkout ({record.root}): "
                f"claimed by {slot.claim.path}; left alone"
            )


def _live(report: DoctorReport) -> dict[str, str] | None:
    try:
        return compose.list_projects()
    except (DockerUnavailableError, ComposeError) as exc:
        report.notes.append(f"Docker not consulted: {exc.message}")
        return None


def _running(live: dict[str, str] | None, compose_project: str) -> bool:
    return live is not None and live.get(compose_project, "").startswith("running")


def _check_slots(
    project: Project,
    record: ProjectRecord,
    entries: list[git.WorktreeEntry],
    live: dict[str, str] | None,
    report: DoctorReport,
    fix: bool,
    store: RegistryStore,
) -> None:
    known = {e.path.resolve() for e in entries if not e.prunable}
    listed = {e.path.resolve() for e in entries}  # prunable too: git made them once
    for slot in sorted(record.slots.values(), key=lambda s: s.slot_id):
        compose_project = project.slot(slot.slot_id).compose_project
        if slot.claim is not None:
            claimant = slot.claim.path
            gone = not claimant.is_dir()
            forgotten = slot.claim.kind is ClaimKind.IMPL and claimant not in known
            creating = claimant not in listed and _fresh_impl_claim(slot)
            if (gone or forgotten) and creating:
                # `kinfra impl` claims first and creates the worktree after a
                # fetch: its claim is not stale, and stopping it would pull
                # the slot from under a start that is about to happen. (Once
                # git lists the worktree, a missing directory was deleted.)
                report.findings.append(
                    Finding(
                        FindingKind.IMPL_IN_PROGRESS,
                        f"slot {slot.slot_id} was claimed for {claimant} at {slot.claim.at} "
                        "by a `kinfra impl` that has not finished creating it; left alone",
                        f"run `kinfra doctor` again in {IMPL_GRACE_SECONDS // 60} minutes",
                        slot.slot_id,
                    )
                )
            elif gone or forgotten:
                why = "no longer exists" if gone else "is not a git worktree any more"
                finding = Finding(
                    FindingKind.STALE_CLAIM,
                    f"slot {slot.slot_id} is claimed by {claimant}, which {why}",
                    "`kinfra doctor --fix` stops the slot and releases it",
                    slot.slot_id,
                )
                if fix:
                    finding.fixed = _stop_and_release(project, slot, store, finding)
                report.findings.append(finding)
            elif live is not None and not _running(live, compose_project):
                report.findings.append(
                    Finding(
                        FindingKind.CLAIMED_DOWN,
                        f"slot {slot.slot_id} is claimed by {claimant.name} but its "
                        f"containers are not running",
                        f"run `kinfra sandbox up` inside {claimant}",
                        slot.slot_id,
                    )
                )
        elif _running(live, compose_project):
            finding = Finding(
                FindingKind.RUNNING_UNCLAIMED,
                f"slot {slot.slot_id} ({compose_project}) is running with no claim",
                "`kinfra doctor --fix` stops it (volumes kept)",
                slot.slot_id,
            )
            if fix:
                finding.fixed = _stop(project, slot, store, finding)
            report.findings.append(finding)


IMPL_GRACE_SECONDS = 120


def _fresh_impl_claim(slot: SlotRecord, now: datetime | None = None) -> bool:
    """An impl claim younger than IMPL_GRACE_SECONDS: its `kinfra impl` may
    still be fetching. An unreadable time counts as old."""
    if slot.claim is None or slot.claim.kind is not ClaimKind.IMPL or not slot.claim.at:
        return False
    try:
        claimed = datetime.strptime(slot.claim.at, CLAIMED_AT_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return False
    age = ((now or datetime.now(UTC)) - claimed).total_seconds()
    return age < IMPL_GRACE_SECONDS


def _stop(project: Project, slot: SlotRecord, store: RegistryStore, finding: Finding) -> str:
    try:
        stop_slot(project, slot.slot_id, release_manual=False, store=store)
    except KinfraError as exc:
        finding.advice = f"stopping failed: {exc.message}"
        return "failed"
    return "fixed"


def _stop_and_release(
    project: Project, slot: SlotRecord, store: RegistryStore, finding: Finding
) -> str:
    # A slot whose stop failed stays claimed: releasing it would hand out
    # ports that running containers still hold.
    if _stop(project, slot, store, finding) != "fixed":
        return "failed"
    from kinfra.workflows.worktrees import release_slot

    if slot.claim is not None:
        release_slot(project, slot, slot.claim.path, store)
    return "fixed"


def _check_unknown(
    project: Project,
    record: ProjectRecord,
    store: RegistryStore,
    live: dict[str, str],
    report: DoctorReport,
) -> None:
    """Compose projects named like this project's slots that the registry lacks."""
    pattern = re.compile(rf"^{re.escape(project.config.prefix)}-slot-\d+$")
    ours = {project.slot(s).compose_project for s in record.slots}
    others = {
        compose_project_name(p.prefix, s.slot_id)
        for p, s in store.load().all_slots()
        if p.name != project.name
    }
    for name, status in sorted(live.items()):
        if pattern.match(name) and name not in ours and name not in others:
            report.findings.append(
                Finding(
                    FindingKind.UNKNOWN_STACK,
                    f"compose project {name} ({status}) belongs to no provisioned slot",
                    f"inspect it, then `docker compose -p {name} down` if it is not needed",
                )
            )


def _check_git(
    root: Path, entries: list[git.WorktreeEntry], report: DoctorReport, fix: bool
) -> None:
    stale = [e for e in entries if e.prunable and not e.is_main]
    for entry in stale:
        report.findings.append(
            Finding(
                FindingKind.STALE_GIT_ENTRY,
                f"git still lists worktree {entry.path}, whose directory is gone",
                "`kinfra doctor --fix` runs `git worktree prune`",
            )
        )
    if fix and stale:
        try:
            git.prune_worktrees(root)
        except KinfraError as exc:
            for finding in report.findings[-len(stale) :]:
                finding.fixed = "failed"
                finding.advice = exc.message
            return
        for finding in report.findings[-len(stale) :]:
            finding.fixed = "fixed"
