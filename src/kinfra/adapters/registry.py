"""The machine-wide slot registry: ``$KINFRA_HOME/registry.json``.

One file for every project on the machine, so two projects can never hand
out the same host port or compose project name. All changes go through
``RegistryStore.transaction()``: an OS lock, a fresh read, the change, an
atomic write. ``generation`` counts committed transactions, which lets a test
(or a curious user) prove no update was lost.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from kinfra.adapters.statefile import atomic_write_json, file_lock, read_versioned_json
from kinfra.domain.config import Profile
from kinfra.errors import (
    SlotClaimedError,
    SlotExhaustedError,
    SlotNotFoundError,
    StateFileError,
)
from kinfra.paths import registry_path

REGISTRY_VERSION = 1
CLAIMED_AT_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # claimed_at, in UTC


class SlotStatus(str, Enum):
    STOPPED = "stopped"
    RUNNING = "running"
    FAILED = "failed"  # last start or stop did not complete


@dataclass(frozen=True)
class SlotRecord:
    slot_id: int
    infrastructure_path: str
    profile: Profile
    workers: dict[str, int]
    ports: dict[str, int]
    compose_project: str
    instance_id: str
    claimed_by: str | None = None
    claimed_at: str | None = None
    # "impl": held by an impl worktree until `kinfra done`; "manual": taken by
    # `kinfra sandbox up` for a directory, given back by `kinfra sandbox down`.
    claim_kind: str | None = None
    status: SlotStatus = SlotStatus.STOPPED

    @property
    def directory(self) -> Path:
        return Path(self.infrastructure_path)

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.pop("slot_id")
        data["profile"] = self.profile.value
        data["status"] = self.status.value
        return data


@dataclass
class ProjectRecord:
    name: str
    root: str  # the main checkout that owns the project
    prefix: str
    slots: dict[int, SlotRecord] = field(default_factory=dict)
    local_prod: dict[str, Any] | None = None

    def slot(self, slot_id: int) -> SlotRecord:
        try:
            return self.slots[slot_id]
        except KeyError:
            raise SlotNotFoundError(
                f"slot {slot_id} is not provisioned for project {self.name}",
                hint="run `kinfra sandbox slots` to see the pool, "
                "`kinfra sandbox provision` to create it",
            ) from None

    def slot_claimed_by(self, worktree: Path | str) -> SlotRecord | None:
        # Resolved on both sides: a checkout reached through a symlink (macOS
        # /tmp, a linked home) is still the same claimant.
        wanted = Path(worktree).resolve()
        for record in self.slots.values():
            if record.claimed_by is not None and Path(record.claimed_by).resolve() == wanted:
                return record
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "prefix": self.prefix,
            "slots": {str(k): v.to_json() for k, v in sorted(self.slots.items())},
            "local_prod": self.local_prod,
        }


@dataclass
class Registry:
    projects: dict[str, ProjectRecord] = field(default_factory=dict)
    generation: int = 0

    def project(self, name: str) -> ProjectRecord | None:
        return self.projects.get(name)

    def require_project(self, name: str) -> ProjectRecord:
        record = self.projects.get(name)
        if record is None:
            raise SlotNotFoundError(
                f"project {name} has no slots on this machine",
                hint="run `kinfra sandbox provision` in the project's main checkout",
            )
        return record

    # --- claims: called inside a transaction, so check and set are one step --

    def claim_free_slot(
        self,
        project: str,
        worktree: Path | str,
        min_profile: Profile = Profile.LIGHT,
        kind: str = "impl",
    ) -> SlotRecord:
        """Claim the lowest adequate free slot: lowest profile first, then lowest id."""
        record = self.require_project(project)
        existing = record.slot_claimed_by(worktree)
        if existing is not None:
            return existing
        free = [
            s
            for s in record.slots.values()
            if s.claimed_by is None and s.profile.rank >= min_profile.rank
        ]
        if not free:
            total = sum(1 for s in record.slots.values() if s.profile.rank >= min_profile.rank)
            qualifier = "" if min_profile is Profile.LIGHT else f" of profile {min_profile.value}+"
            raise SlotExhaustedError(
                f"All {total} slots{qualifier} in use. "
                "Run `kinfra worktrees` to see active worktrees.",
                hint="finish one with `kinfra done <name>`, or grow the pool "
                "([sandbox] pool_size, then `kinfra sandbox provision`)",
            )
        chosen = min(free, key=lambda s: (s.profile.rank, s.slot_id))
        return self._set_claim(record, chosen, str(worktree), kind)

    def claim(
        self, project: str, slot_id: int, worktree: Path | str, kind: str = "impl"
    ) -> SlotRecord:
        record = self.require_project(project)
        slot = record.slot(slot_id)
        if slot.claimed_by is not None and slot.claimed_by != str(worktree):
            raise SlotClaimedError(
                f"Slot {slot_id} is claimed by {Path(slot.claimed_by).name}",
                hint=f"claimed at {slot.claimed_at} by {slot.claimed_by}",
            )
        return self._set_claim(record, slot, str(worktree), kind)

    def release(self, project: str, slot_id: int, claimant: Path | str | None = None) -> SlotRecord:
        """Drop a claim. With ``claimant``, only if that worktree still holds it."""
        record = self.require_project(project)
        slot = record.slot(slot_id)
        if claimant is not None and slot.claimed_by not in (None, str(claimant)):
            raise SlotClaimedError(
                f"Slot {slot_id} is claimed by {Path(slot.claimed_by or '').name}, "
                f"not by {Path(claimant).name}"
            )
        updated = dataclasses.replace(slot, claimed_by=None, claimed_at=None, claim_kind=None)
        record.slots[slot_id] = updated
        return updated

    def set_status(self, project: str, slot_id: int, status: SlotStatus) -> SlotRecord:
        record = self.require_project(project)
        updated = dataclasses.replace(record.slot(slot_id), status=status)
        record.slots[slot_id] = updated
        return updated

    @staticmethod
    def _set_claim(record: ProjectRecord, slot: SlotRecord, worktree: str, kind: str) -> SlotRecord:
        if slot.claimed_by == worktree:
            return slot
        from datetime import UTC, datetime  # only claims need the clock

        now = datetime.now(UTC).strftime(CLAIMED_AT_FORMAT)
        updated = dataclasses.replace(slot, claimed_by=worktree, claimed_at=now, claim_kind=kind)
        record.slots[slot.slot_id] = updated
        return updated

    def all_slots(self) -> Iterator[tuple[ProjectRecord, SlotRecord]]:
        for project in self.projects.values():
            for slot in project.slots.values():
                yield project, slot

    def to_json(self) -> dict[str, Any]:
        return {
            "version": REGISTRY_VERSION,
            "generation": self.generation,
            "projects": {k: v.to_json() for k, v in sorted(self.projects.items())},
        }


class RegistryStore:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or registry_path()
        self.lock_path = self.path.with_name(self.path.name + ".lock")

    def load(self) -> Registry:
        """A consistent snapshot (writes are atomic), for reading only."""
        data = read_versioned_json(self.path, kind="registry", current_version=REGISTRY_VERSION)
        return Registry() if data is None else _parse_registry(self.path, data)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Registry]:
        """Lock, read, let the caller change the registry, write it back.

        Nothing is written if the block raises, so a failed operation leaves
        the registry exactly as it was.
        """
        with file_lock(self.lock_path, what="registry lock"):
            registry = self.load()
            before = registry.to_json()
            yield registry
            after = registry.to_json()
            if after != before:
                registry.generation += 1
                atomic_write_json(self.path, registry.to_json())


def _parse_registry(path: Path, data: dict[str, Any]) -> Registry:
    def corrupt(where: str) -> StateFileError:
        return StateFileError(
            f"registry {path} is corrupt ({where})",
            hint=f"kinfra left it untouched; repair it by hand or move it aside "
            f"(mv {path} {path}.bad) and run `kinfra sandbox provision` again",
        )

    try:
        projects: dict[str, ProjectRecord] = {}
        for name, pdata in data.get("projects", {}).items():
            slots: dict[int, SlotRecord] = {}
            for key, s in pdata["slots"].items():
                slot_id = int(key)
                slots[slot_id] = SlotRecord(
                    slot_id=slot_id,
                    infrastructure_path=str(s["infrastructure_path"]),
                    profile=Profile(s["profile"]),
                    workers={str(k): int(v) for k, v in s["workers"].items()},
                    ports={str(k): int(v) for k, v in s["ports"].items()},
                    compose_project=str(s["compose_project"]),
                    instance_id=str(s["instance_id"]),
                    claimed_by=s.get("claimed_by"),
                    claimed_at=s.get("claimed_at"),
                    claim_kind=s.get("claim_kind"),
                    status=SlotStatus(s.get("status", "stopped")),
                )
            projects[name] = ProjectRecord(
                name=name,
                root=str(pdata["root"]),
                prefix=str(pdata["prefix"]),
                slots=slots,
                local_prod=pdata.get("local_prod"),
            )
        generation = int(data.get("generation", 0))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise corrupt(f"unexpected content: {exc!r}") from exc
    return Registry(projects=projects, generation=generation)
