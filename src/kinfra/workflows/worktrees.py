"""Spec and impl worktrees: create them, list them, finish them (`kinfra done`).

The order of `impl` is what makes it safe in parallel: the slot is claimed in
one registry transaction (check and set under the lock) before anything
exists on disk, the worktree is created next, and every failure after the
claim gives the slot back. `done` finds its target in `git worktree list` and
the registry, never from the current directory, and only removes a directory
git knows as that linked worktree.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from kinfra.adapters import compose, git
from kinfra.adapters.registry import ProjectRecord, RegistryStore, SlotRecord
from kinfra.adapters.runner import CommandNotFoundError, stream
from kinfra.adapters.statefile import atomic_write_text
from kinfra.background import Background
from kinfra.domain.config import Config, Profile
from kinfra.domain.names import (
    WorktreeKind,
    WorktreeName,
    classify_branch,
    impl_name,
    parse_impl_target,
    spec_name,
    validate_lookup,
    validate_part,
)
from kinfra.errors import (
    AmbiguousNameError,
    ComposeError,
    DockerUnavailableError,
    GitError,
    InvalidOperationError,
    KinfraError,
    MilestoneNotFoundError,
    SandboxStartError,
    WorktreeDirtyError,
    WorktreeExistsError,
    WorktreeNotFoundError,
)
from kinfra.interrupts import deferred_interrupts
from kinfra.paths import ENV_FILE
from kinfra.workflows.project import Project

if TYPE_CHECKING:
    from kinfra.workflows.slots import Progress


Say = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


# --- spec ------------------------------------------------------------------------


@dataclass(frozen=True)
class SpecResult:
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
    command: str
    returncode: int


@dataclass
class ImplResult:
    path: Path
    branch: str
    branch_created: bool
    base: str
    milestone_file: Path
    slot: SlotRecord | None = None
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
) -> ImplResult:
    """Create an impl worktree, claim a slot for it and start the slot's stack;
    with ``session``, then open the agent's tmux session in it."""
    from kinfra.workflows.slots import Progress, prevalidate, start_slot

    feature, milestone = parse_impl_target(target)
    config = project.config
    root = project.root.resolve()
    milestone_file = find_milestone(config, root, feature, milestone)
    name = impl_name(config.prefix, feature, milestone)
    path = root.parent / name.directory
    store = store or RegistryStore()
    progress = progress or Progress()
    if sandbox:
        _check_slot_available(store, project, profile, path)
    _refuse_existing(root, path, name)

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
            if sandbox:
                # Deferred too: an interrupt between the registry write and
                # this assignment would leave a claim nobody gives back.
                with deferred_interrupts():
                    slot = _claim(store, project, path, profile, name)
                background.submit(prevalidate, config, slot, path)
            # _base_ref fetches: overlaps the validation too.
            created, base = _add_worktree(root, path, name, _base_ref(root))
        except BaseException:
            with deferred_interrupts():
                background.shutdown(wait=True)
                if slot is not None:
                    with store.transaction() as registry:
                        registry.release(config.name, slot.slot_id, claimant=path)
            raise
        result = ImplResult(path, name.branch, created, base or "HEAD", milestone_file, slot)
        try:
            git.ensure_excluded(root, ENV_FILE)
            result.copied, copy_notes = copy_ignored_files(config, root, path)
            result.notes += copy_notes
            result.setup = run_setup(config, path, output)
            background.shutdown(wait=True)
            if slot is None:
                _open_session(config, path, session, result)
                return result
            write_worktree_env(config, slot, path)
            report = start_slot(
                project, slot.slot_id, code_dir=path, progress=progress, store=store
            )
        except BaseException as exc:
            if slot is None:
                with deferred_interrupts():
                    background.shutdown(wait=True)
                raise
            with deferred_interrupts():
                background.shutdown(wait=True)
                released = _undo_claim(project, slot, path, store)
            if isinstance(exc, KinfraError):
                raise _start_error(exc, name, slot, released) from exc
            # Interrupted: the CLI only says "interrupted"; say what is left.
            progress.step(_interrupted_note(name, slot, released))
            raise
    finally:
        background.shutdown(wait=True)
    result.slot = report.slot
    result.urls = report.urls
    _open_session(config, path, session, result)
    return result


def _open_session(config: Config, path: Path, wanted: bool, result: ImplResult) -> None:
    # A missing tmux/agent-deck is a note, never a failed impl.
    if wanted:
        from kinfra.workflows.sessions import open_session

        note = open_session(path, config.session.command)
        result.session = note is None
        if note:
            result.notes.append(note)


