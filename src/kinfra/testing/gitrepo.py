"""Real git repositories in temp dirs, with a bare "origin" where pushes matter."""

from __future__ import annotations

from pathlib import Path

from kinfra.adapters.runner import Result, run

GIT_ENV = {
    "GIT_AUTHOR_NAME": "kinfra tests",
    "GIT_AUTHOR_EMAIL": "tests@kinfra.invalid",
    "GIT_COMMITTER_NAME": "kinfra tests",
    "GIT_COMMITTER_EMAIL": "tests@kinfra.invalid",
}


def git(repo: Path, *args: str) -> Result:
    return run(["git", *args], cwd=repo, env=GIT_ENV)


def make_repo(parent: Path, name: str = "app", with_origin: bool = True) -> Path:
    """A repository at parent/name with one commit on main, optionally pushed
    to a bare origin at parent/name-origin.git."""
    repo = parent / name
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("test repo\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    if with_origin:
        origin = parent / f"{name}-origin.git"
        run(["git", "init", "-q", "--bare", "-b", "main", str(origin)])
        git(repo, "remote", "add", "origin", str(origin))
        git(repo, "push", "-q", "-u", "origin", "main")
    return repo


def commit_all(repo: Path, message: str = "change") -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
