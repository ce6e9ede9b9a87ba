"""State files: atomic writes through a symlink to its target, one lock for
every link to a file, and a clear refusal of whatever bytes are not a state
file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kinfra.adapters.registry import ClaimKind, RegistryStore
from kinfra.adapters.statefile import atomic_write_json, read_versioned_json, temp_owner
from kinfra.domain.jsonshape import ShapeError, build
from kinfra.errors import StateFileError
from kinfra.orch.state import Attempt


def test_a_symlinked_registry_is_written_through_to_its_target(tmp_path: Path) -> None:
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    target = dotfiles / "registry.json"
    atomic_write_json(target, {"version": 2, "generation": 0, "projects": {}})
    home = tmp_path / "home"
    home.mkdir()
    (home / "registry.json").symlink_to(target)

    store = RegistryStore(home / "registry.json")
    with store.transaction() as registry:
        registry.add_project("demo", tmp_path / "repo", "demo")
    assert (home / "registry.json").is_symlink()  # never replaced by a regular file
    assert "demo" in json.loads(target.read_text())["projects"]
    # The lock sits beside the file the writes land in: every link shares it.
    assert store.lock_path == dotfiles / "registry.json.lock"
    assert sorted(p.name for p in dotfiles.iterdir()) == ["registry.json", "registry.json.lock"]
    with store.transaction() as registry:
        registry.require_project("demo")  # still one registry, read through the link


def test_a_dangling_symlink_is_an_error_never_an_empty_registry(tmp_path: Path) -> None:
    link = tmp_path / "registry.json"
    link.symlink_to(tmp_path / "unmounted" / "registry.json")
    with pytest.raises(StateFileError, match=r"is a symlink to .*, which does not exist"):
        RegistryStore(link).load()
    with pytest.raises(StateFileError), RegistryStore(link).transaction():
        pass
    assert link.is_symlink() and not link.exists()


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"\x00\xff\xfe", "not text: binary bytes at offset 1"),
        (b"", "invalid JSON at line 1"),
        (b'{"version": 1, "x": NaN}', "NaN is not a number JSON allows"),
        (b"[" * 100000, "invalid JSON"),
        (b'{"version": true}', "no integer 'version'"),
        (b'{"version": 0}', "invalid version 0"),
    ],
)
def test_any_bytes_that_are_not_a_state_file_are_one_clear_error(
    tmp_path: Path, content: bytes, says: str
) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(content)
    with pytest.raises(StateFileError, match=r"state .* is corrupt") as info:
        read_versioned_json(path, kind="state", current_version=1)
    assert says in info.value.message
    assert path.read_bytes() == content  # left untouched


def test_records_are_checked_field_by_field() -> None:
    attempt = build(Attempt, {"number": 1, "session_id": None, "started": "t", "cost_usd": 2})
    assert attempt.cost_usd == 2.0 and attempt.tokens == {}
    with pytest.raises(ShapeError, match=r"a\.number: expected an integer, got True"):
        build(Attempt, {"number": True, "session_id": None, "started": "t"}, "a")
    with pytest.raises(ShapeError, match=r"a\.tokens\.in: expected an integer"):
        build(
            Attempt, {"number": 1, "session_id": None, "started": "t", "tokens": {"in": "9"}}, "a"
        )
    with pytest.raises(ShapeError, match=r"a: 'started' is missing"):
        build(Attempt, {"number": 1, "session_id": None}, "a")
    with pytest.raises(ShapeError, match="'borrowed' is not one of impl, manual"):
        build(ClaimKind, "borrowed")
    with pytest.raises(ShapeError, match="expected an absolute path, got 'rel/x'"):
        build(Path, "rel/x")


def test_temp_files_name_their_writer() -> None:
    assert temp_owner(f".registry.json.{os.getpid()}.0123456789ab.tmp") == os.getpid()
    assert temp_owner(".notes.tmp") is None and temp_owner("registry.json") is None
