"""Shared data: `kinfra init-shared` and the read-only mounts every slot gets."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kinfra.testing import dockerkit
from kinfra.testing.cli import kinfra, ok
from kinfra.testing.example import make_example_project

SHARED_CONFIG = """
[shared.data]
target = "/shared/data"
services = ["backend", "worker"]

[shared.models]
target = "/shared/models"
services = ["backend"]
read_only = false
"""


def test_init_shared_copies_then_never_overwrites_or_deletes(
    tmp_path: Path, kinfra_home: Path
) -> None:
    repo = make_example_project(tmp_path, "ktshared", with_origin=False, extra_config=SHARED_CONFIG)
    source = tmp_path / "source"
    (source / "data" / "bars").mkdir(parents=True)
    (source / "data" / "bars" / "eurusd.csv").write_text("1,2,3\n")
    (source / "data" / "readme.txt").write_text("from source\n")

    needs_choice = kinfra(repo, "init-shared")
    assert needs_choice.returncode == 1
    assert "--from PATH" in needs_choice.stderr and "--minimal" in needs_choice.stderr

    first = ok(repo, "init-shared", "--from", str(source))
    shared = kinfra_home / "ktshared" / "shared"
    assert "data" in first and "2 files copied" in first
    assert (shared / "data" / "bars" / "eurusd.csv").read_text() == "1,2,3\n"
    assert (shared / "models").is_dir()  # absent in the source: created empty

    # Data added or changed in the shared dir survives a second run.
    (shared / "data" / "readme.txt").write_text("edited in place\n")
    (shared / "models" / "net.bin").write_text("weights\n")
    (source / "data" / "new.csv").write_text("4\n")
    second = ok(repo, "init-shared", "--from", str(source))
    assert "1 files copied, 2 already there" in second
    assert (shared / "data" / "readme.txt").read_text() == "edited in place\n"
    assert (shared / "models" / "net.bin").read_text() == "weights\n"
    assert (shared / "data" / "new.csv").read_text() == "4\n"

    ok(repo, "init-shared", "--minimal")
    assert (shared / "models" / "net.bin").read_text() == "weights\n"
    assert (shared / "data" / "bars" / "eurusd.csv").exists()


@pytest.mark.docker
def test_slot_mounts_shared_dirs_read_only_where_declared(
    tmp_path: Path, docker_prefix: str, kinfra_home: Path
) -> None:
    repo = make_example_project(tmp_path, docker_prefix, extra_config=SHARED_CONFIG)
    ok(repo, "sandbox", "provision")

    # Before init-shared: a clear message, and nothing started.
    early = kinfra(repo, "sandbox", "up", "--slot", "1")
    assert early.returncode == 1
    assert "shared data is not initialised" in early.stderr and "init-shared" in early.stderr
    assert dockerkit.compose_projects(docker_prefix) == []

    ok(repo, "init-shared", "--minimal")
    (kinfra_home / docker_prefix / "shared" / "data" / "prices.csv").write_text("42\n")
    ok(repo, "sandbox", "up", "--slot", "1")
    project = f"{docker_prefix}-slot-1"

    def sh(service: str, command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", "compose", "-p", project, "exec", "-T", service, "sh", "-c", command],
            capture_output=True,
            text=True,
            check=False,
        )

    try:
        read = sh("backend", 'cat "$SHARED_DATA_DIR/prices.csv"')
        assert read.returncode == 0 and read.stdout == "42\n", read.stderr
        assert sh("worker", "cat /shared/data/prices.csv").stdout == "42\n"
        write = sh("backend", "echo x > /shared/data/new.txt")
        assert write.returncode != 0 and "Read-only file system" in write.stderr
        assert not (kinfra_home / docker_prefix / "shared" / "data" / "new.txt").exists()
        # models is declared writable.
        assert sh("backend", "echo w > /shared/models/out.txt").returncode == 0
        assert (kinfra_home / docker_prefix / "shared" / "models" / "out.txt").read_text() == "w\n"
    finally:
        ok(repo, "sandbox", "down", "--slot", "1")
