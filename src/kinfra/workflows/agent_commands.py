"""`kinfra agent run | shell | reset | status | rm`: using a worktree's agent container.

Commands run as the worktree's owner in /workspace, through the image's
``kinfra-agent-exec``. The agent's secrets (``[agent] secrets``) are resolved
on the host for each command and handed to ``docker exec -e NAME`` through its
environment: never in an argument, the container's config, the image, a log
or the registry.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kinfra.adapters import docker, git
from kinfra.adapters.registry import RegistryStore
from kinfra.domain.agent_box import (
    LABEL_PROJECT,
    LABEL_WORKTREE,
    AgentBox,
    VolumeRole,
    project_image,
)
from kinfra.domain.config_agent import WORKSPACE
from kinfra.domain.names import WorktreeKind
from kinfra.errors import AgentError, KinfraError, WorktreeDirtyError
from kinfra.project import Project
from kinfra.workflows.agent_box import (
    NOT_KEPT,
    Removal,
    container_spec,
    create,
    ensure_running,
    exec_argv,
    ours,
    passed_env,
    remove_box,
    resolve_agent_target,
)
from kinfra.workflows.worktrees import candidates


def run_in_agent(
    project: Project, wanted: str | None, command: Sequence[str], interactive: bool, tty: bool
) -> int:
    """Run ``command`` in the worktree's agent container; its exit code."""
    if not command:
        raise KinfraError("no command given", hint="kinfra agent run [NAME] -- CMD...")
    target = resolve_agent_target(project, wanted)
    env = passed_env(project)
    info = ensure_running(target)
    argv = exec_argv(info, command, list(env), interactive, tty)
    return docker.docker(argv, check=False, capture=False, env=env).returncode


# One exec, no probe: a separate probe would consume the caller's stdin.
SHELL = ("sh", "-c", "if command -v bash >/dev/null 2>&1; then exec bash -l; else exec sh -l; fi")


def shell_in_agent(project: Project, wanted: str | None, tty: bool) -> int:
    return run_in_agent(project, wanted, SHELL, True, tty)


# --- reset -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResetResult:
    """What `kinfra agent reset` did: the new container, the worktree's branch, the volumes kept."""

    container: str
    branch: str
    kept: tuple[str, ...]  # volumes left as they were: the home and [agent] keep
    seconds: float


def reset_agent(
    project: Project, wanted: str | None, force: bool, store: RegistryStore | None = None
) -> ResetResult:
    """A fresh container for the worktree: the worktree back at its branch's
    HEAD, the logs cleared, the home and `keep` volumes kept.

    Refuses, without --force, while the worktree has uncommitted changes or is
    not on its branch: nothing is discarded by surprise.
    """
    started = time.monotonic()
    target = resolve_agent_target(project, wanted, store)
    branch = target.worktree.name.branch
    if not force:
        _refuse_unsaved(target.path, branch)
    # Everything the new container needs is checked before anything is removed.
    spec = container_spec(target)
    if ours(target) is not None:
        docker.remove_container(target.box.container)
    docker.remove_volumes([target.box.volume(VolumeRole.LOGS)])
    info = create(target, spec)
    # Run in the container as the owner, so restored files are the owner's.
    # git needs neither the user's name nor the volumes: no wait for the
    # entrypoint (kinfra-agent-exec would), the exec can start at once.
    # (The reflog wants a committer; the passwd entry may not be there yet.)
    restore = (
        ': "${GIT_COMMITTER_NAME:=kinfra agent}" "${GIT_COMMITTER_EMAIL:=agent@kinfra.invalid}"; '
        "export GIT_COMMITTER_NAME GIT_COMMITTER_EMAIL; "
        'git checkout --quiet --force "$1" && git reset --quiet --hard && git clean --quiet -fd'
    )
    result = docker.docker(
        ["exec", "--user", spec.user, "--workdir", WORKSPACE, info.name,
         "sh", "-c", restore, "restore", branch],
        check=False,
    )  # fmt: skip
    if not result.ok:
        raise AgentError(
            f"the worktree could not be restored to {branch}: {result.output.strip()[-300:]}",
            hint=f"see `git -C {target.path} status`",
        )
    kept = tuple(m.source for m in spec.mounts if m.role is not None and m.role.kept_by_reset)
    return ResetResult(info.name, branch, kept, time.monotonic() - started)


def _refuse_unsaved(path: Path, branch: str) -> None:
    if git.work_state(path).uncommitted:
        raise WorktreeDirtyError(
            "Worktree has uncommitted changes; reset would discard them. Commit or stash, "
            "then retry. Use --force to discard them.",
            hint=f"see `git -C {path} status`",
        )
    on = git.current_branch(path)
    if on != branch:
        raise WorktreeDirtyError(
            f"Worktree is on {on or 'a detached HEAD'}, not its branch {branch}; reset would "
            f"check out {branch} again and leave commits made elsewhere off any branch. "
            "Use --force to go back anyway.",
            hint=f"see `git -C {path} log --oneline -3`",
        )


# --- status and rm --------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentRow:
    """One worktree's line of `kinfra agent status`."""

    worktree: str  # directory name
    path: Path
    slot: int | None
    container: str
    state: str  # running, exited, none, ...
    image: str  # current, outdated, or "-" without a container
    network: str | None


def agent_status(project: Project, store: RegistryStore | None = None) -> list[AgentRow]:
    """Every impl worktree of the project with its agent container, then any
    container whose worktree kinfra no longer knows."""
    store = store or RegistryStore()
    record = store.load().project(project.name)
    found = candidates(project, record, git.list_worktrees(project.root.resolve()))
    boxes = {
        Path(info.labels.get(LABEL_WORKTREE, "")): info
        for info in docker.containers({LABEL_PROJECT: project.name})
    }
    image = docker.image_id(project_image(project.name))
    rows = []
    for cand in found:
        if cand.name.kind is WorktreeKind.IMPL:
            slot = cand.slot.slot_id if cand.slot else None
            rows.append(
                _row(AgentBox(project.name, cand.path), slot, boxes.pop(cand.path, None), image)
            )
    for path, info in sorted(boxes.items()):
        rows.append(_row(AgentBox(project.name, path), None, info, image, gone=True))
    return rows


def _row(
    box: AgentBox,
    slot: int | None,
    info: docker.ContainerInfo | None,
    image: str | None,
    gone: bool = False,
) -> AgentRow:
    path = box.worktree
    if info is None:
        return AgentRow(path.name, path, slot, box.container, "none", "-", None)
    state = info.status + (" (worktree gone)" if gone else "")
    fresh = "current" if image is not None and info.image == image else "outdated"
    network = info.networks[0] if info.networks else None
    return AgentRow(path.name, path, slot, info.name, state, fresh, network)


def remove_agent(
    project: Project, wanted: str | None, store: RegistryStore | None = None
) -> Removal:
    """`kinfra agent rm`: the container and its non-kept volumes."""
    target = resolve_agent_target(project, wanted, store, must_exist=False)
    return remove_box(project, target.box, NOT_KEPT)
