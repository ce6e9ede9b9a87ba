"""Memory sizes in kinfra.toml, the budget's default, and their validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from kinfra.adapters.system import total_memory_mb
from kinfra.domain.config import OnClaim, Profile, load_config
from kinfra.domain.memory import format_size, parse_size
from kinfra.errors import ConfigError
from kinfra.workflows.budget import budget_of


@pytest.mark.parametrize(
    ("text", "megabytes"),
    [("1.5 GB", 1536), ("512 MB", 512), ("4GB", 4096), ("2 GiB", 2048), ("1536m", 1536),
     ("1 TB", 1048576), ("2048 KiB", 2)],
)  # fmt: skip
def test_sizes_are_read_in_binary_units(text: str, megabytes: int) -> None:
    assert parse_size(text) == megabytes


@pytest.mark.parametrize("text", ["lots", "1.5", "GB", "-1 GB", "1,5 GB", "3 PB"])
def test_what_is_not_a_size_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a size"):
        parse_size(text)


def test_sizes_read_back_as_written() -> None:
    assert [format_size(m) for m in (1536, 512, 4096)] == ["1.5 GB", "512 MB", "4.0 GB"]
    assert [format_size(m) for m in (2.5, 0.4, 0)] == ["2.5 MB", "410 KB", "0 MB"]


def config(tmp_path: Path, sandbox: str = "", profiles: str = "") -> Path:
    path = tmp_path / "kinfra.toml"
    path.write_text(f'[project]\nname = "app"\n[sandbox]\n{sandbox}\n[profiles]\n{profiles}\n')
    return path


def test_budget_on_claim_and_profile_memory_are_parsed(tmp_path: Path) -> None:
    loaded = load_config(
        config(
            tmp_path, 'memory_budget = "6 GB"\non_claim = "reset"', 'light = { memory = "1 GB" }'
        )
    )
    assert loaded.sandbox.memory_budget_mb == 6144
    assert loaded.sandbox.on_claim is OnClaim.RESET
    assert loaded.profiles[Profile.LIGHT].memory_mb == 1024
    assert loaded.profiles[Profile.HEAVY].memory_mb == 4096  # the default
    assert budget_of(loaded) == 6144


def test_without_a_budget_it_is_half_the_machines_memory(tmp_path: Path) -> None:
    loaded = load_config(config(tmp_path))
    total = total_memory_mb()
    assert total is not None and total > 256  # read from sysconf, no /proc
    assert loaded.sandbox.memory_budget_mb is None and loaded.sandbox.on_claim is OnClaim.KEEP
    assert budget_of(loaded) == total // 2


@pytest.mark.parametrize(
    ("sandbox", "profiles", "needle"),
    [
        ('memory_budget = "plenty"', "", "[sandbox] memory_budget: 'plenty' is not a size"),
        ("memory_budget = 8", "", "[sandbox] memory_budget: expected a string"),
        ('memory_budget = "0 GB"', "", "[sandbox] memory_budget: must be more than zero"),
        ('on_claim = "wipe"', "", "[sandbox] on_claim: expected 'keep' or 'reset', got 'wipe'"),
        ("", 'heavy = { memory = "big" }', "[profiles.heavy] memory: 'big' is not a size"),
    ],
)
def test_a_bad_size_or_claim_mode_is_one_line_naming_the_key(
    tmp_path: Path, sandbox: str, profiles: str, needle: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(config(tmp_path, sandbox, profiles))
    assert needle in caught.value.message and "\n" not in caught.value.message
