"""What a deploy ships: a commit, named by a ref, pushed, from a clean checkout.

The refusals come first, before any engine is asked anything: a checkout
with uncommitted changes (what you see would not be what runs) and a commit
no remote has (nobody else could rebuild or roll back to it), unless --force.
"""

from __future__ import annotations

import getpass
import socket
from datetime import UTC, datetime
from pathlib import Path

from kinfra.adapters import git
from kinfra.background import Background
from kinfra.domain.deploy import Release
from kinfra.errors import DeployError, GitError


def resolve_release(checkout: Path, ref: str | None, force: bool) -> Release:
    """The release ``ref`` (default: the checkout's HEAD) would deploy, refused
    while the checkout is dirty or the commit is not on any remote."""
    # Whether the commit is on a remote is asked alongside the status.
    on_remote = Background(pushed, checkout, ref or "HEAD") if not force else None
    # One `git status` says the branch, its commit and whether anything is uncommitted.
    status = git.git("status", "--porcelain=v2", "--branch", "--ignore-submodules", cwd=checkout)
    head: dict[str, str] = {}
    dirty = False
    for line in status.stdout.splitlines():
        if line.startswith("# branch."):
            key, _, value = line[len("# branch.") :].partition(" ")
            head[key] = value
        elif line:
            dirty = True
    if ref is None and head.get("oid", "(initial)") != "(initial)":
        name = head["head"] if head.get("head") != "(detached)" else "HEAD"
        sha = head["oid"]
    else:
        name = ref or "HEAD"
        result = git.git("rev-parse", "--verify", "--quiet", "--end-of-options",
                         f"{name}^{{commit}}", cwd=checkout, check=False)  # fmt: skip
        if not result.ok:
            raise DeployError(
                f"{name!r} is not a commit of this repository", hint="name a branch, tag or sha"
            )
        sha = result.stdout.strip()
    if not force:
        if dirty:
            raise DeployError(
                f"{checkout} has uncommitted changes; nothing was deployed",
                hint="commit and push them (images are built from the commit, never from the "
                "working tree), or deploy anyway with --force",
            )
        assert on_remote is not None
        try:
            is_pushed = on_remote.result()
        except GitError:  # a ref git could not read there; the sha it names can be
            is_pushed = pushed(checkout, sha)
        if not is_pushed:
            raise DeployError(
                f"{name} ({sha[:12]}) is not pushed to any remote; nothing was deployed",
                hint="git push it first, or deploy anyway with --force",
            )
    return Release(sha=sha, ref=name, user=whoami(), time=now())


def pushed(checkout: Path, sha: str) -> bool:
    """Whether a remote-tracking branch (as of the last fetch or push) contains ``sha``."""
    listed = git.git("for-each-ref", "--count=1", "--contains", sha, "--format=%(refname)",
                     "refs/remotes", cwd=checkout)  # fmt: skip
    return bool(listed.stdout.strip())


def whoami() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
