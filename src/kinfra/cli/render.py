"""Output helpers shared by the command modules.

Plain text only (tables included), written straight to stdout/stderr, so that
quick commands import nothing heavy and output stays easy to parse.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from kinfra.errors import KinfraError


def plain(text: str, err: bool = False, end: str = "\n") -> None:
    stream = sys.stderr if err else sys.stdout
    stream.write(text + end)
    stream.flush()


def out(text: str, end: str = "\n") -> None:
    plain(text, end=end)


def ok(text: str) -> None:
    plain(f"✓ {text}")


def note(text: str) -> None:
    plain(f"note: {text}", err=True)


def warn(text: str) -> None:
    plain(f"warning: {text}", err=True)


def error(exc: KinfraError) -> None:
    plain(f"kinfra: error: {exc.message}", err=True)
    if exc.hint:
        plain(f"  hint: {exc.hint}", err=True)


def print_json(data: Any) -> None:
    plain(json.dumps(data, indent=2, sort_keys=True, default=str))


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A plain aligned table: cheap to import, stable to parse in tests."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = ["  ".join(h.upper().ljust(widths[i]) for i, h in enumerate(headers)).rstrip()]
    for row in rows:
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    plain("\n".join(lines))


def ports(planned: Mapping[str, int], running: Mapping[str, int] | None = None) -> str:
    """``api:8001 db:5433``; a port about to change shows both, ``api:8001→8011``."""
    parts = []
    for name, port in planned.items():
        old = (running or {}).get(name, port)
        parts.append(f"{name}:{old}→{port}" if old != port else f"{name}:{port}")
    return " ".join(parts)


def containers_and_urls(containers: Sequence[Any], urls: Mapping[str, str]) -> None:
    """The container table and the URLs, as every status command shows them."""
    if containers:
        table(
            ["container", "service", "state", "health"],
            [[c.name, c.service, c.state, c.health or "-"] for c in containers],
        )
    for name, url in urls.items():
        out(f"  {name:<8} {url}")


def progress() -> Any:
    """Progress callbacks for a slot start: phase lines always, compose's own
    output as one transient line when stderr is a terminal."""
    from kinfra.workflows.start import Progress

    tty = sys.stderr.isatty()

    def step(text: str) -> None:
        if tty:
            sys.stderr.write("\r\033[K")
        plain(f"… {text}", err=True)

    def detail(line: str) -> None:
        if tty and line.strip():
            width = 100
            sys.stderr.write("\r\033[K  │ " + line.strip()[:width])
            sys.stderr.flush()

    def check(result: Any) -> None:
        mark = {"passed": "✓", "failed": "✗", "skipped": "-"}[result.outcome.value]
        if tty:
            sys.stderr.write("\r\033[K")
        plain(
            f"  {mark} check {result.name:<10} {result.target}  {result.detail} "
            f"({result.seconds:.1f}s)",
            err=True,
        )

    return Progress(step=step, detail=detail, check=check)
