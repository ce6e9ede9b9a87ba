"""The interruption suite: `impl` and `done` killed at every step of their life.

Each test runs the real command until it reaches one step (seen in kinfra's
step trace, in a git hook or filter, or in the stack's own evidence files),
SIGKILLs kinfra alone or its whole process group, and then recovers with
kinfra's own commands only: `kinfra doctor --fix`, then the same command
again. After that the registry, git and Docker must agree, doctor must find
nothing, and every commit must still be on a ref.

`test_the_steps_are_the_ones_this_suite_kills_at` runs both commands through
untouched and checks that their steps are exactly the ones listed here, so
a step added to kinfra without a kill point here fails the suite.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kinfra.testing import interrupt
from kinfra.testing.cli import kinfra, ok
from kinfra.testing.example import make_example_project
from kinfra.testing.gitrepo import commit_all, git
from kinfra.testing.invariants import (
    assert_consistent,
    assert_no_commit_lost,
    claimants,
    refs,
    running_projects,
)

pytestmark = pytest.mark.docker

TARGET, SHORT = "genome/M1", "genome-M1"


@dataclass
class World:
    repo: Path
    home: Path
    prefix: str
    gate: Path
    trace: Path
    runs: list[interrupt.Traced] = field(default_factory=list)  # ended at teardown

    @property
    def worktree(self) -> Path:
        return (self.repo.parent / f"{self.prefix}-impl-{SHORT}").resolve()

    def step_names(self, raw: list[str]) -> list[str]:
        """Steps with this test's names made generic."""
        return [
            re.sub(r"\.preflight-\d+-\w+/", "<preflight>/", s)
            .replace(self.worktree.name, "<worktree>")
            .replace(self.home.name, "<home>")
            for s in raw
        ]

    def marker(self, generic: str) -> str:
        """The step as kinfra names it (a pattern: scratch names are random)."""
        named = generic.replace("<worktree>", self.worktree.name).replace("<home>", self.home.name)
        return named.replace("<preflight>", ".preflight-*")

    def open_gates(self) -> None:
        for name in ("hold-start", "hold-stop"):
            (self.gate / name).unlink(missing_ok=True)


@pytest.fixture
def world(tmp_path: Path, kinfra_home: Path, docker_prefix: str) -> Iterator[World]:
    gate = tmp_path / "gate"
    gate.mkdir()
    repo = make_example_project(
        tmp_path,
        docker_prefix,
        pool_size=2,
        mini=True,
        compose_text=interrupt.GATED_COMPOSE.format(gate=gate),
    )
    interrupt.instrument_repo(repo)
    # Work of the user's that exists nowhere else: no recovery may lose it.
    (repo / "NOTES.md").write_text("local only\n")
    commit_all(repo, "unpushed work on main")
    ok(repo, "sandbox", "provision")
    world = World(repo, kinfra_home, docker_prefix, gate, tmp_path / "trace")
    yield world
    world.open_gates()
    for run in world.runs:
        interrupt.end(run)


# --- the steps --------------------------------------------------------------------------

# Steps of `kinfra impl genome/M1`, in the order a run passes them. "@…" are
# not marks of kinfra's own but states seen from outside (a stack starting).
IMPL_STEPS = [
    "write:<preflight>/.env.sandbox",  # the start's pre-check, in a scratch directory
    "write:<preflight>/docker-compose.override.yml",
    "write:slot-1/.validated",  # what passed `compose config` there counts for the slot
    "impl:checked",
    "write:<home>/registry.json",  # the memory budget admits the start
    "write:pending/<worktree>.json",
    "write:<home>/registry.json#2",  # the claim
    "impl:claimed",
    "write:slot-1/.env.sandbox",
    "write:slot-1/docker-compose.override.yml",
    "git:branch-created",
    "git:checkout",
    "impl:worktree-added",
    "impl:files-copied",
    "impl:setup-done",
    "write:<worktree>/.env.sandbox",
    "write:slot-1/.env.sandbox#2",
    "write:slot-1/docker-compose.override.yml#2",
    "slot:starting",
    "@compose-up-waiting",
    "slot:containers-up",
    "write:<home>/registry.json#3",  # the slot's status
    "impl:started",
    "write:<home>/registry.json#4",  # the admission given back
]

