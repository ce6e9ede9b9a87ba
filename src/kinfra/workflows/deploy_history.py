"""Every deploy, promote and rollback with its outcome: ``$KINFRA_HOME/<project>/deploys.jsonl``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from kinfra.adapters.statefile import append_jsonl, read_jsonl
from kinfra.domain.deploy import HistoryRecord, Outcome, Release
from kinfra.paths import project_home


def history_path(project: str) -> Path:
    return project_home(project) / "deploys.jsonl"


def append(project: str, record: HistoryRecord) -> None:
    append_jsonl(history_path(project), [record.to_dict()])


def read(project: str, target: str | None = None) -> list[HistoryRecord]:
    """Oldest first; lines this kinfra cannot read are skipped."""
    records = []
    for data in read_jsonl(history_path(project)):
        try:
            record = HistoryRecord.from_dict(data)
        except (KeyError, ValueError, TypeError):
            continue
        if target is None or record.target == target:
            records.append(record)
    return records


def describe_point(project: str, target: str, point: Mapping[str, str]) -> Release | None:
    """The release whose images are the rollback point ``point``: the
    ``previous`` of the latest switch that left exactly those images behind."""
    for record in reversed(read(project, target)):
        if record.outcome is Outcome.FAILED or record.previous is None:
            continue
        if dict(record.previous_images) == dict(point):
            return record.previous
    return None
