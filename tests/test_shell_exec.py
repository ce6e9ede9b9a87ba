"""`kinfra sandbox shell / exec / logs` aim at the slot of the worktree they run in."""

from __future__ import annotations

from pathlib import Path

import pytest

from kinfra.testing.cli import kinfra, ok
from kinfra.testing.example import make_example_project


@pytest.mark.docker
def test_shell_exec_and_logs_target_the_detected_slot(tmp_path: Path, docker_prefix: str) -> None:
    repo = make_example_project(tmp_path, docker_prefix, pool_size=2)
    ok(repo, "sandbox", "provision")
    ok(repo, "sandbox", "up", "--slot", "1")  # the main checkout's code: the wrong target
    ok(repo, "impl", "genome/M1")  # claims slot 2
    worktree = tmp_path / f"{docker_prefix}-impl-genome-M1"
    (worktree / "app" / "index.html").write_text("worktree code\n")
    nested = worktree / "app" / "sub"
    nested.mkdir()
    try:
        shown = kinfra(nested, "sandbox", "exec", "backend", "--", "cat", "/srv/www/app/index.html")
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout == "worktree code\n"

        failed = kinfra(worktree, "sandbox", "exec", "backend", "--", "sh", "-c", "exit 7")
        assert failed.returncode == 7

        # busybox has no bash: the shell falls back to sh and reads our stdin.
        shell = kinfra(
            nested,
            "sandbox",
            "shell",
            input='echo "shell=$0"; echo "$HOSTNAME" >/dev/null; cat /srv/www/app/index.html\n',
        )
        assert shell.returncode == 0, shell.stderr
        assert shell.stdout.splitlines() == ["shell=sh", "worktree code"]

        # A line written to the container's main output shows up in its logs.
        marker = "marker-from-the-test"
        ok(worktree, "sandbox", "exec", "backend", "--", "sh", "-c", f"echo {marker} >/proc/1/fd/1")
        logs = kinfra(nested, "sandbox", "logs", "backend", "-n", "5")
        assert logs.returncode == 0, logs.stderr
        assert marker in logs.stdout
        other = kinfra(repo, "sandbox", "logs", "backend", "--slot", "1", "-n", "5")
        assert marker not in other.stdout

        # --slot wins over the worktree's own slot.
        main_code = kinfra(
            worktree,
            "sandbox",
            "exec",
            "--slot",
            "1",
            "backend",
            "--",
            "cat",
            "/srv/www/app/index.html",
        )
        assert main_code.stdout == (repo / "app" / "index.html").read_text()
    finally:
        kinfra(repo, "done", "genome-M1", "--force")
        kinfra(repo, "sandbox", "down", "--slot", "1")
