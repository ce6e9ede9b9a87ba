"""The images of a deploy: built from a clean checkout of the ref, then shipped.

The build never sees the user's working tree: it runs in a detached
``git worktree`` of the commit, removed afterwards. Images reach the target
with ``docker save | docker --context X load`` (only those it lacks, by ID),
or through the configured registry (push here, pull there).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from kinfra.adapters import compose, docker_engine, git
from kinfra.adapters.statefile import atomic_write_text
from kinfra.domain import compose_yaml
from kinfra.domain.config_deploy import DeployTarget
from kinfra.domain.deploy import release_ref
from kinfra.errors import DeployError


def checkout(repo: Path, sha: str, path: Path) -> Path:
    """A detached worktree of ``sha`` at ``path`` (``discard`` removes it)."""
    discard(repo, path)  # left by a deploy that was killed
    git.git("worktree", "add", "--quiet", "--detach", str(path), sha, cwd=repo)
    return path


def discard(repo: Path, path: Path) -> None:
    """Remove a checkout of ours (git forgets it too)."""
    if path.exists():
        git.git("worktree", "remove", "--force", str(path), cwd=repo, check=False)
        shutil.rmtree(path, ignore_errors=True)


@dataclass(frozen=True)
class Service:
    """A service of the deployed compose files: its image name, and whether it is built."""

    name: str
    image: str | None  # the compose file's image name
    builds: bool  # has a build section


def compose_target(
    tree: Path,
    target: DeployTarget,
    env_files: tuple[Path, ...],
    extra: tuple[Path, ...] = (),
    context: str | None = None,
) -> compose.ComposeTarget:
    return compose.ComposeTarget(
        project_name=target.project,
        project_dir=tree,
        files=(*(tree / f for f in target.compose_files), *extra),
        env_files=env_files,
        context=context,
    )


def services(tree: Path, target: DeployTarget, env_files: tuple[Path, ...]) -> list[Service]:
    """The services of the target's compose files at this commit (compose's merged model)."""
    missing = [f for f in target.compose_files if not (tree / f).is_file()]
    if missing:
        raise target.key_error(
            "compose_files", f"{missing[0]} does not exist at the deployed commit"
        )
    found = _read_services([tree / f for f in target.compose_files])
    if found is not None:
        return found
    model = compose.config(compose_target(tree, target, env_files))
    return [
        Service(name, body.get("image"), bool(body.get("build")))
        for name, body in (model.get("services") or {}).items()
    ]


def _read_services(files: list[Path]) -> list[Service] | None:
    """Names, image names and build sections read from the files themselves,
    merged in order (``!reset`` included): ~10 ms where `compose config`
    takes ~200. None when only Compose can tell (include, extends, an
    interpolated image name)."""
    merged: dict[str, Service] = {}
    for path in files:
        document = compose_yaml.load_file(path)
        if "include" in document:
            return None
        for name, body in (document.get("services") or {}).items():
            if "extends" in body:
                return None
            known = merged.get(name, Service(name, None, False))
            image, builds = known.image, known.builds
            if "image" in body:
                image = None if isinstance(body["image"], compose_yaml.Reset) else body["image"]
                if isinstance(image, str) and "$" in image:
                    return None
            if "build" in body:
                builds = not isinstance(body["build"], compose_yaml.Reset)
            merged[name] = Service(name, image, builds)
    return list(merged.values())


def build(
    tree: Path,
    target: DeployTarget,
    env_files: tuple[Path, ...],
    found: list[Service],
    sha: str,
    workdir: Path,
    on_line: Callable[[str], None],
) -> dict[str, tuple[str, str]]:
    """Build every service with a build section on the local engine, each
    named ``<image>:<short sha>``; returns service -> (name, image ID)."""
    refs = {
        s.name: release_ref(s.image, target.project, s.name, sha, target.registry)
        for s in found
        if s.builds
    }
    if not refs:
        return {}
    override = workdir / "build.override.yml"
    document = {"services": {name: {"image": ref} for name, ref in refs.items()}}
    atomic_write_text(override, compose_yaml.dump(document, "# kinfra deploy: image names\n"))
    result = compose.build(compose_target(tree, target, env_files, (override,)), on_line)
    if not result.ok:
        lines = [line.strip() for line in result.output.splitlines() if line.strip()]
        raise DeployError(
            "building the images failed: " + (" / ".join(lines[-3:]) or "docker compose build"),
            hint="the build ran on a clean checkout of the commit; try `docker compose build` "
            "there, or look at the build output above",
        )
    ids = docker_engine.image_ids(None, refs.values())
    return {name: (ref, ids[ref]) for name, ref in refs.items()}


def ship(
    images: Mapping[str, str],
    context: str,
    registry: str | None = None,
    source: str | None = None,
    on_step: Callable[[str], None] = lambda _: None,
    present: Collection[str] | None = None,
) -> list[str]:
    """Make ``images`` (name or ID -> image ID) present on the engine of
    ``context``; returns the names that had to travel.

    Only images whose ID the target lacks travel. With a registry the names
    are pushed from the local engine and pulled by the target; otherwise
    ``docker save | docker --context X load`` from ``source`` (None: local).
    ``present``: the IDs the target has, when already known.
    """
    if present is None:
        present = set(docker_engine.image_ids(context, set(images.values())).values())
    missing = [name for name, image in images.items() if image not in present]
    if not missing:
        return []
    if registry:
        for name in missing:
            on_step(f"pushing {name}")
            docker_engine.push(name)
            docker_engine.pull(context, name)
    else:
        on_step(f"loading {len(missing)} image(s) into {context}: {' '.join(missing)}")
        docker_engine.transfer(missing, source, context)
    return missing
