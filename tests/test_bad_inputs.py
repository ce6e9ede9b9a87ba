"""The bad-input suite: what a careless user, a hand edit or a crashed disk
gives kinfra, and what kinfra must answer.

Every case runs the real CLI against one shared world (see
``kinfra.testing.breakage``) with one thing broken, and checks three things:
the documented exit code; one ``kinfra: error:`` line (and its hint), no
traceback; and no side effect: the registry's bytes, the branches, the
worktrees, the containers, the records of runs in flight and the crash logs
are exactly what they were.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import pytest

from kinfra.domain.config import load_config
from kinfra.errors import EXIT_ERROR, EXIT_PORT_CONFLICT, EXIT_USAGE
from kinfra.testing import dockerkit
from kinfra.testing.breakage import (
    World,
    dangling_link,
    edited_json,
    holding,
    listening,
    make_world,
    replaced_by_directory,
    running_process,
)
from kinfra.testing.cli import assert_one_error_line, kinfra
from kinfra.testing.invariants import Snapshot, snapshot

pytestmark = pytest.mark.docker

Breaker = Callable[[World], AbstractContextManager[Any]]
DAEMON_DOWN = {"DOCKER_HOST": "unix:///nonexistent.sock"}


@contextlib.contextmanager
def _nothing(world: World) -> Iterator[None]:
    yield


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    says: str  # a part of the error line
    code: int = EXIT_ERROR
    where: str = "repo"
    breaks: Breaker = _nothing
    env: dict[str, str] = field(default_factory=dict)


def _registry(edit: Callable[[dict[str, Any]], None]) -> Breaker:
    return lambda w: edited_json(w.registry, edit)


def _slot(data: dict[str, Any], key: str = "1") -> dict[str, Any]:
    project = next(iter(data["projects"].values()))
    slot: dict[str, Any] = project["slots"][key]
    return slot


def _project(data: dict[str, Any]) -> dict[str, Any]:
    project: dict[str, Any] = next(iter(data["projects"].values()))
    return project


def _config(text: Callable[[str], str]) -> Breaker:
    return lambda w: holding(w.config, text(w.config.read_text()))


def _state(edit: Callable[[dict[str, Any]], None]) -> Breaker:
    return lambda w: edited_json(w.run_state, edit)


def _compose(text: str | bytes) -> Breaker:
    return lambda w: holding(w.compose, text)


def _port_of_slot(slot: int) -> Breaker:
    return lambda w: listening(load_config(w.config).port("db").base + slot)


@contextlib.contextmanager
def _live_record(world: World) -> Iterator[None]:
    with running_process() as pid:
        record = {
            "version": 1,
            "kind": "impl",
            "worktree": str(world.worktree),
            "branch": "impl/genome-M1",
            "short": "genome-M1",
            "target": "genome/M1",
            "pid": pid,
            "pid_start": None,
            "host": __import__("socket").gethostname(),
            "started_at": "2026-01-01T00:00:00Z",
        }
        with holding(world.record(world.worktree), json.dumps(record)):
            yield


@contextlib.contextmanager
def _dirty(world: World) -> Iterator[None]:
    with holding(world.worktree / "unsaved.txt", "work in progress\n"):
        yield


@contextlib.contextmanager
def _locked(world: World) -> Iterator[None]:
    kinfra_git = ["git", "-C", str(world.repo), "worktree"]
    import subprocess

    subprocess.run([*kinfra_git, "lock", str(world.worktree)], check=True)
    try:
        yield
    finally:
        subprocess.run([*kinfra_git, "unlock", str(world.worktree)], check=True)


@contextlib.contextmanager
def _two_claims(world: World) -> Iterator[None]:
    def both(data: dict[str, Any]) -> None:
        _slot(data, "2")["claim"] = dict(_slot(data, "1")["claim"])

    with edited_json(world.registry, both):
        yield


@contextlib.contextmanager
def _second_clone(world: World) -> Iterator[None]:
    import shutil
    import subprocess

    clone = world.root / "clone" / "app"
    subprocess.run(["git", "clone", "-q", str(world.repo), str(clone)], check=True)
    try:
        yield
    finally:
        shutil.rmtree(clone.parent)


def _set(key: str, value: object) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        data[key] = value

    return edit


CASES = [
    # --- names given to impl ----------------------------------------------------------
    Case("impl-no-slash", ("impl", "genome"), "expected <feature>/<milestone>, got 'genome'"),
    Case("impl-empty-milestone", ("impl", "genome/"), "milestone name is empty"),
    Case("impl-empty-feature", ("impl", "/M1"), "feature name is empty"),
    Case("impl-dotdot", ("impl", "../etc/M1"), "invalid feature name '..'"),
    Case("impl-space", ("impl", "gen ome/M1"), "invalid feature name 'gen ome'"),
    Case("impl-dot-lock", ("impl", "genome/M1.lock"), "invalid milestone name 'M1.lock'"),
    Case("impl-non-ascii", ("impl", "génome/M1"), "invalid feature name 'g\\xe9nome'"),
    Case("impl-too-long", ("impl", "a" * 65 + "/M1"), "longer than 64 characters"),
    Case("impl-newline", ("impl", "genome/M1\n"), "invalid milestone name 'M1\\n'"),
    Case("impl-option-like", ("impl", "--", "-f/M1"), "invalid feature name '-f'"),
    Case("impl-no-plan", ("impl", "genome/M9"), "No milestone matching 'M9'"),
    Case("impl-exists", ("impl", "genome/M1"), "already exists"),
    Case("impl-bad-profile", ("impl", "-p", "huge", "genome/M3"), "'huge'", EXIT_USAGE),
    Case(
        "impl-unknown-option", ("impl", "--frobnicate", "genome/M3"), "No such option", EXIT_USAGE
    ),
    # --- names given to done ----------------------------------------------------------
    Case("done-empty", ("done", ""), "worktree name is empty"),
    Case("done-path", ("done", "a/b"), "invalid worktree name 'a/b'"),
    Case("done-main-dir", ("done", "app"), "'app' is the main checkout"),
    Case("done-main-branch", ("done", "main"), "'main' is the main checkout"),
    Case("done-part", ("done", "genome-M"), "did you mean"),
    Case("done-not-kinfras", ("done", "scratch-mine"), "is a git worktree kinfra did not make"),
    Case("done-not-kinfras-branch", ("done", "exp-X", "--force"), "kinfra did not make"),
    Case("done-spec", ("done", "genome"), "Spec worktrees don't have sandboxes"),
    Case("done-unknown", ("done", "nosuch"), "No worktree matching 'nosuch'"),
    Case("done-missing-name", ("done",), "Missing argument 'NAME'", EXIT_USAGE),
    Case("done-dirty", ("done", "genome-M1"), "uncommitted changes", breaks=_dirty),
    Case("done-user-lock", ("done", "genome-M1"), "is locked", breaks=_locked),
    Case("done-while-impl-runs", ("done", "genome-M1"), "is running for", breaks=_live_record),
    # --- kinfra.toml ------------------------------------------------------------------------
    Case(
        "config-binary",
        ("impl", "genome/M3"),
        "not valid TOML",
        breaks=lambda w: holding(w.config, b"\xff\xfe\x00junk"),
    ),
    Case(
        "config-syntax",
        ("impl", "genome/M3"),
        "not valid TOML",
        breaks=lambda w: holding(w.config, "[project\nname = 1\n"),
    ),
    Case(
        "config-empty",
        ("impl", "genome/M3"),
        "project: missing (required)",
        breaks=lambda w: holding(w.config, ""),
    ),
    Case(
        "config-wrong-type",
        ("impl", "genome/M3"),
        "pool_size: expected an integer",
        breaks=_config(lambda t: t.replace("pool_size = 2", 'pool_size = "two"')),
    ),
    Case(
        "config-unknown-key",
        ("impl", "genome/M3"),
        "unknown key",
        breaks=_config(lambda t: t.replace("[sandbox]\n", "[sandbox]\npool_sise = 3\n")),
    ),
    Case(
        "config-bad-name",
        ("impl", "genome/M3"),
        "must be lowercase",
        breaks=_config(
            lambda t: t.replace("[project]\nname = ", '[project]\nname = "Shop!"\nx = ')
        ),
    ),
    Case(
        "config-nested",
        ("impl", "genome/M3"),
        "nested too deeply",
        breaks=lambda w: holding(w.config, "a = " + "[" * 5000 + "]" * 5000 + "\n"),
    ),
    Case(
        "config-directory",
        ("impl", "genome/M3"),
        "no kinfra.toml",
        breaks=lambda w: replaced_by_directory(w.config),
    ),
    # --- the registry ------------------------------------------------------------------------
    Case(
        "registry-binary",
        ("impl", "genome/M3"),
        "not text: binary bytes",
        breaks=lambda w: holding(w.registry, b"\x00\xff\xfe junk"),
    ),
    Case(
        "registry-empty",
        ("impl", "genome/M3"),
        "invalid JSON at line 1",
        breaks=lambda w: holding(w.registry, b""),
    ),
    Case(
        "registry-truncated",
        ("impl", "genome/M3"),
        "invalid JSON",
        breaks=lambda w: holding(w.registry, w.registry.read_bytes()[:40]),
    ),
    Case(
        "registry-list",
        ("impl", "genome/M3"),
        "no integer 'version'",
        breaks=lambda w: holding(w.registry, "[]"),
    ),
    Case(
        "registry-version-string",
        ("impl", "genome/M3"),
        "no integer 'version'",
        breaks=_registry(_set("version", "2")),
    ),
    Case(
        "registry-version-bool",
        ("impl", "genome/M3"),
        "no integer 'version'",
        breaks=_registry(_set("version", True)),
    ),
    Case(
        "registry-version-future",
        ("impl", "genome/M3"),
        "newer than this kinfra",
        breaks=_registry(_set("version", 99)),
    ),
    Case(
        "registry-version-zero",
        ("impl", "genome/M3"),
        "invalid version 0",
        breaks=_registry(_set("version", 0)),
    ),
    Case(
        "registry-nan",
        ("impl", "genome/M3"),
        "NaN is not a number JSON allows",
        breaks=lambda w: holding(
            w.registry, w.registry.read_text().replace('"generation": ', '"generation": NaN, "x": ')
        ),
    ),
    Case(
        "registry-nested",
        ("impl", "genome/M3"),
        "invalid JSON",
        breaks=lambda w: holding(
            w.registry, '{"version": 2, "x": ' + "[" * 100000 + "]" * 100000 + "}"
        ),
    ),
    Case(
        "registry-projects-list",
        ("impl", "genome/M3"),
        "projects: expected an object",
        breaks=_registry(_set("projects", [])),
    ),
    Case(
        "registry-generation-bool",
        ("impl", "genome/M3"),
        "generation: expected an integer",
        breaks=_registry(_set("generation", True)),
    ),
    Case(
        "registry-relative-claim",
        ("impl", "genome/M3"),
        "expected an absolute path",
        breaks=_registry(lambda d: _slot(d)["claim"].update(path="worktree")),
    ),
    Case(
        "registry-number-claim",
        ("impl", "genome/M3"),
        "expected an absolute path, got 5",
        breaks=_registry(lambda d: _slot(d)["claim"].update(path=5)),
    ),
    Case(
        "registry-claim-kind",
        ("impl", "genome/M3"),
        "'borrowed' is not one of",
        breaks=_registry(lambda d: _slot(d)["claim"].update(kind="borrowed")),
    ),
    Case(
        "registry-status",
        ("impl", "genome/M3"),
        "'exploded' is not one of",
        breaks=_registry(lambda d: _slot(d).update(status="exploded")),
    ),
    Case(
        "registry-slot-key",
        ("impl", "genome/M3"),
        "key 'one' is not a number",
        breaks=_registry(lambda d: _project(d)["slots"].update(one={})),
    ),
    Case(
        "registry-prefix",
        ("impl", "genome/M3"),
        "is not a prefix",
        breaks=_registry(lambda d: _project(d).update(prefix="../x")),
    ),
    Case(
        "registry-local-prod",
        ("impl", "genome/M3"),
        "local_prod: expected an object",
        breaks=_registry(lambda d: _project(d).update(local_prod="yes")),
    ),
    Case(
        "registry-ticket",
        ("impl", "genome/M3"),
        "queue[0]",
        breaks=_registry(_set("queue", [{"ticket": "t", "pid": "x"}])),
    ),
    Case(
        "registry-directory",
        ("impl", "genome/M3"),
        "Is a directory",
        breaks=lambda w: replaced_by_directory(w.registry),
    ),
    Case(
        "registry-dangling-link",
        ("impl", "genome/M3"),
        "which does not exist",
        breaks=lambda w: dangling_link(w.registry),
    ),
    Case(
        "registry-lock-directory",
        ("impl", "genome/M3"),
        "cannot open the registry lock",
        breaks=lambda w: replaced_by_directory(w.home / "registry.json.lock"),
    ),
    # --- a run's state, records of runs in flight, generated files ------------------------
    Case(
        "state-binary",
        ("orch", "status"),
        "not text: binary bytes",
        breaks=lambda w: holding(w.run_state, b"\x89PNG\r\n\x1a\n"),
    ),
    Case(
        "state-attempt-type",
        ("orch", "status"),
        "attempts[0]: expected an object, got 1",
        breaks=_state(lambda d: d["tasks"][0].update(attempts=[1])),
    ),
    Case(
        "state-tasks-type",
        ("orch", "status"),
        "tasks: expected a list",
        breaks=_state(_set("tasks", {"1.1": "done"})),
    ),
    Case(
        "state-status",
        ("orch", "status"),
        "'sleeping' is not one of",
        breaks=_state(lambda d: d["tasks"][0].update(status="sleeping")),
    ),
    Case(
        "state-future",
        ("orch", "status"),
        "newer than this kinfra",
        breaks=_state(_set("version", 7)),
    ),
    Case(
        "record-binary",
        ("impl", "genome/M1"),
        "pending-operation record",
        breaks=lambda w: holding(w.record(w.worktree), b"\xff" * 16),
    ),
    Case(
        "record-wrong-type",
        ("done", "genome-M1"),
        "record.pid: expected an integer",
        breaks=lambda w: holding(
            w.record(w.worktree),
            json.dumps(
                {
                    "version": 1,
                    "kind": "impl",
                    "worktree": str(w.worktree),
                    "branch": "b",
                    "short": "s",
                    "target": "t",
                    "pid": "1",
                    "pid_start": None,
                    "host": "h",
                    "started_at": "2026-01-01T00:00:00Z",
                }
            ),
        ),
    ),
    Case(
        "env-file-binary",
        ("env",),
        ".env.sandbox is corrupt",
        where="worktree",
        breaks=lambda w: holding(w.worktree / ".env.sandbox", b"SLOT_NUMBER=\xff\xfe\n"),
    ),
    # --- compose files ---------------------------------------------------------------------
    Case(
        "compose-yaml-error",
        ("impl", "genome/M3"),
        "not valid YAML",
        breaks=_compose("services:\n  db: [unclosed\n"),
    ),
    Case(
        "compose-binary", ("impl", "genome/M3"), "not UTF-8 text", breaks=_compose(b"\xff\xfe\x00")
    ),
    Case(
        "compose-services-list",
        ("impl", "genome/M3"),
        "'services' must map",
        breaks=_compose("services:\n  - db\n"),
    ),
    Case(
        "compose-rejected",
        ("impl", "genome/M3"),
        "docker compose rejected",
        breaks=_compose("services:\n  db:\n    image: busybox:1.36\n    frobnicate: yes\n"),
    ),
    Case(
        "compose-undefined-dependency",
        ("impl", "genome/M3"),
        "docker compose rejected",
        breaks=_compose(
            "services:\n  db:\n    image: busybox:1.36\n    ports: ['5432:5432']\n"
            "    depends_on: [nosuchservice]\n"
        ),
    ),
    Case(
        "compose-up-rejected",
        ("sandbox", "up", "--slot", "2"),
        "docker compose rejected",
        breaks=_compose("services:\n  db:\n    image: busybox:1.36\n    frobnicate: yes\n"),
    ),
    Case(
        "compose-missing",
        ("impl", "genome/M3"),
        "cannot be read",
        breaks=lambda w: dangling_link(w.compose),
    ),
    # --- ports, the daemon ------------------------------------------------------------------
    Case(
        "port-busy-impl",
        ("impl", "genome/M3"),
        "already in use by another process",
        EXIT_PORT_CONFLICT,
        breaks=_port_of_slot(2),
    ),
    Case(
        "port-busy-up",
        ("sandbox", "up", "--slot", "2"),
        "already in use by another process",
        EXIT_PORT_CONFLICT,
        breaks=_port_of_slot(2),
    ),
    Case(
        "daemon-down-impl", ("impl", "genome/M3"), "Docker daemon is not running", env=DAEMON_DOWN
    ),
    Case(
        "daemon-down-up",
        ("sandbox", "up", "--slot", "2"),
        "Docker daemon is not running",
        env=DAEMON_DOWN,
    ),
    Case(
        "daemon-down-down",
        ("sandbox", "down", "--slot", "1"),
        "Docker daemon is not running",
        env=DAEMON_DOWN,
    ),
    Case(
        "daemon-down-done", ("done", "genome-M1"), "Docker daemon is not running", env=DAEMON_DOWN
    ),
    # --- ambiguous and dangerous targets ------------------------------------------------------
    Case(
        "destroy-outside",
        ("local-prod", "destroy"),
        "which local-prod to destroy is not clear",
        where="outside",
    ),
    Case(
        "destroy-unknown",
        ("local-prod", "destroy", "--project", "nosuch"),
        "nosuch has no local-prod registered",
    ),
    Case("down-unknown-slot", ("sandbox", "down", "--slot", "99"), "slot 99 is not provisioned"),
    Case("up-bad-slot", ("sandbox", "up", "--slot", "abc"), "not a valid integer", EXIT_USAGE),
    Case(
        "up-claimed-slot",
        ("sandbox", "up", "--slot", "1", "--code-dir", "."),
        "Slot 1 is claimed by",
    ),
    Case(
        "up-missing-code-dir",
        ("sandbox", "up", "--slot", "2", "--code-dir", "/nonexistent"),
        "code directory /nonexistent does not exist",
    ),
    Case(
        "up-double-claim",
        ("sandbox", "up"),
        "holds slots 1, 2",
        where="worktree",
        breaks=_two_claims,
    ),
    Case("down-no-slot-here", ("sandbox", "down"), "holds no slot", where="idle"),
    Case(
        "impl-second-clone",
        ("impl", "genome/M3"),
        "belong to the checkout at",
        where="clone",
        breaks=_second_clone,
    ),
    Case("unknown-command", ("frobnicate",), "No such command 'frobnicate'", EXIT_USAGE),
]


BASELINE: dict[str, Snapshot] = {}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    if not dockerkit.docker_ready():
        pytest.fail("Docker engine with Compose v2 and busybox:1.36 not available")
    prefix = dockerkit.unique_prefix()
    built = make_world(tmp_path_factory.mktemp("bad-inputs"), prefix)
    BASELINE[prefix] = snapshot(built.repo, built.home, prefix)
    yield built
    dockerkit.remove_everything(prefix)


def test_there_are_enough_cases_of_every_kind() -> None:
    assert len(CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_in_one_line_with_no_side_effect(world: World, case: Case) -> None:
    cwd = world.root / "clone" / "app" if case.where == "clone" else world.where(case.where)
    # Every case starts from the same world (a leak would fail the next one).
    assert BASELINE[world.prefix].changes(snapshot(world.repo, world.home, world.prefix)) == []
    with case.breaks(world):
        before = snapshot(world.repo, world.home, world.prefix)
        result = kinfra(cwd, *case.args, env=world.env(**case.env))
        after = snapshot(world.repo, world.home, world.prefix)
    assert_one_error_line(result, case.code, case.says)
    assert before.changes(after) == [], result.stderr
    assert not (world.home / "logs").exists() or not list((world.home / "logs").iterdir())
