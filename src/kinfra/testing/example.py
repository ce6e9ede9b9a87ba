"""The shop example as a throw-away kinfra project for tests and benchmarks.

``make_example_project`` copies ``examples/shop`` into a fresh git repository
(with a bare ``origin`` next to it) and rewrites its ``kinfra.toml`` with a
unique name/prefix and free port bases, so that concurrent tests never share
a compose project or a host port with each other or with a user's stack.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

# Re-exported: tests of the worktree workflow import it from here.
from kinfra.testing.cli import kinfra as kinfra
from kinfra.testing.dockerkit import EXAMPLE_DIR, free_port_bases
from kinfra.testing.gitrepo import commit_all, git, make_repo

MILESTONE_TEXT = "# M1: first milestone\n\n## Task 1.1: do something\n\nDo it.\n"

# A one-service stack (db only, built from busybox directly, no checks): for
# tests that start many slots at once on a small machine.
MINI_COMPOSE = """\
services:
  db:
    image: busybox:1.36
    init: true
    command: ["sh", "-c", "mkdir -p /data && echo mini > /data/index.html && exec httpd -f -p 5432 -h /data"]
    ports:
      - "5432:5432"
    volumes:
      - dbdata:/data
volumes:
  dbdata:
"""


def _budget(extra: str) -> str:
    """A budget no test machine reaches, unless the test sets its own: a test
    that is not about the memory budget must not depend on the machine's RAM."""
    return "" if "memory_budget" in extra else 'memory_budget = "1024 GB"\n'


def shop_config(name: str, api_base: int, db_base: int, pool_size: int, extra: str = "") -> str:
    return f"""\
[project]
name = "{name}"
prefix = "{name}"
compose_files = ["docker-compose.yml"]

[ports]
api = {{ service = "backend", target = 8080, base = {api_base}, scheme = "http" }}
db = {{ service = "db", target = 5432, base = {db_base}, scheme = "tcp" }}

[sandbox]
pool_size = {pool_size}
standard_slots = []
heavy_slots = []
workers = ["worker"]
wait_timeout = 60
{_budget(extra)}
[[mounts]]
services = ["backend"]
source = "app"
target = "/srv/www/app"
read_only = true

[[checks]]
name = "db"
type = "tcp"
port = "db"
timeout = 20

[[checks]]
name = "api"
type = "http"
port = "api"
path = "/api/v1/health"
expect = 200
timeout = 30
needs = ["db"]
{extra}"""


def mini_config(name: str, db_base: int, pool_size: int, extra: str = "") -> str:
    return f"""\
[project]
name = "{name}"
prefix = "{name}"
compose_files = ["docker-compose.yml"]

[ports]
db = {{ service = "db", target = 5432, base = {db_base}, scheme = "tcp" }}

[sandbox]
pool_size = {pool_size}
standard_slots = []
heavy_slots = []
wait_timeout = 60
{_budget(extra)}{extra}"""


def make_example_project(
    parent: Path,
    prefix: str,
    pool_size: int = 2,
    with_origin: bool = True,
    mini: bool = False,
    extra_config: str = "",
    milestones: tuple[str, ...] = ("genome/M1",),
    compose_text: str = MINI_COMPOSE,
) -> Path:
    """A committed (and pushed) copy of the shop example named ``prefix``.

    ``prefix`` must start with the test's docker prefix so that the fixture's
    cleanup finds every container. ``milestones`` are ``feature/milestone``
    pairs for which a plan file is added under docs/designs. With ``mini``
    the stack is ``compose_text`` (one ``db`` service) instead of the shop.
    """
    repo = make_repo(parent, name="app", with_origin=with_origin)
    if mini:
        (repo / "docker-compose.yml").write_text(compose_text, encoding="utf-8")
        (db_base,) = free_port_bases(1, pool_size + 1)
        config = mini_config(prefix, db_base, pool_size, extra_config)
    else:
        for item in EXAMPLE_DIR.iterdir():
            if item.name == "kinfra.toml":
                continue
            if item.is_dir():
                shutil.copytree(item, repo / item.name)
            else:
                shutil.copy2(item, repo / item.name)
        api_base, db_base = free_port_bases(2, pool_size + 1)
        config = shop_config(prefix, api_base, db_base, pool_size, extra_config)
    (repo / "kinfra.toml").write_text(config, encoding="utf-8")
    for target in milestones:
        feature, milestone = target.split("/")
        plans = repo / "docs" / "designs" / feature / "implementation"
        plans.mkdir(parents=True, exist_ok=True)
        (plans / f"{milestone}_plan.md").write_text(MILESTONE_TEXT, encoding="utf-8")
    commit_all(repo, "example project")
    if with_origin:
        git(repo, "push", "-q", "origin", "main")
    return repo


def impl_worktree(
    parent: Path, prefix: str, pool_size: int = 2, flags: tuple[str, ...] = ()
) -> tuple[Path, Path]:
    """The mini example project with its slots provisioned and ``kinfra impl
    genome/M1 FLAGS`` run in it: (the repo, the worktree's resolved path)."""
    repo = make_example_project(parent, prefix, pool_size=pool_size, mini=True)
    provision = kinfra(repo, "sandbox", "provision")
    assert provision.returncode == 0, provision.stdout + provision.stderr
    impl = kinfra(repo, "impl", "genome/M1", *flags)
    assert impl.returncode == 0, impl.stdout + impl.stderr
    return repo, (parent / f"{prefix}-impl-genome-M1").resolve()


def registry(home: Path) -> dict[str, Any]:
    """The registry JSON as written on disk."""
    data: dict[str, Any] = json.loads((home / "registry.json").read_text(encoding="utf-8"))
    return data


def claims(home: Path, project: str) -> dict[int, str | None]:
    """slot id -> claimant path (or None) for ``project``."""
    slots = registry(home)["projects"][project]["slots"]
    return {int(k): (v["claim"] or {}).get("path") for k, v in slots.items()}
