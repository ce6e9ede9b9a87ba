"""The agent container of an impl worktree: found, made, started, removed.

One container per impl worktree, made on first use from the project's agent
image (`kinfra agent build`): the worktree at /workspace, the main checkout's
git dir at its own path, a home volume (the agent's config and sessions), a
logs volume, the `keep` volumes, the shared data read-only; joined to the
network of the worktree's slot; running as the worktree owner's uid/gid.

The target is resolved like `kinfra done` resolves it (registry and git,
never the current directory alone); without a name, the worktree the
command runs in.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from kinfra.adapters import docker, git
from kinfra.adapters import secrets as secret_refs
from kinfra.adapters.registry import RegistryStore
from kinfra.adapters.runner import CommandError
from kinfra.background import Background
from kinfra.domain.agent_box import (
    LABEL_BOX,
    LABEL_PROJECT,
    LABEL_USER,
    LABEL_VOLUME,
    LABEL_WORKTREE,
    AgentBox,
    ContainerSpec,
    GitDirs,
    VolumeRole,
    container_env,
    container_mounts,
    forwarded_env,
    forwards,
    project_image,
)
from kinfra.domain.config_agent import WORKSPACE
from kinfra.domain.names import WorktreeKind
from kinfra.errors import (
    AgentError,
    InvalidOperationError,
    WorktreeNotFoundError,
)
from kinfra.project import Project
from kinfra.workflows.worktrees import Candidate, candidates, resolve

EXEC = "kinfra-agent-exec"  # the image's wrapper every command starts through


@dataclass(frozen=True)
class AgentTarget:
    """An impl worktree of a project, and its agent container."""

    project: Project
    worktree: Candidate
    box: AgentBox

    @property
    def path(self) -> Path:
        return self.worktree.path


def resolve_agent_target(
    project: Project,
    wanted: str | None,
    store: RegistryStore | None = None,
    must_exist: bool = True,
) -> AgentTarget:
    """The impl worktree named ``wanted`` (as `done` finds it), or the one the
    command runs in."""
    store = store or RegistryStore()
    root = project.root.resolve()
    record = store.load().project(project.name)
    entries = git.list_worktrees(root)
    found = candidates(project, record, entries)
    if wanted is not None:
        target = resolve(project, found, wanted, entries)
    else:
        here = (project.here or project.root).resolve()
        mine = [c for c in found if c.path == here]
        if not mine:
            raise InvalidOperationError(
                f"{here} is not an impl worktree of {project.name}",
                hint="name one (`kinfra agent status` lists them), or run it inside one",
            )
        target = mine[0]
    if target.name.kind is not WorktreeKind.IMPL:
        raise InvalidOperationError(
            f"{target.path.name} is a spec worktree; agent containers belong to impl worktrees",
            hint="run it for an impl worktree (`kinfra impl FEATURE/MILESTONE` makes one)",
        )
    if must_exist and not target.exists:
        raise WorktreeNotFoundError(
            f"worktree {target.path} no longer exists",
            hint=f"`kinfra agent rm {target.name.short}` removes its container",
        )
    return AgentTarget(project, target, AgentBox(project.name, target.path))


# --- the container ------------------------------------------------------------------------


def ensure_running(target: AgentTarget) -> docker.ContainerInfo:
    """The worktree's container, made from the current image if missing,
    started if stopped."""
    info = ours(target)
    if info is None:
        return create(target)
    if not info.running and not docker.docker(["start", info.name], check=False).ok:
        # Its slot's network went while it was stopped (the stack went down):
        # the container holds nothing of its own (the volumes stay), so it is
        # made again.
        docker.remove_container(info.name)
        return create(target)
    return info


def ours(target: AgentTarget) -> docker.ContainerInfo | None:
    """The container of the target's name, after checking that kinfra made it
    for this worktree (a name is not proof)."""
    info = docker.container(target.box.container)
    if info is None:
        return None
    if not _labelled_for(info, target.project, target.path):
        raise AgentError(
            f"a container named {info.name} exists but is not this worktree's agent container",
            hint=f"rename or remove it (`docker rm -f {info.name}`) if it is not needed",
        )
    return info


def current_image(project: Project) -> str:
    """The id of the project's agent image, or a clear error when none is built."""
    found = docker.image_id(project_image(project.name))
    if found is None:
        raise AgentError(
            f"no agent image is built for {project.name}",
            hint="run `kinfra agent build` (add --ca-bundle FILE behind a TLS-inspecting proxy)",
        )
    return found


def owner_of(path: Path) -> tuple[int, int]:
    """uid and gid of the worktree's owner: the container's user. Never root."""
    stat = path.stat()
    if stat.st_uid == 0:
        raise AgentError(
            f"{path} is owned by root; the agent container runs as the worktree's owner, "
            "never as root",
            hint=f"give the worktree to your user (chown -R USER: {path} and the main "
            "checkout), then try again",
        )
    return stat.st_uid, stat.st_gid


