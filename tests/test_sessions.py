"""Agent sessions against a real tmux server on a private socket."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kinfra.adapters import tmux
from kinfra.testing.example import kinfra as example_kinfra
from kinfra.testing.example import make_example_project
from kinfra.testing.gitrepo import git, make_repo
from kinfra.workflows.sessions import close_session, open_session, session_alive


@pytest.fixture
def socket() -> Iterator[str]:
    name = f"kinfra-test-{secrets.token_hex(4)}"
    yield name
    subprocess.run(["tmux", "-L", name, "kill-server"], capture_output=True, check=False)


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    repo = make_repo(tmp_path, with_origin=False)
    path = tmp_path / "app-impl-genome.M1"
    git(repo, "worktree", "add", "-q", "-b", "impl/genome-M1", str(path))
    return path


def _wait_for(path: Path, seconds: float = 10) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.is_file() and path.read_text().strip():
            return path.read_text()
        time.sleep(0.1)
    raise AssertionError(f"{path} never appeared")


def test_session_runs_the_agent_in_the_worktree_and_closes(worktree: Path, socket: str) -> None:
    assert not session_alive(worktree, socket)
    note = open_session(worktree, "pwd > agent-ran-here.txt", socket)
    assert note is None
    assert session_alive(worktree, socket)
    # Named after the worktree ('.' is not allowed by tmux), started in it.
    listed = subprocess.run(
        ["tmux", "-L", socket, "list-sessions", "-F", "#{session_name}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert listed == ["app-impl-genome-M1"]
    assert tmux.pane_path("app-impl-genome-M1", socket) == worktree
    assert _wait_for(worktree / "agent-ran-here.txt").strip() == str(worktree)

    assert open_session(worktree, "pwd > agent-ran-here.txt", socket) is None  # idempotent
    close_session(worktree, socket)
    assert not session_alive(worktree, socket)
    close_session(worktree, socket)  # nothing left to close: still fine


def test_without_tmux_open_session_returns_a_note(worktree: Path) -> None:
    code = (
        "import sys; from pathlib import Path; "
        "from kinfra.workflows.sessions import open_session, session_alive, close_session; "
        "p = Path(sys.argv[1]); print(open_session(p, 'claude')); "
        "print(session_alive(p)); close_session(p)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(worktree)],
        capture_output=True,
        text=True,
        env={"PATH": str(worktree / "no-tools-here"), "KINFRA_HOME": str(worktree / "h")},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    note, alive = result.stdout.splitlines()
    assert "tmux is not installed" in note and "claude" in note
    assert alive == "False"


def test_impl_session_opens_in_the_worktree_and_done_ends_it(
    tmp_path: Path, socket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(tmux.SOCKET_ENV, socket)
    repo = make_example_project(
        tmp_path, "ksess", extra_config='\n[session]\ncommand = "echo ran > agent-ran"\n'
    )
    created = example_kinfra(repo, "impl", "genome/M1", "--no-sandbox", "--session")
    assert created.returncode == 0, created.stderr
    worktree = repo.parent / "ksess-impl-genome-M1"
    assert "session    ksess-impl-genome-M1" in created.stdout
    assert session_alive(worktree, socket)
    _wait_for(worktree / "agent-ran")  # the agent command ran in the worktree

    listed = json.loads(example_kinfra(repo, "worktrees", "--json").stdout)
    assert [(w["name"], w["session"]) for w in listed] == [("ksess-impl-genome-M1", True)]

    finished = example_kinfra(repo, "done", "genome-M1", "--force")
    assert finished.returncode == 0, finished.stderr
    assert not session_alive(worktree, socket)
    assert not worktree.exists()


def test_impl_session_without_tmux_still_succeeds_with_a_note(tmp_path: Path) -> None:
    repo = make_example_project(tmp_path, "knotmux")
    bin_dir = tmp_path / "bin-without-tmux"
    bin_dir.mkdir()
    git_path = shutil.which("git")
    assert git_path
    (bin_dir / "git").symlink_to(git_path)
    result = subprocess.run(
        [sys.executable, "-m", "kinfra", "impl", "genome/M1", "--no-sandbox", "--session"],
        cwd=repo,
        capture_output=True,
        text=True,
        env=dict(os.environ, PATH=str(bin_dir)),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "tmux is not installed" in result.stderr
    assert (repo.parent / "knotmux-impl-genome-M1").is_dir()
