"""The agent container of one impl worktree, derived from (config, worktree): pure.

Its name, its volumes, its labels, its environment and its mounts all come
from here, so `run`, `shell`, `reset`, `status`, `rm` and `done` address the
same container and the same volumes. The volumes are named after the
worktree's directory, so a worktree made again under the same name finds its
`keep` volumes again.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

# The labels live apart for `kinfra done`'s quick check; everyone else takes them from here.
from kinfra.domain.agent_labels import LABEL_BOX as LABEL_BOX
from kinfra.domain.agent_labels import LABEL_INPUTS as LABEL_INPUTS
from kinfra.domain.agent_labels import LABEL_PROJECT as LABEL_PROJECT
from kinfra.domain.agent_labels import LABEL_USER as LABEL_USER
from kinfra.domain.agent_labels import LABEL_VOLUME as LABEL_VOLUME
from kinfra.domain.agent_labels import LABEL_WORKTREE as LABEL_WORKTREE
from kinfra.domain.agent_labels import container_name
from kinfra.domain.config import Config
from kinfra.domain.config_agent import HOME, LOGS, SHARED, WORKSPACE

IMAGE_REPOSITORY = "kinfra-agent"  # content tags: kinfra-agent:<digest of the inputs>


class VolumeRole(str, Enum):
    """What an agent container's volume holds, which decides whether reset and removal keep it."""

    HOME = "home"  # the agent's home: its config and session transcripts
    LOGS = "logs"  # cleared by reset
    KEEP = "keep"  # [agent] keep: survives reset and done

    @property
    def kept(self) -> bool:
        """Whether `kinfra done` / `agent rm` leave the volume in place."""
        return self is VolumeRole.KEEP

    @property
    def kept_by_reset(self) -> bool:
        return self is not VolumeRole.LOGS


def project_image(project: str) -> str:
    """The tag naming the image `kinfra agent build` last made for a project."""
    return f"{IMAGE_REPOSITORY}/{project}:current"


class MountKind(str, Enum):
    """A mount's type: a host path or a named volume."""

    BIND = "bind"  # a host path
    VOLUME = "volume"  # a named volume


@dataclass(frozen=True)
class Mount:
    """One ``--mount`` of the agent container: a host path, or a volume with its role and labels."""

    kind: MountKind
    source: str  # host path, or volume name
    target: str
    read_only: bool = False
    role: VolumeRole | None = None  # volumes only
    labels: Mapping[str, str] = field(default_factory=dict)  # volumes only, on creation

    def arg(self) -> str:
        """The ``--mount`` value: CSV fields, quoted where a path has a comma."""
        fields = [f"type={self.kind.value}", f"source={self.source}", f"target={self.target}"]
        fields += [f"volume-label={key}={value}" for key, value in self.labels.items()]
        if self.read_only:
            fields.append("readonly")
        return ",".join(_csv_field(item) for item in fields)


def _csv_field(text: str) -> str:
    if "," in text or '"' in text:
        return '"' + text.replace('"', '""') + '"'
    return text


@dataclass(frozen=True)
class AgentBox:
    """The names of one worktree's agent container and volumes."""

    project: str
    worktree: Path  # resolved host path

    @property
    def container(self) -> str:
        return container_name(self.worktree)

    def volume(self, role: VolumeRole, path: str = "") -> str:
        base = f"{self.worktree.name}-agent-{role.value}"
        if role is not VolumeRole.KEEP:
            return base
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", path.strip("/")).strip("-.") or "root"
        # /a/b and /a-b give one slug: the path's hash keeps them apart.
        return f"{base}-{slug[:40]}-{hashlib.sha256(path.encode()).hexdigest()[:6]}"

    def labels(self) -> dict[str, str]:
        return {
            LABEL_PROJECT: self.project,
            LABEL_BOX: self.container,
            LABEL_WORKTREE: str(self.worktree),
        }

    def volume_mount(self, role: VolumeRole, target: str) -> Mount:
        labels = {
            LABEL_PROJECT: self.project,
            LABEL_BOX: self.container,
            LABEL_VOLUME: role.value,
        }
        name = self.volume(role, target)
        return Mount(MountKind.VOLUME, name, target, role=role, labels=labels)


@dataclass(frozen=True)
class ContainerSpec:
    """Everything `docker run` needs to make the agent container."""

    box: AgentBox
    image: str
    uid: int
    gid: int
    network: str | None  # the slot's network; None: Docker's default bridge
    env: Mapping[str, str]
    mounts: tuple[Mount, ...]
    forward: tuple[str, ...] = field(default=())  # "HOSTPORT=service:port"

    @property
    def user(self) -> str:
        return f"{self.uid}:{self.gid}"

    def labels(self) -> dict[str, str]:
        return {**self.box.labels(), LABEL_USER: self.user}

    def run_args(self) -> list[str]:
        """``docker run`` arguments (after ``docker``) that start it detached."""
        args = ["run", "--detach", "--init", "--name", self.box.container]
        # The entrypoint sets up the owner's user as root, then drops to it.
        args += ["--user", "0:0", "--hostname", self.box.container]
        for key, value in self.labels().items():
            args += ["--label", f"{key}={value}"]
        if self.network is not None:
            args += ["--network", self.network]
        args += ["--add-host", "host.docker.internal:host-gateway"]
        env = {
            **self.env,
            "KINFRA_UID": str(self.uid),
            "KINFRA_GID": str(self.gid),
            "KINFRA_KEEP": ":".join(m.target for m in self.mounts if m.role is VolumeRole.KEEP),
            "KINFRA_FORWARD": " ".join(self.forward),
        }
        for key, value in env.items():
            args += ["--env", f"{key}={value}"]
        for mount in self.mounts:
            args += ["--mount", mount.arg()]
        args += ["--workdir", WORKSPACE, self.image]
        return args


