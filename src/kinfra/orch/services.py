"""What every step of one run shares: where it runs, the plan, the agent,
telemetry, the state (saved atomically at every change), notes, events,
notifications and the terminal (when questions are asked there)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kinfra.adapters.process import HOST, Launch, Launcher
from kinfra.adapters.runner import Result
from kinfra.adapters.runner import run as run_command
from kinfra.domain.config_orch import OrchestratorSettings
from kinfra.domain.config_policy import RunPolicy
from kinfra.orch.agents.base import Agent
from kinfra.orch.context import RunContext
from kinfra.orch.events import EventCallback, EventKind, RunEvent
from kinfra.orch.notify import Event, Notice, secret_values, send
from kinfra.orch.plan import Plan
from kinfra.orch.state import E2EState, Question, RunState, StateWriter, TaskState
from kinfra.orch.telemetry import Telemetry

Asker = Callable[[Question], str | None]  # asks a human on the terminal; None: no answer
Confirmer = Callable[[str], bool]  # yes/no on the terminal (--confirm-fixes)


@dataclass
class RunServices:
    """What every step of a run shares: context, plan, agent, telemetry, state, events, terminal."""

    ctx: RunContext
    plan: Plan
    agent: Agent
    telemetry: Telemetry
    state: RunState
    state_path: Path
    logs_dir: Path
    run_id: str
    key: str  # the run's name (``<feature>-<milestone>``): the metrics' milestone label
    emit: EventCallback
    kill_grace: float = 5.0
    launcher: Launcher = HOST  # where the agent runs: here, or in the worktree's container
    asker: Asker | None = None  # set when questions are asked on the terminal
    confirm_fix: Confirmer | None = None  # set with --confirm-fixes
    notes: list[str] = field(default_factory=list)
    timings: list[tuple[str, float, float]] = field(default_factory=list)
    _secrets: list[str] | None = None
    _writer: StateWriter | None = None

    @property
    def settings(self) -> OrchestratorSettings:
        return self.ctx.settings

    @property
    def policy(self) -> RunPolicy:
        return self.ctx.settings.policy

    def save(self, state: RunState) -> None:
        if self._writer is None:
            self._writer = StateWriter(self.state_path)
        self.state = state
        self._writer.save(state)

    def save_task(self, task: TaskState) -> None:
        self.save(self.state.with_task(task))

    def save_e2e(self, e2e: E2EState) -> None:
        from dataclasses import replace

        from kinfra.orch.state import now_iso

        self.save(replace(self.state, e2e=e2e, updated=now_iso()))

    def shell(self, command: str, env: dict[str, str] | None = None) -> Result:
        """``sh -c command`` in the worktree, where the agent runs: on the host,
        or in its container. A check or an E2E command runs what the agent
        wrote (tests, hooks, scripts), so it stays in the agent's box."""
        spec = self.launcher.launch(Launch(("sh", "-c", command), self.ctx.workdir, env or {}))
        return run_command(
            spec.argv,
            cwd=spec.cwd,
            env=spec.env,
            check=False,
            timeout=self.settings.task_timeout,
            input="",  # nothing to read: a container's stdin is attached
        )

    def note(self, message: str, task_id: str | None = None) -> None:
        self.notes.append(message)
        self.emit(RunEvent(EventKind.NOTE, task_id, message=message))

    def notify(
        self,
        event: Event,
        *,
        task: str | None = None,
        question: str | None = None,
        message: str = "",
    ) -> None:
        """Run ``[orchestrator] notify`` for ``event``; its failure is a note, never more."""
        command = self.policy.notify
        if not command:
            return
        if self._secrets is None:
            self._secrets = secret_values(self.ctx.workdir)
        notice = Notice(
            event=event,
            project=self.ctx.project,
            milestone=self.plan.milestone,
            run_id=self.run_id,
            plan=self.state.plan_path,
            state_path=self.state_path,
            task=task,
            question=question,
            message=message,
        )
        problem = send(command, notice, cwd=self.ctx.workdir, secrets=self._secrets)
        if problem:
            self.note(problem, task)
