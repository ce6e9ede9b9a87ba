"""The orchestrator's agent run in the worktree's agent container.

``container_launcher`` makes sure the container runs (as `kinfra agent run`
does) and returns a ``Launcher`` (``kinfra.adapters.process``) through which
the run loop starts each attempt unchanged: the agent's command line becomes
``docker exec … kinfra-agent-exec <command>``, its stdout is streamed and
parsed as on the host, and timeouts, the idle watchdog and Ctrl-C stop it in
stages as on the host. A stop signal cannot go through the docker CLI (which
forwards none, and whose death leaves the command running in the container):
it is delivered to the command's process group inside the container, whose
leader the wrapper records in a pid file named after the run.
"""

from __future__ import annotations

import os
import re
import signal
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from kinfra.adapters import docker
from kinfra.adapters.process import Launch
from kinfra.domain.config_agent import WORKSPACE
from kinfra.errors import KinfraError, OrchestratorError
from kinfra.project import find_project
from kinfra.workflows.agent_box import (
    ensure_running,
    exec_argv,
    passed_env,
    resolve_agent_target,
    user_of,
)

PIDS_DIR = "/tmp/kinfra-agent"  # in the container

STOP = "kinfra-agent-stop"  # the image's: signals a recorded process group inside


@dataclass(frozen=True)
class ContainerLauncher:
    """A ``Launcher`` that runs each attempt in the worktree's agent container (``docker exec``)."""

    container: docker.ContainerInfo
    worktree: Path  # on the host; /workspace inside
    env: dict[str, str]  # forwarded settings and the agent's secrets, by name
    pidfile: str  # in the container: the running attempt's process group

    def launch(self, spec: Launch) -> Launch:
        env = {**self.env, **spec.env}
        argv = exec_argv(
            self.container,
            spec.argv,
            env,
            interactive=True,  # the prompt comes on stdin
            tty=False,
            workdir=self._inside(spec.cwd),
            extra_env={"KINFRA_AGENT_PIDFILE": self.pidfile},
        )
        # The values reach docker's environment only, never its arguments.
        return Launch(("docker", *argv), spec.cwd, env)

    def send_signal(self, pgid: int, signum: int) -> None:
        name = signal.Signals(signum).name.removeprefix("SIG")
        inside = docker.docker(
            ["exec", "--user", user_of(self.container), self.container.name,
             STOP, self.pidfile, name],
            check=False,
        )  # fmt: skip
        if not inside.ok or signum == signal.SIGKILL:
            # Nothing left inside (or the last stage): the docker CLI goes too.
            os.killpg(pgid, signum)

    def _inside(self, cwd: Path | None) -> str:
        if cwd is None:
            return WORKSPACE
        try:
            relative = cwd.resolve().relative_to(self.worktree)
        except ValueError:
            raise OrchestratorError(
                f"{cwd} is outside the worktree {self.worktree}: not in its agent container"
            ) from None
        return str(PurePosixPath(WORKSPACE, *relative.parts))


def container_launcher(workdir: Path, run_key: str, grace: float) -> ContainerLauncher:
    """The launcher of a run of ``run_key`` in ``workdir``'s agent container,
    which is made or started now; an attempt of this run left running by a
    killed orchestrator is stopped first."""
    try:
        project = find_project(workdir)
        target = resolve_agent_target(project, None)
        env = passed_env(project)
        info = ensure_running(target)
    except KinfraError as exc:
        raise OrchestratorError(
            f"cannot run the agent in its container: {exc.message}",
            hint=exc.hint or "run it in an impl worktree, or without --in-container",
        ) from None
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", run_key)
    pidfile = f"{PIDS_DIR}/{safe}.pid"
    docker.docker(
        ["exec", "--user", user_of(info), info.name,
         STOP, pidfile, "--staged", str(max(1, round(grace)))],
        check=False,
    )  # fmt: skip
    return ContainerLauncher(info, target.path, env, pidfile)
