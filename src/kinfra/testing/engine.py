"""A second, real Docker engine for deploy tests: a remote host on this machine.

``second_engine()`` starts ``dockerd`` inside its own network namespace, with
its own data root, exec root, pidfile, config file and default address pool,
listening on TCP with TLS (client certificates, as a real remote engine
should) at an address of that namespace, reached from here over a veth pair.
A Docker context for it is created in a Docker config dir of the caller's
(never the user's ``~/.docker``). So the target's URLs are a real address,
not localhost, and the engine starts with no image at all.

Teardown (also when the test failed) removes its containers, stops the
daemon (TERM, then KILL), unmounts anything left below its root, deletes its
directories and the namespace. Engines whose owning process died without a
teardown (a killed test run) are swept on the next start.

Needs root, ``ip`` (iproute2), ``nsenter`` (util-linux), ``openssl`` and
``dockerd``; scripts/ensure-docker.sh installs them.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kinfra.adapters.lock import process_alive, process_start_time
from kinfra.adapters.runner import Result, run

# Engines live under a short path: unix sockets below the exec root are
# limited to 108 bytes, which pytest's tmp paths can exceed.
BASE = Path("/tmp")
PREFIX = "kt2e"  # netns, veth, directory and context names start with this
# Inside its namespace the engine's bridges cannot meet the first engine's,
# but its pool is kept apart from Docker's defaults (172.17-31.x, 192.168.x) anyway.
ADDRESS_POOL = "base=10.213.0.0/16,size=24"
_LINKS = ipaddress.IPv4Network("10.251.0.0/16")  # /30s for the veth pairs
_PORT = 2376


@dataclass(frozen=True)
class SecondEngine:
    """A running second Docker engine, and the Docker context that reaches it."""

    name: str  # the namespace's and the context's name
    address: str  # the engine host's address (its side of the veth)
    root: Path
    docker_config: Path  # the DOCKER_CONFIG that holds the context
    pid: int

    @property
    def context(self) -> str:
        return self.name

    @property
    def endpoint(self) -> str:
        return f"tcp://{self.address}:{_PORT}"

    def env(self) -> dict[str, str]:
        """What a docker or kinfra process needs to see the context."""
        return {"DOCKER_CONFIG": str(self.docker_config)}

    def docker(self, *args: str, check: bool = True, input: str | None = None) -> Result:
        return run(
            ["docker", "--context", self.context, *args],
            env=self.env(),
            check=check,
            input=input,
        )

    def image_ids(self) -> set[str]:
        out = self.docker("image", "ls", "--all", "--no-trunc", "--format", "{{.ID}}").stdout
        return set(out.split())

    def image_refs(self) -> set[str]:
        out = self.docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}").stdout
        return set(out.split())

    def containers(self) -> list[str]:
        return self.docker("ps", "--all", "--format", "{{.Names}}").stdout.split()


def _ip(*args: str, check: bool = True) -> Result:
    return run(["ip", *args], check=check)


def _pick_link() -> tuple[str, str]:
    """A /30 of 10.251.0.0/16 that no interface of this machine uses yet."""
    used = _ip("-4", "-o", "addr", "show").stdout + _ip("-4", "route", "show").stdout
    subnets = list(_LINKS.subnets(new_prefix=30))
    rng = secrets.SystemRandom()
    for _ in range(200):
        net = rng.choice(subnets)
        here, there = (str(h) for h in net.hosts())
        if here not in used and there not in used and str(net.network_address) not in used:
            return here, there
    raise RuntimeError("no free /30 in 10.251.0.0/16 for a test engine")


def _make_tls(directory: Path, address: str) -> None:
    """A CA, a server certificate for ``address`` and a client certificate (EC keys: fast)."""
    directory.mkdir(parents=True)

    def openssl(*args: str) -> None:
        run(["openssl", *args], cwd=directory)

    newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *newkey, "-keyout", "ca-key.pem", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=kinfra-test-ca")  # fmt: skip
    for name, subject, ext in (
        ("server", "/CN=engine", f"subjectAltName=IP:{address}\nextendedKeyUsage=serverAuth\n"),
        ("client", "/CN=client", "extendedKeyUsage=clientAuth\n"),
    ):
        (directory / f"{name}.ext").write_text(ext)
        openssl("req", *newkey, "-keyout", f"{name}-key.pem", "-out", f"{name}.csr",
                "-subj", subject)  # fmt: skip
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
                "-CAcreateserial", "-out", f"{name}-cert.pem", "-days", "2",
                "-extfile", f"{name}.ext")  # fmt: skip


@contextlib.contextmanager
def second_engine(docker_config: Path | None = None) -> Iterator[SecondEngine]:
    """Start a second dockerd in its own network namespace; stop and remove it after.

    ``docker_config`` is the Docker config dir the context is created in
    (default: one of the engine's own, removed with it).
    """
    sweep_stale_engines()
    name = f"{PREFIX}{secrets.token_hex(3)}"
    root = BASE / name
    root.mkdir(mode=0o700)
    own_config = docker_config is None
    config_dir = root / "docker-config" if docker_config is None else docker_config
    config_dir.mkdir(parents=True, exist_ok=True)
    proc: subprocess.Popen[bytes] | None = None
    here, there = _pick_link()
    try:
        (root / "owner.json").write_text(
            json.dumps({"pid": os.getpid(), "start": process_start_time(os.getpid())})
        )
        _ip("netns", "add", name)
        _ip("link", "add", f"{name}h", "type", "veth", "peer", "name", f"{name}c")
        _ip("link", "set", f"{name}c", "netns", name)
        _ip("addr", "add", f"{here}/30", "dev", f"{name}h")
        _ip("link", "set", f"{name}h", "up")
        for args in (
            ("addr", "add", f"{there}/30", "dev", f"{name}c"),
            ("link", "set", f"{name}c", "up"),
            ("link", "set", "lo", "up"),
        ):
            _ip("-n", name, *args)
        tls = root / "tls"
        _make_tls(tls, there)
        (root / "daemon.json").write_text("{}\n")  # never the machine's /etc/docker/daemon.json
        log = (root / "dockerd.log").open("wb")
        # nsenter --net only (not `ip netns exec`, whose fresh /sys hides the cgroup mounts).
        proc = subprocess.Popen(
            [
                "nsenter", f"--net=/run/netns/{name}",
                "dockerd",
                "--config-file", str(root / "daemon.json"),
                "--data-root", str(root / "data"),
                "--exec-root", str(root / "exec"),
                "--pidfile", str(root / "docker.pid"),
                "-H", f"tcp://{there}:{_PORT}",
                "--tlsverify",
                "--tlscacert", str(tls / "ca.pem"),
                "--tlscert", str(tls / "server-cert.pem"),
                "--tlskey", str(tls / "server-key.pem"),
                "--bridge", "none",
                "--iptables=false",
                "--ip-masq=false",
                "--default-address-pool", ADDRESS_POOL,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        log.close()
        engine = SecondEngine(name, there, root, config_dir, proc.pid)
        run(
            ["docker", "context", "create", name, "--docker",
             f"host={engine.endpoint},ca={tls / 'ca.pem'},"
             f"cert={tls / 'client-cert.pem'},key={tls / 'client-key.pem'}"],
            env=engine.env(),
        )  # fmt: skip
        _wait_ready(engine, proc)
        yield engine
    finally:
        _teardown(name, root, proc.pid if proc else None, config_dir, own_config)
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=1)


@contextlib.contextmanager
def registry(engine: SecondEngine) -> Iterator[str]:
    """A container registry (Debian's ``docker-registry``) on the engine's host,
    served over TLS with the engine's certificate; yields its ``host:port``.

    Both engines trust it through ``/etc/docker/certs.d/<host:port>/ca.crt``,
    which the daemons read at each connection (no restart), and which is
    removed again afterwards.
    """
    address = f"{engine.address}:5000"
    tls = engine.root / "tls"
    config = engine.root / "registry.yml"
    config.write_text(
        "version: 0.1\n"
        f"storage:\n  filesystem:\n    rootdirectory: {engine.root / 'registry'}\n"
        f"http:\n  addr: {address}\n  tls:\n"
        f"    certificate: {tls / 'server-cert.pem'}\n    key: {tls / 'server-key.pem'}\n"
    )
    trust = Path("/etc/docker/certs.d") / address
    trust.mkdir(parents=True, exist_ok=True)
    shutil.copy(tls / "ca.pem", trust / "ca.crt")
    log = (engine.root / "registry.log").open("wb")
    proc = subprocess.Popen(
        ["nsenter", f"--net=/run/netns/{engine.name}", "docker-registry", "serve", str(config)],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    log.close()
    try:
        deadline = time.monotonic() + 30
        while run(["openssl", "s_client", "-connect", address, "-CAfile", str(tls / "ca.pem")],
                  check=False, input="", timeout=5).returncode != 0:  # fmt: skip
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = (engine.root / "registry.log").read_text(errors="replace")[-1500:]
                raise RuntimeError(f"the test registry did not come up:\n{tail}")
            time.sleep(0.2)
        yield address
    finally:
        _stop(proc.pid, grace=5)
        with contextlib.suppress(ChildProcessError, subprocess.TimeoutExpired):
            proc.wait(timeout=1)
        shutil.rmtree(trust, ignore_errors=True)


def _wait_ready(engine: SecondEngine, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        if engine.docker("info", "--format", "{{.ID}}", check=False).ok:
            return
        time.sleep(0.25)
    tail = (engine.root / "dockerd.log").read_text(errors="replace").splitlines()[-15:]
    raise RuntimeError("the second dockerd did not come up:\n" + "\n".join(tail))


def _teardown(name: str, root: Path, pid: int | None, config_dir: Path, own_config: bool) -> None:
    if pid is not None and process_alive(pid):
        # Containers first, so that the daemon's own shutdown has nothing to wait for.
        env = {"DOCKER_CONFIG": str(config_dir)}
        listed = run(["docker", "--context", name, "ps", "-aq"], env=env, check=False)
        if listed.ok and listed.stdout.split():
            run(["docker", "--context", name, "rm", "-f", *listed.stdout.split()],
                env=env, check=False)  # fmt: skip
        _stop(pid)
    _stop_stray_processes(root)
    _unmount_below(root)
    run(["docker", "context", "rm", "-f", name], env={"DOCKER_CONFIG": str(config_dir)},
        check=False)  # fmt: skip
    if own_config:
        shutil.rmtree(config_dir, ignore_errors=True)
    shutil.rmtree(root, ignore_errors=True)
    _ip("netns", "del", name, check=False)  # takes the veth pair with it
    _ip("link", "del", f"{name}h", check=False)


def _stop(pid: int, grace: float = 20.0) -> None:
    for signum in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not process_alive(pid):
                return
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # reap it when it is our child
            time.sleep(0.1)


def _stop_stray_processes(root: Path) -> None:
    """containerd, shims or proxies of this engine still alive after the daemon
    (a KILL leaves them): found by the engine's root in their command line."""
    marker = str(root).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker in cmdline and int(entry.name) != os.getpid():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGKILL)


def _unmount_below(root: Path) -> None:
    prefix = str(root) + "/"
    with open("/proc/mounts", encoding="utf-8") as handle:
        points = [line.split()[1] for line in handle if line.split()[1].startswith(prefix)]
    for point in sorted(points, key=len, reverse=True):
        run(["umount", "-l", point], check=False)


def leftovers(name: str) -> list[str]:
    """What of engine ``name`` still exists: directory, namespace, veth, processes, mounts."""
    found = []
    root = BASE / name
    if root.exists():
        found.append(f"directory {root}")
    if name in _ip("netns", "list").stdout.split():
        found.append(f"netns {name}")
    if _ip("link", "show", f"{name}h", check=False).ok:
        found.append(f"link {name}h")
    with open("/proc/mounts", encoding="utf-8") as handle:
        found += [f"mount {line.split()[1]}" for line in handle if str(root) in line]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if str(root).encode() in (entry / "cmdline").read_bytes():
                    found.append(f"process {entry.name}")
    return found


def sweep_stale_engines() -> list[str]:
    """Tear down engines whose owning process is gone (a test run that was killed)."""
    swept = []
    for root in BASE.glob(f"{PREFIX}*"):
        try:
            owner = json.loads((root / "owner.json").read_text())
        except (OSError, ValueError):
            if time.time() - root.stat().st_mtime < 60:
                continue  # being created right now
            owner = {"pid": 0, "start": None}
        if owner["pid"] and process_alive(int(owner["pid"]), owner.get("start")):
            continue
        pid = None
        with contextlib.suppress(OSError, ValueError):
            pid = int((root / "docker.pid").read_text().strip())
        _teardown(root.name, root, pid, root / "docker-config", own_config=True)
        swept.append(root.name)
    return swept
