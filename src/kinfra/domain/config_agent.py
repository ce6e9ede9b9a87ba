"""``[agent]`` of kinfra.toml: the agent image and container (`kinfra agent`).

Parsed here, hooked into ``domain.config`` by one call, so the section's
rules live in one small place.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kinfra.domain.config import _Table

# A Debian image with Node.js that `docker pull` finds: the Dockerfile adds git
# and the agent CLIs with apt and npm, so the base must be Debian-based.
DEFAULT_BASE_IMAGE = "node:22-bookworm-slim"
# [secrets] entries handed to the agent when [agent] secrets is not set.
AGENT_KEY_NAMES = (
    "ANTHROPIC_API_KEY",
    "CLAUDE_CODE_OAUTH_TOKEN",
    "OPENAI_API_KEY",
    "CODEX_API_KEY",
)

# Where things are inside the container; `keep` may not take these places.
WORKSPACE = "/workspace"
HOME = "/home/agent"
LOGS = "/logs"
SHARED = "/shared"
_RESERVED = (WORKSPACE, HOME, LOGS, SHARED)
_IMAGE_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]*$")


class AgentSandbox(str, Enum):
    """Where the orchestrator runs the agent ([orchestrator] sandbox, `orch run --in-container`)."""

    HOST = "host"
    CONTAINER = "container"  # the worktree's agent container (`kinfra agent`)


@dataclass(frozen=True)
class AgentSettings:
    """[agent]: how the agent image is built; container paths kept; secrets passed in."""

    base_image: str = DEFAULT_BASE_IMAGE
    setup: tuple[str, ...] = ()  # shell commands run in the image, in order
    dockerfile: str | None = None  # the project's own Dockerfile, built FROM kinfra's
    ca_bundle: str | None = None  # a CA bundle the image trusts (path on the host)
    keep: tuple[str, ...] = ()  # container paths kept in per-worktree volumes
    secrets: tuple[str, ...] = ()  # names of [secrets] passed in at run time


def parse_agent(t: _Table, secrets: Mapping[str, str]) -> AgentSettings:
    base_image = t.text("base_image", DEFAULT_BASE_IMAGE)
    if not _IMAGE_REF.match(base_image):
        raise t.error("base_image", f"{base_image!r} is not an image reference")
    dockerfile = t.text("dockerfile", None)
    if dockerfile is not None and (
        dockerfile.startswith("/") or ".." in PurePosixPath(dockerfile).parts
    ):
        raise t.error("dockerfile", f"{dockerfile!r} must be a path inside the repository")
    ca_bundle = t.text("ca_bundle", None)
    if ca_bundle is not None and not ca_bundle.strip():
        raise t.error("ca_bundle", "is empty")
    keep = tuple(_check_keep(t, path) for path in t.str_list("keep", ()))
    if len(set(keep)) != len(keep):
        raise t.error("keep", "lists a path twice")
    default_secrets = tuple(name for name in AGENT_KEY_NAMES if name in secrets)
    names = t.str_list("secrets", default_secrets)
    for name in names:
        if name not in secrets:
            raise t.error("secrets", f"{name!r} is not a name under [secrets]")
    settings = AgentSettings(
        base_image=base_image,
        setup=t.str_list("setup", ()),
        dockerfile=dockerfile,
        ca_bundle=ca_bundle,
        keep=keep,
        secrets=names,
    )
    t.done()
    return settings


def _check_keep(t: _Table, path: str) -> str:
    """The path, normalised; kinfra's own mounts (except below the home) refused."""
    pure = PurePosixPath(path)
    if not path.startswith("/") or ".." in pure.parts or ":" in path:
        raise t.error("keep", f"{path!r} must be an absolute path in the container")
    if pure == PurePosixPath("/"):
        raise t.error("keep", "'/' cannot be a volume")
    for reserved in _RESERVED:
        # Below the home is fine (a cache dir); the home itself is kinfra's volume.
        taken = pure.is_relative_to(reserved) if reserved != HOME else pure == PurePosixPath(HOME)
        if taken:
            raise t.error("keep", f"{path!r} is kinfra's own place in the container ({reserved})")
    return str(pure)
