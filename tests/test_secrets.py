"""Secrets: resolved on the host at slot start, handed to compose in a 0600
file, and never shown: not in output, errors, logs, the registry or --json."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest

from kinfra.adapters import secrets as secret_refs
from kinfra.domain.config import load_config
from kinfra.errors import SecretError
from kinfra.testing import dockerkit
from kinfra.testing.cli import kinfra, ok
from kinfra.testing.example import make_example_project
from kinfra.testing.gitrepo import commit_all

SECRET = "s3cr3t-Value-9f2c'quote$dollar"
LITERAL = "literal-Pa55-77e1"

SECRETS_CONFIG = """
[secrets]
SHOP_TOKEN = "dotenv://.env.local#SHOP_TOKEN"
SHOP_LITERAL = "literal-Pa55-77e1"
"""


def _with_secret_env(repo: Path, extra_line: str = "") -> None:
    """The backend receives both secrets through compose interpolation."""
    compose = repo / "docker-compose.yml"
    text = compose.read_text()
    text = text.replace(
        "    image: shop-backend:dev\n",
        "    image: shop-backend:dev\n"
        "    environment:\n"
        "      SHOP_TOKEN: ${SHOP_TOKEN:-unset}\n"
        "      SHOP_LITERAL: ${SHOP_LITERAL:-unset}\n" + extra_line,
    )
    compose.write_text(text)
    # Git-ignored in the main checkout: one file serves every worktree.
    (repo / ".gitignore").write_text(".env.local\n")
    (repo / ".env.local").write_text(f'# local secrets\nexport SHOP_TOKEN="{SECRET}"\n')
    commit_all(repo, "backend reads secrets")
    subprocess.run(["git", "push", "-q", "origin", "main"], cwd=repo, check=True)


def _files_text(root: Path, skip: str) -> str:
    parts = []
    for path in root.rglob("*"):
        if path.is_file() and path.name != skip:
            parts.append(path.read_text(errors="replace"))
    return "\n".join(parts)


@pytest.mark.docker
def test_dotenv_secret_reaches_container_and_is_never_shown(
    tmp_path: Path, docker_prefix: str, kinfra_home: Path
) -> None:
    repo = make_example_project(tmp_path, docker_prefix, extra_config=SECRETS_CONFIG)
    _with_secret_env(repo)
    seen: list[str] = []

    def run(cwd: Path, *args: str) -> str:
        result = kinfra(cwd, *args)
        seen.extend([result.stdout, result.stderr])
        assert result.returncode == 0, result.stderr
        return result.stdout

    run(repo, "sandbox", "provision")
    run(repo, "impl", "genome/M1")
    worktree = tmp_path / f"{docker_prefix}-impl-genome-M1"
    try:
        project = f"{docker_prefix}-slot-1"
        printed = subprocess.run(
            ["docker", "compose", "-p", project, "exec", "-T", "backend", "env"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert f"SHOP_TOKEN={SECRET}" in printed.splitlines()
        assert f"SHOP_LITERAL={LITERAL}" in printed.splitlines()

        secrets_file = kinfra_home / docker_prefix / "slot-1" / secret_refs.SECRETS_FILE
        assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600

        for args in (
            ("status",),
            ("status", "--json"),
            ("env",),
            ("env", "--format", "json"),
            ("sandbox", "status", "--json"),
            ("sandbox", "slots", "--json"),
            ("secrets", "check"),
            ("secrets", "check", "--json"),
            ("worktrees",),
        ):
            run(worktree, *args)
        checked = json.loads(run(worktree, "secrets", "check", "--json"))
        assert {c["name"]: c["state"] for c in checked} == {
            "SHOP_TOKEN": "ok",
            "SHOP_LITERAL": "ok",
        }
        everything = "\n".join(seen) + _files_text(kinfra_home, skip=secret_refs.SECRETS_FILE)
        everything += (worktree / ".env.sandbox").read_text()
        for value in (SECRET, LITERAL, "s3cr3t"):
            assert value not in everything
        # Stopping the slot takes the resolved secrets off the disk.
        run(worktree, "sandbox", "down")
        assert not secrets_file.exists()
    finally:
        kinfra(repo, "done", "genome-M1", "--force")


@pytest.mark.docker
def test_secret_echoed_by_compose_is_redacted_and_missing_secret_starts_nothing(
    tmp_path: Path, docker_prefix: str, kinfra_home: Path
) -> None:
    repo = make_example_project(
        tmp_path, docker_prefix, extra_config=SECRETS_CONFIG + 'SHOP_ENV = "env://KT_SHOP_ENV"\n'
    )
    # compose rejects this value and quotes it in its error message.
    _with_secret_env(repo, extra_line="    mem_limit: ${SHOP_TOKEN}\n")
    ok(repo, "sandbox", "provision")

    missing = kinfra(repo, "sandbox", "up", "--slot", "1")
    assert missing.returncode == 1
    assert "SHOP_ENV" in missing.stderr and "KT_SHOP_ENV is not set" in missing.stderr
    assert dockerkit.compose_projects(docker_prefix) == []

    echoed = kinfra(repo, "sandbox", "up", "--slot", "1", env={"KT_SHOP_ENV": "x"})
    assert echoed.returncode == 1
    assert "mem_limit" in echoed.stderr and "[secret]" in echoed.stderr
    assert SECRET not in echoed.stderr + echoed.stdout
    assert "s3cr3t" not in _files_text(kinfra_home, skip=secret_refs.SECRETS_FILE)
    slots = json.loads(ok(repo, "sandbox", "slots", "--json"))
    assert [s["claimed_by"] for s in slots] == [None, None]


def test_secrets_check_reports_each_state_without_values(tmp_path: Path) -> None:
    repo = make_example_project(
        tmp_path,
        "ktsecrets",
        with_origin=False,
        extra_config="""
[secrets]
FROM_ENV = "env://KT_FROM_ENV"
UNSET = "env://KT_SURELY_UNSET"
NO_KEY = "dotenv://.env.local#ABSENT"
NO_FILE = "dotenv://nowhere/.env#KEY"
VAULT = "op://vault/item/field"
""",
    )
    (repo / ".env.local").write_text("PRESENT=value-in-dotenv-1234\n")
    # `op` is not on this PATH: a clear error, not a crash.
    env = {"KT_FROM_ENV": "env-value-5678", "PATH": "/usr/bin:/bin"}
    result = kinfra(repo, "secrets", "check", "--json", env=env)
    assert result.returncode == 1
    states = {c["name"]: (c["state"], c["detail"]) for c in json.loads(result.stdout)}
    assert states["FROM_ENV"] == ("ok", "")
    assert states["UNSET"][0] == "missing" and "KT_SURELY_UNSET" in states["UNSET"][1]
    assert states["NO_KEY"][0] == "missing" and "ABSENT" in states["NO_KEY"][1]
    assert states["NO_FILE"][0] == "missing"
    assert states["VAULT"][0] == "error" and "`op` is not installed" in states["VAULT"][1]
    assert "env-value-5678" not in result.stdout + result.stderr

    table = kinfra(repo, "secrets", "check", env=env)
    assert "missing" in table.stdout and "env-value-5678" not in table.stdout


def test_resolve_all_names_variables_never_values(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("A='quoted value 1234'\n")
    values = secret_refs.resolve_all(
        {"A": "dotenv://.env#A", "B": "env://KT_B", "C": "plain-literal"},
        tmp_path,
        environ={"KT_B": "from-env-1234"},
    )
    assert values == {"A": "quoted value 1234", "B": "from-env-1234", "C": "plain-literal"}
    with pytest.raises(SecretError) as caught:
        secret_refs.resolve_all({"B": "env://KT_B", "C": "plain-literal"}, tmp_path, environ={})
    assert "B:" in caught.value.message and "plain-literal" not in caught.value.message


MULTI_LINE = "-----BEGIN KT KEY-----\nline-one-Q7x9\nline-two-Z3k8\n-----END KT KEY-----"

MEM_LIMIT_COMPOSE = """\
services:
  db:
    image: busybox:1.36
    command: ["sh", "-c", "exec httpd -f -p 5432"]
    mem_limit: ${THE_SECRET}
    ports:
      - "5432:5432"
"""


@pytest.mark.docker
def test_multi_line_secret_echoed_by_compose_is_redacted_line_by_line(
    tmp_path: Path, docker_prefix: str, kinfra_home: Path
) -> None:
    repo = make_example_project(
        tmp_path,
        docker_prefix,
        mini=True,
        with_origin=False,
        compose_text=MEM_LIMIT_COMPOSE,
        extra_config='\n[secrets]\nTHE_SECRET = "dotenv://.env.local#THE_SECRET"\n'
        'AS_ENV = "env://KT_MULTI_SECRET"\n',
    )
    (repo / ".env.local").write_text(f'THE_SECRET="{MULTI_LINE}"\n')
    ok(repo, "sandbox", "provision")
    # compose rejects the value as a memory size and quotes it, newlines and
    # all; kinfra shows only the last lines, joined with " / ".
    result = kinfra(repo, "sandbox", "up", "--slot", "1", env={"KT_MULTI_SECRET": MULTI_LINE})
    assert result.returncode == 1
    assert "rejected" in result.stderr and "[secret]" in result.stderr
    shown = result.stdout + result.stderr
    for line in MULTI_LINE.splitlines():
        assert line not in shown, shown
    assert "Q7x9" not in shown and "Z3k8" not in shown
    assert "Q7x9" not in _files_text(kinfra_home, skip=secret_refs.SECRETS_FILE)
    assert dockerkit.compose_projects(docker_prefix) == []


def test_redact_handles_lines_of_a_multi_line_value() -> None:
    values = [MULTI_LINE, "ab"]
    joined = " / ".join(MULTI_LINE.splitlines()[1:3])
    assert secret_refs.redact(joined, values) == "[secret] / [secret]"
    assert secret_refs.redact("  line-two-Z3k8  ", values) == "  [secret]  "
    assert secret_refs.redact(MULTI_LINE, values) == "[secret]"
    # Short values (and short lines) are left alone: they would mangle everything.
    assert secret_refs.redact("ab cd", values) == "ab cd"


FAKE_OP = r"""#!/bin/sh
# A stand-in for the 1Password CLI: `op read --no-newline REFERENCE`.
case "$3" in
  op://vault/slow/field) printf 'op-fake-secret-4471'; exec sleep 30 ;;
  op://vault/binary/field) printf 'op-\377\376-secret-8830'; exit 0 ;;
  op://vault/good/field) printf 'op-good-value-5512'; exit 0 ;;
  *) echo "[ERROR] could not read secret: no item found" >&2; exit 1 ;;
esac
"""


def test_op_timeout_and_garbled_output_are_reported_without_the_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_example_project(
        tmp_path,
        "ktopread",
        with_origin=False,
        extra_config="""
