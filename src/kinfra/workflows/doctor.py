"""`kinfra doctor`: compare the registry, git's worktrees and Docker's stacks.

Three sources of truth drift apart when someone deletes a worktree by hand,
kills kinfra mid-way, or starts a stack outside it. The doctor reports each
invariant that does not hold and, with --fix, repairs the ones that have one
safe repair. It never releases a slot whose stack it could not stop, and
deletes a directory only to finish what an interrupted `done` or `impl` of
kinfra's left (see ``doctor_ops``).
"""

from __future__ import annotations

import re
from pathlib import Path

from kinfra.adapters import compose, git
from kinfra.adapters.registry import ClaimKind, ProjectRecord, RegistryStore, SlotRecord
from kinfra.domain.slot import compose_project_name
from kinfra.errors import ComposeError, DockerUnavailableError, KinfraError
from kinfra.project import Project
from kinfra.workflows.doctor_files import check_slot_files
from kinfra.workflows.doctor_ops import check_records, check_temp_files, check_tickets
from kinfra.workflows.findings import Checkup, DoctorReport, Finding, FindingKind, Fix
from kinfra.workflows.pool import stop_slot
from kinfra.workflows.worktrees import candidates, env_file_slot, owns_record


def doctor(project: Project, fix: bool = False, store: RegistryStore | None = None) -> DoctorReport:
    c = Checkup(project, store or RegistryStore(), fix)
    _look(c)
    # Interrupted runs first: finishing one changes claims and worktrees,
    # which the other checks then see as they are.
    check_records(c)
    if fix and c.report.findings:
        _look(c)
    record = c.store.load().project(project.name)
    c.live = _live(c.report)
    if record is None:
        c.report.notes.append("no slots provisioned for this project on this machine")
    elif c.record is None:
        _note_foreign_claims(record, c.report)
    else:
        _check_slots(c, c.record)
        check_slot_files(c, c.record)
        if c.live is not None:
            _check_unknown(c, c.record)
    _check_git(c)
    check_temp_files(c)
    check_tickets(c)
    return c.report


def _look(c: Checkup) -> None:
    """What the registry and git say now."""
    record = c.store.load().project(c.project.name)
    c.record = record if owns_record(c.project, record) else None
    c.entries = git.list_worktrees(c.project.root.resolve())


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


def _check_slots(c: Checkup, record: ProjectRecord) -> None:
    known = {e.path.resolve() for e in c.entries if not e.prunable}
    extra = _check_double_claims(c, record)
    for slot in sorted(record.slots.values(), key=lambda s: s.slot_id):
        compose_project = c.project.slot(slot.slot_id).compose_project
        if slot.claim is not None and slot.claim.path in c.open_runs:
            continue  # its run is reported (running, or interrupted) by check_records
        if slot.slot_id in extra:
            continue  # reported (and given back) as a double claim
        if slot.claim is not None:
            claimant = slot.claim.path
            gone = not claimant.is_dir()
            forgotten = slot.claim.kind is ClaimKind.IMPL and claimant not in known
            if gone or forgotten:
                # A claim for a worktree `kinfra impl` is still creating is an
                # open run (its record says so): not reaching here.
                why = "no longer exists" if gone else "is not a git worktree any more"
                finding = c.add(
                    Finding(
                        FindingKind.STALE_CLAIM,
                        f"slot {slot.slot_id} is claimed by {claimant}, which {why}",
                        "`kinfra doctor --fix` stops the slot and releases it",
                        slot.slot_id,
                    )
                )
                if c.fix:
                    finding.fixed = _stop_and_release(c, slot, finding)
            elif c.live is not None and not c.running(compose_project):
                c.add(
                    Finding(
                        FindingKind.CLAIMED_DOWN,
                        f"slot {slot.slot_id} is claimed by {claimant.name} but its "
                        f"containers are not running",
                        f"run `kinfra sandbox up` inside {claimant}",
                        slot.slot_id,
                    )
                )
        elif c.running(compose_project):
            finding = c.add(
                Finding(
                    FindingKind.RUNNING_UNCLAIMED,
                    f"slot {slot.slot_id} ({compose_project}) is running with no claim",
                    "`kinfra doctor --fix` stops it (volumes kept)",
                    slot.slot_id,
                )
            )
            if c.fix:
                finding.fixed = _stop(c, slot, finding)


