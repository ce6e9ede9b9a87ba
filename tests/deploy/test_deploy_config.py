"""[deploy.<target>] of kinfra.toml: each mistake is one line naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from kinfra.domain.config import load_config
from kinfra.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
BASE = """
[project]
name = "shop"
[ports]
api = { service = "backend", target = 8080, base = 8000 }
"""


def error_of(tmp_path: Path, text: str) -> str:
    path = tmp_path / "kinfra.toml"
    path.write_text(BASE + text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "\n" not in caught.value.message
    return caught.value.message


def test_the_example_targets() -> None:
    config = load_config(REPO / "examples" / "shop" / "kinfra.toml")
    homelab = config.deploy["homelab"]
    assert (homelab.context, homelab.project, homelab.canary) == (
        "homelab",
        "shop",
        "homelab-canary",
    )
    assert homelab.compose_files == ("docker-compose.yml", "deploy/remote.yml")
    assert homelab.secrets == {"API_TOKEN": "env://SHOP_API_TOKEN"}
    assert [c.name for c in homelab.checks] == ["api"]
    assert config.deploy["homelab-canary"].project == "shop-canary"


def test_defaults(tmp_path: Path) -> None:
    path = tmp_path / "kinfra.toml"
    path.write_text(BASE + '[deploy.nas]\ncontext = "nas"\n')
    target = load_config(path).deploy["nas"]
    assert (target.project, target.compose_files, target.env_file) == (
        "shop",
        ("docker-compose.yml",),
        None,
    )
    assert target.checks == () and target.registry is None and target.wait_timeout == 120


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[deploy.nas]\ncontext = "nas"\nregistery = "r"\n', "[deploy.nas] registery: unknown key"),
        ("[deploy.nas]\n", "[deploy.nas] context: missing (required)"),
        (
            '[deploy.nas]\ncontext = "nas"\ncanary = "nas"\n',
            "[deploy.nas] canary: a target cannot be its own canary",
        ),
        (
            '[deploy.nas]\ncontext = "nas"\ncanary = "c"\n',
            "[deploy.nas] canary: 'c' is not a target under [deploy]",
        ),
        (
            '[deploy.nas]\ncontext = "x"\ncanary = "c"\n[deploy.c]\ncontext = "x"\n',
            "[deploy.nas] canary: 'c' is the same compose project (shop) on the same context",
        ),
        (
            '[deploy.status]\ncontext = "nas"\n',
            "[deploy] status: 'status' is a `kinfra deploy` subcommand",
        ),
        ('[deploy.Nas]\ncontext = "nas"\n', "[deploy] Nas: target names are lowercase"),
        (
            '[deploy.nas]\ncontext = "nas"\nproject = "My.App"\n',
            "[deploy.nas] project: 'My.App' is not a compose project name",
        ),
        (
            '[deploy.nas]\ncontext = "nas"\nenv_file = "../x.env"\n',
            "[deploy.nas] env_file: '../x.env' must be a path inside",
        ),
        (
            '[deploy.nas]\ncontext = "nas"\n[[deploy.nas.checks]]\ntype = "http"\nport = "web"\n',
            "[deploy.nas.checks][1] port: 'web' is not a name under [ports]",
        ),
        (
            '[deploy.nas]\ncontext = "nas"\n[deploy.nas.secrets]\nTOKEN = 42\n',
            "[deploy.nas.secrets] TOKEN: expected a string, got an integer",
        ),
    ],
)
def test_mistakes(tmp_path: Path, text: str, message: str) -> None:
    assert message in error_of(tmp_path, text)
