"""What `kinfra done` asks git before it removes anything: uncommitted work,
the upstream position, and the remote default branch, on real repositories."""

from __future__ import annotations

from pathlib import Path

from kinfra.adapters import git as git_adapter
from kinfra.testing.gitrepo import commit_all, git, make_repo


def unpushed(path: Path, repo: Path) -> int:
    return git_adapter.unpushed_commits(
        path, git_adapter.work_state(path), git_adapter.default_base(repo)
    )


def test_remote_default_follows_origin_head_of_a_clone(tmp_path: Path) -> None:
    source = make_repo(tmp_path)
    git(source, "checkout", "-q", "-b", "trunk")
    git(source, "push", "-q", "origin", "trunk")
    # The bare origin's HEAD names trunk: a clone records origin/HEAD -> trunk.
    origin = tmp_path / "app-origin.git"
    git(origin, "symbolic-ref", "HEAD", "refs/heads/trunk")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    git(clone, "checkout", "-q", "main")
    assert git_adapter.remote_default_ref(clone) == "origin/trunk"


def test_remote_default_without_origin_head_prefers_the_local_branch(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)  # pushed, so no origin/HEAD is recorded
    assert git_adapter.remote_default_ref(repo) == "origin/main"
    git(repo, "checkout", "-q", "-b", "develop")
    git(repo, "push", "-q", "origin", "develop")
    assert git_adapter.remote_default_ref(repo) == "origin/develop"
    git(repo, "checkout", "-q", "-b", "unpushed")
    assert git_adapter.remote_default_ref(repo) == "origin/main"


def test_remote_default_master_and_none(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    git(repo, "branch", "-q", "-m", "main", "master")
    git(repo, "push", "-q", "origin", "master")
    git(tmp_path / "app-origin.git", "symbolic-ref", "HEAD", "refs/heads/master")
    git(repo, "push", "-q", "origin", "--delete", "main")
    assert git_adapter.remote_default_ref(repo) == "origin/master"
    alone = make_repo(tmp_path, name="alone", with_origin=False)
    assert git_adapter.remote_default_ref(alone) is None
    git(alone, "remote", "add", "origin", str(tmp_path / "never-fetched.git"))
    assert git_adapter.remote_default_ref(alone) is None


def test_work_state_sees_untracked_staged_and_ahead(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    assert git_adapter.work_state(repo) == git_adapter.WorkState(uncommitted=False, ahead=0)
    (repo / "new.txt").write_text("x\n")
    assert git_adapter.work_state(repo).uncommitted
    git(repo, "add", "new.txt")
    assert git_adapter.work_state(repo).uncommitted
    commit_all(repo, "one")
    (repo / "new.txt").write_text("y\n")
    commit_all(repo, "two")
    assert git_adapter.work_state(repo) == git_adapter.WorkState(uncommitted=False, ahead=2)
    assert unpushed(repo, repo) == 2
    git(repo, "push", "-q")
    assert unpushed(repo, repo) == 0


def test_unpushed_without_upstream_or_with_a_deleted_one(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    worktree = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", "-b", "impl/x-M1", str(worktree))
    (worktree / "f.txt").write_text("work\n")
    commit_all(worktree, "work")
    # No upstream: commits not on origin/main count.
    assert git_adapter.work_state(worktree).ahead is None
    assert unpushed(worktree, repo) == 1
    git(worktree, "push", "-q", "-u", "origin", "impl/x-M1")
    assert unpushed(worktree, repo) == 0
    # The branch is deleted on the remote (merged and cleaned up there): the
    # configured upstream is gone, so origin/main decides again.
    git(repo, "push", "-q", "origin", "--delete", "impl/x-M1")
    git(repo, "fetch", "-q", "--prune", "origin")
    assert git_adapter.work_state(worktree).ahead is None
    assert unpushed(worktree, repo) == 1
