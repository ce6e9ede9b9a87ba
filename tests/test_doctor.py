"""kinfra doctor: finds and fixes drift between registry, git and Docker."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from kinfra.adapters.registry import ClaimKind, RegistryStore, SlotStatus, Ticket
from kinfra.testing import interrupt
from kinfra.testing.example import claims, impl_worktree, kinfra, make_example_project, registry
from kinfra.testing.gitrepo import git


def _running(prefix: str) -> set[str]:
    out = subprocess.run(
        ["docker", "compose", "ls", "--format", "json"], capture_output=True, text=True, check=True
    ).stdout
    return {p["Name"] for p in json.loads(out or "[]") if p["Name"].startswith(prefix)}


def _start_outside_kinfra(repo: Path, home: Path, prefix: str, slot: int) -> None:
    """What a user running compose by hand does: the slot's files, no claim."""
    assert str(slot) in registry(home)["projects"][prefix]["slots"]
    directory = home / prefix / f"slot-{slot}"
    subprocess.run(
        [
            "docker", "compose", "-p", f"{prefix}-slot-{slot}",
            "--project-directory", str(repo),
            "--env-file", str(directory / ".env.sandbox"),
            "-f", str(repo / "docker-compose.yml"),
            "-f", str(directory / "docker-compose.override.yml"),
            "up", "-d",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip


def test_doctor_finds_and_fixes_stale_claim_and_unclaimed_slot(
    tmp_path: Path, kinfra_home: Path, docker_prefix: str
) -> None:
    repo = make_example_project(tmp_path, docker_prefix, pool_size=2, mini=True)
    assert kinfra(repo, "sandbox", "provision").returncode == 0
    assert kinfra(repo, "doctor").returncode == 0
    assert kinfra(repo, "impl", "genome/M1").returncode == 0
    wt = (tmp_path / f"{docker_prefix}-impl-genome-M1").resolve()
    subprocess.run(["rm", "-rf", str(wt)], check=True)
    _start_outside_kinfra(repo, kinfra_home, docker_prefix, 2)
    assert _running(docker_prefix) == {f"{docker_prefix}-slot-1", f"{docker_prefix}-slot-2"}

    report = kinfra(repo, "doctor", "--json")
    assert report.returncode == 1
    kinds = sorted(f["kind"] for f in json.loads(report.stdout)["findings"])
    assert kinds == ["running_unclaimed", "stale_claim", "stale_git_entry"]
    text = kinfra(repo, "doctor").stdout
    assert f"slot 1 is claimed by {wt}, which no longer exists" in text
    assert "slot 2" in text and "running with no claim" in text
    # Reporting changed nothing.
    assert claims(kinfra_home, docker_prefix)[1] == str(wt)
    assert len(_running(docker_prefix)) == 2

    fixed = kinfra(repo, "doctor", "--fix")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert fixed.stdout.count("✓ fixed") == 3
    assert claims(kinfra_home, docker_prefix) == {1: None, 2: None}
    assert _running(docker_prefix) == set()
    assert str(wt) not in git(repo, "worktree", "list").stdout
    assert repo.is_dir() and (repo / "kinfra.toml").is_file()

    again = kinfra(repo, "doctor")
    assert again.returncode == 0 and "no problems found" in again.stdout


def test_doctor_reports_claimed_but_down_and_unknown_stack(
    tmp_path: Path, kinfra_home: Path, docker_prefix: str
) -> None:
    repo, wt = impl_worktree(tmp_path, docker_prefix)
    assert kinfra(wt, "sandbox", "down").returncode == 0
    # A stack named like a slot of this project that the registry never had.
    subprocess.run(
        ["docker", "compose", "-p", f"{docker_prefix}-slot-9", "-f", "-", "up", "-d"],
        input="services:\n  x:\n    image: busybox:1.36\n    command: ['sleep', '300']\n    init: true\n",
        text=True,
        check=True,
        capture_output=True,
    )
    report = kinfra(repo, "doctor", "--fix", "--json")
    findings = {f["kind"]: f for f in json.loads(report.stdout)["findings"]}
    assert set(findings) == {"claimed_down", "unknown_stack"}
    assert findings["claimed_down"]["fixed"] is None  # reported, never "fixed" by force
    assert f"{docker_prefix}-slot-9" in findings["unknown_stack"]["message"]
    assert report.returncode == 1
    # --fix touched neither: the claim stays, the foreign stack runs.
    assert claims(kinfra_home, docker_prefix)[1] == str(wt.resolve())
    assert f"{docker_prefix}-slot-9" in _running(docker_prefix)


def test_doctor_and_done_in_another_clone_leave_the_owners_claims_alone(
    tmp_path: Path, kinfra_home: Path, docker_prefix: str
) -> None:
    repo, wt = impl_worktree(tmp_path, docker_prefix)
    # A second full clone of the same project (what local-prod runs from).
    clone = tmp_path / "b" / "app"
    clone.parent.mkdir()
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    before = registry(kinfra_home)

    fixed = kinfra(clone, "doctor", "--fix")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert f"slot 1 is held by another checkout ({repo.resolve()})" in fixed.stderr
    assert "fixed" not in fixed.stdout
    done = kinfra(clone, "done", "genome-M1", "--force")
    assert done.returncode == 1 and "No worktree matching 'genome-M1'" in done.stderr
    impl = kinfra(clone, "impl", "genome/M1")
    assert impl.returncode == 1 and "belong to the checkout at" in impl.stderr
    assert not (clone.parent / wt.name).exists()

    assert registry(kinfra_home) == before
    assert claims(kinfra_home, docker_prefix)[1] == str(wt)
    assert _running(docker_prefix) == {f"{docker_prefix}-slot-1"}
    assert wt.is_dir()
    # In the owning checkout nothing is wrong.
    assert kinfra(repo, "doctor").returncode == 0


def test_doctor_fix_leaves_the_claim_of_a_running_impl_alone(
    tmp_path: Path, kinfra_home: Path, docker_prefix: str
) -> None:
    repo = make_example_project(tmp_path, docker_prefix, pool_size=2, mini=True)
    assert kinfra(repo, "sandbox", "provision").returncode == 0
    starting = (tmp_path / f"{docker_prefix}-impl-genome-M1").resolve()  # not created yet
    abandoned = tmp_path / f"{docker_prefix}-impl-old-M1"
    with RegistryStore().transaction() as reg:  # no run behind it: stale
        reg.claim(docker_prefix, 2, abandoned, kind=ClaimKind.IMPL)
    # A real `kinfra impl`, held just after its claim (alive, its worktree to come).
    run = interrupt.start(repo, ["impl", "genome/M1"], tmp_path / "trace", "impl:claimed", {})
    try:
        interrupt.wait_stopped_at(run, "impl:claimed")
        slot = next(k for k, v in claims(kinfra_home, docker_prefix).items() if v == str(starting))

        report = kinfra(repo, "doctor", "--fix", "--json")
        data = json.loads(report.stdout)
        assert [(f["kind"], f["slot"], f["fixed"]) for f in data["findings"]] == [
            ("stale_claim", 2, "fixed")
        ]
        assert any("`kinfra impl genome/M1` is running" in n for n in data["notes"])
        assert report.returncode == 0
        assert claims(kinfra_home, docker_prefix)[slot] == str(starting)
    finally:
        interrupt.end(run)


def test_doctor_names_a_double_claim_and_fix_keeps_the_running_slot(
    tmp_path: Path, kinfra_home: Path, docker_prefix: str
) -> None:
    repo, wt = impl_worktree(tmp_path, docker_prefix, pool_size=3)  # slot 1, running
    with RegistryStore().transaction() as reg:  # a second claim by the same worktree
        reg.claim(docker_prefix, 3, wt, kind=ClaimKind.IMPL)

    # Inside it, `sandbox up` cannot tell which slot is meant: refused, named.
    up = kinfra(wt, "sandbox", "up")
    assert up.returncode == 1 and f"{wt.name} holds slots 1, 3" in up.stderr
    assert claims(kinfra_home, docker_prefix) == {1: str(wt), 2: None, 3: str(wt)}

    report = json.loads(kinfra(repo, "doctor", "--json").stdout)
    (double,) = [f for f in report["findings"] if f["kind"] == "double_claim"]
    assert f"{wt} holds 2 slots (1, 3)" in double["message"]
    assert "slot 1 is its slot" in double["message"]
    fixed = kinfra(repo, "doctor", "--fix")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert claims(kinfra_home, docker_prefix) == {1: str(wt), 2: None, 3: None}
    assert _running(docker_prefix) == {f"{docker_prefix}-slot-1"}
    assert kinfra(wt, "sandbox", "up").returncode == 0


def test_doctor_repairs_files_and_registry_entries_that_disagree(
    tmp_path: Path, kinfra_home: Path, docker_prefix: str
) -> None:
    repo, wt = impl_worktree(tmp_path, docker_prefix)
    # The worktree's env file names another slot; slot 2 (stopped) says
    # "running" and keeps an old secrets file; a killed write left a temp
    # file; a killed waiter left its ticket in the memory queue.
    (wt / ".env.sandbox").write_text("SLOT_NUMBER=2\n")
    with RegistryStore().transaction() as reg:
        reg.set_status(docker_prefix, 2, SlotStatus.RUNNING)
        reg.queue.append(Ticket("t1", docker_prefix, "impl x/M1", 100, _dead_pid(), None, "now"))
    secrets = kinfra_home / docker_prefix / "slot-2" / ".env.secrets"
    secrets.write_text("TOKEN=old\n")
    os.utime(secrets, (time.time() - 3600, time.time() - 3600))
    temp = kinfra_home / f".registry.json.{_dead_pid()}.0123456789ab.tmp"
    temp.write_text("{")

    report = json.loads(kinfra(repo, "doctor", "--json").stdout)
    kinds = sorted(f["kind"] for f in report["findings"])
    assert kinds == [
        "dead_ticket", "env_file_wrong", "leftover_temp", "secrets_left", "status_outdated",
    ]  # fmt: skip
    fixed = kinfra(repo, "doctor", "--fix")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "SLOT_NUMBER=1" in (wt / ".env.sandbox").read_text()
    assert not secrets.exists() and not temp.exists()
    data = registry(kinfra_home)
    assert data["projects"][docker_prefix]["slots"]["2"]["status"] == "stopped"
    assert data["queue"] == []
    assert kinfra(repo, "doctor").returncode == 0


def test_doctor_fix_forgets_only_kinfras_stale_git_entries(tmp_path: Path) -> None:
    repo = make_example_project(tmp_path, "kt" + os.urandom(3).hex(), mini=True)
    mine = tmp_path / "scratch"
    git(repo, "worktree", "add", "-q", "-b", "scratch", str(mine))
    subprocess.run(["rm", "-rf", str(mine)], check=True)

    fixed = kinfra(repo, "doctor", "--fix")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "kinfra did not make it, so it is left alone" in fixed.stderr
    assert str(mine) in git(repo, "worktree", "list").stdout  # the user's to prune


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid
