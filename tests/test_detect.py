"""Directory auto-detection: `kinfra status / env / url` and `kinfra.detect`,
from a worktree, a nested directory, the main checkout and outside any
repository, with real git, a real Docker stack and a real shell."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kinfra.detect import backend_url, detect
from kinfra.domain.config import load_config
from kinfra.domain.slot import env_file_values, render_env_file
from kinfra.project import slot_of
from kinfra.testing import dockerkit
from kinfra.testing.cli import kinfra, ok
from kinfra.testing.example import make_example_project
from kinfra.testing.gitrepo import commit_all


def _bases(repo: Path) -> dict[str, int]:
    return {p.name: p.base for p in load_config(repo / "kinfra.toml").ports}


@pytest.mark.docker
def test_detection_from_worktree_nested_dir_main_and_outside(
    tmp_path: Path, docker_prefix: str
) -> None:
    repo = make_example_project(tmp_path, docker_prefix, pool_size=2)
    bases = _bases(repo)
    ok(repo, "sandbox", "provision")
    ok(repo, "impl", "genome/M1")
    worktree = tmp_path / f"{docker_prefix}-impl-genome-M1"
    # This worktree's code says who it is, so a response proves which slot answered.
    (worktree / "app" / "index.html").write_text("from-the-worktree\n")
    nested = worktree / "app" / "deep" / "er"
    nested.mkdir(parents=True)
    # A second running slot, for the main checkout's code: the wrong answer.
    ok(repo, "sandbox", "up", "--slot", "2")

    try:
        slot1_api = f"http://localhost:{bases['api'] + 1}"
        for where in (worktree, nested):
            status = ok(where, "status")
            assert status.startswith(f"slot 1 ({docker_prefix}-slot-1): running"), status
            assert "env-file" in status and "backend" in status and "healthy" in status
            assert slot1_api in status
            assert ok(where, "url").strip() == slot1_api
            assert ok(where, "url", "db").strip() == f"localhost:{bases['db'] + 1}"

        # eval "$(kinfra env)" in a real shell, then wget the API it names.
        # A stale exported API_URL must not matter: the file is read, not the env.
        script = (
            f'eval "$("{sys.executable}" -m kinfra env)" && '
            'echo "$SLOT_NUMBER $COMPOSE_PROJECT_NAME" && wget -q -O- "$API_URL/app/index.html"'
        )
        shell = subprocess.run(
            ["sh", "-c", script],
            cwd=nested,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "API_URL": "http://localhost:1"},
            check=False,
        )
        assert shell.returncode == 0, shell.stderr
        assert shell.stdout.splitlines() == [f"1 {docker_prefix}-slot-1", "from-the-worktree"]

        # Explicit flags win, including a --port equal to the base.
        assert ok(worktree, "url", "--port", str(bases["api"])).strip() == (
            f"http://localhost:{bases['api']}"
        )
        assert ok(worktree, "url", "--slot", "2").strip() == f"http://localhost:{bases['api'] + 2}"
        assert ok(worktree, "url", "--url", "http://example.invalid:9").strip() == (
            "http://example.invalid:9"
        )
        flagged = ok(worktree, "status", "--slot", "2")
        assert flagged.startswith(f"slot 2 ({docker_prefix}-slot-2): running"), flagged

        # The main checkout has no .env.sandbox: base ports, and it says why.
        main = kinfra(repo, "url")
        assert main.returncode == 0
        assert main.stdout.strip() == f"http://localhost:{bases['api']}"
        assert "default" in main.stderr and "no local-prod" in main.stderr
        main_status = ok(repo, "status")
        assert main_status.startswith("base ports: not answering"), main_status

        # Outside any repository: the only registered project, and why.
        outside = tmp_path / "elsewhere"
        outside.mkdir()
        away = kinfra(outside, "url")
        assert away.returncode == 0, away.stderr
        assert away.stdout.strip() == f"http://localhost:{bases['api']}"
        assert "not inside a kinfra project" in away.stderr and docker_prefix in away.stderr
        # ...and explicit flags still win there.
        assert ok(outside, "url", "--port", "8000").strip() == "http://localhost:8000"

        # The Python API gives what the CLI gives.
        instance = detect(nested)
        assert (instance.slot, instance.source, instance.url) == (1, "env-file", slot1_api)
        assert backend_url(nested, port=bases["api"]) == f"http://localhost:{bases['api']}"
    finally:
        kinfra(repo, "sandbox", "down", "--slot", "2")
        kinfra(repo, "done", "genome-M1", "--force")
    assert dockerkit.compose_projects(docker_prefix) == []


def test_env_formats_and_explicit_port_equal_to_base(tmp_path: Path) -> None:
    """No Docker needed: detection reads files and the config only."""
    repo = make_example_project(tmp_path, "ktdetect", pool_size=2, with_origin=False)
    bases = _bases(repo)

    default = detect(repo)
    assert (default.source, default.slot) == ("default", None)
    flagged = detect(repo, port=bases["api"])
    # Same URL as the default, but it is the flag that decided.
    assert flagged.url == default.url
    assert flagged.source == "flag" and "--port" in flagged.reason

    sh = ok(repo, "env", "--slot", "2")
    assert f"export API_PORT='{bases['api'] + 2}'" in sh
    assert "export SLOT_NUMBER='2'" in sh
    assert "export COMPOSE_PROJECT_NAME='ktdetect-slot-2'" in sh
    fish = ok(repo, "env", "--slot", "2", "--format", "fish")
    assert f"set -gx DB_PORT '{bases['db'] + 2}';" in fish
    values = json.loads(ok(repo, "env", "--slot", "1", "--format", "json"))
    assert values["API_URL"] == f"http://localhost:{bases['api'] + 1}"

    # A hand-written .env.sandbox that kinfra did not generate is ignored.
    (repo / ".env.sandbox").write_text("API_URL=http://nope:1\n")
    commit_all(repo, "a foreign .env.sandbox")
    assert detect(repo).source == "default"

    bad = kinfra(repo, "url", "nosuchport")
    assert bad.returncode == 1
    assert bad.stderr.startswith("kinfra: error: no port named 'nosuchport'")


def _slot_env_text(repo: Path, slot_id: int) -> str:
    """The .env.sandbox kinfra writes for ``slot_id`` of the project in ``repo``."""
    config = load_config(repo / "kinfra.toml")
    values = env_file_values(config, slot_of(config, slot_id), "instance-x")
    return render_env_file(values, "Generated by kinfra")


def test_env_file_of_another_project_is_never_used(tmp_path: Path) -> None:
    project_a = make_example_project(tmp_path / "a", "ktdeta", with_origin=False)
    a_slot_env = _slot_env_text(project_a, 1)
    # Project B lives in a directory that holds A's slot file, and B has a
    # copy of A's file inside its own checkout too (a vendored tree, say).
    outer = tmp_path / "outer"
    outer.mkdir()
    (outer / ".env.sandbox").write_text(a_slot_env)
    project_b = make_example_project(outer, "ktdetb", with_origin=False)
    vendored = project_b / "vendor" / "a"
    vendored.mkdir(parents=True)
    (vendored / ".env.sandbox").write_text(a_slot_env)
    b_base = f"http://localhost:{_bases(project_b)['api']}"

    for where in (project_b, vendored):
        result = kinfra(where, "url")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == b_base
        assert "ktdeta" not in result.stderr and "default" in result.stderr
        instance = detect(where)
        assert (instance.source, instance.project, instance.slot) == ("default", "ktdetb", None)

    # B's own slot file is still found from below the foreign one.
    (project_b / ".env.sandbox").write_text(_slot_env_text(project_b, 2))
    instance = detect(vendored)
    assert (instance.source, instance.project, instance.slot) == ("env-file", "ktdetb", 2)
    assert instance.env_file == project_b / ".env.sandbox"


@pytest.mark.parametrize(
    ("key", "bad"), [("API_PORT", "abc"), ("SLOT_NUMBER", "²"), ("DB_PORT", "99999")]
)
def test_a_malformed_env_file_is_one_line_with_a_hint(tmp_path: Path, key: str, bad: str) -> None:
    repo = make_example_project(tmp_path, "ktdetbad", with_origin=False)
    text = _slot_env_text(repo, 1)
    assert f"\n{key}=" in text
    lines = [f"{key}={bad}" if line.startswith(f"{key}=") else line for line in text.splitlines()]
    env_file = repo / ".env.sandbox"
    env_file.write_text("\n".join(lines) + "\n")

    for args in (("url",), ("status",), ("env",)):
        result = kinfra(repo, *args)
        assert result.returncode == 1, result.stderr
        first, *rest = result.stderr.splitlines()
        assert first == (
            f"kinfra: error: {env_file} is malformed: {key} is not a number from "
            + ("0 to 1000" if key == "SLOT_NUMBER" else "1 to 65535")
        )
        assert "kinfra sandbox up" in "\n".join(rest)
    assert not list((tmp_path / "kinfra-home").rglob("*crash*"))
