"""Which running instance of a project the current directory belongs to.

This is the public API a project's own CLI can call to find its backend the
same way ``kinfra status`` / ``kinfra env`` / ``kinfra url`` do::

    from kinfra.detect import backend_url

    url = backend_url()                      # e.g. "http://localhost:8003"
    url = backend_url(port=args.port)        # an explicit --port always wins

    from kinfra.detect import detect
    instance = detect()
    instance.url, instance.ports, instance.slot, instance.source, instance.reason

Resolution order, first match wins:

1. ``flag``: an explicit ``url``, ``port`` or ``slot`` argument. ``None`` means
   "not given", so an explicit port equal to the default still counts as given.
2. ``env-file``: the ``.env.sandbox`` found walking up from ``cwd`` to the
   root of its git checkout; kinfra writes it into a worktree whose slot is
   started. One written for another project is skipped. It is read from the
   file, never from exported variables (those go stale when the slot changes).
3. ``local-prod``: the project's registered local-prod instance (slot 0).
4. ``default``: the base ports of the project's ``kinfra.toml``.

Outside any kinfra project the registry decides: the only registered
local-prod, else the only registered project's base ports; ``reason`` always
says which was picked and why. Errors are ``kinfra.errors.KinfraError``.

Import-light on purpose (no CLI libraries), so calling it costs little.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kinfra.domain.config import Config
from kinfra.errors import KinfraError, NotInProjectError
from kinfra.paths import ENV_FILE

__all__ = ["ENV_FILE", "Instance", "backend_url", "detect", "find_env_file"]


@dataclass(frozen=True)
class Instance:
    """One instance of a project's stack, as seen from a directory."""

    url: str  # the backend (API) URL
    ports: Mapping[str, int]  # port name -> host port (may be partial for --url/--port)
    urls: Mapping[str, str]  # port name -> URL ("localhost:5432" for tcp ports)
    slot: int | None  # 0 = local-prod; None when only a URL/port was given
    source: str  # "flag", "env-file", "local-prod" or "default"
    reason: str  # one line: why this instance was picked
    project: str | None = None
    compose_project: str | None = None
    env_file: Path | None = None
    variables: Mapping[str, str] = field(default_factory=dict)  # what `kinfra env` prints


def backend_url(
    cwd: Path | None = None,
    *,
    url: str | None = None,
    port: int | None = None,
    slot: int | None = None,
) -> str:
    """The backend URL for ``cwd`` (default: the current directory)."""
    return detect(cwd, url=url, port=port, slot=slot).url


def find_env_file(start: Path, project: str | None = None) -> Path | None:
    """The nearest kinfra-generated ``.env.sandbox`` at or above ``start``.

    The walk stays inside the git checkout (worktree) containing ``start``:
    kinfra writes the file at a worktree's root, and one found above it
    belongs to something else. Outside any checkout only ``start`` itself is
    looked at. With ``project``, a file written for another project is
    skipped.
    """
    from kinfra.adapters.git import toplevel

    start = start.resolve()
    try:
        top = toplevel(start)
    except KinfraError:  # no git at all: then there is no checkout either
        top = None
    stop = top.resolve() if top is not None else start
    for directory in (start, *start.parents):
        candidate = directory / ENV_FILE
        if candidate.is_file():
            values = _read_env(candidate)
            owner = values.get("KINFRA_PROJECT")
            if _is_kinfra_env(values) and (project is None or owner in (None, project)):
                return candidate
        if directory == stop:
            break
    return None


def detect(
    cwd: Path | None = None,
    *,
    url: str | None = None,
    port: int | None = None,
    slot: int | None = None,
) -> Instance:
    start = (cwd or Path.cwd()).resolve()
    if url is not None:
        return _from_url(url.rstrip("/"), f"--url {url} given")
    if port is not None:
        if not 0 < port < 65536:
            raise KinfraError(f"--port {port} is not a port number")
        return _from_url(f"http://localhost:{port}", f"--port {port} given")
    if slot is not None:
        config = _project_config(start)
        if config is None:
            raise NotInProjectError(
                f"--slot {slot} needs a project, and {start} is not inside one",
                hint="run it inside the project's checkout or one of its worktrees",
            )
        return _from_plan(config, slot, "flag", f"--slot {slot} given")
    config = _project_config(start)
    env_file = find_env_file(start, config.name if config is not None else None)
    if env_file is not None:
        return _from_env_file(env_file, config)
    if config is not None:
        return _from_project(config, where=f"{start} has no {ENV_FILE} above it")
    return _outside_projects(start)


# --- the sources -------------------------------------------------------------


def _from_url(url: str, reason: str) -> Instance:
    port = _port_of(url)
    ports = {"api": port} if port is not None else {}
    variables = {"API_URL": url}
    if port is not None:
        variables["API_PORT"] = str(port)
    return Instance(url, ports, {"api": url}, None, "flag", reason, variables=variables)


def _port_of(url: str) -> int | None:
    from urllib.parse import urlsplit

    try:
        return urlsplit(url).port
    except ValueError:
        return None


