"""The one user-facing error family.

Every failure a user can act on is a ``KinfraError``: a one-line message, an
optional hint saying what to do, and the exit code the CLI returns. Library
code raises these; only ``kinfra.cli.main`` turns them into output and exit
codes.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_GATE_FAILED = 2
EXIT_PORT_CONFLICT = 3
EXIT_OVER_BUDGET = 5  # (4 is EXIT_NEEDS_HUMAN, below)
EXIT_USAGE = 64  # the command line itself is wrong (sysexits' EX_USAGE)
EXIT_INTERRUPTED = 130


class KinfraError(Exception):
    """A failure the user can act on: a one-line message, an optional hint, the CLI's exit code."""

    exit_code: int = EXIT_ERROR

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


# --- configuration and input ------------------------------------------------


class ConfigError(KinfraError):
    """kinfra.toml is missing, unreadable or invalid."""


class InvalidNameError(KinfraError):
    """A feature, milestone or worktree name is not acceptable."""


class NotInProjectError(KinfraError):
    """The command needs a kinfra project and none was found."""


# --- state files ---------------------------------------------------------------


class StateFileError(KinfraError):
    """A state file (registry, run state) is corrupt or from a newer kinfra."""


class LockedError(KinfraError):
    """Another kinfra process holds a lock we need."""


# --- slots -------------------------------------------------------------------


class SlotExhaustedError(KinfraError):
    """No free slot of the requested profile."""


class SlotClaimedError(KinfraError):
    """The slot is claimed by another worktree."""


class SlotNotFoundError(KinfraError):
    """No such slot is provisioned."""


class ProvisionError(KinfraError):
    """The pool cannot be provisioned as configured."""


class PortConflictError(KinfraError):
    """A host port the slot publishes is taken by another process (exit 3)."""

    exit_code = EXIT_PORT_CONFLICT


class OverBudgetError(KinfraError):
    """Starting one more stack would exceed the machine's memory budget."""

    exit_code = EXIT_OVER_BUDGET


class DataError(KinfraError):
    """A slot's data (named volumes) cannot be saved or reset as asked."""


class SandboxStartError(KinfraError):
    """docker compose could not start the stack."""


class GateFailedError(KinfraError):
    """The stack started but did not pass the startability gate."""

    exit_code = EXIT_GATE_FAILED


# --- external tools ------------------------------------------------------------


class DockerUnavailableError(KinfraError):
    """Docker is not installed, its daemon is down, or Compose v2 is missing."""


class ComposeError(KinfraError):
    """docker compose refused a command (invalid file, failed up...)."""


class GitError(KinfraError):
    """A git command failed in a way the user must resolve."""


# --- worktrees ---------------------------------------------------------------


class MilestoneNotFoundError(KinfraError):
    """No milestone plan matches the name `kinfra impl` was given."""


class WorktreeExistsError(KinfraError):
    """The worktree to create exists already, or git or a claim still holds its name."""


class WorktreeNotFoundError(KinfraError):
    """No worktree kinfra made matches the name given, or it no longer exists."""


class WorktreeDirtyError(KinfraError):
    """The worktree has work the command would lose (uncommitted, unpushed, off its branch)."""


class InvalidOperationError(KinfraError):
    """The command does not apply to its target (the main checkout, a spec worktree...)."""


class AmbiguousNameError(KinfraError):
    """A name, or a checkout's claims, point at more than one thing."""


class Interrupted(BaseException):
    """Raised by kinfra's SIGINT/SIGTERM handler.

    A BaseException so that ``except Exception`` in library code does not
    swallow it, and so that click does not turn Ctrl-C into exit 1; the CLI
    maps it to 130 (SIGINT) or 143 (SIGTERM) after ``finally`` blocks ran.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


# --- orchestrator --------------------------------------------------------------

EXIT_NEEDS_HUMAN = 4


class PlanError(KinfraError):
    """A milestone plan cannot be parsed; ``issues`` lists each problem with its line."""

    def __init__(
        self, message: str, hint: str | None = None, issues: tuple[object, ...] = ()
    ) -> None:
        super().__init__(message, hint)
        self.issues = issues


class OrchestratorError(KinfraError):
    """An orchestrator run cannot start or continue (state exists, no state, bad agent...)."""


class TaskFailedError(KinfraError):
    """A task of an orchestrator run failed; `kinfra orch resume` tries it again."""


class NeedsHumanError(KinfraError):
    """The agent asked a question or reported itself blocked: a human must step in."""

    exit_code = EXIT_NEEDS_HUMAN


# --- everyday sandbox use ------------------------------------------------------


class SecretError(KinfraError):
    """A secret of [secrets] cannot be resolved; the message names it, never its value."""


class SharedDataError(KinfraError):
    """The shared data dirs are missing or cannot be created."""


class LocalProdError(KinfraError):
    """local-prod is not registered, already registered, or asked of the wrong checkout."""


# --- deploy ----------------------------------------------------------------------


class DeployError(KinfraError):
    """A deploy cannot start or broke (unknown target, unreachable engine, refused ref...)."""


# --- the agent container -------------------------------------------------------


class AgentError(KinfraError):
    """The agent image cannot be built, or a worktree's agent container cannot be made or used."""
