"""The machine-wide slot registry: ``$KINFRA_HOME/registry.json``.

One file for every project on the machine, so two projects can never hand
out the same compose project name, and a port plan can see every other
project. It keeps only what nothing else knows: which checkout owns a
project, which slots are provisioned, their instance ids and last known
status, the claims (who, what kind, since when), local-prod's registration
and the memory queue. A slot's ports, compose project name, profile and
directory are never stored: they derive from the project's config through
``kinfra.domain.slot.Slot``, so no path can read a stale copy.

All changes go through ``RegistryStore.transaction()``: an OS lock, a fresh
read, the change, an atomic write. ``generation`` counts committed
transactions, which lets a test (or a curious user) prove no update was lost.
A file written by an older kinfra is read through ``_migrate`` and written
back in the current format by the first transaction (the old file is kept
next to it as ``registry.json.v<N>.bak``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from kinfra.adapters.statefile import (
    atomic_write_json,
    file_lock,
    read_versioned_json,
    real_path,
)
from kinfra.domain.config import Profile
from kinfra.domain.jsonshape import ShapeError, build
from kinfra.errors import (
    SlotClaimedError,
    SlotExhaustedError,
    SlotNotFoundError,
    StateFileError,
)
from kinfra.paths import registry_path

REGISTRY_VERSION = 2
CLAIMED_AT_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # every registry timestamp, in UTC


class SlotStatus(str, Enum):
    """A slot's state as kinfra last recorded it (Docker's live view may differ)."""

    STOPPED = "stopped"
    RUNNING = "running"
    FAILED = "failed"  # last start or stop did not complete


class ClaimKind(str, Enum):
    """How a slot was claimed, which decides what gives it back."""

    IMPL = "impl"  # held by an impl worktree until `kinfra done`
    MANUAL = "manual"  # taken by `kinfra sandbox up`, given back by `kinfra sandbox down`


def normalize(path: Path | str) -> Path:
    """The one form of a path the registry stores and compares: absolute,
    symlinks resolved (a checkout reached through /tmp on macOS, or a linked
    home, is the same claimant). Works for paths that do not exist yet."""
    return Path(path).resolve()


def utc_now() -> str:
    from datetime import UTC, datetime  # only writers need the clock

    return datetime.now(UTC).strftime(CLAIMED_AT_FORMAT)


@dataclass(frozen=True)
class Claim:
    """Who holds a slot (the checkout), how, and since when."""

    path: Path  # the claiming checkout, normalized
    kind: ClaimKind
    at: str  # CLAIMED_AT_FORMAT


@dataclass(frozen=True)
class SlotRecord:
    """What the registry knows of one provisioned slot. Everything else about
    the slot (ports, compose project, profile, directory) is its ``Slot``."""

    slot_id: int
    instance_id: str
    status: SlotStatus = SlotStatus.STOPPED
    claim: Claim | None = None

    @property
    def claimant(self) -> Path | None:
        return self.claim.path if self.claim is not None else None

    def to_json(self) -> dict[str, Any]:
        claim = None
        if self.claim is not None:
            claim = {
                "path": str(self.claim.path),
                "kind": self.claim.kind.value,
                "at": self.claim.at,
            }
        return {"instance_id": self.instance_id, "status": self.status.value, "claim": claim}


@dataclass(frozen=True)
class LocalProdRecord:
    """local-prod's registration: the full clone it runs from (slot 0)."""

    clone: Path
    instance_id: str
    registered_at: str
    status: SlotStatus = SlotStatus.STOPPED
    # `local-prod init` created the project record (no pool yet): destroy
    # removes it again when no slots were provisioned since.
    created_project_record: bool = False

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["clone"] = str(self.clone)
        data["status"] = self.status.value
        return data


@dataclass(frozen=True)
class Ticket:
    """A start that needs memory: waiting in the queue (`--wait`, first come,
    first served) or admitted and starting (counted until its stack runs)."""

    ticket: str
    project: str
    label: str  # what it starts: "impl genome/M1", "slot 3"
    memory_mb: int  # what the slot it starts is expected to use
    pid: int  # a ticket whose process is gone is dropped
    pid_start: str | None  # tells a reused pid from the process that took the ticket
    since: str

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class ProjectRecord:
    """One project's entry: the checkout owning its pool, its prefix, its slots, local-prod."""

    name: str
    root: Path  # the main checkout that owns the project's pool, normalized
    prefix: str  # reserves <prefix>-slot-N compose names machine-wide
    slots: dict[int, SlotRecord] = field(default_factory=dict)
    local_prod: LocalProdRecord | None = None

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
        wanted = normalize(worktree)
        for record in self.slots.values():
            if record.claimant == wanted:
                return record
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "prefix": self.prefix,
            "slots": {str(k): v.to_json() for k, v in sorted(self.slots.items())},
            "local_prod": self.local_prod.to_json() if self.local_prod else None,
        }


