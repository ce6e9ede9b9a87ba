"""git, through the one subprocess runner."""

from __future__ import annotations

from pathlib import Path

from kinfra.adapters.runner import CommandNotFoundError, Result, run
from kinfra.errors import GitError, NotInProjectError


def git(*args: str | Path, cwd: Path, check: bool = True) -> Result:
    try:
        result = run(["git", *args], cwd=cwd, check=False)
    except CommandNotFoundError as exc:
        raise GitError("git is not installed", hint="install git (apt-get install git)") from exc
    if check and not result.ok:
        first = result.output.splitlines()[0] if result.output else f"exit {result.returncode}"
        raise GitError(f"git {' '.join(str(a) for a in args)} failed: {first}")
    return result


def toplevel(cwd: Path) -> Path | None:
    """The root of the checkout (worktree) containing ``cwd``, or None."""
    result = git("rev-parse", "--show-toplevel", cwd=cwd, check=False)
    return Path(result.stdout.strip()) if result.ok else None


def main_checkout(cwd: Path) -> Path:
    """The main working tree of the repository containing ``cwd``.

    For a linked worktree this is the checkout that owns the shared .git
    directory, wherever the command was run from.
    """
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
