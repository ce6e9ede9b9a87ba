"""Agents behind one small interface (``base.Agent``)."""

from __future__ import annotations

import os

from kinfra.domain.config_agent import AgentSandbox
from kinfra.domain.config_orch import OrchestratorSettings
from kinfra.errors import OrchestratorError
from kinfra.orch.agents.base import Agent

AGENTS = ("claude", "codex", "command")


def make_agent(settings: OrchestratorSettings) -> Agent:
    check_permissions(settings)
    if settings.agent == "claude":
        from kinfra.orch.agents.claude import ClaudeAgent

        return ClaudeAgent(settings)
    if settings.agent == "codex":
        from kinfra.orch.agents.codex import CodexAgent

        return CodexAgent(settings)
    if settings.agent == "command":
        from kinfra.orch.agents.command import CommandAgent

        return CommandAgent(settings)
    raise OrchestratorError(
        f"unknown agent {settings.agent!r}",
        hint=f"use one of {', '.join(AGENTS)} ([orchestrator] agent or --agent)",
    )


def check_permissions(settings: OrchestratorSettings) -> None:
    """Refuse, before any agent starts, a bypass of the agent's permissions by
    root on the host: Claude Code refuses it itself (only after starting), and
    a root agent without any confinement could touch the whole machine. kinfra
    never sets IS_SANDBOX to talk Claude Code out of it."""
    if not settings.skip_permissions or settings.agent == "command":
        return
    if settings.sandbox is AgentSandbox.CONTAINER:
        return  # there it runs as the worktree's owner, with IS_SANDBOX=1
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return
    alternative = (
        "list the tools it may use in [orchestrator] allowed_tools"
        if settings.agent == "claude"
        else "leave skip_permissions off (codex then runs in its workspace-write sandbox)"
    )
    raise OrchestratorError(
        f"[orchestrator] skip_permissions is refused for {settings.agent} running as root on the host",
        hint=f"{alternative}, or run the agent in its container "
        '([orchestrator] sandbox = "container")',
    )
