"""kinfra runs the Compose plugin binary directly, the one `docker compose`
would run: same search order as the docker CLI, and the same answers."""

from __future__ import annotations

import json
from pathlib import Path

from kinfra.adapters import compose
from kinfra.adapters.runner import run


def plugin(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "docker-compose"
    path.write_text("#!/bin/sh\necho fake\n")
    path.chmod(0o755)
    return path


def test_search_order_config_dir_then_extra_dirs_then_system(tmp_path: Path) -> None:
    config_dir = tmp_path / "dotdocker"
    config_dir.mkdir()
    system = plugin(tmp_path / "system")
    extra = tmp_path / "extra"
    (config_dir / "config.json").write_text(json.dumps({"cliPluginsExtraDirs": [str(extra)]}))

    def found() -> Path | None:
        return compose.find_compose_plugin(config_dir, system_dirs=[str(tmp_path / "system")])

    assert found() == system
    extra_plugin = plugin(extra)
    assert found() == extra_plugin
    user_plugin = plugin(config_dir / "cli-plugins")
    assert found() == user_plugin
    # Not executable: docker skips it, and so does kinfra.
    user_plugin.chmod(0o644)
    assert found() == extra_plugin


def test_nothing_found_and_a_broken_config_are_not_errors(tmp_path: Path) -> None:
    config_dir = tmp_path / "dotdocker"
    config_dir.mkdir()
    (config_dir / "config.json").write_text("{not json")
    assert compose.find_compose_plugin(config_dir, system_dirs=[str(tmp_path / "none")]) is None


def test_the_plugin_found_here_is_the_compose_docker_runs(tmp_path: Path) -> None:
    program = compose.compose_program()
    assert Path(program[0]).name == "docker-compose"
    direct = run([*program, "version", "--short"]).stdout.strip()
    via_docker = run(["docker", "compose", "version", "--short"]).stdout.strip()
    assert direct == via_docker != ""
    assert compose.shown([*program, "-p", "x", "down"]) == "docker compose -p x down"
