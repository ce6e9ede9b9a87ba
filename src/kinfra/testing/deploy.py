"""The shop example as a deployable project, for deploy tests and the benchmark.

``make_deploy_project`` is ``make_example_project`` plus the example's
``deploy/`` files and two targets in kinfra.toml, ``prod`` and its canary
``prod-canary``, both on one Docker context, each with its own compose
project and API port (so both run side by side on one engine).
"""

from __future__ import annotations

import secrets
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from kinfra.adapters.runner import run
from kinfra.testing.dockerkit import EXAMPLE_DIR
from kinfra.testing.example import make_example_project
from kinfra.testing.gitrepo import commit_all, git

TOKEN_VARIABLE = "SHOP_API_TOKEN"


@dataclass(frozen=True)
class Shop:
    """A deployable test project."""

    repo: Path
    project: str  # compose project of target "prod" ("<project>-canary" for its canary)
    env: dict[str, str]  # what `kinfra` needs: the Docker config with the context, the token


def deploy_targets(context: str, project: str, checks: str = "") -> str:
    """The [deploy] tables of a test project; ``checks`` adds [[deploy.prod.checks]]."""
    target = """
[deploy.{name}]
context = "{context}"
compose_files = ["docker-compose.yml", "deploy/remote.yml"]
env_file = "deploy/{name}.env"
project = "{project}"
wait_timeout = 60
{canary}
[deploy.{name}.secrets]
API_TOKEN = "env://{token}"

[[deploy.{name}.checks]]
name = "api"
type = "http"
port = "api"
path = "/api/v1/health"
timeout = 20
"""
    text = target.format(
        name="prod", context=context, project=project, canary='canary = "prod-canary"',
        token=TOKEN_VARIABLE,
    ) + checks + target.format(
        name="prod-canary", context=context, project=f"{project}-canary", canary="",
        token=TOKEN_VARIABLE,
    )  # fmt: skip
    return text


def make_deploy_project(parent: Path, prefix: str, context: str) -> Path:
    """A committed and pushed shop project whose targets ``prod`` and
    ``prod-canary`` deploy to ``context`` as compose projects ``prefix`` and
    ``prefix-canary``, each on a random API port of that engine."""
    rng = secrets.SystemRandom()
    repo = make_example_project(
        parent, prefix, milestones=(), extra_config=deploy_targets(context, prefix)
    )
    shutil.copytree(EXAMPLE_DIR / "deploy", repo / "deploy", dirs_exist_ok=True)
    shutil.copy2(EXAMPLE_DIR / ".dockerignore", repo / ".dockerignore")
    for name in ("prod", "prod-canary"):
        (repo / "deploy" / f"{name}.env").write_text(f"API_PORT={rng.randrange(20000, 60000)}\n")
    write_version(repo, "v1")
    commit_all(repo, "deploy targets")
    git(repo, "push", "-q", "origin", "main")
    return repo


def write_version(repo: Path, version: str) -> None:
    """The page that tells which release answers: /app/version.txt."""
    (repo / "app" / "version.txt").write_text(version + "\n")


def release_version(repo: Path, version: str) -> None:
    """Commit and push a new version of the app."""
    write_version(repo, version)
    commit_all(repo, f"version {version}")
    git(repo, "push", "-q", "origin", "main")


def release_config(repo: Path, old: str, new: str, message: str) -> None:
    """Commit and push kinfra.toml with its first ``old`` replaced by ``new``."""
    config = repo / "kinfra.toml"
    text = config.read_text()
    assert old in text, f"{old!r} is not in {config}"
    config.write_text(text.replace(old, new, 1))
    commit_all(repo, message)
    git(repo, "push", "-q", "origin", "main")


def remove_release_images(repo: Path) -> None:
    """Local images kinfra built for any commit of ``repo`` (tagged with its short shas)."""
    shas = {line[:12] for line in git(repo, "rev-list", "--all").stdout.split()}
    listed = run(["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"], check=False)
    doomed = [ref for ref in listed.stdout.split() if ref.rsplit(":", 1)[-1] in shas]
    if doomed:
        run(["docker", "image", "rm", *doomed], check=False)


def fetch(url: str) -> str:
    """The body of a GET (the target answers on its own address, not localhost)."""
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def api_url(output: str) -> str:
    """The api URL a deploy command printed."""
    return next(line.split()[-1] for line in output.splitlines() if line.strip().startswith("api"))
