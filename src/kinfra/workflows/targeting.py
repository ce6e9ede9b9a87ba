"""Which slot a sandbox command acts on when no --slot is given.

Inside a worktree (at any depth) it is the slot the registry says that
worktree claims; the worktree's ``.env.sandbox`` is checked against it, and
rewritten when it disagrees, because tools inside the worktree read that file
to find their ports. The registry is the truth, the file a copy.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from kinfra.adapters import git
from kinfra.adapters.registry import ClaimKind, RegistryStore, SlotRecord
from kinfra.domain.config import Profile
from kinfra.domain.names import WorktreeKind, classify_branch
from kinfra.domain.slot import parse_env_file
from kinfra.errors import GateFailedError, GitError, KinfraError
from kinfra.paths import ENV_FILE
from kinfra.project import Project
from kinfra.workflows.pool import stop_slot
from kinfra.workflows.start import Progress, StartReport, start_slot


@dataclass(frozen=True)
class Target:
    slot_id: int
    worktree: Path | None  # the worktree whose claim decided it; None for --slot
    note: str | None = None  # something the user should know (a rewritten .env.sandbox)


def resolve_target(
    project: Project, explicit: int | None, store: RegistryStore | None = None
) -> Target:
    """An explicit --slot wins; otherwise the slot the current checkout claims."""
    if explicit is not None:
        return Target(explicit, None)
    here = (project.here or project.root).resolve()
    claimed = _claim_of(project, here, store or RegistryStore())
    if claimed is None:
        raise _no_slot_error(here)
    return Target(claimed.slot_id, here, _cross_check(project, claimed, here))


def _claim_of(project: Project, here: Path, store: RegistryStore) -> SlotRecord | None:
    record = store.load().project(project.name)
    return record.slot_claimed_by(here) if record else None


def _env_slot(here: Path) -> int | None:
    try:
        values = parse_env_file((here / ENV_FILE).read_text(encoding="utf-8"))
    except OSError:
        return None
    with contextlib.suppress(KeyError, ValueError):
        return int(values["SLOT_NUMBER"])
    return None


def _cross_check(project: Project, slot: SlotRecord, here: Path) -> str | None:
    if slot.claim is None or slot.claim.kind is not ClaimKind.IMPL:
        return None  # a manual claim writes no .env.sandbox into the checkout
    said = _env_slot(here)
    if said == slot.slot_id:
        return None
    from kinfra.workflows.worktrees import write_worktree_env

    write_worktree_env(project.config, project.slot(slot.slot_id), slot.instance_id, here)
    before = "was missing" if said is None else f"said slot {said}"
    return f"{ENV_FILE} {before}; rewritten for slot {slot.slot_id} (the registry's claim)"


def _no_slot_error(here: Path) -> KinfraError:
    if _env_slot(here) is not None:
        return KinfraError(
            f"this worktree's slot claim was released ({here.name} holds no slot)",
            hint="run `kinfra sandbox up` here to claim a slot and start it again",
        )
    return KinfraError(
        f"no --slot given and {here} holds no slot",
        hint="pass --slot N (see `kinfra sandbox slots`), or run inside an impl worktree",
    )


# --- sandbox up --------------------------------------------------------------------------


@dataclass(frozen=True)
class UpResult:
    report: StartReport
    reclaimed: bool  # an impl worktree without a claim got a slot again
    note: str | None


def sandbox_up(
    project: Project,
    explicit: int | None,
    code_dir: Path | None = None,
    progress: Progress | None = None,
    store: RegistryStore | None = None,
) -> UpResult:
    """`kinfra sandbox up`: start the targeted slot. In an impl worktree whose
    claim was released (a failed `impl`, the GAP-7 recovery path) a slot is
    claimed again for it first."""
    store = store or RegistryStore()
    here = (project.here or project.root).resolve()
    if explicit is not None or _claim_of(project, here, store) is not None:
        target = resolve_target(project, explicit, store)
        report = start_slot(project, target.slot_id, code_dir, progress, store)
        return UpResult(report, False, target.note)
    if code_dir is None and _is_impl_worktree(project, here):
        return UpResult(_reclaim_and_start(project, here, progress, store), True, None)
    raise _no_slot_error(here)


def _is_impl_worktree(project: Project, here: Path) -> bool:
    root = project.root.resolve()
    if here == root:
        return False
    try:
        entries = git.list_worktrees(root)
    except GitError:
        return False
    for entry in entries:
        if entry.path.resolve() == here and not entry.is_main:
            name = classify_branch(project.config.prefix, entry.branch)
            if name is not None:
                return name.kind is WorktreeKind.IMPL
            return here.name.startswith(f"{project.config.prefix}-impl-")
    return False


def _reclaim_and_start(
    project: Project, here: Path, progress: Progress | None, store: RegistryStore
) -> StartReport:
    from kinfra.workflows.worktrees import release_slot, write_worktree_env

    config = project.config
    with store.transaction() as registry:
        slot = registry.claim_free_slot(
            config.name, here, project.profiles(), Profile.LIGHT, kind=ClaimKind.IMPL
        )
    try:
        write_worktree_env(config, project.slot(slot.slot_id), slot.instance_id, here)
        return start_slot(project, slot.slot_id, here, progress, store)
    except GateFailedError:
        raise  # containers stay up for inspection; a running slot stays claimed
    except BaseException:
        with contextlib.suppress(KinfraError):
            stop_slot(project, slot.slot_id, release_manual=False, store=store)
            release_slot(project, slot, here, store)
        raise
