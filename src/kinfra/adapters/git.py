"""git, through the one subprocess runner."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from kinfra.adapters.runner import CommandNotFoundError, Result, run
from kinfra.errors import GitError, NotInProjectError

# git's messages (which kinfra reads: "already exists") and the lock reason
# `git worktree add` writes stay untranslated whatever the user's locale.
_GIT_ENV = {"LC_ALL": "C"}


def git(*args: str | Path, cwd: Path, check: bool = True) -> Result:
    try:
        result = run(["git", *args], cwd=cwd, check=False, env=_GIT_ENV)
    except CommandNotFoundError as exc:
        raise GitError("git is not installed", hint="install git (apt-get install git)") from exc
    if check and not result.ok:
        first = result.output.splitlines()[0] if result.output else f"exit {result.returncode}"
        raise GitError(f"git {' '.join(str(a) for a in args)} failed: {first}")
    return result


def locate(cwd: Path) -> tuple[Path, Path] | None:
    """(toplevel, main checkout) of the ordinary checkout or linked worktree
    containing ``cwd``, read from the ``.git`` entries themselves.

    Every kinfra command needs this, and reading two small files is ~1 ms
    where two `git rev-parse` processes cost ~15. None for anything unusual
    (GIT_DIR set, submodules, bare repositories): callers then ask git.
    """
    if "GIT_DIR" in os.environ or "GIT_WORK_TREE" in os.environ:
        return None
    for directory in (cwd, *cwd.parents):
        dot_git = directory / ".git"
        if dot_git.is_dir():
            return directory, directory
        if dot_git.is_file():
            try:
                text = dot_git.read_text(encoding="utf-8").strip()
                if not text.startswith("gitdir:"):
                    return None
                gitdir = (directory / text.removeprefix("gitdir:").strip()).resolve()
                common = (gitdir / (gitdir / "commondir").read_text().strip()).resolve()
            except (OSError, ValueError):  # junk bytes too: git itself then says what is wrong
                return None
            if common.name != ".git" or not (common / "worktrees").is_dir():
                return None
            return directory, common.parent
    return None


def toplevel(cwd: Path) -> Path | None:
    """The root of the checkout (worktree) containing ``cwd``, or None."""
    located = locate(cwd)
    if located is not None:
        return located[0]
    result = git("rev-parse", "--show-toplevel", cwd=cwd, check=False)
    return Path(result.stdout.strip()) if result.ok else None


def main_checkout(cwd: Path) -> Path:
    """The main working tree of the repository containing ``cwd``.

    For a linked worktree this is the checkout that owns the shared .git
    directory, wherever the command was run from.
    """
    located = locate(cwd)
    if located is not None:
        return located[1]
    result = git("rev-parse", "--path-format=absolute", "--git-common-dir", cwd=cwd, check=False)
    if not result.ok:
        raise NotInProjectError(
            f"{cwd} is not inside a git repository",
            hint="run kinfra inside your project's checkout (or one of its worktrees)",
        )
    common = Path(result.stdout.strip())
    if common.name == ".git":
        return common.parent
    # A bare repository or an unusual layout: fall back to the toplevel.
    top = toplevel(cwd)
    if top is None:
        raise NotInProjectError(f"{cwd} is not inside a git working tree")
    return top


# --- worktrees -----------------------------------------------------------------


@dataclass(frozen=True)
class WorktreeEntry:
    """One entry of ``git worktree list --porcelain``."""

    path: Path
    head: str | None
    branch: str | None  # short name (impl/genome-M1), None when detached or bare
    is_main: bool
    prunable: bool  # git's own verdict: its directory is gone
    locked: bool
    lock_reason: str = ""  # "initializing": git was still creating it

    @property
    def unfinished(self) -> bool:
        """git was creating this worktree and never finished: its own lock
        is still there, or HEAD was never set (killed mid `git worktree add`)."""
        return (self.locked and self.lock_reason == GIT_CREATING_LOCK) or self.head == NULL_SHA


# What `git worktree add` writes into the lock file while it works (and
# removes when done), and HEAD before it is set. LC_ALL=C keeps the reason
# untranslated, in git's own runs and when kinfra reads it back.
GIT_CREATING_LOCK = "initializing"
NULL_SHA = "0" * 40


def list_worktrees(repo: Path) -> list[WorktreeEntry]:
    """Every worktree git knows for the repository, the main checkout first."""
    text = git("worktree", "list", "--porcelain", cwd=repo).stdout
    entries: list[WorktreeEntry] = []
    for block in text.strip().split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            key, _, value = line.partition(" ")
            fields[key] = value
        if "worktree" not in fields or "bare" in fields:
            continue
        branch = fields.get("branch")
        if branch is not None and branch.startswith("refs/heads/"):
            branch = branch[len("refs/heads/") :]
        entries.append(
            WorktreeEntry(
                path=Path(fields["worktree"]),
                head=fields.get("HEAD"),
                branch=branch,
                is_main=not entries,
                prunable="prunable" in fields,
                locked="locked" in fields,
                lock_reason=fields.get("locked", ""),
            )
        )
    return entries


def branch_exists(repo: Path, branch: str) -> bool:
    return git("show-ref", "--verify", "--quiet", f"refs/heads/{branch}", cwd=repo, check=False).ok


def remote_branch(repo: Path, branch: str) -> str | None:
    """``<remote>/<branch>`` when a remote (origin first) has ``branch``, as of
    the last fetch; None otherwise."""
    for remote in sorted(remotes(repo), key=lambda name: name != "origin"):
        if ref_exists(repo, f"refs/remotes/{remote}/{branch}"):
            return f"{remote}/{branch}"
    return None


def add_worktree(
    repo: Path, path: Path, branch: str, start_point: str | None
) -> tuple[bool, str | None]:
    """Create ``path`` on ``branch`` and return (branch created, created from).

    An existing local branch is reused as it is: (False, None). Else a branch
    a remote already has (the work of an earlier worktree, pushed, then
    finished with `kinfra done`) is taken up from there, tracking it, so the
    new worktree continues that work instead of diverging from it. Else the
    branch is created from ``start_point`` (None: the current HEAD). Names
    reach here validated (domain.names), so none can be read as an option.
    """
    if branch_exists(repo, branch):
        git("worktree", "add", "--quiet", str(path), branch, cwd=repo)
        return False, None
    tracked = remote_branch(repo, branch)
    if tracked is not None:
        git("worktree", "add", "--quiet", "--track", "-b", branch, str(path), tracked, cwd=repo)
        return True, tracked
    args = ["worktree", "add", "--quiet", "--no-track", "-b", branch, str(path)]
    if start_point is not None:
        args.append(start_point)
    git(*args, cwd=repo)
    return True, start_point


def remove_worktree(repo: Path, path: Path, force: bool = False) -> None:
    """``git worktree remove``; with ``force`` also for a dirty tree. Works for
    an entry whose directory was already deleted.

    Never ``--force --force``: that overrides ``git worktree lock``, and a
    lock is the user saying "keep this entry" (a worktree on a removable disk).
    A locked worktree makes this raise; callers refuse it before any change.
    """
    args = ["worktree", "remove"]
    if force:
        args.append("--force")
    git(*args, str(path), cwd=repo)


def prune_worktrees(repo: Path) -> None:
    git("worktree", "prune", cwd=repo)


def delete_branch(repo: Path, branch: str) -> bool:
    """Delete ``branch`` only if it is fully merged (``git branch -d``)."""
    return git("branch", "-d", branch, cwd=repo, check=False).ok


def has_uncommitted(path: Path) -> bool:
    """Staged, unstaged or untracked (not ignored) changes."""
    return bool(git("status", "--porcelain", "--ignore-submodules", cwd=path).stdout.strip())


@dataclass(frozen=True)
class WorkState:
    """What one ``git status --branch`` says about a checkout."""

    uncommitted: bool  # staged, unstaged or untracked (not ignored) changes
    ahead: int | None  # commits not on the upstream; None without a usable upstream
    # Every change is a tracked file deleted from the work tree: what a
    # `git worktree remove` that was killed half-way leaves.
    only_deletions: bool = False


def work_state(path: Path) -> WorkState:
    """Uncommitted changes and upstream position in one git call (porcelain v2)."""
    text = git("status", "--porcelain=v2", "--branch", "--ignore-submodules", cwd=path).stdout
    # "branch.ab" is there only for an upstream that exists: one configured
    # but deleted on the remote gives none, and the default branch is used.
    ahead: int | None = None
    uncommitted = False
    other = False
    for line in text.splitlines():
        if line.startswith("# branch.ab "):
            ahead = int(line.split(" ")[2].lstrip("+"))
        elif line and not line.startswith("#"):
            uncommitted = True
            other = other or not line.startswith("1 .D ")
    return WorkState(uncommitted, ahead, uncommitted and not other)


def remotes(repo: Path) -> list[str]:
    return git("remote", cwd=repo).stdout.split()


def fetch(repo: Path, remote: str) -> Result:
    """Fetch, never raising: offline work and concurrent fetches must not stop
    a worktree from being created from what is already known."""
    return git("fetch", "--quiet", remote, cwd=repo, check=False)


def current_branch(path: Path) -> str | None:
    result = git("symbolic-ref", "--quiet", "--short", "HEAD", cwd=path, check=False)
    return result.stdout.strip() if result.ok else None


def ref_exists(repo: Path, ref: str) -> bool:
    return git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", cwd=repo, check=False).ok


def remote_default_ref(repo: Path) -> str | None:
    """The remote default branch as a ref (``origin/main``), or None without a remote.

    ``<remote>/HEAD`` where the clone recorded it, else the remote's branch
    named like the local one, ``main`` or ``master``.
    """
    names = remotes(repo)
    if not names:
        return None
    remote = "origin" if "origin" in names else names[0]
    base = f"refs/remotes/{remote}/"
    # One call answers where HEAD points and which usual fallbacks exist.
    listed = git(
        "for-each-ref", "--format=%(refname)%09%(symref:short)",
        base + "HEAD", base + "main", base + "master", cwd=repo,
    ).stdout  # fmt: skip
    found: dict[str, str] = {}
    for line in listed.splitlines():
        ref, _, target = line.partition("\t")
        found[ref] = target
    if found.get(base + "HEAD"):
        return found[base + "HEAD"]
    local = current_branch(repo)
    if local and local not in ("main", "master") and ref_exists(repo, base + local):
        return f"{remote}/{local}"
    for name in (local, "main", "master"):
        if name and base + name in found:
            return f"{remote}/{name}"
    return None


def count_commits(path: Path, base: str) -> int:
    """Commits on HEAD that are not on ``base``."""
    return int(git("rev-list", "--count", f"{base}..HEAD", cwd=path).stdout.strip() or 0)


def default_base(repo: Path) -> str | None:
    """What a branch without a usable upstream is compared with: the remote
    default branch of ``repo``, else (no remote) its main checkout's branch."""
    return remote_default_ref(repo) or current_branch(repo)


