"""Clean data per claim: the project's golden data, and resetting a slot to it.

Named volumes outlive a claim by default (``[sandbox] on_claim = "keep"``),
so the next worktree on a slot inherits the last one's database. `kinfra
sandbox snapshot --slot N` saves a stopped slot's named volumes as the
project's golden data (``$KINFRA_HOME/<project>/golden/<volume>.tar``);
a reset (``on_claim = "reset"``, `impl --fresh`, `done --reset-data`) puts
them back into a slot before its stack starts. Volumes the snapshot does not
have are removed, so the stack creates them empty; without any snapshot a
reset empties every named volume of the slot.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from kinfra.adapters import compose, volumes
from kinfra.adapters.registry import RegistryStore, utc_now
from kinfra.domain.jsonshape import build
from kinfra.domain.slot import Slot
from kinfra.errors import DataError, KinfraError
from kinfra.paths import project_home
from kinfra.project import Project

MANIFEST = "manifest.json"


def golden_dir(project: Project) -> Path:
    return project_home(project.name) / "golden"


@dataclass(frozen=True)
class SnapshotReport:
    """What `kinfra sandbox snapshot` saved: the slot, the golden data's dir, each volume's size."""

    slot_id: int
    directory: Path
    volumes: dict[str, int]  # compose volume key -> bytes saved


def snapshot(project: Project, slot_id: int, store: RegistryStore | None = None) -> SnapshotReport:
    """Save the named volumes of a stopped slot as the project's golden data."""
    (store or RegistryStore()).load().require_project(project.name).slot(slot_id)
    slot = project.slot(slot_id)
    if compose.ps(slot.compose_project):
        raise DataError(
            f"slot {slot_id} has containers ({slot.compose_project}); a snapshot is taken of a "
            "stopped slot, so that no write is half-saved",
            hint=f"stop it first: `kinfra sandbox down --slot {slot_id}` (volumes are kept)",
        )
    found = volumes.project_volumes(slot.compose_project)
    if not found:
        raise DataError(
            f"slot {slot_id} has no named volumes to save",
            hint=f"start it once (`kinfra sandbox up --slot {slot_id}`) and load the data, then stop it",
        )
    volumes.ensure_helper()
    target = golden_dir(project)
    target.parent.mkdir(parents=True, exist_ok=True)
    fresh = target.with_name(f".golden-{utc_now().replace(':', '')}")
    fresh.mkdir()
    try:
        sizes = {}
        for key, name in sorted(found.items()):
            archive = fresh / f"{key}.tar"
            volumes.export_volume(name, archive)
            sizes[key] = archive.stat().st_size
        manifest = {"slot": slot_id, "taken_at": utc_now(), "volumes": sorted(sizes)}
        (fresh / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        _replace_dir(fresh, target)
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    return SnapshotReport(slot_id, target, sizes)


def _replace_dir(new: Path, target: Path) -> None:
    """``target`` becomes ``new``; the old golden data goes only once the new is in place."""
    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    new.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def golden_volumes(project: Project) -> list[str]:
    """The volume keys of the project's golden data (empty: no snapshot yet)."""
    try:
        manifest = json.loads((golden_dir(project) / MANIFEST).read_text(encoding="utf-8"))
        volumes = build(list[str], manifest.get("volumes", []), "volumes")
    except FileNotFoundError:
        return []
    except (OSError, ValueError, RecursionError, AttributeError) as exc:  # junk of any shape
        raise DataError(
            f"the golden data in {golden_dir(project)} is unreadable ({exc})",
            hint="take it again with `kinfra sandbox snapshot --slot N`",
        ) from exc
    return volumes


@dataclass
class ResetReport:
    """What a reset did with each of a slot's named volumes."""

    restored: list[str] = field(default_factory=list)  # from the golden data
    emptied: list[str] = field(default_factory=list)  # removed: the stack creates them afresh


def reset_data(project: Project, slot: Slot) -> ResetReport:
    """Put the golden data into a slot whose stack is down (a claim's start,
    or `done` after the stop)."""
    report = ResetReport()
    keys = golden_volumes(project)
    existing = volumes.project_volumes(slot.compose_project)
    if keys:
        volumes.ensure_helper()
    for key in keys:
        name = existing.get(key) or volumes.create_volume(slot.compose_project, key)
        volumes.import_volume(name, golden_dir(project) / f"{key}.tar")
        report.restored.append(key)
    for key, name in sorted(existing.items()):
        if key in keys:
            continue
        try:
            volumes.remove_volume(name)
        except KinfraError as exc:
            raise DataError(
                f"volume {name} of slot {slot.slot_id} could not be reset: {exc.message}",
                hint=f"`docker compose -p {slot.compose_project} down`, then try again",
            ) from exc
        report.emptied.append(key)
    return report
