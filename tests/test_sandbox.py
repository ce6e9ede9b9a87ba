"""The slot pool against a real Docker engine: provision, up, down, gate,
ports, volumes, override. Each test uses its own compose prefix and free
port bases, and the docker_prefix fixture removes everything it created."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from kinfra.domain import compose_yaml
from kinfra.domain.config import load_config
from kinfra.project import slot_of
from kinfra.testing import dockerkit
from kinfra.testing.cli import kinfra
from kinfra.testing.gitrepo import commit_all, git
from kinfra.workflows.gate import Outcome, run_checks

pytestmark = pytest.mark.docker


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def make_shop(parent: Path, prefix: str, bases: tuple[int, int], pool: int = 2) -> Path:
    """The bundled example in a fresh git repo, renamed and moved to free ports."""
    repo = parent / prefix
    shutil.copytree(dockerkit.EXAMPLE_DIR, repo)
    config = (repo / "kinfra.toml").read_text()
    config = config.replace('name = "shop"', f'name = "{prefix}"')
    config = config.replace('prefix = "shop"', f'prefix = "{prefix}"')
    config = config.replace("base = 8000", f"base = {bases[0]}")
    config = config.replace("base = 5432", f"base = {bases[1]}")
    config = config.replace("pool_size = 6", f"pool_size = {pool}")
    # Not a test of the memory budget: the machine's RAM must not matter.
    config = config.replace("[sandbox]\n", '[sandbox]\nmemory_budget = "1024 GB"\n')
    (repo / "kinfra.toml").write_text(config)
    git(repo.parent, "init", "-q", "-b", "main", str(repo))
    commit_all(repo, "shop example")
    return repo


@pytest.fixture
def shop(tmp_path: Path, docker_prefix: str) -> Path:
    api, db = dockerkit.free_port_bases(2, 8)
    return make_shop(tmp_path, docker_prefix, (api, db))


def ports_of(repo: Path, slot: int) -> dict[str, int]:
    config = (repo / "kinfra.toml").read_text()
    api = int(re.search(r"api = .*base = (\d+)", config).group(1))  # type: ignore[union-attr]
    db = int(re.search(r"db = .*base = (\d+)", config).group(1))  # type: ignore[union-attr]
    return {"api": api + slot, "db": db + slot}


def test_two_slots_run_side_by_side_each_with_its_own_code(shop: Path, tmp_path: Path) -> None:
    assert kinfra(shop, "sandbox", "provision").returncode == 0
    other = tmp_path / "other"
    (other / "app").mkdir(parents=True)

    one = kinfra(shop, "sandbox", "up", "--slot", "1")
    assert one.returncode == 0, one.stderr
    two = kinfra(shop, "sandbox", "up", "--slot", "2", "--code-dir", str(other))
    assert two.returncode == 0, two.stderr
    api1, api2 = ports_of(shop, 1)["api"], ports_of(shop, 2)["api"]
    assert f"http://localhost:{api1}" in one.stdout
    assert f"http://localhost:{api2}" in two.stdout

    assert fetch(f"http://127.0.0.1:{api1}/api/v1/health")[0] == 200
    assert fetch(f"http://127.0.0.1:{api2}/api/v1/health")[0] == 200
    (shop / "app" / "marker.txt").write_text("slot one only\n")
    assert fetch(f"http://127.0.0.1:{api1}/app/marker.txt") == (200, "slot one only\n")
    assert fetch(f"http://127.0.0.1:{api2}/app/marker.txt")[0] == 404

    listing = kinfra(shop, "sandbox", "slots", "--json")
    assert listing.returncode == 0, listing.stderr
    slots = {s["slot"]: s for s in json.loads(listing.stdout)}
    assert slots[1]["status"].startswith("running")
    assert slots[2]["status"].startswith("running")
    assert slots[2]["claimed_by"] == str(other.resolve())
    assert slots[1]["ports"] == ports_of(shop, 1)

    # One compose project name per slot, on every path.
    projects = dockerkit.compose_projects(shop.name)
    assert sorted(projects) == [f"{shop.name}-slot-1", f"{shop.name}-slot-2"]

    for slot in ("1", "2"):
        down = kinfra(shop, "sandbox", "down", "--slot", slot, "--volumes")
        assert down.returncode == 0, down.stderr
    assert dockerkit.leftovers(shop.name) == []
    after = json.loads(kinfra(shop, "sandbox", "slots", "--json").stdout)
    assert [s["claimed_by"] for s in after] == [None, None]
    assert [s["status"] for s in after] == ["stopped", "stopped"]


def test_named_volume_survives_down_and_goes_with_volumes(shop: Path) -> None:
    assert kinfra(shop, "sandbox", "provision", "--count", "1").returncode == 0
    assert kinfra(shop, "sandbox", "up", "--slot", "1").returncode == 0
    project = f"{shop.name}-slot-1"
    subprocess.run(
        [
            "docker",
            "compose",
            "-p",
            project,
            "exec",
            "-T",
            "db",
            "sh",
            "-c",
            "echo kept > /data/row.txt",
        ],
        check=True,
        capture_output=True,
    )
    db = ports_of(shop, 1)["db"]
    assert fetch(f"http://127.0.0.1:{db}/row.txt") == (200, "kept\n")

    assert kinfra(shop, "sandbox", "down", "--slot", "1").returncode == 0
    assert f"{project}_dbdata" in dockerkit.leftovers(shop.name)
    assert kinfra(shop, "sandbox", "up", "--slot", "1").returncode == 0
    assert fetch(f"http://127.0.0.1:{db}/row.txt") == (200, "kept\n")

    assert kinfra(shop, "sandbox", "down", "--slot", "1", "--volumes").returncode == 0
    assert dockerkit.leftovers(shop.name) == []


def test_busy_port_is_exit_3_and_nothing_is_created(shop: Path) -> None:
    assert kinfra(shop, "sandbox", "provision", "--count", "1").returncode == 0
    busy = ports_of(shop, 1)["db"]
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", busy))
        listener.listen()
        result = kinfra(shop, "sandbox", "up", "--slot", "1")
    assert result.returncode == 3
    assert f"port {busy}" in result.stderr
    assert "Traceback" not in result.stderr
    assert dockerkit.leftovers(shop.name) == []
    slots = json.loads(kinfra(shop, "sandbox", "slots", "--json").stdout)
    assert slots[0]["claimed_by"] is None


def test_failing_check_is_exit_2_and_slot_stays_claimed_for_inspection(shop: Path) -> None:
    config = (shop / "kinfra.toml").read_text()
    (shop / "kinfra.toml").write_text(
        config.replace('path = "/api/v1/health"', 'path = "/no-such-page"').replace(
            "timeout = 30", "timeout = 1"
        )
    )
    assert kinfra(shop, "sandbox", "provision", "--count", "1").returncode == 0
    result = kinfra(shop, "sandbox", "up", "--slot", "1")
    assert result.returncode == 2, result.stderr
    assert "startability gate" in result.stderr
    assert "status 404 (expected 200)" in result.stderr
    slots = json.loads(kinfra(shop, "sandbox", "slots", "--json").stdout)
    # Running slots are always claimed: the failed one is kept up, and claimed.
    assert slots[0]["status"].startswith("running")
    assert slots[0]["claimed_by"] == str(shop.resolve())
    assert kinfra(shop, "sandbox", "down", "--slot", "1").returncode == 0


def test_dependent_check_is_skipped_when_its_prerequisite_fails(shop: Path) -> None:
    config = (shop / "kinfra.toml").read_text()
    db_check = 'name = "db"\ntype = "tcp"\nport = "db"\ntimeout = 20'
    assert db_check in config
    (shop / "kinfra.toml").write_text(config.replace(db_check, db_check.replace("20", "1")))
    assert kinfra(shop, "sandbox", "provision", "--count", "1").returncode == 0
    assert kinfra(shop, "sandbox", "up", "--slot", "1").returncode == 0
    # With the db container stopped its port is closed: the db check fails and
    # the api check, which needs it, is skipped rather than waited for.
    subprocess.run(
        ["docker", "compose", "-p", f"{shop.name}-slot-1", "stop", "db"],
        check=True,
        capture_output=True,
    )
    status = kinfra(shop, "sandbox", "status", "--slot", "1", "--json")
    states = {c["service"]: c["state"] for c in json.loads(status.stdout)["containers"]}
    assert states["db"] == "exited"
    assert json.loads(status.stdout)["state"] == "degraded"

    cfg = load_config(shop / "kinfra.toml")
    results = {r.name: r for r in run_checks(cfg, slot_of(cfg, 1), lambda r: None)}
    assert results["db"].outcome is Outcome.FAILED
    assert results["api"].outcome is Outcome.SKIPPED
    assert "needs db" in results["api"].detail
    assert kinfra(shop, "sandbox", "down", "--slot", "1").returncode == 0


def test_override_replaces_base_ports_and_container_name(shop: Path) -> None:
    assert kinfra(shop, "sandbox", "provision", "--count", "2").returncode == 0
    env = dict(os.environ)
    override = Path(env["KINFRA_HOME"]) / shop.name / "slot-2" / "docker-compose.override.yml"
    document = compose_yaml.load(override.read_text(), str(override))
    assert isinstance(document["services"]["backend"]["ports"], compose_yaml.Override)
    merged = subprocess.run(
        [
            "docker",
            "compose",
            "-p",
            f"{shop.name}-slot-2",
            "--project-directory",
            str(shop),
            "--env-file",
            str(override.parent / ".env.sandbox"),
            "-f",
            str(shop / "docker-compose.yml"),
            "-f",
            str(override),
            "config",
            "--format",
            "json",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    services = json.loads(merged.stdout)["services"]
    ports = ports_of(shop, 2)
    assert [p["published"] for p in services["backend"]["ports"]] == [str(ports["api"])]
    assert services["backend"]["ports"][0]["host_ip"] == "127.0.0.1"
    assert [p["published"] for p in services["db"]["ports"]] == [str(ports["db"])]
    assert "container_name" not in services["backend"]
    assert "8000" not in json.dumps(services["backend"]["ports"])


def test_override_resets_ports_kinfra_does_not_manage(shop: Path) -> None:
    compose_file = shop / "docker-compose.yml"
    compose_file.write_text(
        compose_file.read_text().replace(
            "  worker:\n    build: ./worker\n",
            '  worker:\n    build: ./worker\n    ports:\n      - "9999:9999"\n',
        )
    )
    commit_all(shop, "worker publishes a port")
    assert kinfra(shop, "sandbox", "provision", "--count", "1").returncode == 0
    assert kinfra(shop, "sandbox", "up", "--slot", "1").returncode == 0
    containers = subprocess.run(
        ["docker", "compose", "-p", f"{shop.name}-slot-1", "ps", "--format", "json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "9999" not in containers
    assert kinfra(shop, "sandbox", "down", "--slot", "1").returncode == 0


def test_invalid_compose_is_reported_and_nothing_starts(shop: Path) -> None:
    assert kinfra(shop, "sandbox", "provision", "--count", "1").returncode == 0
    # A first good start records the validated inputs; the change below must
    # still be validated afresh, not waved through by that record.
    assert kinfra(shop, "sandbox", "up", "--slot", "1").returncode == 0
    assert kinfra(shop, "sandbox", "down", "--slot", "1", "--volumes").returncode == 0
    compose_file = shop / "docker-compose.yml"
    compose_file.write_text(compose_file.read_text().replace("init: true", "init: maybe", 1))
    result = kinfra(shop, "sandbox", "up", "--slot", "1")
    assert result.returncode == 1
    assert "docker compose rejected" in result.stderr
    assert "init" in result.stderr
    assert "Traceback" not in result.stderr
    assert dockerkit.leftovers(shop.name) == []


def test_provision_is_idempotent_and_never_touches_claimed_slots(shop: Path) -> None:
    first = kinfra(shop, "sandbox", "provision")
    assert first.returncode == 0 and first.stdout.count("created") == 2
    assert kinfra(shop, "sandbox", "up", "--slot", "2").returncode == 0
    home = Path(os.environ["KINFRA_HOME"])
    override = home / shop.name / "slot-2" / "docker-compose.override.yml"
    before = override.read_text()
    again = kinfra(shop, "sandbox", "provision")
    assert again.returncode == 0
    assert "claimed: untouched" in again.stdout and "refreshed" in again.stdout
    assert override.read_text() == before
    registry = json.loads((home / "registry.json").read_text())
    assert registry["projects"][shop.name]["slots"]["2"]["claim"]["path"] == str(shop.resolve())
    # A slot running with no claim is reported by provision and by slots.
    subprocess.run(
        [sys.executable, "-c", _UNCLAIM.format(path=str(home / "registry.json"), name=shop.name)],
        check=True,
    )
    reported = kinfra(shop, "sandbox", "provision")
    assert "slot 2 is running but unclaimed" in reported.stderr
    listed = kinfra(shop, "sandbox", "slots")
    assert "slot 2 is running but unclaimed" in listed.stderr
    assert kinfra(shop, "sandbox", "down", "--slot", "2").returncode == 0


_UNCLAIM = """
from kinfra.adapters.registry import RegistryStore
from pathlib import Path
with RegistryStore(Path({path!r})).transaction() as registry:
    registry.release({name!r}, 2)
