"""Clean data per claim: golden data saved from a stopped slot, restored by
`impl --fresh`, `done --reset-data` and `on_claim = "reset"`, and kept by a
normal claim (real Docker volumes, the kinfra volume helper image)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kinfra.adapters.runner import run
from kinfra.adapters.volumes import HELPER_IMAGE
from kinfra.testing.cli import kinfra, ok
from kinfra.testing.example import make_example_project
from kinfra.testing.gitrepo import commit_all

pytestmark = pytest.mark.docker

FEATURES = ("a", "b", "c", "d", "e", "f")


def rows(worktree: Path) -> str:
    return ok(worktree, "sandbox", "exec", "db", "--", "sh", "-c", "cat /data/rows.txt || true")


def write_row(worktree: Path, text: str) -> None:
    ok(worktree, "sandbox", "exec", "db", "--", "sh", "-c", f"echo {text} >> /data/rows.txt")


def test_a_fresh_claim_starts_from_the_golden_data_and_a_normal_one_keeps_the_last(
    tmp_path: Path, kinfra_home: Path, docker_prefix: str
) -> None:
    repo = make_example_project(
        tmp_path,
        docker_prefix,
        pool_size=1,
        mini=True,
        milestones=tuple(f"{f}/M1" for f in FEATURES),
    )
    ok(repo, "sandbox", "provision")

    def impl(feature: str, *flags: str) -> Path:
        ok(repo, "impl", f"{feature}/M1", *flags)
        return tmp_path / f"{docker_prefix}-impl-{feature}-M1"

    # The golden data: what the stack seeds on its first start, nothing more.
    a = impl("a")
    refused = kinfra(a, "sandbox", "snapshot")
    assert refused.returncode == 1 and "stop it first" in refused.stderr
    ok(repo, "done", "a-M1")
    saved = ok(repo, "sandbox", "snapshot", "--slot", "1")
    assert "saved from slot 1: dbdata" in saved
    golden = kinfra_home / docker_prefix / "golden"
    assert json.loads((golden / "manifest.json").read_text())["volumes"] == ["dbdata"]

    b = impl("b")
    write_row(b, "row-from-b")
    ok(repo, "done", "b-M1")

    c = impl("c")  # a normal claim inherits the last claimant's data
    assert "row-from-b" in rows(c)
    ok(repo, "done", "c-M1", "--reset-data")  # ...and gives the slot back clean

    d = impl("d")
    assert "row-from-b" not in rows(d)
    assert ok(d, "sandbox", "exec", "db", "--", "cat", "/data/index.html") == "mini\n"
    write_row(d, "row-from-d")
    ok(repo, "done", "d-M1")

    e = impl("e", "--fresh")
    assert "row-from-d" not in rows(e)
    write_row(e, "row-from-e")
    ok(repo, "done", "e-M1")

    config = repo / "kinfra.toml"
    config.write_text(config.read_text().replace("[sandbox]\n", '[sandbox]\non_claim = "reset"\n'))
    commit_all(repo, "reset on claim")
    f = impl("f")
    assert "row-from-e" not in rows(f)
    ok(repo, "done", "f-M1")
    # The copies ran in kinfra's own helper image (not the project's), and
    # none of its containers is left behind.
    assert run(["docker", "image", "inspect", HELPER_IMAGE], check=False).ok
    left = run(["docker", "ps", "-aq", "--filter", f"ancestor={HELPER_IMAGE}"]).stdout
    assert left.strip() == ""
