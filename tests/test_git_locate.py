"""Project discovery reads .git entries directly; it must agree with git."""

from __future__ import annotations

from pathlib import Path

from kinfra.adapters import git as git_adapter
from kinfra.testing.gitrepo import git, make_repo


def rev_parse(cwd: Path) -> tuple[Path, Path]:
    top = git(cwd, "rev-parse", "--show-toplevel").stdout.strip()
    common = git(cwd, "rev-parse", "--path-format=absolute", "--git-common-dir").stdout.strip()
    return Path(top), Path(common).parent


def test_locate_agrees_with_git(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, with_origin=False)
    (repo / "a" / "b").mkdir(parents=True)
    worktree = tmp_path / "linked"
    git(repo, "worktree", "add", "-q", "-b", "feature", str(worktree))
    (worktree / "deep" / "er").mkdir(parents=True)
    for place in (repo, repo / "a" / "b", worktree, worktree / "deep" / "er"):
        located = git_adapter.locate(place.resolve())
        assert located == rev_parse(place)
        assert git_adapter.main_checkout(place.resolve()) == repo.resolve()
    assert git_adapter.toplevel((worktree / "deep").resolve()) == worktree.resolve()


def test_outside_a_repository_nothing_is_located(tmp_path: Path) -> None:
    outside = tmp_path / "plain"
    outside.mkdir()
    assert git_adapter.locate(outside) is None
    assert git_adapter.toplevel(outside) is None