"""


def test_provision_refuses_ports_of_another_project(tmp_path: Path, docker_prefix: str) -> None:
    api, db = dockerkit.free_port_bases(2, 8)
    first = make_shop(tmp_path, docker_prefix + "a", (api, db))
    second = make_shop(tmp_path, docker_prefix + "b", (api + 2, db + 20))
    assert kinfra(first, "sandbox", "provision").returncode == 0
    clash = kinfra(second, "sandbox", "provision")
    assert clash.returncode == 1
    assert f"host port {api + 2}" in clash.stderr
    assert f"{first.name} slot 2 (api)" in clash.stderr
    assert f"{second.name} local-prod (api)" in clash.stderr
    registry = json.loads((Path(os.environ["KINFRA_HOME"]) / "registry.json").read_text())
    assert list(registry["projects"]) == [first.name]


def test_missing_docker_is_one_clear_line(shop: Path, tmp_path: Path) -> None:
    assert kinfra(shop, "sandbox", "provision", "--count", "1").returncode == 0
    bin_dir = tmp_path / "bin-without-docker"
    bin_dir.mkdir()
    git_path = shutil.which("git")
    assert git_path
    (bin_dir / "git").symlink_to(git_path)
    env = dict(os.environ, PATH=str(bin_dir))
    result = kinfra(shop, "sandbox", "up", "--slot", "1", env=env)
    assert result.returncode == 1
    assert "Docker is not installed" in result.stderr
    assert "Traceback" not in result.stderr
    listed = kinfra(shop, "sandbox", "slots", env=env)
    assert listed.returncode == 0
    assert "live status unknown" in listed.stderr


def test_dead_daemon_is_one_clear_line(shop: Path) -> None:
    assert kinfra(shop, "sandbox", "provision", "--count", "1").returncode == 0
    env = dict(os.environ, DOCKER_HOST="unix:///nonexistent/docker.sock")
    result = kinfra(shop, "sandbox", "up", "--slot", "1", env=env)
    assert result.returncode == 1
    assert "Docker daemon is not running" in result.stderr
    assert "Traceback" not in result.stderr


def test_provision_after_local_prod_init_in_another_clone(shop: Path, tmp_path: Path) -> None:
    clone = tmp_path / "prod-clone"
    git(tmp_path, "clone", "-q", str(shop), str(clone))
    assert kinfra(clone, "local-prod", "init").returncode == 0
    provisioned = kinfra(shop, "sandbox", "provision", "--count", "1")
    assert provisioned.returncode == 0, provisioned.stderr
    registry = json.loads((Path(os.environ["KINFRA_HOME"]) / "registry.json").read_text())
    record = registry["projects"][shop.name]
    assert record["root"] == str(shop.resolve())
    assert record["local_prod"]["clone"] == str(clone.resolve())
    assert list(record["slots"]) == ["1"]


def test_one_checkout_holds_one_slot(shop: Path) -> None:
    assert kinfra(shop, "sandbox", "provision").returncode == 0
    assert kinfra(shop, "sandbox", "up", "--slot", "1").returncode == 0
    second = kinfra(shop, "sandbox", "up", "--slot", "2")
    assert second.returncode == 1
    assert "already holds slot 1" in second.stderr
    slots = json.loads(kinfra(shop, "sandbox", "slots", "--json").stdout)
    assert [s["claimed_by"] for s in slots] == [str(shop.resolve()), None]
    assert f"{shop.name}-slot-2" not in dockerkit.compose_projects(shop.name)
    assert kinfra(shop, "sandbox", "down", "--slot", "1").returncode == 0


def test_failed_start_leaves_no_secrets_on_disk_and_marker_is_private(shop: Path) -> None:
    config = shop / "kinfra.toml"
    config.write_text(config.read_text() + '\n[secrets]\nSHOP_TOKEN = "literal-token-value"\n')
    assert kinfra(shop, "sandbox", "provision", "--count", "1").returncode == 0
    slot_dir = Path(os.environ["KINFRA_HOME"]) / shop.name / "slot-1"
    assert kinfra(shop, "sandbox", "up", "--slot", "1").returncode == 0
    assert (slot_dir / ".env.secrets").is_file()
    assert (slot_dir / ".validated").stat().st_mode & 0o077 == 0
    assert kinfra(shop, "sandbox", "down", "--slot", "1").returncode == 0
    assert not (slot_dir / ".env.secrets").exists()

    compose_file = shop / "docker-compose.yml"
    compose_file.write_text(compose_file.read_text().replace("init: true", "init: maybe", 1))
    failed = kinfra(shop, "sandbox", "up", "--slot", "1")
    assert failed.returncode == 1
    assert not (slot_dir / ".env.secrets").exists()
    assert "literal-token-value" not in failed.stdout + failed.stderr


def test_interrupted_up_takes_its_stack_down_and_gives_the_slot_back(shop: Path) -> None:
    # A backend that never becomes healthy keeps `compose up --wait` busy for
    # the whole wait_timeout: the interrupt must stop compose, not wait it out.
    compose_file = shop / "docker-compose.yml"
    compose_file.write_text(
        compose_file.read_text().replace(
            "http://127.0.0.1:8080/api/v1/health", "http://127.0.0.1:8080/never"
        )
    )
    config = shop / "kinfra.toml"
    config.write_text(
        config.read_text().replace("pool_size = 2", "pool_size = 2\nwait_timeout = 300")
    )
    assert kinfra(shop, "sandbox", "provision", "--count", "1").returncode == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "kinfra", "sandbox", "up", "--slot", "1"],
        cwd=shop,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if "starting" in line:
            break
    time.sleep(2)  # compose is now waiting for a health that never comes
    proc.send_signal(signal.SIGINT)  # to kinfra alone, as a supervisor would
    try:
        code = proc.wait(timeout=60)
    finally:
        proc.kill()
        rest = proc.stderr.read()
        proc.stderr.close()
    assert code == 130, rest
    assert dockerkit.leftovers(shop.name) == [f"{shop.name}-slot-1_dbdata"]
    slots = json.loads(kinfra(shop, "sandbox", "slots", "--json").stdout)
    assert slots[0]["claimed_by"] is None
    assert slots[0]["status"] == "stopped"