def _check_double_claims(c: Checkup, record: ProjectRecord) -> set[int]:
    """A checkout holds one slot: `done` and detection find a worktree's slot
    by its path. Each extra claim is reported; --fix keeps the slot whose
    stack runs (else the one the checkout's .env.sandbox names, else the
    lowest) and stops and releases the others. Returns the extra slots."""
    by_path: dict[Path, list[SlotRecord]] = {}
    for slot in sorted(record.slots.values(), key=lambda s: s.slot_id):
        if slot.claim is not None and slot.claim.path not in c.open_runs:
            by_path.setdefault(slot.claim.path, []).append(slot)
    extra: set[int] = set()
    for path, slots in by_path.items():
        if len(slots) < 2:
            continue
        keep = _slot_to_keep(c, path, slots)
        others = [s for s in slots if s.slot_id != keep.slot_id]
        extra.update(s.slot_id for s in others)
        finding = c.add(
            Finding(
                FindingKind.DOUBLE_CLAIM,
                f"{path} holds {len(slots)} slots ({', '.join(str(s.slot_id) for s in slots)}); "
                f"a checkout holds one, so slot {keep.slot_id} is its slot",
                f"`kinfra doctor --fix` stops and releases slot(s) "
                f"{', '.join(str(s.slot_id) for s in others)} (volumes kept)",
                others[0].slot_id,
            )
        )
        if c.fix:
            outcomes = [_stop_and_release(c, s, finding) for s in others]
            finding.fixed = Fix.FIXED if all(o is Fix.FIXED for o in outcomes) else Fix.FAILED
    return extra


def _slot_to_keep(c: Checkup, path: Path, slots: list[SlotRecord]) -> SlotRecord:
    for slot in slots:
        if c.running(c.project.slot(slot.slot_id).compose_project):
            return slot
    named = env_file_slot(path)
    return next((s for s in slots if s.slot_id == named), slots[0])


def _stop(c: Checkup, slot: SlotRecord, finding: Finding) -> Fix:
    try:
        stop_slot(c.project, slot.slot_id, release_manual=False, store=c.store)
    except KinfraError as exc:
        finding.advice = f"stopping failed: {exc.message}"
        return Fix.FAILED
    return Fix.FIXED


def _stop_and_release(c: Checkup, slot: SlotRecord, finding: Finding) -> Fix:
    # A slot whose stop failed stays claimed: releasing it would hand out
    # ports that running containers still hold.
    if _stop(c, slot, finding) is not Fix.FIXED:
        return Fix.FAILED
    from kinfra.workflows.worktrees import release_slot

    if slot.claim is not None:
        release_slot(c.project, slot, slot.claim.path, c.store)
    return Fix.FIXED


def _check_unknown(c: Checkup, record: ProjectRecord) -> None:
    """Compose projects named like this project's slots that the registry lacks."""
    assert c.live is not None
    pattern = re.compile(rf"^{re.escape(c.project.config.prefix)}-slot-\d+$")
    ours = {c.project.slot(s).compose_project for s in record.slots}
    others = {
        compose_project_name(p.prefix, s.slot_id)
        for p, s in c.store.load().all_slots()
        if p.name != c.project.name
    }
    for name, status in sorted(c.live.items()):
        if pattern.match(name) and name not in ours and name not in others:
            c.add(
                Finding(
                    FindingKind.UNKNOWN_STACK,
                    f"compose project {name} ({status}) belongs to no provisioned slot",
                    f"inspect it, then `docker compose -p {name} down` if it is not needed",
                )
            )


def _check_git(c: Checkup) -> None:
    """git's entries for worktrees whose directory is gone. Only kinfra's own
    are repaired, one by one: `git worktree prune` would also drop the entry
    of a user's worktree on an unmounted disk."""
    root = c.project.root.resolve()
    ours = {cand.path for cand in candidates(c.project, c.record, c.entries)}
    for entry in c.entries:
        if not entry.prunable or entry.is_main or entry.path.resolve() in c.open_runs:
            continue
        if entry.path.resolve() not in ours:
            c.report.notes.append(
                f"git lists {entry.path}, whose directory is gone; kinfra did not make it, "
                "so it is left alone (`git worktree prune` forgets it)"
            )
            continue
        finding = c.add(
            Finding(
                FindingKind.STALE_GIT_ENTRY,
                f"git still lists worktree {entry.path}, whose directory is gone",
                "`kinfra doctor --fix` makes git forget it",
            )
        )
        if c.fix:
            try:
                git.remove_worktree(root, entry.path, force=True)
                finding.fixed = Fix.FIXED
            except KinfraError as exc:
                finding.fixed = Fix.FAILED
                finding.advice = exc.message
