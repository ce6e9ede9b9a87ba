"""Finishing or undoing what an interrupted `kinfra impl` / `kinfra done` left.

Two git operations can be cut in half by a kill, and each leaves a state
git's own commands refuse to touch:

- ``git worktree add``: a directory git still locks ("initializing"), HEAD
  perhaps not yet set. Nothing in it is the user's: kinfra removes it and
  keeps the branch, which holds every commit.
- ``git worktree remove``: a directory with some files deleted (git status
  shows the deletions as changes), or with ``.git`` already gone (git no
  longer knows it as a worktree). Its removal was asked for and its work was
  checked as saved before it began: kinfra finishes it.

Both are recognised only with the record of the interrupted run
(``adapters.pending``), and a directory is never deleted when any file in it
changed after that run began.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from kinfra.adapters import git
from kinfra.adapters.pending import OpKind, PendingOp
from kinfra.errors import InvalidOperationError


def refuse_if_not_kinfras(root: Path, path: Path, state: str, op: PendingOp) -> None:
    """Refuse to delete what ``op`` left at ``path`` (``state`` from
    ``partial_state``) when anything in it may be someone's work.

    A remnant of a removal holds only files that were there, saved, when
    `done` began: any newer one is new work. A worktree git never finished
    holds only files git was checking out from the branch: any other one is
    new work.
    """
    known: set[str] = set()
    if state == "unfinished" and git.branch_exists(root, op.branch):
        listed = git.git("ls-tree", "-r", "-t", "--name-only", op.branch, cwd=root)
        known = set(listed.stdout.splitlines())
    limit = op.started.timestamp() + 1  # started_at has whole seconds
    for directory, dirs, files in os.walk(path):
        if Path(directory) == path and ".git" in dirs:
            dirs.remove(".git")
        for name in (*dirs, *files):
            item = Path(directory) / name
            relative = item.relative_to(path).as_posix()
            if state == "unfinished":
                foreign = relative not in known and relative != ".git"
            else:
                try:
                    foreign = item.lstat().st_mtime > limit
                except OSError:
                    continue
            if foreign:
                raise InvalidOperationError(
                    f"{item} was not left by the interrupted `{op.command}`; kinfra will not "
                    f"delete {path}",
                    hint="save what you need from it, delete it, then run the command again",
                )


def remove_partial(root: Path, path: Path, entry: git.WorktreeEntry | None) -> None:
    """Remove a worktree git never finished creating, or the rest of one whose
    removal was interrupted; git forgets its entry. The caller has checked
    (``refuse_if_changed``) that nothing in it is new."""
    import shutil  # only here: not at every `done`'s start

    if entry is not None and entry.locked:
        git.git("worktree", "unlock", str(path), cwd=root, check=False)
    if path.exists() and not (path / ".git").exists():
        # git cannot remove what it no longer recognises as a worktree.
        shutil.rmtree(path)
    if entry is not None:
        git.remove_worktree(root, path, force=True)
    elif path.exists():
        shutil.rmtree(path)


def clear_git_locks(root: Path, op: PendingOp) -> list[Path]:
    """Remove the lock files git leaves when it is killed (``packed-refs.lock``,
    ``refs/heads/<branch>.lock``, a fetch's ref locks, the worktree's own
    index lock), which block every later git command on them. Only those of
    the refs and worktree ``op`` worked on, made while it ran."""
    common = git.common_dir(root)
    candidates = [
        common / "packed-refs.lock",
        common / "refs" / "heads" / f"{op.branch}.lock",
        *(common / "refs" / "remotes").rglob("*.lock"),
    ]
    admin = admin_dir(common, op.path)
    if admin is not None:
        candidates += admin.rglob("*.lock")
    since = op.started.timestamp() - 1
    removed = []
    for lock in candidates:
        try:
            if lock.stat().st_mtime >= since:
                lock.unlink()
                removed.append(lock)
        except FileNotFoundError:
            continue
    return removed


def admin_dir(common: Path, worktree: Path) -> Path | None:
    """git's own folder for the linked worktree at ``worktree``
    (``<common dir>/worktrees/<id>``), found by the path it points back to."""
    with contextlib.suppress(OSError):
        for candidate in (common / "worktrees").iterdir():
            with contextlib.suppress(OSError):
                text = (candidate / "gitdir").read_text(encoding="utf-8", errors="replace")
                if Path(text.strip()).parent == worktree:
                    return candidate
    return None


def partial_state(path: Path, entry: git.WorktreeEntry | None, op: PendingOp | None) -> str | None:
    """What the interrupted run ``op`` left at ``path``: "unfinished" (killed
    in `git worktree add`), "remnant" (killed in `git worktree remove` after
    ``.git`` went), or None. Without a record of kinfra's own run, nothing is
    kinfra's to finish."""
    if op is None or op.alive:
        return None
    if op.kind is OpKind.IMPL and entry is not None and entry.unfinished:
        return "unfinished"
    if op.kind is OpKind.DONE and path.exists() and not (path / ".git").exists():
        return "remnant"
    return None
