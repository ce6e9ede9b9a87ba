"""`kinfra doctor`: compare the registry, git's worktrees and Docker's stacks.

Three sources of truth drift apart when someone deletes a worktree by hand,
kills kinfra mid-way, or starts a stack outside it. The doctor reports each
mismatch and, with --fix, repairs the ones that have one safe repair. It never
deletes a directory and never releases a slot whose stack it could not stop.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

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
from kinfra.workflows.doctor_files import check_slot_files
from kinfra.workflows.doctor_ops import check_records, check_temp_files, check_tickets
from kinfra.workflows.findings import DoctorReport, Finding, FindingKind, Fix
from kinfra.workflows.pool import stop_slot
from kinfra.workflows.worktrees import candidates, env_file_slot, owns_record


def doctor(project: Project, fix: bool = False, store: RegistryStore | None = None) -> DoctorReport:
    store = store or RegistryStore()
    report = DoctorReport()
    root = project.root.resolve()
    record = store.load().project(project.name)
    owned = record if owns_record(project, record) else None
    entries = git.list_worktrees(root)
    # Interrupted runs first: finishing one changes claims and worktrees,
    # which the other checks then see as they are.
    open_runs = check_records(project, owned, entries, report, fix, store)
    if fix and report.findings:
        record = store.load().project(project.name)
        owned = record if owns_record(project, record) else None
        entries = git.list_worktrees(root)
    live = _live(report)
    if record is None:
        report.notes.append("no slots provisioned for this project on this machine")
    elif owned is None:
        _note_foreign_claims(record, report)
    else:
        _check_slots(project, owned, entries, live, report, fix, store, open_runs)
        check_slot_files(project, owned, live, report, fix, store, open_runs)
        if live is not None:
            _check_unknown(project, owned, store, live, report)
    _check_git(project, owned, entries, report, fix, open_runs)
    worktrees = [c.path for c in candidates(project, owned, entries) if c.exists]
    check_temp_files(project, worktrees, report, fix)
    check_tickets(report, fix, store)
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
    open_runs: set[Path],
) -> None:
    known = {e.path.resolve() for e in entries if not e.prunable}
    listed = {e.path.resolve() for e in entries}  # prunable too: git made them once
    extra = _check_double_claims(project, record, live, report, fix, store, open_runs)
    for slot in sorted(record.slots.values(), key=lambda s: s.slot_id):
        compose_project = project.slot(slot.slot_id).compose_project
        if slot.claim is not None and slot.claim.path in open_runs:
            continue  # its run is reported (running, or interrupted) above
        if slot.slot_id in extra:
            continue  # reported (and given back) as a double claim
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


def _check_double_claims(
    project: Project,
    record: ProjectRecord,
    live: dict[str, str] | None,
    report: DoctorReport,
    fix: bool,
    store: RegistryStore,
    open_runs: set[Path],
) -> set[int]:
    """A checkout holds one slot: `done` and detection find a worktree's slot
    by its path. Each extra claim is reported; --fix keeps the slot whose
    stack runs (else the one the checkout's .env.sandbox names, else the
    lowest) and stops and releases the others. Returns the extra slots."""
    by_path: dict[Path, list[SlotRecord]] = {}
    for slot in sorted(record.slots.values(), key=lambda s: s.slot_id):
        if slot.claim is not None and slot.claim.path not in open_runs:
            by_path.setdefault(slot.claim.path, []).append(slot)
    extra: set[int] = set()
    for path, slots in by_path.items():
        if len(slots) < 2:
            continue
        keep = _slot_to_keep(project, path, slots, live)
        others = [s for s in slots if s.slot_id != keep.slot_id]
        extra.update(s.slot_id for s in others)
        finding = Finding(
            FindingKind.DOUBLE_CLAIM,
            f"{path} holds {len(slots)} slots ({', '.join(str(s.slot_id) for s in slots)}); "
            f"a checkout holds one, so slot {keep.slot_id} is its slot",
            f"`kinfra doctor --fix` stops and releases slot(s) "
            f"{', '.join(str(s.slot_id) for s in others)} (volumes kept)",
            others[0].slot_id,
        )
        if fix:
            outcomes = [_stop_and_release(project, s, store, finding) for s in others]
            finding.fixed = Fix.FIXED if all(o is Fix.FIXED for o in outcomes) else Fix.FAILED
        report.findings.append(finding)
    return extra


def _slot_to_keep(
    project: Project, path: Path, slots: list[SlotRecord], live: dict[str, str] | None
) -> SlotRecord:
    for slot in slots:
        if _running(live, project.slot(slot.slot_id).compose_project):
            return slot
    named = env_file_slot(path)
    return next((s for s in slots if s.slot_id == named), slots[0])


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


def _stop(project: Project, slot: SlotRecord, store: RegistryStore, finding: Finding) -> Fix:
    try:
        stop_slot(project, slot.slot_id, release_manual=False, store=store)
    except KinfraError as exc:
        finding.advice = f"stopping failed: {exc.message}"
        return Fix.FAILED
    return Fix.FIXED


def _stop_and_release(
    project: Project, slot: SlotRecord, store: RegistryStore, finding: Finding
) -> Fix:
    # A slot whose stop failed stays claimed: releasing it would hand out
    # ports that running containers still hold.
    if _stop(project, slot, store, finding) is not Fix.FIXED:
        return Fix.FAILED
    from kinfra.workflows.worktrees import release_slot

    if slot.claim is not None:
        release_slot(project, slot, slot.claim.path, store)
    return Fix.FIXED


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
    project: Project,
    record: ProjectRecord | None,
    entries: list[git.WorktreeEntry],
    report: DoctorReport,
    fix: bool,
    open_runs: set[Path],
) -> None:
    """git's entries for worktrees whose directory is gone. Only kinfra's own
    are repaired, one by one: `git worktree prune` would also drop the entry
    of a user's worktree on an unmounted disk."""
    root = project.root.resolve()
    ours = {c.path for c in candidates(project, record, entries)}
    for entry in entries:
        if not entry.prunable or entry.is_main or entry.path.resolve() in open_runs:
            continue
        if entry.path.resolve() not in ours:
            report.notes.append(
                f"git lists {entry.path}, whose directory is gone; kinfra did not make it, "
                "so it is left alone (`git worktree prune` forgets it)"
            )
            continue
        finding = Finding(
            FindingKind.STALE_GIT_ENTRY,
            f"git still lists worktree {entry.path}, whose directory is gone",
            "`kinfra doctor --fix` makes git forget it",
        )
        if fix:
            try:
                git.remove_worktree(root, entry.path, force=True)
                finding.fixed = Fix.FIXED
            except KinfraError as exc:
                finding.fixed = Fix.FAILED
                finding.advice = exc.message
        report.findings.append(finding)
