"""The machine-wide registry: atomic, locked, strict about what it reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kinfra.adapters.registry import ProjectRecord, Registry, RegistryStore, SlotRecord
from kinfra.domain.config import Profile
from kinfra.errors import SlotClaimedError, SlotExhaustedError, StateFileError
from kinfra.testing.gitrepo import commit_all, make_repo


def seed_registry(path: Path, project: str = "demo", slots: int = 4) -> None:
    store = RegistryStore(path)
    profiles = {slots - 1: Profile.STANDARD, slots: Profile.HEAVY}
    with store.transaction() as registry:
        record = ProjectRecord(name=project, root="/src/demo", prefix=project)
        for slot_id in range(1, slots + 1):
            record.slots[slot_id] = SlotRecord(
                slot_id=slot_id,
                infrastructure_path=f"/tmp/{project}/slot-{slot_id}",
                profile=profiles.get(slot_id, Profile.LIGHT),
                workers={"worker": 1},
                ports={"api": 8000 + slot_id},
                compose_project=f"{project}-slot-{slot_id}",
                instance_id=f"id-{slot_id}",
            )
        registry.projects[project] = record


def test_claims_pick_lowest_adequate_profile_then_lowest_id(tmp_path: Path) -> None:
    path = tmp_path / "registry.json"
    seed_registry(path)
    store = RegistryStore(path)
    with store.transaction() as registry:
        assert registry.claim_free_slot("demo", "/wt/a", Profile.STANDARD).slot_id == 3
        assert registry.claim_free_slot("demo", "/wt/b").slot_id == 1
        assert registry.claim_free_slot("demo", "/wt/c", Profile.STANDARD).slot_id == 4
        # The same worktree asking again keeps its slot.
        assert registry.claim_free_slot("demo", "/wt/b").slot_id == 1
    with store.transaction() as registry, pytest.raises(SlotExhaustedError) as exhausted:
        registry.claim_free_slot("demo", "/wt/d", Profile.HEAVY)
    assert "in use" in exhausted.value.message
    with store.transaction() as registry, pytest.raises(SlotClaimedError):
        registry.claim("demo", 1, "/wt/other")
    loaded = store.load().require_project("demo")
    assert loaded.slot(3).claimed_by == "/wt/a"
    assert loaded.slot(3).claim_kind == "impl"
    assert loaded.slot(2).claimed_by is None


def test_failed_transaction_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "registry.json"
    seed_registry(path)
    before = path.read_bytes()
    store = RegistryStore(path)
    with pytest.raises(RuntimeError), store.transaction() as registry:
        registry.claim("demo", 1, "/wt/a")
        raise RuntimeError("boom")
    assert path.read_bytes() == before


_WORKER = r"""
import os, sys, time
from pathlib import Path
from kinfra.adapters.registry import RegistryStore
from kinfra.errors import SlotExhaustedError

registry_path, holders, rounds = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
store = RegistryStore(registry_path)
me = f"/wt/{os.getpid()}"
for i in range(rounds):
    while True:
        try:
            with store.transaction() as registry:
                slot = registry.claim_free_slot("demo", f"{me}-{i}")
            break
        except SlotExhaustedError:
            time.sleep(0.001)
    # While we hold the claim nobody else may: O_EXCL proves it.
    marker = holders / f"slot-{slot.slot_id}"
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        (holders / f"violation-{os.getpid()}-{i}").write_text(str(slot.slot_id))
        sys.exit(3)
    os.close(fd)
    time.sleep(0.002)
    os.unlink(marker)
    with store.transaction() as registry:
        registry.release("demo", slot.slot_id, claimant=f"{me}-{i}")
"""


def test_contention_never_gives_one_slot_two_holders_and_loses_no_update(tmp_path: Path) -> None:
    path = tmp_path / "registry.json"
    seed_registry(path, slots=4)
    generation_before = RegistryStore(path).load().generation
    holders = tmp_path / "holders"
    holders.mkdir()
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    processes, rounds = 20, 20
    procs = [
        subprocess.Popen([sys.executable, str(script), str(path), str(holders), str(rounds)])
        for _ in range(processes)
    ]
    codes = [p.wait(timeout=240) for p in procs]
    assert codes == [0] * processes
    assert list(holders.iterdir()) == []
    final = json.loads(path.read_text())  # valid JSON at the end
    registry = RegistryStore(path).load()
    assert all(s.claimed_by is None for s in registry.require_project("demo").slots.values())
    # Every claim and every release was one committed write: none lost.
    assert final["generation"] - generation_before == processes * rounds * 2


def test_corrupt_registry_is_an_error_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "registry.json"
    path.write_text('{"version": 1, "projects": {')
    before = path.read_bytes()
    with pytest.raises(StateFileError) as error:
        RegistryStore(path).load()
    assert str(path) in error.value.message and "corrupt" in error.value.message
    assert error.value.hint and "mv" in error.value.hint
    with pytest.raises(StateFileError), RegistryStore(path).transaction():
        pass
    assert path.read_bytes() == before


def test_wrong_shape_is_corrupt_too(tmp_path: Path) -> None:
    path = tmp_path / "registry.json"
    path.write_text(json.dumps({"version": 1, "projects": {"x": {"slots": {"1": {}}}}}))
    with pytest.raises(StateFileError, match="corrupt"):
        RegistryStore(path).load()


def test_registry_from_a_newer_kinfra_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "registry.json"
    path.write_text(json.dumps({"version": 99, "projects": {}}))
    before = path.read_bytes()
    with pytest.raises(StateFileError, match="version 99"):
        RegistryStore(path).load()
    with pytest.raises(StateFileError), RegistryStore(path).transaction():
        pass
    assert path.read_bytes() == before


def test_cli_reports_a_corrupt_registry_in_one_line(tmp_path: Path, kinfra_home: Path) -> None:
    repo = make_repo(tmp_path, "app", with_origin=False)
    (repo / "kinfra.toml").write_text('[project]\nname = "app"\n')
    commit_all(repo, "config")
    kinfra_home.mkdir(parents=True)
    registry = kinfra_home / "registry.json"
    registry.write_text("not json at all")
    for args in (["sandbox", "slots"], ["sandbox", "provision"]):
        result = subprocess.run(
            [sys.executable, "-m", "kinfra", *args],
            cwd=repo,
            capture_output=True,
            text=True,
            env=dict(os.environ),
        )
        assert result.returncode == 1
        first = result.stderr.splitlines()[0]
        assert first.startswith("kinfra: error: registry") and "corrupt" in first
        assert "Traceback" not in result.stderr
    assert registry.read_text() == "not json at all"


def test_registry_round_trips_every_field(tmp_path: Path) -> None:
    path = tmp_path / "registry.json"
    seed_registry(path)
    store = RegistryStore(path)
    with store.transaction() as registry:
        registry.claim("demo", 2, "/wt/x", kind="manual")
        registry.projects["demo"].local_prod = {"root": "/src/demo", "ports": {"api": 8000}}
    again = store.load()
    assert isinstance(again, Registry)
    assert again.to_json() == json.loads(path.read_text())
    assert again.require_project("demo").slot(2).claim_kind == "manual"
