"""`kinfra sandbox config`: the merged compose configuration a slot runs.

The same inputs ``up`` would use (the project's compose files, the slot's
override for its claimant, its env file, the resolved secrets), written to a
private scratch directory instead of the slot's own, so nothing about the
slot changes and nothing starts. Secret values are redacted from the output.
An unclaimed slot is shown as a claim by this checkout would run it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kinfra.adapters import compose
from kinfra.adapters import secrets as secret_refs
from kinfra.adapters.registry import RegistryStore
from kinfra.domain.slot import Slot
from kinfra.project import Project
from kinfra.workflows.shared import shared_root
from kinfra.workflows.slot_files import (
    compose_target,
    scratch_slot,
    write_secrets_file,
    write_slot_files,
)

FORMATS = ("yaml", "json")


@dataclass(frozen=True)
class MergedConfig:
    """The merged compose configuration a slot runs (`kinfra sandbox config`), secrets redacted."""

    slot: Slot
    code_dir: Path
    claimed: bool  # False: what a claim by this checkout would mount
    text: str


def merged_config(
    project: Project, slot_id: int, fmt: str = "yaml", store: RegistryStore | None = None
) -> MergedConfig:
    config = project.config
    record = (store or RegistryStore()).load().require_project(config.name).slot(slot_id)
    code_dir = record.claimant or (project.here or project.root).resolve()
    secret_values = secret_refs.resolve_all(config.secrets, config.root)
    # The slot as it is, with its files in a scratch directory.
    with scratch_slot(config, project.slot(slot_id), "config") as preview:
        shared = shared_root(config) if config.shared else None
        write_slot_files(config, preview, record.instance_id, code_dir, shared_root=shared)
        write_secrets_file(preview.directory, secret_values)
        model = compose.config(compose_target(config, preview))
    text = _render(_redacted(model, list(secret_values.values())), fmt)
    return MergedConfig(project.slot(slot_id), code_dir, record.claim is not None, text)


def _redacted(value: Any, secrets: list[str]) -> Any:
    """The model with every secret value replaced, in keys and strings alike
    (redacting the rendered text instead could change what it parses as)."""
    if isinstance(value, dict):
        return {_redacted(k, secrets): _redacted(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(item, secrets) for item in value]
    if isinstance(value, str):
        return secret_refs.redact(value, secrets)
    return value


def _render(model: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(model, indent=2) + "\n"
    import yaml  # only this command renders YAML

    text: str = yaml.safe_dump(model, sort_keys=False, allow_unicode=True)
    return text
