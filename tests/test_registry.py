"""The machine-wide registry: atomic, locked, strict about what it reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kinfra.adapters.registry import (
    REGISTRY_VERSION,
    ClaimKind,
    LocalProdRecord,
    Registry,
    RegistryStore,
    SlotRecord,
    SlotStatus,
)
from kinfra.domain.config import Profile
from kinfra.errors import SlotClaimedError, SlotExhaustedError, StateFileError
from kinfra.testing.gitrepo import commit_all, make_repo

DATA = Path(__file__).parent / "data" / "registry"
PROFILES = {1: Profile.LIGHT, 2: Profile.LIGHT, 3: Profile.STANDARD, 4: Profile.HEAVY}


def seed_registry(path: Path, project: str = "demo", slots: int = 4) -> None:
    store = RegistryStore(path)
    with store.transaction() as registry:
        record = registry.add_project(project, Path("/src/demo"), project)
        for slot_id in range(1, slots + 1):
            record.slots[slot_id] = SlotRecord(slot_id, instance_id=f"id-{slot_id}")


def test_claims_pick_lowest_adequate_profile_then_lowest_id(tmp_path: Path) -> None:
    path = tmp_path / "registry.json"
    seed_registry(path)
    store = RegistryStore(path)
    with store.transaction() as registry:
        assert registry.claim_free_slot("demo", "/wt/a", PROFILES, Profile.STANDARD).slot_id == 3
        assert registry.claim_free_slot("demo", "/wt/b", PROFILES).slot_id == 1
        assert registry.claim_free_slot("demo", "/wt/c", PROFILES, Profile.STANDARD).slot_id == 4
        # The same worktree asking again keeps its slot.
        assert registry.claim_free_slot("demo", "/wt/b", PROFILES).slot_id == 1
    with store.transaction() as registry, pytest.raises(SlotExhaustedError) as exhausted:
        registry.claim_free_slot("demo", "/wt/d", PROFILES, Profile.HEAVY)
    assert "in use" in exhausted.value.message
    with store.transaction() as registry, pytest.raises(SlotClaimedError):
        registry.claim("demo", 1, "/wt/other")
    loaded = store.load().require_project("demo")
    assert loaded.slot(3).claimant == Path("/wt/a")
    assert loaded.slot(3).claim is not None and loaded.slot(3).claim.kind is ClaimKind.IMPL
    assert loaded.slot(2).claim is None


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
from kinfra.domain.config import Profile
from kinfra.errors import SlotExhaustedError

registry_path, holders, rounds = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
store = RegistryStore(registry_path)
me = f"/wt/{os.getpid()}"
for i in range(rounds):
    while True:
        try:
            with store.transaction() as registry:
                slot = registry.claim_free_slot("demo", f"{me}-{i}", {1: Profile.LIGHT})
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
    assert all(s.claim is None for s in registry.require_project("demo").slots.values())
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
    path.write_text(
        json.dumps({"version": REGISTRY_VERSION, "projects": {"x": {"slots": {"1": {}}}}})
    )
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
        registry.claim("demo", 2, "/wt/x", kind=ClaimKind.MANUAL)
        registry.set_status("demo", 2, SlotStatus.RUNNING)
        registry.projects["demo"].local_prod = LocalProdRecord(
            Path("/src/prod"), "demo-local-prod-1", "2026-01-01T00:00:00Z"
        )
    again = store.load()
    assert isinstance(again, Registry)
    assert again.to_json() == json.loads(path.read_text())
    slot = again.require_project("demo").slot(2)
    assert slot.claim is not None and slot.claim.kind is ClaimKind.MANUAL
    assert slot.status is SlotStatus.RUNNING
    assert again.require_project("demo").local_prod == registry.projects["demo"].local_prod


# --- paths and the migration of older files -------------------------------------------


def test_claims_are_stored_normalized_and_compared_normalized(tmp_path: Path) -> None:
    path = tmp_path / "registry.json"
    seed_registry(path)
    real = tmp_path / "real-checkout"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    store = RegistryStore(path)
    with store.transaction() as registry:
        registry.claim("demo", 1, link / "sub" / "..", kind=ClaimKind.MANUAL)
    on_disk = json.loads(path.read_text())["projects"]["demo"]["slots"]["1"]["claim"]
    assert on_disk["path"] == str(real.resolve())
    record = store.load().require_project("demo")
    assert record.slot_claimed_by(link) == record.slot(1)
    with store.transaction() as registry:
        registry.release("demo", 1, claimant=str(link))  # the same claimant, spelled otherwise
    assert store.load().require_project("demo").slot(1).claim is None


def test_a_registry_written_by_version_1_is_migrated_under_the_lock(tmp_path: Path) -> None:
    """tests/data/registry/v1.json is what kinfra wrote before ports and names
    left the registry: provisioned pool, an impl and a manual claim, local-prod."""
    path = tmp_path / "registry.json"
    original = (DATA / "v1.json").read_text()
    path.write_text(original)
    store = RegistryStore(path)

    # Read-only access understands it and leaves the file alone.
    loaded = store.load().require_project("shop")
    assert path.read_text() == original
    assert loaded.root == Path("/home/dev/src/app")
    impl, manual, free = loaded.slot(1), loaded.slot(2), loaded.slot(3)
    assert impl.claim is not None and impl.claim.kind is ClaimKind.IMPL
    assert impl.claim.path == Path("/home/dev/src/shop-impl-genome-M1")
    assert impl.claim.at == "2026-12-01T22:15:26Z"
    assert manual.claim is not None and manual.claim.kind is ClaimKind.MANUAL
    assert free.claim is None and free.instance_id == "shop-slot-3-610d6a6f"
    assert loaded.local_prod == LocalProdRecord(
        clone=Path("/home/dev/src/prod"),
        instance_id="shop-local-prod-20261201221526",
        registered_at="2026-12-01T22:15:26Z",
        status=SlotStatus.STOPPED,
        created_project_record=False,
    )

    # The first transaction writes it in the current format, even unchanged.
    with store.transaction():
        pass
    data = json.loads(path.read_text())
    assert data["version"] == REGISTRY_VERSION
    assert data["generation"] == 4  # 3 before, +1 for the migration
    slot = data["projects"]["shop"]["slots"]["1"]
    assert set(slot) == {"instance_id", "status", "claim"}  # no ports, no compose name
    assert set(data["projects"]["shop"]["local_prod"]) == {
        "clone",
        "instance_id",
        "registered_at",
        "status",
        "created_project_record",
    }
    assert (tmp_path / "registry.json.v1.bak").read_text() == original
    # Read back, the migrated file says exactly what the old one did.
    scratch = tmp_path / "scratch.json"
    scratch.write_text(original)
    assert store.load().to_json() == {**RegistryStore(scratch).load().to_json(), "generation": 4}
    with store.transaction():
        pass  # nothing left to migrate: nothing written
    assert json.loads(path.read_text())["generation"] == 4


def test_a_version_1_registry_works_through_the_cli(tmp_path: Path, kinfra_home: Path) -> None:
    repo = make_repo(tmp_path, "app", with_origin=False)
    (repo / "kinfra.toml").write_text(
        '[project]\nname = "shop"\n[ports]\napi = { service = "web", target = 80, base = 18000 }\n'
    )
    commit_all(repo, "config")
    kinfra_home.mkdir(parents=True)
    text = (DATA / "v1.json").read_text().replace("/home/dev/src/app", str(repo.resolve()))
    (kinfra_home / "registry.json").write_text(text)
    result = subprocess.run(
        [sys.executable, "-m", "kinfra", "sandbox", "slots", "--json"],
        cwd=repo,
        capture_output=True,
        text=True,
        env=dict(os.environ),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    slots = {s["slot"]: s for s in json.loads(result.stdout)}
    # Ports come from kinfra.toml now, not from the stale copy in the old file.
    assert slots[1]["ports"] == {"api": 18001}
    assert slots[2]["claimed_by"] == str(repo.resolve())
    assert slots[1]["compose_project"] == "shop-slot-1"