def _from_env_file(path: Path, config: Config | None) -> Instance:
    values = _read_env(path)
    slot = _number(path, values, "SLOT_NUMBER", 0, 1000)
    names = [p.name for p in config.ports] if config is not None else _port_names(values)
    ports = {
        n: _number(path, values, f"{n.upper()}_PORT", 1, 65535)
        for n in names
        if f"{n.upper()}_PORT" in values
    }
    urls = {n: values.get(f"{n.upper()}_URL", f"localhost:{p}") for n, p in ports.items()}
    return Instance(
        url=_primary_url(urls),
        ports=ports,
        urls=urls,
        slot=slot,
        source="env-file",
        reason=f"slot {slot} from {path}",
        project=values.get("KINFRA_PROJECT"),
        compose_project=values["COMPOSE_PROJECT_NAME"],
        env_file=path,
        variables=values,
    )


def _from_project(config: Config, where: str) -> Instance:
    from kinfra.adapters.registry import RegistryStore

    record = RegistryStore().load().project(config.name)
    local_prod = record.local_prod if record is not None else None
    if local_prod is not None:
        return _from_plan(
            config, 0, "local-prod", f"{where}; using {config.name} local-prod ({local_prod.clone})"
        )
    return _from_plan(
        config, 0, "default", f"{where} and no local-prod is registered; using the base ports"
    )


def _from_plan(config: Config, slot_id: int, source: str, reason: str) -> Instance:
    from kinfra.domain.slot import env_file_values
    from kinfra.project import slot_of

    if slot_id < 0 or slot_id > config.sandbox.pool_size:
        raise KinfraError(
            f"slot {slot_id} is outside the pool of {config.name} (0..{config.sandbox.pool_size})"
        )
    slot = slot_of(config, slot_id)
    urls = slot.urls
    variables = env_file_values(config, slot, "")
    variables.pop("KINFRA_INSTANCE_ID", None)
    if source == "default":
        # Base ports with no kinfra-managed instance behind them: no slot, no
        # compose project to name.
        for key in ("SLOT_NUMBER", "COMPOSE_PROJECT_NAME", "KINFRA_PROFILE"):
            variables.pop(key, None)
    return Instance(
        url=_primary_url(urls),
        ports=dict(slot.ports),
        urls=urls,
        slot=None if source == "default" else slot_id,
        source=source,
        reason=reason,
        project=config.name,
        compose_project=None if source == "default" else slot.compose_project,
        variables=variables,
    )


def _outside_projects(start: Path) -> Instance:
    from kinfra.adapters.registry import RegistryStore
    from kinfra.domain.config import CONFIG_FILE, load_config

    projects = list(RegistryStore().load().projects.values())
    with_local_prod = [p for p in projects if p.local_prod is not None]
    where = f"{start} is not inside a kinfra project"
    if len(with_local_prod) == 1:
        record = with_local_prod[0]
        clone = record.local_prod.clone if record.local_prod is not None else record.root
        config = load_config(clone / CONFIG_FILE)
        return _from_plan(
            config, 0, "local-prod", f"{where}; using the only local-prod ({record.name}, {clone})"
        )
    if len(projects) == 1:
        config = load_config(projects[0].root / CONFIG_FILE)
        return _from_plan(
            config,
            0,
            "default",
            f"{where}; using the base ports of {config.name}, the only project",
        )
    known = ", ".join(sorted(p.name for p in projects)) or "none registered"
    raise NotInProjectError(
        f"{where}, and the registry does not single one out (projects: {known})",
        hint="run it inside a checkout or worktree, or pass --url / --port",
    )


# --- helpers -------------------------------------------------------------------


def _project_config(start: Path) -> Config | None:
    from kinfra.project import find_project

    try:
        return find_project(start).config
    except NotInProjectError:
        return None


def _read_env(path: Path) -> dict[str, str]:
    """The variables of a ``.env.sandbox``; {} when it cannot be read. Bytes
    that are not text are an error rather than "no file": falling through to
    the next source would silently pick another instance."""
    from kinfra.domain.slot import parse_env_file
    from kinfra.errors import StateFileError

    try:
        raw = path.read_bytes()
    except OSError:
        return {}
    try:
        return parse_env_file(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise StateFileError(
            f"{path} is corrupt (not text: binary bytes at offset {exc.start})",
            hint=f"kinfra generates it: delete it, then `kinfra sandbox up` in {path.parent} "
            "writes it again",
        ) from exc


def _is_kinfra_env(values: Mapping[str, str]) -> bool:
    return "SLOT_NUMBER" in values and "COMPOSE_PROJECT_NAME" in values


def _is_decimal(text: str) -> bool:
    # str.isdigit alone accepts "²" and other digits int() refuses.
    return text.isascii() and text.isdigit()


def _number(path: Path, values: Mapping[str, str], key: str, low: int, high: int) -> int:
    """An integer variable of a kinfra-generated file; a malformed one is the
    user's (hand-edited) file, reported as such."""
    text = values.get(key, "")
    if _is_decimal(text) and low <= int(text) <= high:
        return int(text)
    raise KinfraError(
        f"{path} is malformed: {key} is not a number from {low} to {high}",
        hint=f"kinfra generates this file: run `kinfra sandbox up` in {path.parent} "
        "to write it again (or delete it)",
    )


def _port_names(values: Mapping[str, str]) -> list[str]:
    return [
        k[: -len("_PORT")].lower() for k in values if k.endswith("_PORT") and _is_decimal(values[k])
    ]


def _primary_url(urls: Mapping[str, str]) -> str:
    """The backend URL: the port named "api", else the first HTTP one."""
    if "api" in urls:
        return urls["api"]
    for url in urls.values():
        if url.startswith(("http://", "https://")):
            return url
    return next(iter(urls.values()), "")
