"""Real Docker for tests: availability, free ports, cleanup by project prefix."""

from __future__ import annotations

import json
import secrets
import shutil
import socket
from pathlib import Path

from kinfra.adapters.runner import run

EXAMPLE_DIR = Path(__file__).resolve().parents[3] / "examples" / "shop"


def docker_ready() -> bool:
    if shutil.which("docker") is None:
        return False
    checks = (
        ["docker", "info"],
        ["docker", "compose", "version"],
        ["docker", "image", "inspect", "busybox:1.36"],
    )
    return all(run(check_argv, check=False).ok for check_argv in checks)


def unique_prefix() -> str:
    """A project prefix no other test (or user stack) uses."""
    return "kt" + secrets.token_hex(3)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port_bases(count: int, span: int) -> list[int]:
    """``count`` bases whose ranges base..base+span are free and disjoint."""
    rng = secrets.SystemRandom()
    bases: list[int] = []
    while len(bases) < count:
        base = rng.randrange(20000, 60000 - span)
        if any(abs(base - other) <= span + 1 for other in bases):
            continue
        if all(port_is_free(p) for p in range(base, base + span + 1)):
            bases.append(base)
    return bases


def compose_projects(prefix: str) -> list[str]:
    result = run(["docker", "compose", "ls", "--all", "--format", "json"], check=False)
    if not result.ok or not result.stdout.strip():
        return []
    return [p["Name"] for p in json.loads(result.stdout) if p["Name"].startswith(prefix)]


def remove_everything(prefix: str) -> None:
    """Containers, networks and volumes of every compose project named prefix*,
    and the agent containers, volumes and image tags of projects named prefix*
    (first: an agent container keeps its slot's network in use)."""
    from kinfra.testing.agentkit import remove_agents

    remove_agents(prefix)
    for kind in ("container", "network", "volume"):
        flag = "-aq" if kind == "container" else "-q"
        listed = run(
            ["docker", kind, "ls", flag, "--filter", "label=com.docker.compose.project"],
            check=False,
        )
        ids = [line for line in listed.stdout.split() if line]
        if not ids:
            continue
        inspected = run(["docker", kind, "inspect", *ids], check=False)
        if not inspected.ok:
            continue
        doomed = []
        for item in json.loads(inspected.stdout):
            labels = (item.get("Config") or {}).get("Labels") or item.get("Labels") or {}
            if labels.get("com.docker.compose.project", "").startswith(prefix):
                doomed.append(item.get("Id") or item.get("Name"))
        if doomed:
            cmd = (
                ["docker", kind, "rm", "-f", *doomed]
                if kind == "container"
                else ["docker", kind, "rm", *doomed]
            )
            run(cmd, check=False)


def leftovers(prefix: str) -> list[str]:
    """Names of any container, network or volume of prefix* still present."""
    found = []
    for kind in ("container", "network", "volume"):
        flag = ["-a"] if kind == "container" else []
        listed = run(
            [
                "docker",
                kind,
                "ls",
                *flag,
                "--filter",
                "label=com.docker.compose.project",
                "--format",
                "{{.Names}}" if kind == "container" else "{{.Name}}",
            ],
            check=False,
        )
        found += [n for n in listed.stdout.split() if n.startswith(prefix)]
    return found


def remove_projects_under(directory: str) -> list[str]:
    """Remove every compose project (containers, network, volumes) whose
    working directory is ``directory`` or below it; returns their names."""
    listed = run(
        [
            "docker", "ps", "--all", "--filter", "label=com.docker.compose.project",
            "--format",
            '{{.Label "com.docker.compose.project"}}\t{{.Label "com.docker.compose.project.working_dir"}}',
        ],
        check=False,
    )  # fmt: skip
    doomed = sorted(
        {
            name
            for name, _, workdir in (line.partition("\t") for line in listed.stdout.splitlines())
            if name and (workdir == directory or workdir.startswith(directory.rstrip("/") + "/"))
        }
    )
    for name in doomed:
        run(["docker", "compose", "-p", name, "down", "--volumes", "--timeout", "1"], check=False)
    return doomed
