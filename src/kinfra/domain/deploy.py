"""What a deployment is, as records and rules: pure, no I/O.

A *release* is one commit put into service on a target: its sha, the ref it
was asked by, who deployed it and when. Every container of a deployment
carries it as labels, so the engine itself says what runs there. Images are
pinned by ID (``image: sha256:…``) in the override kinfra generates, which
is what makes "the exact same images" of a promote or a restore a fact, not
a hope. The images of the deployment that ran before the current one are
tagged ``kinfra-prev:<project>.<service>`` on the target: the rollback point,
kept from pruning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

from kinfra.domain.compose_yaml import Reset

LABEL = "dev.kinfra.deploy"  # label prefix: dev.kinfra.deploy.sha, .ref, .user, .time, .target
PREV_REPOSITORY = "kinfra-prev"


@dataclass(frozen=True)
class Release:
    """One commit in service on a target: sha, ref, who, when; its containers carry it as labels."""

    sha: str
    ref: str
    user: str
    time: str  # ISO 8601, UTC

    @property
    def short(self) -> str:
        return self.sha[:12]

    def labels(self, target: str) -> dict[str, str]:
        return {
            f"{LABEL}.sha": self.sha,
            f"{LABEL}.ref": self.ref,
            f"{LABEL}.user": self.user,
            f"{LABEL}.time": self.time,
            f"{LABEL}.target": target,
        }

    @classmethod
    def from_labels(cls, labels: Mapping[str, str]) -> Release | None:
        try:
            return cls(
                sha=labels[f"{LABEL}.sha"],
                ref=labels[f"{LABEL}.ref"],
                user=labels[f"{LABEL}.user"],
                time=labels[f"{LABEL}.time"],
            )
        except KeyError:
            return None

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Release:
        return cls(str(data["sha"]), str(data["ref"]), str(data["user"]), str(data["time"]))


@dataclass(frozen=True)
class Running:
    """What a target runs now: the release (None when its containers carry no
    kinfra labels) and the image ID of each service."""

    release: Release | None
    images: Mapping[str, str]  # service -> image ID


def prev_tag(project: str, service: str) -> str:
    """The rollback point's reference for one service. A compose project name
    has no '.', so ``<project>.`` is an unambiguous prefix."""
    return f"{PREV_REPOSITORY}:{project}.{service}"


def prev_service(project: str, tag: str) -> str | None:
    """The service a ``kinfra-prev`` tag belongs to, if it is ``project``'s."""
    prefix = f"{project}."
    return tag[len(prefix) :] if tag.startswith(prefix) and len(tag) > len(prefix) else None


def release_ref(
    image: str | None, project: str, service: str, sha: str, registry: str | None
) -> str:
    """The readable name a built image gets: its compose image name (or
    compose's default ``<project>-<service>``) tagged with the short sha,
    under the registry when one is configured."""
    repository = _repository(image) if image else f"{project}-{service}"
    if registry:
        repository = f"{registry.rstrip('/')}/{repository.rsplit('/', 1)[-1]}"
    return f"{repository}:{sha[:12]}"


def _repository(image: str) -> str:
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


def rollout_override(
    services: Mapping[str, bool], pins: Mapping[str, str], labels: Mapping[str, str]
) -> dict[str, Any]:
    """The compose override of a rollout: each service labelled with the
    release, pinned services run their image by ID, and a pinned service's
    build section is dropped, so the target never builds or pulls it.

    ``services`` maps each service to whether it has a build section.
    """
    document: dict[str, dict[str, Any]] = {}
    for service, builds in services.items():
        entry: dict[str, Any] = {"labels": dict(labels)}
        if service in pins:
            entry["image"] = pins[service]
            if builds:
                entry["build"] = Reset()
        document[service] = entry
    return {"services": document}


class Action(str, Enum):
    """The deploy commands that change what a target runs, as its history records them."""

    DEPLOY = "deploy"
    PROMOTE = "promote"
    ROLLBACK = "rollback"


class Outcome(str, Enum):
    """How a deploy command left its target."""

    DEPLOYED = "deployed"  # the release runs and passed the gate
    RESTORED = "restored"  # the gate failed; the previous deployment runs again
    FAILED = "failed"  # it broke before or during the switch (see error)


@dataclass(frozen=True)
class HistoryRecord:
    """One line of ``deploys.jsonl``. Never a secret: errors are redacted first."""

    action: Action
    target: str
    context: str
    project: str
    release: Release
    outcome: Outcome
    started: str
    seconds: float
    images: Mapping[str, str] = field(default_factory=dict)
    previous: Release | None = None
    previous_images: Mapping[str, str] = field(default_factory=dict)
    failed_checks: tuple[str, ...] = ()
    error: str = ""
    version: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "action": self.action.value,
            "target": self.target,
            "context": self.context,
            "project": self.project,
            "release": self.release.to_dict(),
            "outcome": self.outcome.value,
            "started": self.started,
            "seconds": round(self.seconds, 2),
            "images": dict(self.images),
            "previous": self.previous.to_dict() if self.previous else None,
            "previous_images": dict(self.previous_images),
            "failed_checks": list(self.failed_checks),
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HistoryRecord:
        previous = data.get("previous")
        return cls(
            action=Action(data["action"]),
            target=str(data["target"]),
            context=str(data.get("context", "")),
            project=str(data.get("project", "")),
            release=Release.from_dict(data["release"]),
            outcome=Outcome(data["outcome"]),
            started=str(data.get("started", "")),
            seconds=float(data.get("seconds", 0.0)),
            images=dict(data.get("images") or {}),
            previous=Release.from_dict(previous) if previous else None,
            previous_images=dict(data.get("previous_images") or {}),
            failed_checks=tuple(data.get("failed_checks") or ()),
            error=str(data.get("error", "")),
            version=int(data.get("version", 1)),
        )