[secrets]
SLOW = "op://vault/slow/field"
BINARY = "op://vault/binary/field"
GOOD = "op://vault/good/field"
ABSENT = "op://vault/absent/field"
""",
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_op = bin_dir / "op"
    fake_op.write_text(FAKE_OP)
    fake_op.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "KINFRA_OP_TIMEOUT": "1"}

    result = kinfra(repo, "secrets", "check", "--json", env=env, timeout=30)
    assert result.returncode == 1, result.stderr
    states = {c["name"]: (c["state"], c["detail"]) for c in json.loads(result.stdout)}
    assert states["SLOW"] == ("error", "`op read` timed out after 1s")
    assert states["BINARY"][0] == "error" and "UTF-8" in states["BINARY"][1]
    assert states["GOOD"] == ("ok", "")
    assert states["ABSENT"][0] == "error" and "no item found" in states["ABSENT"][1]

    table = kinfra(repo, "secrets", "check", env=env, timeout=30)
    assert table.returncode == 1 and "error" in table.stdout
    monkeypatch.setenv("PATH", env["PATH"])  # the in-process lookup finds the fake op too
    with pytest.raises(SecretError) as caught:
        secret_refs.resolve_all({"SLOW": "op://vault/slow/field"}, repo, environ=env)
    assert "timed out" in caught.value.message
    shown = result.stdout + result.stderr + table.stdout + table.stderr + caught.value.message
    for value in ("op-fake-secret", "4471", "8830", "op-good-value", "5512"):
        assert value not in shown, shown


def test_a_mistyped_reference_is_an_error_and_literal_prefix_quotes_a_value(
    tmp_path: Path,
) -> None:
    repo = make_example_project(
        tmp_path,
        "ktscheme",
        with_origin=False,
        extra_config="""
[secrets]
CAPITAL = "Env://KT_SCHEME_VAR"
ONE_SLASH = "op:/vault/item/field"
DOTENV_ONE_SLASH = "dotenv:/.env.local#KEY"
A_URL = "postgres://u:pw-9911@db/app"
QUOTED = "literal:postgres://u:pw-7722@db/app"
PLAIN = "plain-literal-4455"
""",
    )
    result = kinfra(repo, "secrets", "check", "--json", env={"KT_SCHEME_VAR": "var-value-3388"})
    assert result.returncode == 1, result.stderr
    checked = {c["name"]: c for c in json.loads(result.stdout)}
    for name in ("CAPITAL", "ONE_SLASH", "DOTENV_ONE_SLASH", "A_URL"):
        assert checked[name]["state"] == "error", checked[name]
        assert "scheme is not env://, dotenv:// or op://" in checked[name]["detail"]
        assert "`literal:` prefix" in checked[name]["detail"]
    assert checked["QUOTED"]["state"] == "ok" and checked["PLAIN"]["state"] == "ok"
    table = kinfra(repo, "secrets", "check")
    shown = result.stdout + result.stderr + table.stdout + table.stderr
    for value in ("KT_SCHEME_VAR", "9911", "7722", "4455", "var-value", "vault/item", "Env:"):
        assert value not in shown, shown

    config = load_config(repo / "kinfra.toml")
    with pytest.raises(SecretError) as caught:
        secret_refs.resolve_all(config.secrets, repo, environ={})
    assert "CAPITAL: looks like a reference" in caught.value.message
    assert "9911" not in caught.value.message
    quoted = {k: v for k, v in config.secrets.items() if k in ("QUOTED", "PLAIN")}
    assert secret_refs.resolve_all(quoted, repo, environ={}) == {
        "QUOTED": "postgres://u:pw-7722@db/app",
        "PLAIN": "plain-literal-4455",
    }


def test_dotenv_value_spanning_lines_is_read_whole(tmp_path: Path) -> None:
    (tmp_path / ".env.local").write_text(
        "# keys\n"
        f'export PEM="{MULTI_LINE.splitlines()[0]}\n'
        + "\n".join(MULTI_LINE.splitlines()[1:])
        + '"\n'
        "SINGLE='one line 1234'\n"
        "BROKEN='never closed\n"
        "AFTER=plain-5678\n"
    )
    refs = {n: f"dotenv://.env.local#{n}" for n in ("PEM", "SINGLE", "AFTER")}
    assert secret_refs.resolve_all(refs, tmp_path, environ={}) == {
        "PEM": MULTI_LINE,
        "SINGLE": "one line 1234",
        "AFTER": "plain-5678",
    }
    # An unclosed quote is read as one line and swallows nothing after it.
    broken = secret_refs.resolve_all({"B": "dotenv://.env.local#BROKEN"}, tmp_path, environ={})
    assert broken == {"B": "'never closed"}
