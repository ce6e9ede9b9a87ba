"""``kinfra init``: read the compose file(s), write a starting ``kinfra.toml``.

The guessing lives in ``kinfra.domain.compose_inspect`` (pure); this module
finds the files, reads them, asks the registry what the machine's other
projects hold (names, prefixes, ports) and what listens now, checks the
result against the real validator and creates the config without ever
replacing an existing one.
"""

from __future__ import annotations

import contextlib
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from kinfra.adapters import git
from kinfra.adapters.registry import RegistryStore, normalize
from kinfra.adapters.statefile import atomic_write_text
from kinfra.domain import compose_inspect
from kinfra.domain.config import CONFIG_FILE, parse_config
from kinfra.errors import ConfigError, GitError, KinfraError
from kinfra.workflows.machine import listening, machine_reservations

COMPOSE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")


@dataclass(frozen=True)
class InitResult:
    """What `kinfra init` wrote (or would write), and the guesses to review."""

    path: Path  # where the config is (or, with --dry-run, would be) written
    text: str  # the generated TOML
    notes: list[str]  # guesses the user should review


def init_project(
    cwd: Path, compose_files: list[str], name: str | None, dry_run: bool
) -> InitResult:
    root = repository_root(cwd)
    path = root / CONFIG_FILE
    if not dry_run and path.exists():
        raise _exists_error(path)
    files = find_compose_files(root, cwd.resolve(), compose_files)
    documents = [compose_inspect.parse_compose(_read(f), f.name) for f in files]
    relative = [f.relative_to(root).as_posix() for f in files]
    # The machine's other projects: their names, prefixes and ports are
    # taken. A project already registered from this checkout keeps its own.
    registry = RegistryStore().load()
    others = {n: r for n, r in registry.projects.items() if r.root != normalize(root)}
    project_name = (
        compose_inspect.check_project_name(name)
        if name is not None
        else compose_inspect.unique_name(
            compose_inspect.project_name_from_folder(root.name), others
        )
    )
    reserved, machine_notes = machine_reservations(registry, skip=project_name)
    compose_dir = files[0].parent.relative_to(root).as_posix()
    proposal = compose_inspect.propose(
        compose_inspect.merge_compose(documents),
        name=project_name,
        compose_files=relative,
        compose_dir="" if compose_dir == "." else compose_dir,
        reserved=reserved,
        busy=listening,
        taken_prefixes={r.prefix for r in others.values()},
    )
    text = compose_inspect.render_toml(proposal, ", ".join(relative))
    _validate(path, text)
    if not dry_run:
        write_new_file(path, text)
    return InitResult(path=path, text=text, notes=[*proposal.notes, *machine_notes])


def repository_root(cwd: Path) -> Path:
    """The git toplevel of ``cwd``, or ``cwd`` itself outside git (or without git)."""
    start = cwd.resolve()
    try:
        top = git.toplevel(start)
    except GitError:
        top = None
    return top.resolve() if top is not None else start


def find_compose_files(root: Path, cwd: Path, given: list[str]) -> list[Path]:
    """The ``-f`` files (relative to ``cwd``, like docker compose) or the first
    of the usual names at the repository root."""
    if not given:
        for candidate in COMPOSE_NAMES:
            if (root / candidate).is_file():
                return [root / candidate]
        raise ConfigError(
            f"no compose file in {root} (looked for {', '.join(COMPOSE_NAMES)})",
            hint="name it with `kinfra init -f path/to/compose.yml`",
        )
    files = []
    for raw in given:
        file = (cwd / raw).resolve()
        if not file.is_file():
            raise ConfigError(f"compose file {raw} not found", hint=f"looked at {file}")
        if not file.is_relative_to(root):
            raise ConfigError(
                f"compose file {raw} is outside the repository {root}",
                hint="kinfra.toml names compose files relative to the repository root",
            )
        files.append(file)
    return files


def _read(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"cannot read compose file {file}: {reason}") from exc


def _validate(path: Path, text: str) -> None:
    """The generated file must pass the real validator; if not, it is a kinfra bug."""
    try:
        parse_config(path, tomllib.loads(text))
    except (tomllib.TOMLDecodeError, ConfigError) as exc:
        raise RuntimeError(f"kinfra init generated an invalid config: {exc}") from exc


def _exists_error(path: Path) -> KinfraError:
    return ConfigError(
        f"{path} already exists; kinfra init never overwrites it",
        hint="edit it by hand, or move it aside and run `kinfra init` again "
        "(`kinfra init --dry-run` shows what it would write)",
    )


def write_new_file(path: Path, text: str) -> None:
    """Create ``path`` with ``text``, refusing if it exists, even in a race.

    The O_EXCL create claims the name atomically; the content then lands by
    atomic rename, so no reader ever sees a half-written config.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise _exists_error(path) from None
    except OSError as exc:
        raise ConfigError(f"cannot create {path}: {exc.strerror}") from exc
    os.close(fd)
    try:
        atomic_write_text(path, text)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # give the name back: we created it above
        raise
