"""Where a run happens: the workdir, its project, the orchestrator settings,
the slot's URLs, and where the run's files go.

The workdir is normally an impl worktree of a kinfra project; the config is
read from the project's main checkout. Outside a kinfra project (no
kinfra.toml), the git toplevel's folder name is the project name and the
settings are the defaults of ``[orchestrator]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from kinfra.adapters import git
from kinfra.domain.config import parse_config
from kinfra.domain.config_orch import OrchestratorSettings
from kinfra.errors import NotInProjectError
from kinfra.paths import project_home


@dataclass(frozen=True)
class RunContext:
    """Where a run happens: project, workdir, settings, test command, slot URLs, its files."""

    project: str
    workdir: Path  # the checkout the agent works in
    settings: OrchestratorSettings
    test_command: str | None
    slot_env: dict[str, str]  # the slot's URLs (and SLOT_NUMBER), for the prompt

    @property
    def runs_dir(self) -> Path:
        return project_home(self.project) / "runs"

    # ``key`` names one milestone's run: see ``run_key``.
    def state_path(self, key: str) -> Path:
        return self.runs_dir / f"{key}.json"

    def lock_path(self, key: str) -> Path:
        return self.runs_dir / f"{key}.lock"

    def telemetry_path(self, key: str) -> Path:
        return self.runs_dir / f"{key}.telemetry.jsonl"

    def logs_dir(self, key: str) -> Path:
        return self.runs_dir / f"{key}.logs"

    def agent_dir(self, agent: str) -> Path:
        """The agent's own state (Claude Code's config dir and sessions), owned
        by kinfra: the same for every run of the project, so a session saved
        by one run is found by the next."""
        return project_home(self.project) / "agents" / agent


def run_key(plan_path: Path, milestone: str) -> str:
    """What a run's files are named after: ``<feature>-<milestone>`` for a plan
    at ``.../<feature>/implementation/<M>_*.md`` (two features may both have
    an M1), else the milestone id alone."""
    parent = plan_path.resolve().parent
    if parent.name == "implementation" and parent.parent.name:
        return f"{parent.parent.name}-{milestone}"
    return milestone


def default_settings(project: str = "project") -> OrchestratorSettings:
    """The ``[orchestrator]`` defaults, taken from the config model itself."""
    return parse_config(Path("kinfra.toml"), {"project": {"name": project}}).orchestrator


def project_name_for(folder: str) -> str:
    name = re.sub(r"[^a-z0-9-]+", "-", folder.lower()).strip("-")[:40]
    return name or "project"


def resolve_context(workdir: Path | None = None) -> RunContext:
    """The context of a run in ``workdir`` (default: the current directory's checkout)."""
    from kinfra.project import find_project

    start = (workdir or Path.cwd()).resolve()
    if not start.is_dir():
        raise NotInProjectError(f"workdir {start} is not a directory")
    top = git.toplevel(start)
    if top is None:
        raise NotInProjectError(
            f"{start} is not inside a git checkout",
            hint="run the orchestrator inside the impl worktree (or pass --workdir)",
        )
    try:
        project = find_project(start)
    except NotInProjectError:
        name = project_name_for(git.main_checkout(start).name)
        return RunContext(name, top, default_settings(), None, read_slot_env(top))
    config = project.config
    return RunContext(
        config.name, top, config.orchestrator, config.test_command, read_slot_env(top)
    )


def read_slot_env(workdir: Path) -> dict[str, str]:
    """The slot's URLs and number from the worktree's kinfra-generated
    ``.env.sandbox``, found the way ``kinfra.detect`` finds it. Only that
    source: the agent is never pointed at local-prod or the base ports."""
    from kinfra.detect import find_env_file
    from kinfra.domain.slot import parse_env_file

    path = find_env_file(workdir)
    if path is None:
        return {}
    values = parse_env_file(path.read_text(encoding="utf-8", errors="replace"))
    return {k: v for k, v in values.items() if k.endswith("_URL") or k == "SLOT_NUMBER"}
