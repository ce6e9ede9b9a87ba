"""The agent container in tests: a locally built base image, a worktree owned
by a non-root user, and cleanup of agent containers, volumes and tags."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from kinfra.adapters.runner import run
from kinfra.domain.agent_box import IMAGE_REPOSITORY, LABEL_PROJECT
from kinfra.domain.slot import parse_env_file
from kinfra.testing.cli import kinfra
from kinfra.testing.dockerkit import EXAMPLE_DIR

# Made by scripts/ensure-agent-base.sh (debootstrap + docker import).
BASE_IMAGE = "kinfra-test/debian:bookworm-minbase"
ENSURE_BASE = EXAMPLE_DIR.parents[1] / "scripts" / "ensure-agent-base.sh"
# The proxy these machines reach npm and Debian through is trusted by this
# bundle; elsewhere it is the ordinary system bundle, which does no harm.
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
# The user that owns test worktrees: tests run as root, the agent never does.
OWNER_UID = 1000
OWNER_GID = 1000
# git run by root (the tests, kinfra under test) in repositories handed to
# that user would refuse them as of "dubious ownership" without this.
SAFE_DIRECTORY_ENV = {
    "GIT_CONFIG_COUNT": "1",
    "GIT_CONFIG_KEY_0": "safe.directory",
    "GIT_CONFIG_VALUE_0": "*",
}


def ensure_base_image() -> str:
    run(["bash", str(ENSURE_BASE), BASE_IMAGE], capture=False)
    return BASE_IMAGE


def agent_config(extra: str = "") -> str:
    """An ``[agent]`` section on the test base image, for make_example_project."""
    return f'\n[agent]\nbase_image = "{BASE_IMAGE}"\n{extra}'


def hand_to_owner(*paths: Path) -> None:
    """chown -R OWNER_UID:OWNER_GID, as if a normal user had made the files."""
    for top in paths:
        os.lchown(top, OWNER_UID, OWNER_GID)
        for directory, dirs, files in os.walk(top):
            for name in dirs + files:
                os.lchown(os.path.join(directory, name), OWNER_UID, OWNER_GID)


def _agent_things(prefix: str) -> tuple[list[str], list[str], list[str]]:
    """(containers, volumes, project image tags) of agent boxes of projects prefix*."""
    fmt = f'{{{{.ID}}}}\t{{{{.Label "{LABEL_PROJECT}"}}}}'
    found: list[list[str]] = []
    for kind in ("container", "volume"):
        listed = run(
            ["docker", kind, "ls", *(["-a"] if kind == "container" else []),
             "--filter", f"label={LABEL_PROJECT}", "--format",
             fmt if kind == "container" else fmt.replace(".ID", ".Name")],
            check=False,
        )  # fmt: skip
        found.append(
            [
                ident
                for ident, _, project in (
                    line.partition("\t") for line in listed.stdout.splitlines()
                )
                if project.startswith(prefix)
            ]
        )
    tags = run(
        ["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}",
         f"{IMAGE_REPOSITORY}/{prefix}*"],
        check=False,
    ).stdout.split()  # fmt: skip
    return found[0], found[1], tags


def remove_agents(prefix: str) -> None:
    containers, volumes, tags = _agent_things(prefix)
    if containers:
        run(["docker", "rm", "-f", *containers], check=False)
    if volumes:
        run(["docker", "volume", "rm", "-f", *volumes], check=False)
    if tags:
        run(["docker", "image", "rm", "--no-prune", *tags], check=False)


def agent_leftovers(prefix: str) -> list[str]:
    containers, volumes, tags = _agent_things(prefix)
    return containers + volumes + tags


@dataclass(frozen=True)
class AgentProject:
    """A test project whose impl worktrees have their slots up, and its agent image."""

    repo: Path
    prefix: str
    worktrees: tuple[Path, ...]  # impl worktrees, each with its slot up
    image: str  # the agent image's content tag

    @property
    def worktree(self) -> Path:
        return self.worktrees[0]

    def kinfra(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """kinfra run inside the first worktree (or ``cwd``)."""
        return kinfra(cwd or self.worktree, *args)

    def slot_env(self, worktree: Path | None = None) -> dict[str, str]:
        return parse_env_file(((worktree or self.worktree) / ".env.sandbox").read_text())


def make_agent_project(
    parent: Path,
    prefix: str,
    image: str,
    extra: str = "",
    milestones: tuple[str, ...] = ("genome/M1",),
) -> AgentProject:
    """The shop example with ``[agent]`` on the test base (plus ``extra``
    config), provisioned, an impl worktree per milestone with its slot up,
    the project's agent image tag set (by `kinfra agent build`, which finds
    the session's image), and everything handed to a non-root owner."""
    from kinfra.testing.example import make_example_project

    repo = make_example_project(
        parent,
        prefix,
        pool_size=len(milestones) + 1,
        extra_config=agent_config() + extra,
        milestones=milestones,
    )
    assert kinfra(repo, "sandbox", "provision").returncode == 0
    if "[shared" in extra:
        assert kinfra(repo, "init-shared", "--minimal").returncode == 0
    worktrees = []
    for target in milestones:
        made = kinfra(repo, "impl", target)
        assert made.returncode == 0, made.stderr
        worktrees.append(parent / f"{prefix}-impl-{target.replace('/', '-')}")
    built = kinfra(repo, "agent", "build", "--ca-bundle", CA_BUNDLE)
    assert built.returncode == 0, built.stderr
    assert f"agent image {image} is up to date" in built.stdout, built.stdout
    hand_to_owner(repo, *worktrees)
    return AgentProject(repo, prefix, tuple(worktrees), image)


def bridge_gateway() -> str:
    """The host's address on Docker's default bridge: where a server must
    listen for a container to reach it as host.docker.internal."""
    result = run(
        ["docker", "network", "inspect", "bridge", "--format",
         "{{range .IPAM.Config}}{{.Gateway}}{{end}}"],
    )  # fmt: skip
    return result.stdout.strip()


def processes_in(container: str) -> list[str]:
    """The command lines of everything running in the container."""
    script = 'for f in /proc/[0-9]*/cmdline; do tr "\\0" " " < "$f"; echo; done'
    result = run(["docker", "exec", container, "sh", "-c", script])
    return [line.strip() for line in result.stdout.splitlines() if line.strip()]