@dataclass
class Registry:
    """The registry file's contents: every project, the memory queue, the transaction count."""

    projects: dict[str, ProjectRecord] = field(default_factory=dict)
    queue: list[Ticket] = field(default_factory=list)  # waiting, in arrival order
    starting: list[Ticket] = field(default_factory=list)  # admitted, stack not up yet
    generation: int = 0
    migrated_from: int | None = None  # the version of the file it was read from, when older

    def project(self, name: str) -> ProjectRecord | None:
        return self.projects.get(name)

    def add_project(self, name: str, root: Path, prefix: str) -> ProjectRecord:
        record = ProjectRecord(name=name, root=normalize(root), prefix=prefix)
        self.projects[name] = record
        return record

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
        profiles: dict[int, Profile],
        min_profile: Profile = Profile.LIGHT,
        kind: ClaimKind = ClaimKind.IMPL,
    ) -> SlotRecord:
        """Claim the lowest adequate free slot: lowest profile first, then lowest id.

        ``profiles`` is each slot's profile, from the project's config: the
        registry does not keep it.
        """
        record = self.require_project(project)
        existing = record.slot_claimed_by(worktree)
        if existing is not None:
            return existing

        def profile(slot: SlotRecord) -> Profile:
            return profiles.get(slot.slot_id, Profile.LIGHT)

        adequate = [s for s in record.slots.values() if profile(s).rank >= min_profile.rank]
        free = [s for s in adequate if s.claim is None]
        if not free:
            qualifier = "" if min_profile is Profile.LIGHT else f" of profile {min_profile.value}+"
            raise SlotExhaustedError(
                f"All {len(adequate)} slots{qualifier} in use. "
                "Run `kinfra worktrees` to see active worktrees.",
                hint="finish one with `kinfra done <name>`, or grow the pool "
                "([sandbox] pool_size, then `kinfra sandbox provision`)",
            )
        chosen = min(free, key=lambda s: (profile(s).rank, s.slot_id))
        return self._set_claim(record, chosen, normalize(worktree), kind)

    def claim(
        self, project: str, slot_id: int, worktree: Path | str, kind: ClaimKind = ClaimKind.IMPL
    ) -> SlotRecord:
        record = self.require_project(project)
        slot = record.slot(slot_id)
        path = normalize(worktree)
        if slot.claim is not None and slot.claim.path != path:
            raise SlotClaimedError(
                f"Slot {slot_id} is claimed by {slot.claim.path.name}",
                hint=f"claimed at {slot.claim.at} by {slot.claim.path}",
            )
        return self._set_claim(record, slot, path, kind)

    def release(self, project: str, slot_id: int, claimant: Path | str | None = None) -> SlotRecord:
        """Drop a claim. With ``claimant``, only if that worktree still holds it."""
        record = self.require_project(project)
        slot = record.slot(slot_id)
        if (
            claimant is not None
            and slot.claim is not None
            and slot.claim.path != normalize(claimant)
        ):
            raise SlotClaimedError(
                f"Slot {slot_id} is claimed by {slot.claim.path.name}, not by {Path(claimant).name}"
            )
        updated = dataclasses.replace(slot, claim=None)
        record.slots[slot_id] = updated
        return updated

    def set_status(self, project: str, slot_id: int, status: SlotStatus) -> SlotRecord:
        record = self.require_project(project)
        updated = dataclasses.replace(record.slot(slot_id), status=status)
        record.slots[slot_id] = updated
        return updated

    @staticmethod
    def _set_claim(
        record: ProjectRecord, slot: SlotRecord, path: Path, kind: ClaimKind
    ) -> SlotRecord:
        if slot.claim is not None and slot.claim.path == path:
            return slot
        updated = dataclasses.replace(slot, claim=Claim(path, kind, utc_now()))
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
            "queue": [t.to_json() for t in self.queue],
            "starting": [t.to_json() for t in self.starting],
        }


