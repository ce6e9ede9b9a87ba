"""Feature/milestone names and the worktree and branch names derived from them.

Pure: no I/O. Every name a user types is validated here before any side
effect, because it ends up in a directory name, a git branch name and a
compose-related path: a part like ``..`` or ``-f`` must never reach git.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from kinfra.errors import InvalidNameError

MAX_PART = 64
_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_HINT = "use letters, digits, '.', '_' and '-', starting with a letter or digit (at most 64)"


class WorktreeKind(str, Enum):
    """A worktree kinfra makes: spec (a feature's designs) or impl (a milestone, with a slot)."""

    SPEC = "spec"
    IMPL = "impl"


def validate_part(kind: str, value: str) -> str:
    """Return ``value`` if it is an acceptable feature or milestone name."""
    shown = value.encode("unicode_escape").decode("ascii")
    if not value:
        raise InvalidNameError(f"{kind} name is empty", hint=_HINT)
    if len(value) > MAX_PART:
        raise InvalidNameError(f"{kind} name is longer than {MAX_PART} characters", hint=_HINT)
    if not _PART.fullmatch(value):
        raise InvalidNameError(f"invalid {kind} name '{shown}'", hint=_HINT)
    # git refuses these in branch names; catching them here gives a clear
    # message instead of a half-created worktree.
    if ".." in value or value.endswith((".", ".lock")):
        raise InvalidNameError(
            f"invalid {kind} name '{shown}'", hint="no '..', and no trailing '.' or '.lock'"
        )
    return value


MAX_LOOKUP = 255  # a directory name's limit on every file system kinfra runs on
_LOOKUP = re.compile(r"[A-Za-z0-9._-]+")


def validate_lookup(kind: str, value: str) -> str:
    """Return ``value`` if it can name an existing worktree (`kinfra done`).

    Looser than ``validate_part``: the value is only compared with the names
    of worktrees that exist, never used to build a path or a branch, and a
    directory name (``<prefix>-impl-<feature>-<milestone>``) is longer than
    any one part. Still one word of name characters: no path separator,
    whitespace or control character can be part of a worktree's name.
    """
    shown = value.encode("unicode_escape").decode("ascii")
    hint = "give <feature>-<milestone>, the worktree's directory name, or part of it"
    if not value:
        raise InvalidNameError(f"{kind} name is empty", hint=hint)
    if len(value) > MAX_LOOKUP:
        raise InvalidNameError(f"{kind} name is longer than {MAX_LOOKUP} characters", hint=hint)
    if not _LOOKUP.fullmatch(value):
        raise InvalidNameError(f"invalid {kind} name '{shown}'", hint=hint)
    return value


def parse_impl_target(text: str) -> tuple[str, str]:
    """``feature/milestone`` -> (feature, milestone), both validated."""
    feature, sep, milestone = text.partition("/")
    if not sep:
        shown = text.encode("unicode_escape").decode("ascii")
        raise InvalidNameError(
            f"expected <feature>/<milestone>, got '{shown}'", hint="for example: genome/M1"
        )
    return validate_part("feature", feature), validate_part("milestone", milestone)


@dataclass(frozen=True)
class WorktreeName:
    """The names a worktree derives from feature and milestone: directory, branch, short name."""

    kind: WorktreeKind
    directory: str  # the sibling directory name: <prefix>-impl-<feature>-<milestone>
    branch: str  # impl/<feature>-<milestone> or spec/<feature>
    short: str  # what `kinfra done` accepts: <feature>-<milestone>, or <feature>


def impl_name(prefix: str, feature: str, milestone: str) -> WorktreeName:
    short = f"{feature}-{milestone}"
    return WorktreeName(WorktreeKind.IMPL, f"{prefix}-impl-{short}", f"impl/{short}", short)


def spec_name(prefix: str, feature: str) -> WorktreeName:
    return WorktreeName(WorktreeKind.SPEC, f"{prefix}-spec-{feature}", f"spec/{feature}", feature)


def classify_branch(prefix: str, branch: str | None) -> WorktreeName | None:
    """The kinfra worktree a branch belongs to, or None for any other branch."""
    if branch is None:
        return None
    for kind in WorktreeKind:
        head = f"{kind.value}/"
        if branch.startswith(head) and len(branch) > len(head):
            short = branch[len(head) :]
            return WorktreeName(kind, f"{prefix}-{kind.value}-{short}", branch, short)
    return None
