"""The README is the front door: every command kinfra has is documented there,
and its setup/demo/test commands are the scripts that exist."""

from __future__ import annotations

from pathlib import Path

import click

from kinfra.cli.main import app

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def command_paths(command: click.Command, prefix: str = "kinfra") -> list[str]:
    if isinstance(command, click.Group):
        paths = []
        for name, sub in command.commands.items():
            paths += command_paths(sub, f"{prefix} {name}")
        return paths
    return [prefix]


def test_every_command_is_documented() -> None:
    paths = command_paths(app)
    assert len(paths) > 10
    missing = [path for path in paths if f"`{path}" not in README]
    assert missing == []


def test_front_door_commands_exist_and_ci_runs_the_test_command() -> None:
    for script in ("scripts/setup.sh", "scripts/demo.sh", "scripts/test.sh"):
        assert f"`./{script}`" in README
        assert (ROOT / script).is_file()
    assert "./scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