class RegistryStore:
    """The registry file: snapshots to read; transactions (lock, read, change, atomic write)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or registry_path()

    @property
    def lock_path(self) -> Path:
        # Beside the file the writes land in: two links to one registry
        # must share one lock.
        target = real_path(self.path)
        return target.with_name(target.name + ".lock")

    def load(self) -> Registry:
        """A consistent snapshot (writes are atomic), for reading only. A file
        from an older kinfra is migrated in memory; the file itself is
        rewritten by the next transaction."""
        data = read_versioned_json(self.path, kind="registry", current_version=REGISTRY_VERSION)
        return Registry() if data is None else _parse_registry(self.path, data)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Registry]:
        """Lock, read, let the caller change the registry, write it back.

        Nothing is written if the block raises, so a failed operation leaves
        the registry exactly as it was. A registry read from an older format
        is written back in the current one even when the block changed
        nothing: that is its migration, done once, under the lock.
        """
        with file_lock(self.lock_path, what="registry lock"):
            registry = self.load()
            before = registry.to_json()
            yield registry
            after = registry.to_json()
            if after != before or registry.migrated_from is not None:
                if registry.migrated_from is not None:
                    self._keep_old_file(registry.migrated_from)
                registry.generation += 1
                atomic_write_json(self.path, registry.to_json())

    def _keep_old_file(self, version: int) -> None:
        backup = self.path.with_name(f"{self.path.name}.v{version}.bak")
        if not backup.exists():
            with contextlib.suppress(OSError):
                os.link(self.path, backup)  # the old bytes, before the rename replaces them


# --- reading ---------------------------------------------------------------------


def _corrupt(path: Path, where: str) -> StateFileError:
    return StateFileError(
        f"registry {path} is corrupt ({where})",
        hint=f"kinfra left it untouched; repair it by hand or move it aside "
        f"(mv {path} {path}.bad) and run `kinfra sandbox provision` again",
    )


def _parse_registry(path: Path, data: dict[str, Any]) -> Registry:
    """Every field checked against its record's type (an absolute path, a
    known status, an integer...): whatever a file holds, it is read whole or
    refused as corrupt, never half-read into a crash later."""
    version = int(data["version"])
    try:
        if version < REGISTRY_VERSION:
            data = _migrate(data, version)
        projects = build(dict[str, Any], data.get("projects"), "projects")
        parsed = {name: _parse_project(name, body) for name, body in projects.items()}
        queue = build(list[Ticket], data.get("queue", []), "queue")
        starting = build(list[Ticket], data.get("starting", []), "starting")
        generation = build(int, data.get("generation", 0), "generation")
    except ShapeError as exc:
        raise _corrupt(path, str(exc)) from exc
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # in an old format
        raise _corrupt(path, f"unexpected content: {exc!r}") from exc
    migrated = version if version < REGISTRY_VERSION else None
    return Registry(parsed, queue, starting, generation, migrated_from=migrated)


def _parse_project(name: str, data: object) -> ProjectRecord:
    where = f"projects.{name}"
    if not _NAME.match(name):
        raise ShapeError(f"{where}: {name!r} is not a project name")
    body = build(dict[str, Any], data, where)
    prefix = build(str, body.get("prefix"), f"{where}.prefix")
    if not _NAME.match(prefix):
        raise ShapeError(f"{where}.prefix: {prefix!r} is not a prefix")
    slots = {
        slot_id: build(
            SlotRecord,
            {**_fields(raw, f"{where}.slots.{slot_id}"), "slot_id": slot_id},
            f"{where}.slots.{slot_id}",
        )
        for slot_id, raw in build(dict[int, Any], body.get("slots"), f"{where}.slots").items()
    }
    local_prod = body.get("local_prod")
    return ProjectRecord(
        name=name,
        root=build(Path, body.get("root"), f"{where}.root"),
        prefix=prefix,
        slots=slots,
        local_prod=None
        if not local_prod
        else build(
            LocalProdRecord,
            {"registered_at": "", **_fields(local_prod, f"{where}.local_prod")},
            f"{where}.local_prod",
        ),
    )


def _fields(value: object, where: str) -> dict[str, Any]:
    return build(dict[str, Any], value, where)


# What config allows for [project] name and prefix, the only names stored here.
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


# --- older formats ---------------------------------------------------------------


def _migrate(data: dict[str, Any], version: int) -> dict[str, Any]:
    """An older file's content in the current format (pure; nothing written)."""
    if version == 1:
        data = _from_v1(data)
    return data


def _from_v1(data: dict[str, Any]) -> dict[str, Any]:
    """v1 stored each slot's ports, compose project, profile, workers and
    directory (stale copies once kinfra.toml changed), claims as three flat
    fields, and local-prod as a free-form dict. v2 keeps only what the
    registry alone knows; claims without a kind were impl claims."""
    projects: dict[str, Any] = {}
    for name, project in data.get("projects", {}).items():
        slots = {}
        for key, slot in project["slots"].items():
            claim = None
            if slot.get("claimed_by"):
                claim = {
                    "path": str(normalize(slot["claimed_by"])),
                    "kind": slot.get("claim_kind") or ClaimKind.IMPL.value,
                    "at": slot.get("claimed_at") or "",
                }
            slots[key] = {
                "instance_id": slot["instance_id"],
                "status": slot.get("status", "stopped"),
                "claim": claim,
            }
        local_prod = project.get("local_prod")
        if local_prod:
            local_prod = {
                "clone": str(normalize(local_prod["clone"])),
                "instance_id": local_prod["instance_id"],
                "registered_at": local_prod.get("registered_at", ""),
                "status": local_prod.get("status", "stopped"),
                "created_project_record": bool(local_prod.get("created_project_record")),
            }
        projects[name] = {
            "root": str(normalize(project["root"])),
            "prefix": project["prefix"],
            "slots": slots,
            "local_prod": local_prod or None,
        }
    return {
        "version": REGISTRY_VERSION,
        "generation": data.get("generation", 0),
        "projects": projects,
        "queue": [],
        "starting": [],
    }