def _check_slot_available(
    store: RegistryStore, project: Project, profile: Profile, path: Path
) -> None:
    """Fail fast, before any fetch: a claim on a read-only snapshot raises the
    same SlotExhaustedError the real claim would, and writes nothing."""
    registry = store.load()
    _refuse_foreign_pool(project, registry.project(project.name))
    registry.claim_free_slot(project.name, path, profile)


def _claim(
    store: RegistryStore, project: Project, path: Path, profile: Profile, name: WorktreeName
) -> SlotRecord:
    with store.transaction() as registry:
        record = registry.require_project(project.name)
        _refuse_foreign_pool(project, record)
        # claim_free_slot returns an existing claim for the same path; for a
        # second concurrent `impl` of the same name that would share (and
        # later release) the first one's slot.
        held = record.slot_claimed_by(path)
        if held is not None:
            raise _claimed_error(name, held, path)
        return registry.claim_free_slot(project.name, path, profile, kind="impl")


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
        f"claimed for it (since {held.claimed_at})",
        hint="if another `kinfra impl` of it is running, let it finish; otherwise "
        f"`kinfra done {name.short}` (or `kinfra doctor --fix`) releases the slot",
    )


def owns_record(project: Project, record: ProjectRecord | None) -> bool:
    """Whether the registry's claims in ``record`` are this repository's.

    One project name can have several full clones on a machine (local-prod
    runs from one); the slots and claims belong to the checkout that
    provisioned them, ``record.root``. Worktrees of another clone never show
    up in this one's `git worktree list`, so without this check they would
    look deleted here.
    """
    if record is None:
        return False
    try:
        return Path(record.root).resolve() == project.root.resolve()
    except OSError:
        return False


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


def write_worktree_env(config: Config, slot: SlotRecord, path: Path) -> None:
    """The worktree's own ``.env.sandbox``: which slot, ports and URLs it has."""
    from kinfra.domain.slotplan import env_file_values, plan_slot, render_env_file

    plan = plan_slot(config, slot.slot_id)
    values = env_file_values(config, plan, slot.instance_id)
    values["KINFRA_WORKTREE"] = str(path)
    header = (
        f"Generated by kinfra: slot {slot.slot_id} of {config.name}, claimed by this "
        "worktree. Do not edit; git-ignored."
    )
    atomic_write_text(path / ENV_FILE, render_env_file(values, header))


def _undo_claim(project: Project, slot: SlotRecord, path: Path, store: RegistryStore) -> bool:
    """Stop what was started and release the slot; False when the stop failed
    (a slot whose teardown failed stays claimed)."""
    from kinfra.workflows.pool import stop_slot

    try:
        stop_slot(project, slot.slot_id, release_manual=False, store=store)
    except KinfraError:
        return False
    release_slot(project, slot, path, store)
    return True


def release_slot(project: Project, slot: SlotRecord, path: Path, store: RegistryStore) -> None:
    """Remove the override that mounts ``path``'s code and release its claim.

    Removing (not rewriting) the override is what the seed's flow does, and
    it is cheap: every start generates the override afresh for its claimant.
    """
    from kinfra.paths import OVERRIDE_FILE

    config = project.config
    with contextlib.suppress(OSError):
        (slot.directory / OVERRIDE_FILE).unlink(missing_ok=True)
    with store.transaction() as registry:
        registry.release(config.name, slot.slot_id, claimant=path)
    with contextlib.suppress(OSError):
        (path / ENV_FILE).unlink(missing_ok=True)


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


# --- the worktrees of a project -------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A spec or impl worktree as git and the registry know it."""

    name: WorktreeName
    path: Path
    entry: git.WorktreeEntry | None  # None: git no longer lists it
    # Every slot claimed by this path. One, normally; `done` gives back all of
    # them, so a slot claimed twice by one worktree is never left behind.
    slots: tuple[SlotRecord, ...] = ()

    @property
    def slot(self) -> SlotRecord | None:
        return self.slots[0] if self.slots else None

    @property
    def exists(self) -> bool:
        return self.path.is_dir()


def candidates(
    project: Project,
    record: ProjectRecord | None,
    entries: list[git.WorktreeEntry],
) -> list[Candidate]:
    """The worktrees kinfra made for this project, and the claims they hold.

    A linked worktree counts only where kinfra would have put it: at
    ``<main checkout>/../<prefix>-impl-<feature>-<milestone>`` on
    ``impl/<feature>-<milestone>`` (or the spec equivalent), or at a path an
    impl claim names. Anything else on an ``impl/*`` branch (a scratch
    worktree of the user's) is not ours to stop, remove or list.
    """
    prefix = project.config.prefix
    root = project.root.resolve()
    # Another clone's claims are not this repository's worktrees.
    claims = _claims_by_path(record if owns_record(project, record) else None)
    found: list[Candidate] = []
    seen: set[Path] = set()
    for entry in entries:
        path = entry.path.resolve()
        if entry.is_main or path == root:
            continue
        slots = claims.get(path, ())
        name = _name_of(prefix, root, path, entry.branch, slots)
        if name is None:
            continue
        seen.add(path)
        found.append(Candidate(name, path, entry, slots))
    # Claims whose worktree git has forgotten (deleted and pruned by hand).
    for path, slots in claims.items():
        if path in seen:
            continue
        name = _name_of(prefix, root, path, None, slots)
        if name is not None:
            found.append(Candidate(name, path, None, slots))
    return sorted(found, key=lambda c: c.path.name)


