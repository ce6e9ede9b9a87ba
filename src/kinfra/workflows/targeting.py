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
from typing import TYPE_CHECKING

from kinfra.adapters import git
from kinfra.adapters.registry import ClaimKind, RegistryStore, SlotRecord
from kinfra.domain.config import OnClaim, Profile
from kinfra.domain.names import WorktreeKind, classify_branch
from kinfra.errors import AmbiguousNameError, GateFailedError, GitError, KinfraError
from kinfra.paths import ENV_FILE
from kinfra.project import Project
from kinfra.workflows.pool import stop_slot
from kinfra.workflows.preflight import preflight, preflight_claim
from kinfra.workflows.start import Progress, StartReport, start_code_dir, start_slot
from kinfra.workflows.worktrees import env_file_slot

if TYPE_CHECKING:
    from kinfra.workflows.budget import Admission


@dataclass(frozen=True)
class Target:
    """The slot a sandbox command acts on, and the worktree whose claim chose it."""

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
    """The slot ``here`` claims. A checkout holds one; holding more (a
    registry edited by hand, a crash in an older kinfra) is refused rather
    than one of them picked."""
    record = store.load().project(project.name)
    if record is None:
        return None
    held = sorted((s for s in record.slots.values() if s.claimant == here), key=lambda s: s.slot_id)
    if len(held) > 1:
        numbers = ", ".join(str(s.slot_id) for s in held)
        raise AmbiguousNameError(
            f"{here.name} holds slots {numbers}; a checkout holds one, so which is meant is "
            "not clear",
            hint="pass --slot N, or run `kinfra doctor --fix` (it gives the extra claims "
            "back); nothing was done",
        )
    return held[0] if held else None


def _cross_check(project: Project, slot: SlotRecord, here: Path) -> str | None:
    if slot.claim is None or slot.claim.kind is not ClaimKind.IMPL:
        return None  # a manual claim writes no .env.sandbox into the checkout
    said = env_file_slot(here)
    if said == slot.slot_id:
        return None
    from kinfra.workflows.worktrees import write_worktree_env

    write_worktree_env(project.config, project.slot(slot.slot_id), slot.instance_id, here)
    before = "was missing or unreadable" if said is None else f"said slot {said}"
    return f"{ENV_FILE} {before}; rewritten for slot {slot.slot_id} (the registry's claim)"


def _no_slot_error(here: Path) -> KinfraError:
    if env_file_slot(here) is not None:
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
    """What `kinfra sandbox up` started, and whether a worktree got a slot again."""

    report: StartReport
    reclaimed: bool  # an impl worktree without a claim got a slot again
    note: str | None


def sandbox_up(
    project: Project,
    explicit: int | None,
    code_dir: Path | None = None,
    progress: Progress | None = None,
    store: RegistryStore | None = None,
    wait: bool = False,
) -> UpResult:
    """`kinfra sandbox up`: start the targeted slot. In an impl worktree whose
    claim was released (a failed `impl`, the GAP-7 recovery path) a slot is
    claimed again for it first. A slot that is not running yet needs its
    memory admitted first (``wait``: queue for it)."""
    store = store or RegistryStore()
    progress = progress or Progress()
    here = (project.here or project.root).resolve()
    if explicit is not None or _claim_of(project, here, store) is not None:
        target = resolve_target(project, explicit, store)
        record = store.load().require_project(project.name).slot(target.slot_id)
        secret_values = preflight(
            project, target.slot_id, record.instance_id, start_code_dir(project, record, code_dir)
        )
        with _admission(project, target.slot_id, wait, progress, store):
            report = start_slot(
                project, target.slot_id, code_dir, progress, store, secret_values=secret_values
            )
        return UpResult(report, False, target.note)
    if code_dir is None and _is_impl_worktree(project, here):
        # The slot a claim would get, checked before it is claimed.
        def pick() -> SlotRecord:
            return store.load().claim_free_slot(project.name, here, project.profiles())

        _, secret_values = preflight_claim(project, here, pick, store)
        with _admission(project, None, wait, progress, store):
            report = _reclaim_and_start(project, here, progress, store, secret_values)
        return UpResult(report, True, None)
    raise _no_slot_error(here)


def _admission(
    project: Project, slot_id: int | None, wait: bool, progress: Progress, store: RegistryStore
) -> Admission:
    """The budget's pre-check for a start; a slot already running needs nothing more."""
    from kinfra.workflows.budget import Admission, admit, live_projects, slot_memory

    if slot_id is None:  # a claim to come, of the lowest free profile: light first
        memory, label = (
            project.config.profiles[Profile.LIGHT].memory_mb,
            f"a slot for {project.here}",
        )
    else:
        compose_project = project.slot(slot_id).compose_project
        if (live_projects() or {}).get(compose_project, "").startswith("running"):
            return Admission(store, None)
        memory, label = slot_memory(project.config, slot_id), f"slot {slot_id}"
    return admit(project, memory, label, wait=wait, say=progress.step, store=store)


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
    project: Project,
    here: Path,
    progress: Progress | None,
    store: RegistryStore,
    secret_values: dict[str, str],
) -> StartReport:
    from kinfra.workflows.worktrees import release_slot, write_worktree_env

    config = project.config
    with store.transaction() as registry:
        slot = registry.claim_free_slot(
            config.name, here, project.profiles(), Profile.LIGHT, kind=ClaimKind.IMPL
        )
    try:
        write_worktree_env(config, project.slot(slot.slot_id), slot.instance_id, here)
        reset = config.sandbox.on_claim is OnClaim.RESET  # a new claim, as in `impl`
        return start_slot(project, slot.slot_id, here, progress, store, reset, secret_values)
    except GateFailedError:
        raise  # containers stay up for inspection; a running slot stays claimed
    except BaseException:
        with contextlib.suppress(KinfraError):
            stop_slot(project, slot.slot_id, release_manual=False, store=store)
            release_slot(project, slot, here, store)
        raise