DONE_STEPS = [
    "done:checked",
    "write:pending/<worktree>.json",
    "done:recorded",
    "slot:stopping",
    "@compose-down-waiting",
    "write:<home>/registry.json",
    "done:slot-stopped",
    "write:<home>/registry.json#2",
    "done:slot-released",
    "done:removing",
    "@remove-with-dotgit",
    "@remove-without-dotgit",
    "done:worktree-removed",
    "git:branch-deleted",
    "done:branch-handled",
]

# Steps where kinfra is alone in its process group (no git, compose, tmux or
# other child can be alive there): killing the process and killing the group
# is one and the same act, so these are killed once, after checking that the
# group has that one member. Every other step is killed both ways.
SOLO_STEPS = {
    "impl:checked",
    "write:pending/<worktree>.json",
    "write:<home>/registry.json",
    "impl:claimed",
    "write:<worktree>/.env.sandbox",
    "write:slot-1/.env.sandbox#2",
    "write:slot-1/docker-compose.override.yml#2",
    "slot:starting",
    "slot:containers-up",
    "write:<home>/registry.json#2",
    "write:<home>/registry.json#3",
    "write:<home>/registry.json#4",
    "impl:started",
    "done:checked",
    "done:recorded",
    "slot:stopping",
    "done:slot-stopped",
    "done:slot-released",
    "done:worktree-removed",
    "done:branch-handled",
}


def _cases(steps: list[str]) -> list[object]:
    cases: list[object] = []
    for step in steps:
        kills = ["alone"] if step in SOLO_STEPS else ["process", "group"]
        cases += [pytest.param(step, kill, id=f"{step}-{kill}") for kill in kills]
    return cases


def _as_counter(steps: list[str]) -> Counter[str]:
    return Counter(s.partition("#")[0] for s in steps if not s.startswith("@"))


def test_the_steps_are_the_ones_this_suite_kills_at(world: World) -> None:
    run = interrupt.start(world.repo, ["impl", TARGET], world.trace, None, {})
    _, err = run.proc.communicate(timeout=120)
    assert run.proc.returncode == 0, err
    assert _as_counter(world.step_names(run.markers())) == _as_counter(IMPL_STEPS)

    _push_work(world)
    world.trace.unlink()
    run = interrupt.start(world.repo, ["done", SHORT], world.trace, None, {})
    _, err = run.proc.communicate(timeout=120)
    assert run.proc.returncode == 0, err
    seen = world.step_names(run.markers())
    assert _as_counter(seen) == _as_counter(DONE_STEPS) + Counter({"git:branch-deleted": 1})


# --- impl -------------------------------------------------------------------------------


@pytest.mark.parametrize(("step", "kill"), _cases(IMPL_STEPS))
def test_impl_killed_at_any_step_is_recovered(world: World, step: str, kill: str) -> None:
    before = refs(world.repo)
    run = _stop_at(world, ["impl", TARGET], step)
    _kill(world, run, kill)

    fixed = kinfra(world.repo, "doctor", "--fix", "--json")
    open_kinds = {f["kind"] for f in json.loads(fixed.stdout)["findings"] if f["fixed"] != "fixed"}
    # Left open only: an interrupted impl whose worktree exists, which the
    # user finishes (next line) or gives up with `kinfra done`.
    assert open_kinds <= {"interrupted_impl"}, fixed.stdout
    assert fixed.returncode == (1 if open_kinds else 0), fixed.stdout + fixed.stderr

    again = kinfra(world.repo, "impl", TARGET)
    assert again.returncode == 0, again.stdout + again.stderr
    assert_consistent(world.repo, world.home, world.prefix)
    assert list(claimants(world.home, world.prefix).values()).count(world.worktree) == 1
    assert running_projects(world.prefix) == {f"{world.prefix}-slot-1"}
    assert git(world.worktree, "branch", "--show-current").stdout.strip() == f"impl/{SHORT}"
    assert_no_commit_lost(world.repo, before)


# --- done -------------------------------------------------------------------------------


