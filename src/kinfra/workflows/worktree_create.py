"""Creating spec and impl worktrees (`kinfra spec`, `kinfra impl`).

The order of `impl` is what makes it safe in parallel: the slot is claimed in
one registry transaction (check and set under the lock) before anything
exists on disk, the worktree is created next, and every failure after the
claim gives the slot back.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from kinfra import trace
from kinfra.adapters import git, pending
from kinfra.adapters.pending import OpKind
from kinfra.adapters.registry import ClaimKind, ProjectRecord, RegistryStore, SlotRecord
from kinfra.adapters.runner import CommandNotFoundError, stream
from kinfra.domain.config import Config, OnClaim, Profile
from kinfra.domain.names import WorktreeName, impl_name, parse_impl_target, spec_name, validate_part
from kinfra.domain.slot import Slot
from kinfra.errors import (
    DockerUnavailableError,
    GitError,
    InvalidOperationError,
    KinfraError,
    MilestoneNotFoundError,
    SandboxStartError,
    WorktreeExistsError,
)
from kinfra.interrupts import deferred_interrupts
from kinfra.paths import ENV_FILE, ENV_TEMP_PATTERN
from kinfra.project import Project
from kinfra.workflows.recovery import (
    clear_git_locks,
    partial_state,
    refuse_if_not_kinfras,
    remove_partial,
)
from kinfra.workflows.worktrees import owns_record, release_slot, write_worktree_env

if TYPE_CHECKING:
    from kinfra.workflows.start import Progress


Say = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


# --- spec ------------------------------------------------------------------------


@dataclass(frozen=True)
class SpecResult:
    """What `kinfra spec` made: the worktree, its branch, the design dir."""

    path: Path
    branch: str
    branch_created: bool
    base: str
    design_dir: Path


def spec(project: Project, feature: str) -> SpecResult:
    """``../<prefix>-spec-<feature>`` on ``spec/<feature>``, with its design folder."""
    validate_part("feature", feature)
    root = project.root.resolve()
    name = spec_name(project.config.prefix, feature)
    path = root.parent / name.directory
    _refuse_existing(root, path, name)
    created, base = _add_worktree(root, path, name, _base_ref(root))
    design_dir = path / project.config.designs_dir / feature
    design_dir.mkdir(parents=True, exist_ok=True)
    return SpecResult(path, name.branch, created, base or "HEAD", design_dir)


# --- impl ------------------------------------------------------------------------


@dataclass(frozen=True)
class SetupOutcome:
    """How the [worktree] setup command ended."""

    command: str
    returncode: int


@dataclass
class ImplResult:
    """What `kinfra impl` did: the worktree, its branch and slot, copied files, setup, session."""

    path: Path
    branch: str
    branch_created: bool
    base: str
    milestone_file: Path
    slot: Slot | None = None
    urls: dict[str, str] = field(default_factory=dict)
    copied: list[str] = field(default_factory=list)
    setup: SetupOutcome | None = None
    notes: list[str] = field(default_factory=list)
    session: bool = False  # an agent session was opened (--session)


def find_milestone(config: Config, root: Path, feature: str, milestone: str) -> Path:
    """``<designs_dir>/<feature>/implementation/<milestone>_*.md``, case-insensitively."""
    relative = Path(config.designs_dir) / feature / "implementation"
    directory = root / relative
    wanted = milestone.lower()
    matches: list[Path] = []
    with contextlib.suppress(OSError):
        matches = sorted(
            p
            for p in directory.iterdir()
            if p.is_file()
            and p.suffix.lower() == ".md"
            and (p.stem.lower() == wanted or p.stem.lower().startswith(wanted + "_"))
        )
    if not matches:
        raise MilestoneNotFoundError(
            f"No milestone matching '{milestone}' found in {relative.as_posix()}/",
            hint=f"add {relative.as_posix()}/{milestone}_<title>.md (write it in `kinfra spec {feature}`)",
        )
    return matches[0]


def impl(
    project: Project,
    target: str,
    profile: Profile = Profile.LIGHT,
    sandbox: bool = True,
    progress: Progress | None = None,
    output: Say = _quiet,
    store: RegistryStore | None = None,
    session: bool = False,
    wait: bool = False,
    fresh: bool = False,
) -> ImplResult:
    """Create an impl worktree, claim a slot for it and start the slot's stack;
    with ``session``, then open the agent's tmux session in it. The slot's
    memory is admitted first (``wait``: queue for it), before anything exists.
    With ``fresh`` (or ``[sandbox] on_claim = "reset"``) the slot's volumes
    are reset to the project's golden data before its stack starts.

    An `impl` of the same target that was interrupted (its record says so)
    is resumed: a worktree git never finished is removed and made again, a
    finished one is kept, its claim is taken over.
    """
    from kinfra.workflows.budget import Admission, admit, slot_memory
    from kinfra.workflows.preflight import preflight_claim
    from kinfra.workflows.start import Progress, prevalidate, start_slot

    feature, milestone = parse_impl_target(target)
    config = project.config
    root = project.root.resolve()
    milestone_file = find_milestone(config, root, feature, milestone)
    name = impl_name(config.prefix, feature, milestone)
    path = root.parent / name.directory
    store = store or RegistryStore()
    progress = progress or Progress()
    previous = pending.load(config.name, path)
    if previous is not None:
        pending.refuse_unless(previous, takes_over=(OpKind.IMPL,))
    entry = _entry(root, path)
    partial = partial_state(path, entry, previous)
    if partial is not None and previous is not None:
        refuse_if_not_kinfras(root, path, partial, previous)

    def pick() -> SlotRecord:
        return _check_slot_available(store, project, profile, name, path, previous is not None)

    would_claim = pick() if sandbox else None
    if previous is None:
        _refuse_existing(root, path, name)
    secret_values = None
    if would_claim is not None:
        would_claim, secret_values = preflight_claim(project, path, pick, store)
    trace.step("impl:checked")
    admission = Admission(store, None)
    if would_claim is not None:
        memory = slot_memory(config, would_claim.slot_id)
        label = f"impl {feature}/{milestone}"
        admission = admit(project, memory, label, wait=wait, say=progress.step, store=store)

    # `docker compose config` of the slot's files needs only the worktree's
    # path, so it runs in the background while git fetches and creates the worktree; the
    # start then finds them validated. Every path waits for it before the
    # slot is started or released.
    #
    # Every cleanup below runs with interrupts deferred: a second Ctrl-C (or
    # a SIGTERM) while it waits for that thread or stops the stack would
    # otherwise cut it short and leave a claim without its worktree.
    from concurrent.futures import ThreadPoolExecutor

    slot: SlotRecord | None = None
    background = ThreadPoolExecutor(max_workers=1)
    try:
        try:
            # Deferred: an interrupt between the registry write and the
            # assignment would leave a claim nobody gives back.
            with deferred_interrupts():
                slot = _record_and_claim(store, project, path, name, target, profile, sandbox)
            trace.step("impl:claimed")
            if previous is not None:
                clear_git_locks(root, previous)
                progress.step(
                    f"resuming `{previous.command}`, interrupted at {previous.started_at} "
                    f"(pid {previous.pid})"
                )
            if partial is not None:
                remove_partial(root, path, entry)
                entry = None
                trace.step("impl:unfinished-removed")
            if slot is not None:
                background.submit(
                    prevalidate, config, project.slot(slot.slot_id), slot.instance_id, path
                )
            if entry is not None and previous is not None:
                created, base = False, None  # finished by git before the interruption
            else:
                # _base_ref fetches: overlaps the validation too.
                created, base = _add_worktree(root, path, name, _base_ref(root))
            trace.step("impl:worktree-added")
        except BaseException:
            with deferred_interrupts():
                background.shutdown(wait=True)
                if slot is not None:
                    with store.transaction() as registry:
                        registry.release(config.name, slot.slot_id, claimant=path)
                pending.finish(config.name, path, restore=previous)
            raise
        result = ImplResult(path, name.branch, created, base or "HEAD", milestone_file)
        try:
            git.ensure_excluded(root, ENV_FILE, ENV_TEMP_PATTERN)
            result.copied, copy_notes = copy_ignored_files(config, root, path)
            result.notes += copy_notes
            trace.step("impl:files-copied")
            result.setup = run_setup(config, path, output)
            trace.step("impl:setup-done")
            background.shutdown(wait=True)
            if slot is None:
                pending.finish(config.name, path)
                _open_session(config, path, session, result)
                return result
            write_worktree_env(config, project.slot(slot.slot_id), slot.instance_id, path)
            reset = fresh or config.sandbox.on_claim is OnClaim.RESET
            report = start_slot(project, slot.slot_id, path, progress, store, reset, secret_values)
            trace.step("impl:started")
        except BaseException as exc:
            if slot is None:
                with deferred_interrupts():
                    background.shutdown(wait=True)
                    pending.finish(config.name, path, restore=previous)
                raise
            with deferred_interrupts():
                background.shutdown(wait=True)
                # Docker unreachable: this start never reached it, so nothing
                # runs to stop, and the claim goes back without asking it.
                reached = not isinstance(exc, DockerUnavailableError)
                released = _undo_claim(project, slot, path, store, stop=reached)
                pending.finish(config.name, path, restore=previous)
            if isinstance(exc, KinfraError):
                raise _start_error(exc, name, slot, released) from exc
            # Interrupted: the CLI only says "interrupted"; say what is left.
            progress.step(_interrupted_note(name, slot, released))
            raise
    finally:
        background.shutdown(wait=True)
        admission.release()  # the stack runs (Docker counts it) or never will
    pending.finish(config.name, path)
    result.slot = report.slot
    result.urls = report.urls
    _open_session(config, path, session, result)
    return result


def _entry(root: Path, path: Path) -> git.WorktreeEntry | None:
    for entry in git.list_worktrees(root):
        if entry.path.resolve() == path:
            return entry
    return None


def _record_and_claim(
    store: RegistryStore,
    project: Project,
    path: Path,
    name: WorktreeName,
    target: str,
    profile: Profile,
    sandbox: bool,
) -> SlotRecord | None:
    """One registry transaction: the record of this run, then the claim.

    Nothing is written if either is refused; a claim held by an interrupted
    `impl` of this worktree is taken over.
    """
    with store.transaction() as registry:
        record = registry.require_project(project.name) if sandbox else None
        if record is not None:
            _refuse_foreign_pool(project, record)
        previous = pending.begin(
            project.name, OpKind.IMPL, path, name.branch, name.short, target, (OpKind.IMPL,)
        )
        try:
            if record is None:
                return None
            # claim_free_slot returns an existing claim for the same path; for
            # a second concurrent `impl` of the same name that would share (and
            # later release) the first one's slot.
            held = record.slot_claimed_by(path)
            if held is not None and previous is None:
                raise _claimed_error(name, held, path)
            return registry.claim_free_slot(
                project.name, path, project.profiles(), profile, kind=ClaimKind.IMPL
            )
        except BaseException:
            pending.finish(project.name, path, restore=previous)
            raise


def _open_session(config: Config, path: Path, wanted: bool, result: ImplResult) -> None:
    # A missing tmux/agent-deck is a note, never a failed impl.
    if wanted:
        from kinfra.workflows.sessions import open_session

        note = open_session(path, config.session.command)
        result.session = note is None
        if note:
            result.notes.append(note)


def _check_slot_available(
    store: RegistryStore,
    project: Project,
    profile: Profile,
    name: WorktreeName,
    path: Path,
    resuming: bool,
) -> SlotRecord:
    """Fail fast, before any fetch: a claim on a read-only snapshot raises the
    same errors the real claim would, and writes nothing. Returns the slot
    the real claim would most likely get."""
    registry = store.load()
    record = registry.project(project.name)
    _refuse_foreign_pool(project, record)
    held = record.slot_claimed_by(path) if record is not None else None
    if held is not None and not resuming:
        # The claim and its run's record are written together: a claim that
        # appeared since this run looked for a record may be a live run's.
        running = pending.load(project.name, path)
        if running is not None:
            pending.refuse_unless(running, takes_over=(OpKind.IMPL,))
        raise _claimed_error(name, held, path)
    return registry.claim_free_slot(project.name, path, project.profiles(), profile)


def _claimed_error(name: WorktreeName, held: SlotRecord, path: Path) -> WorktreeExistsError:
    if path.exists():
        return WorktreeExistsError(
            f"Worktree {name.directory} already exists",
            hint=f"work in {path}, or finish it with `kinfra done {name.short}`",
        )
    # No directory, but a claim: another `kinfra impl` of this name is still
    # fetching, or one was killed (or the worktree deleted) and nobody
    # released the slot.
    return WorktreeExistsError(
        f"Worktree {name.directory} does not exist, but slot {held.slot_id} is still "
        f"claimed for it (since {held.claim.at if held.claim else '?'})",
        hint="if another `kinfra impl` of it is running, let it finish; otherwise "
        f"`kinfra done {name.short}` (or `kinfra doctor --fix`) releases the slot",
    )


def _refuse_foreign_pool(project: Project, record: ProjectRecord | None) -> None:
    if record is not None and record.slots and not owns_record(project, record):
        raise InvalidOperationError(
            f"the slots of {project.name} belong to the checkout at {record.root}, not to "
            f"{project.root}",
            hint="run `kinfra impl` there, use --no-sandbox here, or give this checkout its "
            "own [project] name and prefix and `kinfra sandbox provision`",
        )


def _refuse_existing(root: Path, path: Path, name: WorktreeName) -> None:
    known = {e.path.resolve() for e in git.list_worktrees(root)}
    if path.exists():
        raise WorktreeExistsError(
            f"Worktree {name.directory} already exists",
            hint=f"work in {path}, or finish it with `kinfra done {name.short}`",
        )
    if path in known:
        raise WorktreeExistsError(
            f"Worktree {name.directory} was deleted, but git still lists it",
            hint=f"`kinfra done {name.short}` forgets it (and releases its slot), then retry",
        )


def _base_ref(root: Path) -> str | None:
    """The remote default branch after a fetch; None (local HEAD) without a remote."""
    names = git.remotes(root)
    if not names:
        return None
    git.fetch(root, "origin" if "origin" in names else names[0])
    return git.remote_default_ref(root)


def _add_worktree(
    root: Path, path: Path, name: WorktreeName, base: str | None
) -> tuple[bool, str | None]:
    """(branch created, what it was created from: ``base`` or the remote branch)."""
    try:
        created, start = git.add_worktree(root, path, name.branch, base)
    except GitError as exc:
        # Another command created it between our check and git's.
        if path.exists() or "already exists" in exc.message or "already checked out" in exc.message:
            raise WorktreeExistsError(
                f"Worktree {name.directory} already exists",
                hint=f"git said: {exc.message}",
            ) from exc
        raise
    return created, start or base


def copy_ignored_files(config: Config, root: Path, path: Path) -> tuple[list[str], list[str]]:
    """Copy ``[worktree] copy`` files from the main checkout; never overwrite."""
    copied: list[str] = []
    notes: list[str] = []
    for item in config.worktree.copy:
        source, dest = root / item, path / item
        if not source.exists():
            notes.append(f"{item}: not in the main checkout, not copied")
        elif dest.exists():
            notes.append(f"{item}: already in the worktree, left as it is")
        elif not git.is_ignored(root, item):
            notes.append(f"{item}: not git-ignored (it comes with the branch), not copied")
        else:
            try:
                dest.parent.mkdir(parents=True, exist_ok=True)
                if source.is_dir():
                    shutil.copytree(source, dest, symlinks=True)
                else:
                    shutil.copy2(source, dest)
            except OSError as exc:
                notes.append(f"{item}: could not be copied ({exc.strerror})")
                continue
            copied.append(item)
    return copied, notes


def run_setup(config: Config, path: Path, output: Say) -> SetupOutcome | None:
    command = config.worktree.setup
    if not command:
        return None
    try:
        result = stream(["sh", "-c", command], on_line=output, cwd=path, check=False)
    except CommandNotFoundError:
        return SetupOutcome(command, 127)
    return SetupOutcome(command, result.returncode)


def _undo_claim(
    project: Project, slot: SlotRecord, path: Path, store: RegistryStore, stop: bool = True
) -> bool:
    """Stop what was started and release the slot; False when the stop failed
    (a slot whose teardown failed stays claimed)."""
    from kinfra.workflows.pool import stop_slot

    try:
        if stop:
            stop_slot(project, slot.slot_id, release_manual=False, store=store)
    except KinfraError:
        return False
    release_slot(project, slot, path, store)
    return True


def _start_error(
    exc: KinfraError, name: WorktreeName, slot: SlotRecord, released: bool
) -> SandboxStartError:
    detail = exc.message.removeprefix("Failed to start sandbox: ").rstrip(".")
    where = f"../{name.directory}"
    if released:
        return SandboxStartError(
            f"Failed to start sandbox: {detail}. Slot released. Worktree kept at {where}. "
            "Fix issue and run `kinfra sandbox up`.",
            hint=f"run it inside {where}; `kinfra done {name.short}` gives the worktree up instead",
        )
    return SandboxStartError(
        f"Failed to start sandbox: {detail}. Stopping it failed too, so slot "
        f"{slot.slot_id} stays claimed. Worktree kept at {where}.",
        hint=f"once Docker answers again, run `kinfra sandbox up` inside {where}, "
        f"or `kinfra done {name.short}` to stop the slot and give the worktree up",
    )


def _interrupted_note(name: WorktreeName, slot: SlotRecord, released: bool) -> str:
    where = f"../{name.directory}"
    if released:
        return (
            f"interrupted: slot {slot.slot_id} stopped and released, worktree kept at {where}; "
            f"run `kinfra sandbox up` inside it, or `kinfra done {name.short}`"
        )
    return (
        f"interrupted: stopping slot {slot.slot_id} failed, so it stays claimed; worktree kept "
        f"at {where}; `kinfra done {name.short}` stops and releases it"
    )