def _claims_by_path(record: ProjectRecord | None) -> dict[Path, tuple[SlotRecord, ...]]:
    """claimant path -> the slots it claims, lowest id first."""
    found: dict[Path, tuple[SlotRecord, ...]] = {}
    if record is None:
        return found
    for slot in sorted(record.slots.values(), key=lambda s: s.slot_id):
        if slot.claimed_by is not None:
            path = Path(slot.claimed_by).resolve()
            found[path] = (*found.get(path, ()), slot)
    return found


def _name_of(
    prefix: str, root: Path, path: Path, branch: str | None, slots: tuple[SlotRecord, ...]
) -> WorktreeName | None:
    """The kinfra name of the worktree at ``path``, or None when kinfra did
    not make it: its place must be the one its branch gives it, unless an
    impl claim names exactly this path."""
    by_branch = classify_branch(prefix, branch)
    if (
        by_branch is not None
        and "/" not in by_branch.short
        and path == root.parent / by_branch.directory
    ):
        return by_branch
    if not any(slot.claim_kind == "impl" for slot in slots):
        return None
    # Claimed by `kinfra impl`, so made by it: on another branch now (or gone).
    for kind in WorktreeKind:
        head = f"{prefix}-{kind.value}-"
        if path.name.startswith(head) and len(path.name) > len(head):
            short = path.name[len(head) :]
            return WorktreeName(kind, path.name, f"{kind.value}/{short}", short)
    return None


def resolve(cands: list[Candidate], wanted: str) -> Candidate:
    """By ``<feature>-<milestone>``, directory name, or a unique substring."""
    validate_lookup("worktree", wanted)
    exact = [c for c in cands if wanted in (c.name.short, c.path.name)]
    if len(exact) == 1:
        return exact[0]
    partial = exact or [c for c in cands if wanted in c.path.name]
    if not partial:
        raise WorktreeNotFoundError(
            f"No worktree matching '{wanted}'", hint="run `kinfra worktrees` to see them"
        )
    if len(partial) > 1:
        listed = ", ".join(c.path.name for c in partial)
        raise AmbiguousNameError(
            f"'{wanted}' matches {len(partial)} worktrees: {listed}",
            hint="give more of the name; nothing was done",
        )
    return partial[0]


# --- done ------------------------------------------------------------------------------


@dataclass
class DoneResult:
    path: Path
    slot_id: int | None
    stopped: bool
    removed: bool
    branch: str
    branch_deleted: bool
    notes: list[str] = field(default_factory=list)


def done(
    project: Project,
    wanted: str,
    force: bool = False,
    keep_branch: bool = False,
    store: RegistryStore | None = None,
) -> DoneResult:
    """Stop the worktree's stack (volumes kept), release its slot, remove it."""
    from kinfra.workflows.pool import stop_slot

    store = store or RegistryStore()
    root = project.root.resolve()
    record = store.load().project(project.name)
    target = resolve(candidates(project, record, git.list_worktrees(root)), wanted)
    if target.name.kind is WorktreeKind.SPEC:
        raise InvalidOperationError(
            "Spec worktrees don't have sandboxes to release. Just run `git worktree remove`.",
            hint=f"git worktree remove {target.path}",
        )
    if target.path == root or (target.entry is not None and target.entry.is_main):
        raise InvalidOperationError("refusing to remove the main checkout")
    if target.entry is not None and target.entry.locked:
        # Checked before anything changes: a lock means "keep this entry"
        # (a worktree on a removable disk), and --force never overrides it.
        raise InvalidOperationError(
            f"worktree {target.path} is locked (git worktree lock); nothing was done",
            hint=f"git worktree unlock {target.path}, then run `kinfra done` again",
        )
    if target.exists and not force:
        _refuse_unsaved_work(root, target.path)

    result = DoneResult(target.path, None, False, False, target.name.branch, False)
    for slot in target.slots:
        # Raises when Docker cannot stop it: that slot stays claimed, the
        # worktree stays, and the user sees why.
        stop_slot(project, slot.slot_id, volumes=False, release_manual=False, store=store)
        release_slot(project, slot, Path(slot.claimed_by or target.path), store)
        result.stopped = True
        if result.slot_id is None:
            result.slot_id = slot.slot_id
        else:
            result.notes.append(
                f"slot {slot.slot_id}, also claimed by this worktree, stopped and released"
            )

    from kinfra.workflows.sessions import close_session

    # The agent session ends alongside the removal: tmux and git are independent.
    closing = Background(close_session, target.path)
    if target.entry is not None:
        git.remove_worktree(root, target.path, force=force or not target.exists)
        result.removed = True
    elif target.exists:
        result.notes.append(f"{target.path} is not a git worktree; left in place")
    closing.result()
    # git listed the worktree on its branch, so the branch exists; else ask.
    on_branch = target.entry is not None and target.entry.branch == target.name.branch
    if not keep_branch and (on_branch or git.branch_exists(root, target.name.branch)):
        result.branch_deleted = git.delete_branch(root, target.name.branch)
        if not result.branch_deleted:
            result.notes.append(
                f"branch {target.name.branch} kept: not fully merged "
                f"(delete it with `git branch -D {target.name.branch}`)"
            )
    return result


