"""What `kinfra doctor` works from and reports: one finding per broken
invariant, and whether --fix repaired it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from kinfra.adapters import git
from kinfra.adapters.registry import ProjectRecord, RegistryStore
from kinfra.project import Project


class FindingKind(str, Enum):
    """Which invariant a doctor finding says is broken."""

    STALE_CLAIM = "stale claim"
    RUNNING_UNCLAIMED = "running without claim"
    UNKNOWN_STACK = "unknown slot stack"
    CLAIMED_DOWN = "claimed but down"
    STALE_GIT_ENTRY = "stale git worktree entry"
    DOUBLE_CLAIM = "double claim"
    STATUS_OUTDATED = "status out of date"
    PORTS_PENDING = "ports change at next start"
    SECRETS_LEFT = "secrets left on disk"
    ENV_FILE_WRONG = "worktree env file wrong"
    DEAD_TICKET = "ticket of a dead process"
    INTERRUPTED_IMPL = "interrupted impl"
    INTERRUPTED_DONE = "interrupted done"
    CORRUPT_RECORD = "corrupt record"
    LEFTOVER_TEMP = "leftover temp file"


class Fix(str, Enum):
    """Whether --fix repaired a finding."""

    NOT_TRIED = ""
    FIXED = "fixed"
    FAILED = "failed"


@dataclass
class Finding:
    """One broken invariant `kinfra doctor` found, with advice and whether --fix repaired it."""

    kind: FindingKind
    message: str
    advice: str = ""
    slot_id: int | None = None
    fixed: Fix = Fix.NOT_TRIED

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.name.lower(),
            "message": self.message,
            "advice": self.advice,
            "slot": self.slot_id,
            "fixed": self.fixed.value or None,
        }


@dataclass
class DoctorReport:
    """What one `kinfra doctor` run found, and its notes."""

    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def unresolved(self) -> list[Finding]:
        return [f for f in self.findings if f.fixed is not Fix.FIXED]

    def to_json(self) -> dict[str, Any]:
        return {
            "findings": [f.to_json() for f in self.findings],
            "notes": self.notes,
            "unresolved": len(self.unresolved),
        }


@dataclass
class Checkup:
    """One `kinfra doctor` run: what every check reads, and where it reports."""

    project: Project
    store: RegistryStore
    fix: bool
    report: DoctorReport = field(default_factory=DoctorReport)
    record: ProjectRecord | None = None  # this checkout's pool (None: none, or another clone's)
    entries: list[git.WorktreeEntry] = field(default_factory=list)
    live: dict[str, str] | None = None  # Docker's compose projects (None: not known)
    # Worktrees an `impl`/`done` is working on, or was when it was killed and
    # nothing resolved it: their claims and entries are that run's business.
    open_runs: set[Path] = field(default_factory=set)

    def add(self, finding: Finding) -> Finding:
        self.report.findings.append(finding)
        return finding

    def running(self, compose_project: str) -> bool:
        return self.live is not None and self.live.get(compose_project, "").startswith("running")
