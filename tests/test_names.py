"""Names: validated before any side effect, by the pure rules and by the CLI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kinfra.domain.names import (
    WorktreeKind,
    classify_branch,
    impl_name,
    parse_impl_target,
    spec_name,
    validate_lookup,
    validate_part,
)
from kinfra.errors import InvalidNameError
from kinfra.testing.dockerkit import compose_projects, leftovers, unique_prefix
from kinfra.testing.example import kinfra, make_example_project
from kinfra.testing.gitrepo import git

GOOD = ["genome", "M1", "a", "v2.1", "feature_x", "x-y-z", "A" * 64, "0day"]

BAD_PARTS = [
    "",
    "..",
    ".hidden",
    "-rf",
    "--force",
    "a b",
    "a;rm -rf x",
    "a|b",
    "a&b",
    "$(id)",
    "`id`",
    "a>b",
    "a\nb",
    "a\tb",
    "a\x00b",
    "a\x1b[31m",
    "A" * 65,
    "a..b",
    "trailing.",
    "x.lock",
    "é",
    "a*b",
    "a?b",
    "~user",
    "a:b",
    "a\\b",
    "a'b",
    'a"b',
]


@pytest.mark.parametrize("value", GOOD)
def test_good_parts_are_accepted(value: str) -> None:
    assert validate_part("feature", value) == value


@pytest.mark.parametrize("value", BAD_PARTS)
def test_bad_parts_are_refused(value: str) -> None:
    with pytest.raises(InvalidNameError) as info:
        validate_part("feature", value)
    assert "\n" not in info.value.message  # control characters are escaped, one line


def test_parse_impl_target() -> None:
    assert parse_impl_target("genome/M1") == ("genome", "M1")
    for bad in ("genome", "genome/", "/M1", "a/b/c", "../M1", "genome/..", "genome/M 1"):
        with pytest.raises(InvalidNameError):
            parse_impl_target(bad)


def test_derived_names() -> None:
    impl = impl_name("shop", "genome", "M1")
    assert (impl.directory, impl.branch, impl.short) == (
        "shop-impl-genome-M1",
        "impl/genome-M1",
        "genome-M1",
    )
    spec = spec_name("shop", "genome")
    assert (spec.directory, spec.branch, spec.kind) == (
        "shop-spec-genome",
        "spec/genome",
        WorktreeKind.SPEC,
    )
    classified = classify_branch("shop", "impl/genome-M1")
    assert classified is not None and classified.kind is WorktreeKind.IMPL
    assert classify_branch("shop", "main") is None
    assert classify_branch("shop", "impl/") is None


CLI_BAD = [
    ["impl", "../evil/M1"],
    ["impl", "genome/.."],
    ["impl", "genome"],
    ["impl", "a b/M1"],
    ["impl", "genome/M1;touch pwned"],
    ["impl", "$(touch pwned)/M1"],
    ["impl", "genome/`touch pwned`"],
    ["impl", "genome/a|b"],
    ["impl", "/M1"],
    ["impl", "genome/"],
    ["impl", "genome/M1/extra"],
    ["impl", "genome/" + "M" * 65],
    ["impl", "genome/a\nb"],
    ["impl", "genome/a\x1bb"],
    ["impl", "genome/a..b"],
    ["impl", "genome/x.lock"],
    ["impl", "--", "-rf/M1"],
    ["impl", "--", "genome/-x"],
    ["spec", ".."],
    ["spec", "a/b"],
    ["spec", "--", "-x"],
    ["spec", "a b"],
    ["spec", ""],
    ["spec", "a>b"],
    ["done", "../app"],
    ["done", "a/b"],
    ["done", ""],
    ["done", "--", "--force"],
]


def _snapshot(repo: Path, home: Path, prefix: str) -> tuple[object, ...]:
    files = sorted(str(p.relative_to(home)) for p in home.rglob("*")) if home.exists() else []
    registry = (home / "registry.json").read_bytes() if (home / "registry.json").exists() else b""
    return (
        git(repo, "branch", "--list").stdout,
        git(repo, "worktree", "list").stdout,
        git(repo, "status", "--porcelain").stdout,
        sorted(os.listdir(repo.parent)),
        files,
        registry,
        compose_projects(prefix),
        leftovers(prefix),
    )


def test_bad_names_change_nothing(tmp_path: Path, kinfra_home: Path, docker_prefix: str) -> None:
    repo = make_example_project(tmp_path, docker_prefix, mini=True)
    assert kinfra(repo, "sandbox", "provision").returncode == 0
    before = _snapshot(repo, kinfra_home, docker_prefix)
    assert len(CLI_BAD) >= 20
    for args in CLI_BAD:
        result = kinfra(repo, *args)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert "kinfra: error:" in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert _snapshot(repo, kinfra_home, docker_prefix) == before
    assert not (repo / "pwned").exists() and not (repo.parent / "pwned").exists()


def test_lookup_names_accept_long_worktree_names_only() -> None:
    long_dir = "kt0a1b2c-impl-" + "f" * 60 + "-M1"
    for good in (long_dir, "f" * 60 + "-milestone1", "M1", "-M1", "x" * 255):
        assert validate_lookup("worktree", good) == good
    for bad in ("", "a/b", "../app", "a b", "a\tb", "a\nb", "a\x1b[31m", "a\x00b", "é", "x" * 256):
        with pytest.raises(InvalidNameError) as info:
            validate_lookup("worktree", bad)
        assert "\n" not in info.value.message


def test_done_finds_a_worktree_whose_name_is_longer_than_a_part(tmp_path: Path) -> None:
    feature = "f" * 60  # a valid part; its worktree names are longer than 64
    prefix = unique_prefix()
    repo = make_example_project(tmp_path, prefix, mini=True, milestones=(f"{feature}/milestone1",))
    created = kinfra(repo, "impl", f"{feature}/milestone1", "--no-sandbox")
    assert created.returncode == 0, created.stderr
    wt = tmp_path / f"{prefix}-impl-{feature}-milestone1"
    assert wt.is_dir()

    done = kinfra(repo, "done", f"{feature}-milestone1")  # 71 characters
    assert done.returncode == 0, done.stderr
    assert not wt.exists()