def _refuse_unsaved_work(root: Path, path: Path) -> None:
    # The base matters only without an upstream; looking it up alongside the
    # status costs nothing and saves a few ms when it does.
    lookup = Background(git.default_base, root)
    state = git.work_state(path)
    base = lookup.result()
    if state.uncommitted:
        raise WorktreeDirtyError(
            "Worktree has uncommitted changes. Commit or stash, then retry. "
            "Use --force to proceed anyway.",
            hint=f"see `git -C {path} status`",
        )
    if git.unpushed_commits(path, state, base):
        raise WorktreeDirtyError(
            "Worktree has unpushed commits. Push first, then retry. Use --force to proceed anyway.",
            hint=f"git -C {path} push -u origin HEAD",
        )


# --- listing ----------------------------------------------------------------------------


@dataclass(frozen=True)
class WorktreeView:
    name: str
    kind: WorktreeKind
    branch: str
    path: Path
    exists: bool
    slot_id: int | None
    slot_state: str | None  # running / stopped / unknown; None without a slot
    port: int | None  # the slot's main port (first http port)
    dirty: bool | None  # None when the directory is gone
    session: bool = False  # its agent session (tmux) is alive

    @property
    def sandbox(self) -> str:
        if self.kind is WorktreeKind.SPEC:
            return "-"
        if self.slot_id is None:
            return "no slot"
        port = f", :{self.port}" if self.port is not None else ""
        return f"slot {self.slot_id} ({self.slot_state}{port})"


def list_worktrees(project: Project, store: RegistryStore | None = None) -> list[WorktreeView]:
    root = project.root.resolve()
    record = (store or RegistryStore()).load().project(project.name)
    cands = candidates(project, record, git.list_worktrees(root))
    from concurrent.futures import ThreadPoolExecutor

    from kinfra.workflows.sessions import alive_sessions

    # git status per worktree, `docker ps` and `tmux list-sessions` are
    # independent processes: running them side by side keeps the listing fast.
    with ThreadPoolExecutor(max_workers=4) as pool:
        live_future = pool.submit(_live_projects)
        sessions_future = pool.submit(alive_sessions, [c.path for c in cands])
        dirty = list(pool.map(_dirty_or_none, [c.path for c in cands]))
        live = live_future.result()
        sessions = sessions_future.result()
    main_port = _main_port(project.config)
    views = []
    for cand, is_dirty in zip(cands, dirty, strict=True):
        slot = cand.slot
        state = None
        if slot is not None:
            state = "unknown" if live is None else _state(live.get(slot.compose_project))
        port = slot.ports.get(main_port) if slot is not None and main_port else None
        views.append(
            WorktreeView(
                cand.path.name,
                cand.name.kind,
                cand.name.branch,
                cand.path,
                cand.exists,
                slot.slot_id if slot else None,
                state,
                port,
                is_dirty,
                cand.path in sessions,
            )
        )
    return views


def _live_projects() -> dict[str, str] | None:
    """compose project -> "running(N)" / "exited(N)"; None when Docker cannot be asked."""
    try:
        return compose.list_projects()
    except (DockerUnavailableError, ComposeError):
        return None


def _dirty_or_none(path: Path) -> bool | None:
    if not path.is_dir():
        return None
    try:
        return git.has_uncommitted(path)
    except GitError:
        return None


def _state(status: str | None) -> str:
    if not status:
        return "stopped"
    return status.split("(")[0]


def _main_port(config: Config) -> str | None:
    for port in config.ports:
        if port.scheme.startswith("http"):
            return port.name
    return config.ports[0].name if config.ports else None
