"""Agents behind one small interface (``base.Agent``)."""

from __future__ import annotations

from kinfra.domain.config import OrchestratorSettings
from kinfra.errors import OrchestratorError
from kinfra.orch.agents.base import Agent

AGENTS = ("claude", "codex", "command")


def make_agent(settings: OrchestratorSettings) -> Agent:
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
