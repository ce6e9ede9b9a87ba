"""What kinfra asks of the machine itself: its physical memory.

Portable: ``sysconf`` answers on Linux and macOS alike; ``sysctl`` is the
fallback where a Python build lacks the names (no ``/proc`` anywhere).
"""

from __future__ import annotations

import os

from kinfra.adapters.runner import CommandNotFoundError, run


def total_memory_mb() -> int | None:
    """The machine's physical memory in megabytes, or None when it cannot be read."""
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        pages = size = -1
    if pages > 0 and size > 0:
        return pages * size // (1024 * 1024)
    try:
        result = run(["sysctl", "-n", "hw.memsize"], check=False, timeout=5)
    except CommandNotFoundError:
        return None
    text = result.stdout.strip()
    return int(text) // (1024 * 1024) if result.ok and text.isdigit() else None