def create(target: AgentTarget, spec: ContainerSpec | None = None) -> docker.ContainerInfo:
    """Make and start the container (from ``spec``, computed now when not
    given); a container that fails to start is not left behind."""
    spec = spec or container_spec(target)
    try:
        started = docker.docker(spec.run_args())
    except CommandError as exc:
        with contextlib.suppress(CommandError):
            docker.remove_container(target.box.container)
        raise AgentError(
            f"the agent container {target.box.container} could not start: "
            f"{docker.last_line(exc.result.output)}",
            hint="Docker's own message is above; the container was removed again "
            "(its volumes are kept)",
        ) from None
    # What `docker container inspect` would say now, known without asking.
    return docker.ContainerInfo(
        name=target.box.container,
        id=started.stdout.strip(),
        running=True,
        status="running",
        image=spec.image,
        labels=spec.labels(),
        networks=(spec.network,) if spec.network else (),
    )


def _git_dirs(worktree: Path) -> GitDirs:
    common, own = git.git_dirs(worktree)
    # Mounted read-only, so it must exist; git's own layout has it.
    (common / "hooks").mkdir(exist_ok=True)
    return GitDirs(common, own, (own / "config.worktree").is_file())


def container_spec(target: AgentTarget) -> ContainerSpec:
    from kinfra.domain.slot import env_file_values
    from kinfra.workflows.shared import require_shared

    config = target.project.config
    uid, gid = owner_of(target.path)
    # Independent questions to Docker and git, asked together.
    image = Background(current_image, target.project)
    dirs = Background(_git_dirs, target.path)
    identity = Background(git.identity, target.path)
    slot = target.worktree.slot
    network: str | None = None
    slot_env: dict[str, str] = {}
    host_ports: dict[str, int] = {}
    if slot is not None:
        plan = target.project.slot(slot.slot_id)
        network = docker.compose_network(plan.compose_project) or docker.create_compose_network(
            plan.compose_project
        )
        slot_env = env_file_values(config, plan, slot.instance_id)
        host_ports = dict(plan.ports)
    mounts = container_mounts(config, target.box, dirs.result(), require_shared(config))
    return ContainerSpec(
        box=target.box,
        image=image.result(),
        uid=uid,
        gid=gid,
        network=network,
        env=container_env(config, slot_env, identity.result()),
        mounts=mounts,
        forward=forwards(config, host_ports),
    )


def user_of(info: docker.ContainerInfo) -> str:
    user = info.labels.get(LABEL_USER)
    if not user:
        raise AgentError(
            f"{info.name} has no {LABEL_USER} label (made by another kinfra?)",
            hint="`kinfra agent reset --force` makes it again",
        )
    return user


def exec_argv(
    container: docker.ContainerInfo,
    command: Sequence[str],
    env_names: Iterable[str],
    interactive: bool,
    tty: bool,
    workdir: str = WORKSPACE,
    extra_env: Mapping[str, str] | None = None,
) -> list[str]:
    """``docker exec`` arguments (after ``docker``) for ``command`` in the
    container, as its user. ``env_names`` are passed by name only: their
    values come from docker's own environment, so no secret is ever in an
    argument; ``extra_env`` (never secret) is passed with its values."""
    args = ["exec"]
    if interactive:
        args.append("--interactive")
    if tty:
        args.append("--tty")
    args += ["--user", user_of(container), "--workdir", workdir]
    for name in env_names:
        args += ["--env", name]
    for name, value in (extra_env or {}).items():
        args += ["--env", f"{name}={value}"]
    return [*args, container.name, EXEC, *command]


def agent_secrets(project: Project) -> dict[str, str]:
    """The values of ``[agent] secrets``, resolved now; a clear error names any missing."""
    config = project.config
    wanted = {name: config.secrets[name] for name in config.agent.secrets}
    return secret_refs.resolve_all(wanted, config.root) if wanted else {}


def passed_env(project: Project) -> dict[str, str]:
    """What a command in the container gets from the host: the agent CLIs'
    settings from kinfra's environment, then the agent's secrets."""
    return {**forwarded_env(os.environ), **agent_secrets(project)}


# --- removal ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Removal:
    """What removing an agent container did: the container, the volumes removed, those kept."""

    container: bool  # a container was removed
    volumes: tuple[str, ...]  # volumes removed
    kept: tuple[str, ...]  # `keep` volumes left in place


def remove_box(project: Project, box: AgentBox, roles: tuple[VolumeRole, ...]) -> Removal:
    """Remove the container (only if its labels say it is this worktree's),
    then its volumes of the given roles."""
    info = docker.container(box.container)
    if info is not None and not _labelled_for(info, project, box.worktree):
        raise AgentError(
            f"a container named {info.name} exists but is not this worktree's agent container",
            hint=f"nothing was removed; `docker rm -f {info.name}` if it is not needed",
        )
    removed = info is not None and docker.remove_container(box.container)
    labels = {LABEL_PROJECT: project.name, LABEL_BOX: box.container}
    doomed: list[str] = []
    kept: list[str] = []
    for name, role in sorted(docker.volumes(labels, LABEL_VOLUME).items()):
        (doomed if role in {r.value for r in roles} else kept).append(name)
    docker.remove_volumes(doomed)
    return Removal(removed, tuple(doomed), tuple(kept))


NOT_KEPT = tuple(role for role in VolumeRole if not role.kept)


def remove_for_worktree(project: Project, path: Path) -> Removal:
    """`kinfra done`'s part: the worktree's container and its non-kept volumes."""
    return remove_box(project, AgentBox(project.name, path), NOT_KEPT)


def _labelled_for(info: docker.ContainerInfo, project: Project, path: Path) -> bool:
    return (
        info.labels.get(LABEL_WORKTREE) == str(path)
        and info.labels.get(LABEL_PROJECT) == project.name
    )
