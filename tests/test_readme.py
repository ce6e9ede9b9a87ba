"""The README is the front door: every command kinfra has is documented there,
and its setup/demo/test commands are the scripts that exist."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click

from kinfra.cli.main import app

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def command_paths(command: click.Command, prefix: str = "kinfra") -> list[str]:
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        paths = []
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            # A lazily imported command must be the one its name promises.
            assert sub is not None and sub.name == name, name
            paths += command_paths(sub, f"{prefix} {name}")
        return paths
    return [prefix]


def test_every_command_is_documented() -> None:
    paths = command_paths(app)
    assert len(paths) > 10
    missing = [path for path in paths if f"`{path}" not in README]
    assert missing == []


def test_running_a_command_imports_only_its_own_module() -> None:
    code = (
        "import sys; from kinfra.cli.main import main; main(['url', '--help']); "
        "print(sorted(m for m in sys.modules if m.startswith('kinfra.cli.')), file=sys.stderr)"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stderr
    assert "kinfra.cli.everyday" in loaded
    for other in ("kinfra.cli.orch", "kinfra.cli.sandbox", "kinfra.cli.worktree_cmds"):
        assert other not in loaded


def test_front_door_commands_exist_and_ci_runs_the_test_command() -> None:
    for script in ("scripts/setup.sh", "scripts/demo.sh", "scripts/test.sh"):
        assert f"`./{script}`" in README
        assert (ROOT / script).is_file()
    assert "./scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
