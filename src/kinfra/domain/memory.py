"""Memory sizes as kinfra.toml writes them ("1.5 GB", "512 MB"): pure.

Units are binary, as Docker reports memory: 1 GB = 1024 MB. Sizes are kept
in whole megabytes.
"""

from __future__ import annotations

import re

_UNITS = {
    "k": 1 / 1024,
    "m": 1,
    "g": 1024,
    "t": 1024 * 1024,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt])(?:i?b)?\s*$", re.IGNORECASE)

# Without [sandbox] memory_budget, stacks may use this share of the machine's RAM.
DEFAULT_BUDGET_SHARE = 0.5


def parse_size(text: str) -> int:
    """Megabytes in ``text``; ValueError when it is not a size."""
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a size like '1.5 GB' or '512 MB'")
    return round(float(match.group(1)) * _UNITS[match.group(2).lower()])


def format_size(megabytes: float) -> str:
    if abs(megabytes) >= 1024:
        return f"{megabytes / 1024:.1f} GB"
    if abs(megabytes) >= 10 or megabytes == 0:
        return f"{megabytes:.0f} MB"
    if abs(megabytes) >= 1:
        return f"{megabytes:.1f} MB"
    return f"{megabytes * 1024:.0f} KB"  # a small container or archive, not "0 MB"
