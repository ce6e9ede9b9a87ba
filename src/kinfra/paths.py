"""Where kinfra keeps machine-wide state."""

from __future__ import annotations

import os
from pathlib import Path


def kinfra_home() -> Path:
    """$KINFRA_HOME, default ~/.kinfra."""
    value = os.environ.get("KINFRA_HOME")
    if value:
        return Path(value).expanduser().absolute()
    return Path.home() / ".kinfra"


def project_home(project: str) -> Path:
    return kinfra_home() / project


def registry_path() -> Path:
    return kinfra_home() / "registry.json"


def logs_dir() -> Path:
    return kinfra_home() / "logs"


# The files of a slot directory. ENV_FILE is also written into each impl
# worktree, where tools (and kinfra.detect) find their slot by walking up.
ENV_FILE = ".env.sandbox"
# The temp files of its atomic writes (``.<name>.<pid>.<hex>.tmp``), which a
# kill can leave behind: git-ignored with it, so they never count as work.
ENV_TEMP_PATTERN = f".{ENV_FILE}.*.tmp"
OVERRIDE_FILE = "docker-compose.override.yml"
VALIDATED_FILE = ".validated"  # digest of the last validated compose inputs
# Resolved secrets (mode 0600): on disk only while the slot's stack runs.
SECRETS_FILE = ".env.secrets"