@pytest.mark.parametrize(("step", "kill"), _cases(DONE_STEPS))
def test_done_killed_at_any_step_is_recovered(world: World, step: str, kill: str) -> None:
    if step.startswith("@remove"):
        _add_bulk(world)
    ok(world.repo, "impl", TARGET)
    work = _push_work(world)
    before = refs(world.repo)
    run = _stop_at(world, ["done", SHORT], step)
    _kill(world, run, kill)

    fixed = kinfra(world.repo, "doctor", "--fix", "--json")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr  # everything repairable was
    left = world.worktree.exists() or f"impl/{SHORT}" in _branches(world)
    again = kinfra(world.repo, "done", SHORT)
    if left:
        assert again.returncode == 0, again.stdout + again.stderr
    else:  # doctor --fix already finished it
        assert again.returncode == 1 and f"No worktree matching '{SHORT}'" in again.stderr
    assert not world.worktree.exists()
    assert f"impl/{SHORT}" not in _branches(world)
    assert set(claimants(world.home, world.prefix).values()) == {None}
    assert running_projects(world.prefix) == set()
    assert_consistent(world.repo, world.home, world.prefix)
    assert_no_commit_lost(world.repo, before)
    assert git(world.repo, "branch", "-r", "--contains", work).stdout.strip()


# --- helpers ----------------------------------------------------------------------------


def _push_work(world: World) -> str:
    (world.worktree / "feature.txt").write_text("work\n")
    commit_all(world.worktree, "feature")
    git(world.worktree, "push", "-q", "-u", "origin", "HEAD")
    return git(world.worktree, "rev-parse", "HEAD").stdout.strip()


def _branches(world: World) -> str:
    return git(world.repo, "branch", "--list", "--format=%(refname:short)").stdout


# Where an evidence step starts from: the kinfra step just before it.
_EVIDENCE_FROM = {
    "@compose-up-waiting": "slot:starting",
    "@compose-down-waiting": "slot:stopping",
    "@remove-with-dotgit": "done:removing",
    "@remove-without-dotgit": "done:removing",
}


@dataclass
class Stopped:
    run: interrupt.Traced
    pid: int


def _stop_at(world: World, args: list[str], step: str) -> Stopped:
    world.trace.unlink(missing_ok=True)
    marker = world.marker(_EVIDENCE_FROM.get(step, step))
    run = interrupt.start(world.repo, args, world.trace, marker, {})
    world.runs.append(run)
    pid = interrupt.wait_stopped_at(run, marker)
    if step == "@compose-up-waiting":
        (world.gate / "hold-start").touch()
        interrupt.resume(run)
        interrupt.wait_for(lambda: (world.gate / "health-polled").exists(), "the health check")
    elif step == "@compose-down-waiting":
        (world.gate / "hold-stop").touch()
        interrupt.resume(run)
        interrupt.wait_for(lambda: (world.gate / "term-seen").exists(), "compose down's SIGTERM")
    elif step in ("@remove-with-dotgit", "@remove-without-dotgit"):
        _step_into_removal(world, run, with_dotgit=step == "@remove-with-dotgit")
    return Stopped(run, pid)


def _step_into_removal(world: World, run: interrupt.Traced, with_dotgit: bool) -> None:
    wt = world.worktree
    order = os.listdir(wt)
    where = order.index(".git") / len(order)
    # git deletes in this (readdir) order; both states need files on both sides.
    assert 0.05 < where < 0.95, f".git is at {where:.0%} of the order git deletes in"
    total = len(order)

    def reached() -> bool:
        left = len(os.listdir(wt)) if wt.exists() else 0
        dotgit = (wt / ".git").exists()
        if with_dotgit:
            return dotgit and 0 < left < total - 10
        return not dotgit and left > 10

    interrupt.step_group(run, reached)


def _kill(world: World, stopped: Stopped, kill: str) -> None:
    if kill == "alone":
        assert interrupt.group_members(stopped.run.pgid) == [stopped.run.proc.pid]
    interrupt.kill(stopped.run, stopped.pid, group=kill == "group")
    world.open_gates()
    interrupt.drain(stopped.run)


def _add_bulk(world: World) -> None:
    """Enough files at the worktree's top that git deletes them over several
    time slices, with `.git` in the middle of the order it deletes them in."""
    for i in range(400):
        (world.repo / f"bulk-{i:03d}.txt").write_text(f"{i}\n")
    commit_all(world.repo, "bulk")
    git(world.repo, "push", "-q", "origin", "main")
