"""kinfra.toml validation: each mistake is one line naming the file, the key and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from kinfra.domain.config import Profile, decode_config, load_config, parse_config
from kinfra.domain.config_stack import CheckType
from kinfra.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]

MINIMAL = '[project]\nname = "app"\n'
PORTS = """
[ports]
api = { service = "backend", target = 8080, base = 8000 }
db = { service = "db", target = 5432, base = 5432 }
"""


def load(tmp_path: Path, text: str) -> ConfigError:
    """The error loading ``text`` as kinfra.toml raises."""
    path = tmp_path / "kinfra.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value


def assert_names(error: ConfigError, *needles: str) -> None:
    assert "\n" not in error.message, error.message
    assert error.message.startswith("kinfra.toml: "), error.message
    for needle in needles:
        assert needle in error.message, error.message


# --- valid configs -------------------------------------------------------------------


def test_the_shop_example_is_valid() -> None:
    config = load_config(REPO / "examples" / "shop" / "kinfra.toml")
    assert (config.name, config.prefix) == ("shop", "shop")
    assert config.port("api").host_port(3) == 8003
    assert [c.name for c in config.checks] == ["db", "api"]
    assert config.checks[1].type is CheckType.HTTP and config.checks[1].needs == ("db",)
    assert config.mounts[0].read_only is True


@pytest.mark.parametrize(
    ("text", "section", "needle"),
    [
        (
            '[[mounts]]\nservices = ["api"]\nsource = "../src"\ntarget = "/app"\n',
            "mounts",
            "source",
        ),
        ('[[checks]]\ntype = "tcp"\nport = "nope"\n', "checks", "[checks][1] port"),
        ('[shared.models]\ntarget = "models"\nservices = ["api"]\n', "shared", "[shared.models]"),
        ('[worktree]\ncopy = ["../secrets.env"]\n', "worktree", "[worktree] copy"),
        ('[session]\ncomand = "claude"\n', "session", "[session] comand: unknown key"),
        ("[orchestrator]\nmax_turns = 0\n", "orchestrator", "[orchestrator] max_turns"),
        ('[agent]\nbase_image = "has space"\n', "agent", "[agent] base_image"),
    ],
)
def test_a_listing_reads_a_section_it_does_not_show_only_when_asked_and_load_config_reads_all(
    tmp_path: Path, text: str, section: str, needle: str
) -> None:
    path = tmp_path / "kinfra.toml"
    path.write_text(MINIMAL + PORTS + text)
    listing = parse_config(path, decode_config(path))  # what `kinfra ports` reads
    assert listing.port("api").host_port(1) == 8001
    with pytest.raises(ConfigError) as caught:
        getattr(listing, section)
    assert_names(caught.value, needle)
    assert load(tmp_path, path.read_text()).message == caught.value.message


def test_a_section_read_when_used_must_still_be_a_table(tmp_path: Path) -> None:
    assert_names(load(tmp_path, 'orchestrator = "claude"\n' + MINIMAL), "orchestrator", "a table")


def test_defaults_of_a_minimal_config(tmp_path: Path) -> None:
    path = tmp_path / "kinfra.toml"
    path.write_text(MINIMAL)
    config = load_config(path)
    assert config.prefix == "app"
    assert config.compose_files == ("docker-compose.yml",)
    assert config.sandbox.pool_size == 6
    # As in the seed: slots 1-4 light, 5 standard, 6 heavy.
    profiles = [config.sandbox.profile_of(slot) for slot in range(1, 7)]
    assert profiles == [Profile.LIGHT] * 4 + [Profile.STANDARD, Profile.HEAVY]
    assert config.profiles[Profile.HEAVY].replicas == 4
    assert (config.ports, config.mounts, config.checks, config.shared) == ((), (), (), ())


def test_shared_dirs_and_profiles_parse(tmp_path: Path) -> None:
    path = tmp_path / "kinfra.toml"
    path.write_text(
        MINIMAL
        + "[sandbox]\nworkers = ['worker']\n"
        + "[profiles.light]\nreplicas = 0\n"
        + "[shared.market_data]\ntarget = '/data/market'\nservices = ['backend', 'worker']\n"
    )
    config = load_config(path)
    assert config.profiles[Profile.LIGHT].replicas == 0
    assert config.profiles[Profile.STANDARD].replicas == 2
    shared = config.shared[0]
    assert (shared.name, shared.target, shared.services, shared.read_only) == (
        "market_data",
        "/data/market",
        ("backend", "worker"),
        True,
    )


# --- one line per mistake, naming the key ----------------------------------------------

BAD_CONFIGS = {
    "missing project table": ("[sandbox]\npool_size = 3\n", ["top level project", "missing"]),
    "missing project name": ('[project]\nprefix = "app"\n', ["[project] name", "missing"]),
    "project name not a string": ("[project]\nname = 3\n", ["[project] name", "a string"]),
    "project name with capitals": (
        '[project]\nname = "My App"\n',
        ["[project] name", "'My App'", "lowercase"],
    ),
    "base is a string": (
        MINIMAL + '[ports]\napi = { service = "backend", target = 8080, base = "x" }\n',
        ["[ports.api] base", "expected an integer", "'x'"],
    ),
    "pool_size is a bool": (
        MINIMAL + "[sandbox]\npool_size = true\n",
        ["[sandbox] pool_size", "expected an integer, got True"],
    ),
    "port without a target": (
        MINIMAL + '[ports]\napi = { service = "backend", base = 8000 }\n',
        ["[ports.api] target", "missing"],
    ),
    "port is not a table": (MINIMAL + "[ports]\napi = 8000\n", ["[ports] api", "a table"]),
    "port name with a dash": (
        MINIMAL + '[ports]\napi-v2 = { service = "b", target = 1, base = 8000 }\n',
        ["[ports] api-v2", "lowercase"],
    ),
    "base too high for the pool": (
        MINIMAL + '[ports]\napi = { service = "b", target = 80, base = 65533 }\n',
        ["[ports.api] base", "65533 + 6 slots exceeds 65535"],
    ),
    "overlapping port ranges": (
        MINIMAL + PORTS + 'web = { service = "web", target = 3000, base = 8006 }\n',
        ["[ports] web", "8006-8012", "'api'", "8000-8006", "at least 7 apart"],
    ),
    "typo in a key": (MINIMAL + "[sandbox]\npool_szie = 4\n", ["[sandbox] pool_szie", "unknown"]),
    "unknown top-level table": (MINIMAL + "[sanbox]\n", ["top level sanbox", "unknown"]),
    "check on an unknown port": (
        MINIMAL + PORTS + '[[checks]]\ntype = "tcp"\nport = "redis"\n',
        ["[checks][1] port", "'redis'", "[ports]"],
    ),
    "check of an unknown type": (
        MINIMAL + PORTS + '[[checks]]\ntype = "udp"\nport = "db"\n',
        ["[checks][1] type", "'udp'"],
    ),
    "needs names a later check": (
        MINIMAL
        + PORTS
        + '[[checks]]\ntype = "http"\nport = "api"\nneeds = ["db"]\n'
        + '[[checks]]\ntype = "tcp"\nport = "db"\n',
        ["[checks][1] needs", "'db'", "defined before"],
    ),
    "check timeout not positive": (
        MINIMAL + PORTS + '[[checks]]\ntype = "tcp"\nport = "db"\ntimeout = 0\n',
        ["[checks][1] timeout", "positive"],
    ),
    "mount source outside the worktree": (
        MINIMAL + '[[mounts]]\nservices = ["backend"]\nsource = "../x"\ntarget = "/app"\n',
        ["[mounts][1] source", "'../x'", "inside the worktree"],
    ),
    "mount target relative": (
        MINIMAL + '[[mounts]]\nservices = ["backend"]\nsource = "app"\ntarget = "app"\n',
        ["[mounts][1] target", "absolute"],
    ),
    "mount read_only not a bool": (
        MINIMAL + '[[mounts]]\nservices = ["b"]\nsource = "a"\ntarget = "/a"\nread_only = "yes"\n',
        ["[mounts][1] read_only", "true or false"],
    ),
    "heavy slot outside the pool": (
        MINIMAL + "[sandbox]\npool_size = 4\nheavy_slots = [7]\n",
        ["[sandbox] heavy_slots", "slot 7", "1..4"],
    ),
    "unknown profile": (
        MINIMAL + "[profiles.huge]\nreplicas = 9\n",
        ["[profiles] huge", "light, standard and heavy"],
    ),
    "shared target relative": (
        MINIMAL + "[shared.models]\ntarget = 'models'\nservices = ['backend']\n",
        ["[shared.models] target", "absolute"],
    ),
    "workers not a list of strings": (
        MINIMAL + "[sandbox]\nworkers = ['a', 1]\n",
        ["[sandbox] workers", "list of strings"],
    ),
}


@pytest.mark.parametrize(("text", "needles"), BAD_CONFIGS.values(), ids=BAD_CONFIGS.keys())
def test_a_bad_config_is_one_line_naming_the_key(
    tmp_path: Path, text: str, needles: list[str]
) -> None:
    error = load(tmp_path, text)
    assert_names(error, *needles)
    assert error.hint == f"fix {tmp_path / 'kinfra.toml'}"


def test_invalid_toml_names_the_file_and_position(tmp_path: Path) -> None:
    error = load(tmp_path, '[project]\nname "app"\n')
    assert_names(error, "not valid TOML", "line 2")


def test_a_missing_file_points_at_kinfra_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "kinfra.toml")
    assert "\n" not in caught.value.message and "not found" in caught.value.message
    assert caught.value.hint is not None and "kinfra init" in caught.value.hint


@pytest.mark.parametrize(
    ("literal", "shown", "kind"),
    [
        ("987654", "987654", "an integer"),
        ("98.7654", "98.7654", "a float"),
        ("true", "True", "a boolean"),
        ('["hunter2-in-a-list"]', "hunter2", "a list"),
        ('{ v = "hunter2-in-a-table" }', "hunter2", "a table"),
        ("1979-05-27T07:32:00", "1979", "a date/time"),
    ],
)
def test_a_non_string_secret_is_described_never_shown(
    tmp_path: Path, literal: str, shown: str, kind: str
) -> None:
    error = load(tmp_path, MINIMAL + f"[secrets]\nPIN = {literal}\n")
    assert_names(error, "[secrets] PIN", f"expected a string, got {kind}")
    assert shown not in error.message and shown not in (error.hint or "")


def test_health_check_urls_bracket_an_ipv6_bind_address(tmp_path: Path) -> None:
    from kinfra.domain.config import parse_config
    from kinfra.project import slot_of
    from kinfra.workflows.gate import check_target

    data = {
        "project": {"name": "v6"},
        "sandbox": {"bind": "::1", "pool_size": 2},
        "ports": {"api": {"service": "web", "target": 80, "base": 18000}},
        "checks": [{"type": "http", "port": "api", "path": "/health"}],
    }
    config = parse_config(tmp_path / "kinfra.toml", data)
    assert check_target(config.checks[0], slot_of(config, 1)) == "http://[::1]:18001/health"
    data["sandbox"] = {"bind": "::", "pool_size": 2}
    config = parse_config(tmp_path / "kinfra.toml", data)
    assert check_target(config.checks[0], slot_of(config, 1)) == "http://[::1]:18001/health"