def container_env(
    config: Config, slot_env: Mapping[str, str], git_identity: Mapping[str, str]
) -> dict[str, str]:
    """The container's environment: the slot's variables (what `kinfra env`
    prints in the worktree), the shared dirs' places in the container, the
    sandbox marker, the user's git identity. Never a secret: those are passed
    to each command at run time."""
    env = dict(slot_env)
    env["KINFRA_WORKTREE"] = WORKSPACE
    for shared in config.shared:
        env[f"SHARED_{shared.name.upper()}_DIR"] = f"{SHARED}/{shared.name}"
    env.update(git_identity)
    # Claude Code allows --dangerously-skip-permissions as root only with this.
    env["IS_SANDBOX"] = "1"
    env["HOME"] = HOME
    env["KINFRA_LOGS"] = LOGS
    return env


@dataclass(frozen=True)
class GitDirs:
    """Where the worktree's git metadata is on the host."""

    common: Path  # the main checkout's .git
    own: Path  # <common>/worktrees/<name>: the worktree's HEAD, index, pointers
    worktree_config: bool = False  # own/config.worktree exists (extensions.worktreeConfig)


def container_mounts(
    config: Config,
    box: AgentBox,
    git_dirs: GitDirs,
    shared_root: Path | None,
) -> tuple[Mount, ...]:
    """The worktree at /workspace; the main checkout's git dir at its own path
    (the worktree's ``.git`` file points there, so git works inside), with
    what git on the host would run read-only (``git_guards``); the home, logs
    and keep volumes; the shared data dirs read-only."""
    mounts = [
        Mount(MountKind.BIND, str(box.worktree), WORKSPACE),
        Mount(MountKind.BIND, str(git_dirs.common), str(git_dirs.common)),
        *git_guards(box.worktree, git_dirs),
        box.volume_mount(VolumeRole.HOME, HOME),
        box.volume_mount(VolumeRole.LOGS, LOGS),
    ]
    mounts += [box.volume_mount(VolumeRole.KEEP, path) for path in config.agent.keep]
    if shared_root is not None:
        for shared in config.shared:
            mounts.append(
                Mount(
                    MountKind.BIND, str(shared_root / shared.name), f"{SHARED}/{shared.name}", True
                )
            )
    return tuple(mounts)


def git_guards(worktree: Path, dirs: GitDirs) -> list[Mount]:
    """Read-only over the git metadata an agent could turn into commands that
    git on the host runs later (kinfra's own `git status` in `done`, the
    user's `git commit`): the hooks, the config (core.hooksPath,
    core.fsmonitor, aliases, filter drivers), the pointers that tell git which
    git dir and config a checkout uses (the worktree's ``.git`` file, its
    ``commondir`` and ``gitdir``), and the other worktrees' own dirs. Objects,
    refs, logs and the worktree's own index and HEAD stay writable: commits
    work."""

    def read_only(path: Path, target: str | None = None) -> Mount:
        return Mount(MountKind.BIND, str(path), target or str(path), read_only=True)

    own = dirs.own
    guards = [
        read_only(dirs.common / "config"),
        read_only(dirs.common / "hooks"),
    ]
    if own == dirs.common:  # not a linked worktree: no pointers of its own
        return guards
    guards += [
        read_only(worktree / ".git", f"{WORKSPACE}/.git"),
        read_only(dirs.common / "worktrees"),
        Mount(MountKind.BIND, str(own), str(own)),  # writable again: its index and HEAD
        read_only(own / "commondir"),
        read_only(own / "gitdir"),
    ]
    if dirs.worktree_config:
        guards.append(read_only(own / "config.worktree"))
    return guards


# kinfra's own environment reaches the container only through this list: the
# agent CLIs' settings (endpoint, model, telemetry and update switches) and the
# proxy, as a user sets them in the shell. Keys and tokens never: those come
# from [agent] secrets.
_FORWARDED_NAMES = frozenset(
    {"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"}
)
_FORWARDED_PREFIXES = ("ANTHROPIC_", "CLAUDE_CODE_", "DISABLE_", "OPENAI_", "OTEL_")
_NEVER_FORWARDED = ("_KEY", "_TOKEN", "_SECRET", "_PASSWORD", "_HEADERS")


def forwarded_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables of kinfra's environment a command in the container gets."""
    return {
        name: value
        for name, value in environ.items()
        if (name in _FORWARDED_NAMES or name.startswith(_FORWARDED_PREFIXES))
        and not name.endswith(_NEVER_FORWARDED)
    }


def forwards(config: Config, host_ports: Mapping[str, int]) -> tuple[str, ...]:
    """``HOSTPORT=service:target`` for every named port: inside the container
    the slot's URLs (``localhost:<host port>``) reach the slot's services."""
    return tuple(
        f"{host_ports[p.name]}={p.service}:{p.target}" for p in config.ports if p.name in host_ports
    )
