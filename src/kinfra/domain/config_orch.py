"""``[orchestrator]`` of kinfra.toml: which agent runs the tasks of a plan, and
how (`kinfra orch`). Its autonomy keys are parsed by ``config_policy``.

Read when a command first needs it (``Config.orchestrator``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from kinfra.domain.config_agent import AgentSandbox
from kinfra.domain.config_policy import RunPolicy, parse_policy

if TYPE_CHECKING:
    from kinfra.domain.config import _Table


@dataclass(frozen=True)
class OrchestratorSettings:
    """[orchestrator]: which agent runs plans, with what limits, check, permissions and policy."""

    agent: str
    max_turns: int
    task_timeout: float
    idle_timeout: float
    model: str | None
    check: str | None
    commit: bool
    allowed_tools: tuple[str, ...]
    skip_permissions: bool
    command: tuple[str, ...]  # argv of the generic command agent
    prompt_via: str  # "stdin" or "arg", for the generic command agent
    policy: RunPolicy  # retries, API backoff, E2E, notifications (domain/config_policy.py)
    sandbox: AgentSandbox = AgentSandbox.HOST  # where each attempt runs


def parse_orchestrator(t: _Table) -> OrchestratorSettings:
    prompt_via = t.text("prompt_via", "stdin")
    if prompt_via not in ("stdin", "arg"):
        raise t.error("prompt_via", f"expected 'stdin' or 'arg', got {prompt_via!r}")
    settings = OrchestratorSettings(
        agent=t.text("agent", "claude"),
        max_turns=t.integer("max_turns", 50, minimum=1),
        task_timeout=t.number("task_timeout", 3600),
        idle_timeout=t.number("idle_timeout", 600),
        model=t.text("model", None),
        check=t.text("check", None),
        commit=t.flag("commit", False),
        allowed_tools=t.str_list("allowed_tools", ()),
        skip_permissions=t.flag("skip_permissions", False),
        command=t.str_list("command", ()),
        prompt_via=prompt_via,
        sandbox=t.choice("sandbox", AgentSandbox.HOST),
        policy=parse_policy(t),
    )
    t.done()
    return settings
