"""kinfra.toml read through the config cache: never a stale or a broken answer."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from kinfra.adapters.config_cache import cache_path, cached_configs
from kinfra.errors import ConfigError

CONFIG = '[project]\nname = "app"\n\n[sandbox]\npool_size = {pool}\n'


@pytest.fixture
def path(tmp_path: Path, kinfra_home: Path) -> Path:
    """Where the test writes its kinfra.toml, with a $KINFRA_HOME to cache in."""
    kinfra_home.mkdir()
    return tmp_path / "kinfra.toml"


def read(path: Path) -> int:
    with cached_configs() as reader:
        return reader(path).sandbox.pool_size


def test_a_read_is_cached_privately_and_a_change_of_the_same_size_is_seen(
    tmp_path: Path, path: Path
) -> None:
    path.write_text(CONFIG.format(pool=3))
    assert read(path) == 3
    entries = json.loads(cache_path().read_text())["entries"]
    assert entries[str(path)]["toml"]["sandbox"] == {"pool_size": 3}
    assert stat.S_IMODE(cache_path().stat().st_mode) == 0o600  # a config may hold a secret
    assert read(path) == 3

    before = path.stat()
    path.write_text(CONFIG.format(pool=4))  # same size; even the same mtime is not trusted
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert read(path) == 4
    replaced = tmp_path / "other.toml"
    replaced.write_text(CONFIG.format(pool=5))
    replaced.replace(path)  # another file in its place (an editor's save, a checkout)
    assert read(path) == 5


def test_a_corrupt_or_foreign_cache_is_ignored_and_written_again(path: Path) -> None:
    path.write_text(CONFIG.format(pool=2))
    for junk in ("{not json", '{"version": 99, "entries": {}}', '{"version": 1, "entries": 7}'):
        cache_path().write_text(junk)
        assert read(path) == 2
        assert json.loads(cache_path().read_text())["version"] == 1


def test_a_cached_config_is_checked_on_every_read(path: Path) -> None:
    path.write_text(CONFIG.format(pool=0))
    for _ in range(2):
        with pytest.raises(ConfigError, match=r"\[sandbox\] pool_size: must be at least 1"):
            read(path)
    assert str(path) in json.loads(cache_path().read_text())["entries"]


def test_files_gone_leave_the_cache_and_a_missing_home_is_not_created(
    tmp_path: Path, kinfra_home: Path
) -> None:
    path = tmp_path / "kinfra.toml"
    path.write_text(CONFIG.format(pool=2))
    assert read(path) == 2 and not kinfra_home.exists()  # a read-only command creates nothing

    kinfra_home.mkdir()
    gone = tmp_path / "gone.toml"
    gone.write_text(CONFIG.format(pool=1))
    assert read(gone) == 1
    gone.unlink()
    path.write_text(CONFIG.format(pool=3))
    assert read(path) == 3
    assert list(json.loads(cache_path().read_text())["entries"]) == [str(path)]


@pytest.mark.parametrize(
    "secrets",
    [
        '[secrets]\nDB_PASSWORD = "literal-Pa55"\n',
        '[deploy.nas]\ncontext = "nas"\n\n[deploy.nas.secrets]\nDB_PASSWORD = "literal-Pa55"\n',
    ],
)
def test_a_config_naming_secrets_is_never_written_to_the_cache(path: Path, secrets: str) -> None:
    other = path.with_name("other.toml")
    other.write_text(CONFIG.format(pool=3))
    path.write_text(CONFIG.format(pool=2) + secrets)
    with cached_configs() as reader:
        assert reader(path).sandbox.pool_size == 2
        assert reader(other).sandbox.pool_size == 3  # so that the cache is written
    text = cache_path().read_text()
    assert "literal-Pa55" not in text
    assert list(json.loads(text)["entries"]) == [str(other)]
