"""Shared data: one directory per machine that every slot mounts.

``$KINFRA_HOME/<project>/shared/<name>`` for each ``[shared.<name>]`` of
kinfra.toml. ``init-shared`` creates it, copying from a source tree when
given one; it never deletes or overwrites what is already there, so it is
safe to run again after adding a dir to the config or new files to the source.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from kinfra.domain.config import Config
from kinfra.errors import SharedDataError
from kinfra.paths import project_home


def shared_root(config: Config) -> Path:
    return project_home(config.name) / "shared"


def shared_env(config: Config) -> dict[str, str]:
    """Host-side variables naming the shared dirs (for .env.sandbox / `kinfra env`)."""
    if not config.shared:
        return {}
    root = shared_root(config)
    values = {"KINFRA_SHARED_DIR": str(root)}
    for shared in config.shared:
        values[f"SHARED_{shared.name.upper()}_DIR"] = str(root / shared.name)
    return values


def missing_shared(config: Config) -> list[str]:
    root = shared_root(config)
    return [s.name for s in config.shared if not (root / s.name).is_dir()]


def require_shared(config: Config) -> Path | None:
    """The shared root for a slot start, or a clear error before anything starts."""
    if not config.shared:
        return None
    missing = missing_shared(config)
    if missing:
        raise SharedDataError(
            f"shared data is not initialised: {', '.join(missing)} missing under "
            f"{shared_root(config)}",
            hint="run `kinfra init-shared --from PATH` (copy existing data) or "
            "`kinfra init-shared --minimal` (empty dirs); nothing was started",
        )
    return shared_root(config)


@dataclass
class InitSharedReport:
    """What `kinfra init-shared` created and copied, and what it found there already."""

    root: Path
    created: list[str] = field(default_factory=list)  # dirs made now
    existing: list[str] = field(default_factory=list)  # dirs already there
    copied: dict[str, int] = field(default_factory=dict)  # dir -> files copied
    kept: dict[str, int] = field(default_factory=dict)  # dir -> files already present
    notes: list[str] = field(default_factory=list)


def init_shared(config: Config, source: Path | None, minimal: bool) -> InitSharedReport:
    if not config.shared:
        raise SharedDataError(
            "kinfra.toml declares no shared dirs",
            hint="add [shared.<name>] tables (target, services, read_only) first",
        )
    if source is None and not minimal:
        raise SharedDataError(
            "nothing to initialise from",
            hint="pass --from PATH to copy existing data, or --minimal for empty dirs",
        )
    if source is not None:
        source = source.expanduser().resolve()
        if not source.is_dir():
            raise SharedDataError(f"--from {source} is not a directory")
    report = InitSharedReport(root=shared_root(config))
    for shared in config.shared:
        target = report.root / shared.name
        (report.existing if target.is_dir() else report.created).append(shared.name)
        try:
            target.mkdir(parents=True, exist_ok=True)
            if source is not None:
                origin = source / shared.name
                if origin.is_dir():
                    copied, kept = _copy_missing(origin, target)
                    report.copied[shared.name] = copied
                    report.kept[shared.name] = kept
                else:
                    report.notes.append(f"{origin} does not exist; {shared.name} left as it is")
        except OSError as exc:
            raise SharedDataError(
                f"cannot prepare shared dir {target}: {exc.strerror or exc}"
            ) from exc
    return report


def _copy_missing(origin: Path, target: Path) -> tuple[int, int]:
    """Copy files that are not in ``target`` yet; never overwrite or delete."""
    copied = kept = 0
    for path in sorted(origin.rglob("*")):
        destination = target / path.relative_to(origin)
        if path.is_dir():
            destination.mkdir(parents=True, exist_ok=True)
        elif destination.exists() or destination.is_symlink():
            kept += 1
        else:
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, destination, follow_symlinks=False)
            copied += 1
    return copied, kept