def unpushed_commits(path: Path, state: WorkState, base: str | None) -> int:
    """Commits of the worktree at ``path`` that exist nowhere else: not on its
    upstream, or without a usable one not on ``base`` (see default_base)."""
    if state.ahead is not None:
        return state.ahead
    if base is None:
        return 0
    return count_commits(path, base)


def common_dir(repo: Path) -> Path:
    result = git("rev-parse", "--path-format=absolute", "--git-common-dir", cwd=repo)
    return Path(result.stdout.strip())


def git_dirs(checkout: Path) -> tuple[Path, Path]:
    """(the repository's common git dir, the checkout's own git dir): the same
    for a main checkout, ``<common>/worktrees/<name>`` for a linked worktree."""
    result = git(
        "rev-parse", "--path-format=absolute", "--git-common-dir", "--git-dir", cwd=checkout
    )  # fmt: skip
    common, own = result.stdout.split("\n")[:2]
    return Path(common), Path(own)


def ensure_excluded(repo: Path, *patterns: str) -> None:
    """Add ``patterns`` to the repository's ``info/exclude`` (shared by all its
    worktrees), so files kinfra writes never count as uncommitted work."""
    exclude = common_dir(repo) / "info" / "exclude"
    try:
        # Not necessarily UTF-8 (a comment in Latin-1): compared leniently.
        lines = exclude.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        lines = []
    missing = [p for p in patterns if p not in lines]
    if not missing:
        return
    exclude.parent.mkdir(parents=True, exist_ok=True)
    with exclude.open("a", encoding="utf-8") as handle:
        prefix = "\n" if lines and lines[-1] != "" else ""
        handle.write(f"{prefix}# written by kinfra\n" + "".join(f"{p}\n" for p in missing))


def is_ignored(repo: Path, relative: str) -> bool:
    return git("check-ignore", "--quiet", "--no-index", "--", relative, cwd=repo, check=False).ok


def identity(repo: Path) -> dict[str, str]:
    """user.name / user.email as git sees them in ``repo``, as the variables
    that give a commit elsewhere (a container) the same author; {} when unset."""
    result = git("config", "--get-regexp", r"^user\.(name|email)$", cwd=repo, check=False)
    found = dict(line.partition(" ")[::2] for line in result.stdout.splitlines())
    names = {"user.name": "NAME", "user.email": "EMAIL"}
    return {
        f"GIT_{role}_{names[key]}": value
        for key, value in found.items()
        if key in names
        for role in ("AUTHOR", "COMMITTER")
    }
