"""Turn a compose document into a proposed ``kinfra.toml``: pure, no I/O.

``kinfra init`` reads the compose file(s), hands the text here, and writes what
``render_toml`` returns. Every guess is predictable (file order, fixed rules)
and every guess the user should check is reported as a note, because a wrong
port or mount in the config is much harder to spot later than at adoption.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kinfra.domain import compose_yaml
from kinfra.domain.config import NamedPort
from kinfra.domain.config_stack import CheckType, CodeMount, HealthCheck
from kinfra.domain.port_plan import choose_base
from kinfra.errors import InvalidNameError

DEFAULT_POOL_SIZE = 6
HTTP_CHECK_TIMEOUT = 30.0
TCP_CHECK_TIMEOUT = 20.0
DEFAULT_CODE_TARGET = "/app"

# Container ports that almost always speak HTTP; 443/8443 speak HTTPS.
_HTTP_PORTS = frozenset({80, 3000, 4000, 5000, 5173, 8000, 8008, 8080, 8081, 8088, 8888, 9000})
_HTTPS_PORTS = frozenset({443, 8443})
# Databases and brokers: never HTTP, even when a test stack fakes them with an
# HTTP server (the bundled example's db does), so their checks stay TCP.
_TCP_PORTS = frozenset(
    {1433, 1521, 2181, 3306, 4222, 5432, 5433, 5672, 6379, 9042, 9092, 11211, 27017}
)
# Services whose HTTP port is the application's API; it gets the port name "api".
_API_SERVICES = ("api", "backend", "server")

_PORT_NAME_MAX = 32
_PROJECT_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
_PREFIX_MAX = 12


# --- YAML ---------------------------------------------------------------------

_OverrideList = compose_yaml.Override
_OverrideDict = compose_yaml.OverrideMap
_Reset = compose_yaml.Reset
parse_compose = compose_yaml.load


def merge_compose(documents: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Merge several compose files the way ``docker compose -f a -f b`` does, roughly:
    mappings merge, sequences extend, ``!override`` replaces, ``!reset`` removes."""
    merged: dict[str, Any] = {}
    for document in documents:
        merged = _merge(merged, document)
    return merged


def _merge(base: Any, over: Any) -> Any:
    if isinstance(over, _OverrideDict | _OverrideList):
        return over
    if isinstance(base, dict) and isinstance(over, dict):
        result = dict(base)
        for key, value in over.items():
            if isinstance(value, _Reset):
                result.pop(key, None)
            elif key in result:
                result[key] = _merge(result[key], value)
            else:
                result[key] = value
        return result
    if isinstance(base, list) and isinstance(over, list):
        return [*base, *over]
    return over


# --- interpolation -------------------------------------------------------------

_VARIABLE = re.compile(
    r"\$(?:\$|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(value: str) -> str | None:
    """``value`` with each ``${VAR:-default}`` replaced by its default.

    init must not depend on the caller's environment, so a variable without a
    default cannot be resolved: the result is then None.
    """
    unresolved = False

    def replace(match: re.Match[str]) -> str:
        nonlocal unresolved
        if match.group(0) == "$$":
            return "$"
        if match.group("op") in (":-", "-"):
            return match.group("arg")
        unresolved = True
        return ""

    result = _VARIABLE.sub(replace, value)
    return None if unresolved else result


# --- the proposal --------------------------------------------------------------


@dataclass(frozen=True)
class Proposal:
    """The kinfra.toml `kinfra init` proposes from the compose files, with notes to check."""

    name: str
    prefix: str
    compose_files: tuple[str, ...]
    pool_size: int
    ports: tuple[NamedPort, ...]
    mounts: tuple[CodeMount, ...]
    # Guesses written commented out: services built from the repo without a bind
    # mount, when other services show how this project mounts its code.
    mount_candidates: tuple[CodeMount, ...]
    checks: tuple[HealthCheck, ...]
    workers: tuple[str, ...]
    notes: tuple[str, ...]


@dataclass(frozen=True)
class _Published:
    """A host port a compose service publishes, and its container port."""

    service: str
    target: int
    host: int


@dataclass(frozen=True)
class _HealthUrl:
    """The local HTTP port and path a service's healthcheck fetches."""

    port: int
    path: str


def project_name_from_folder(folder: str) -> str:
    """A valid project name derived from a folder name."""
    name = re.sub(r"[^a-z0-9]+", "-", folder.lower()).strip("-")[:40].rstrip("-")
    return name or "project"


def check_project_name(name: str) -> str:
    if not _PROJECT_NAME.match(name):
        raise InvalidNameError(
            f"project name {name!r} must be lowercase letters, digits and '-', "
            "starting with a letter or digit, at most 40 characters",
            hint="pass --name with such a name, e.g. --name my-app",
        )
    return name


def make_prefix(name: str, taken: Collection[str] = ()) -> str:
    """A short prefix for compose project names, none of ``taken``."""
    prefix = name[:_PREFIX_MAX].rstrip("-") or name[0]
    number = 2
    while prefix in taken:
        suffix = f"-{number}"
        prefix = name[: _PREFIX_MAX - len(suffix)].rstrip("-") + suffix
        number += 1
    return prefix


def unique_name(name: str, taken: Collection[str]) -> str:
    """``name``, or ``name-2``, ``name-3``... when another project has it."""
    candidate, number = name, 2
    while candidate in taken:
        suffix = f"-{number}"
        candidate = name[: 40 - len(suffix)].rstrip("-") + suffix
        number += 1
    return candidate


def propose(
    compose: Mapping[str, Any],
    *,
    name: str,
    compose_files: Sequence[str],
    compose_dir: str,
    pool_size: int = DEFAULT_POOL_SIZE,
    reserved: Mapping[int, str] | None = None,
    busy: Callable[[int], bool] = lambda _: False,
    taken_prefixes: Collection[str] = (),
) -> Proposal:
    """The starting config for ``compose`` (the merged document).

    ``compose_dir`` is the folder of the first compose file relative to the
    repository root ("" for the root): relative paths in compose resolve there.
    ``reserved`` (host port -> owner) are the ports of other projects' slots
    and ``busy`` says whether something listens on a port now: the bases
    proposed avoid both (see ``domain.port_plan``).
    """
    services: dict[str, dict[str, Any]] = dict(compose.get("services") or {})
    notes: list[str] = []
    if "include" in compose:
        notes.append("top-level 'include' is not followed: add the ports of included files by hand")
    health = {svc: _health_url(svc_def) for svc, svc_def in services.items()}
    published: list[_Published] = []
    for svc, svc_def in services.items():
        published.extend(_published_ports(svc, svc_def, notes))
    ports = _name_ports(published, health, pool_size, notes, reserved or {}, busy)
    mounts, candidates = _propose_mounts(services, compose_dir, notes)
    checks = _propose_checks(services, ports, health, notes)
    workers = tuple(svc for svc in services if "worker" in svc.lower())
    if not ports:
        notes.append("no service publishes a host port: add [ports] entries by hand")
    return Proposal(
        name=name,
        prefix=make_prefix(name, taken_prefixes),
        compose_files=tuple(compose_files),
        pool_size=pool_size,
        ports=ports,
        mounts=mounts,
        mount_candidates=candidates,
        checks=checks,
        workers=workers,
        notes=tuple(notes),
    )


# --- ports ---------------------------------------------------------------------


def _published_ports(
    service: str, svc_def: Mapping[str, Any], notes: list[str]
) -> list[_Published]:
    """The TCP ports ``service`` publishes on a fixed host port, in file order."""
    result: list[_Published] = []
    entries = svc_def.get("ports") or []
    if not isinstance(entries, list):
        notes.append(f"service {service}: 'ports' is not a list; skipped")
        return result
    for entry in entries:
        parsed = (
            _long_port(service, entry, notes)
            if isinstance(entry, dict)
            else _short_port(service, str(entry), notes)
        )
        if parsed is not None:
            result.append(parsed)
    return result


def _short_port(service: str, raw: str, notes: list[str]) -> _Published | None:
    """``[host_ip:][host:]container[/protocol]``, host_ip possibly ``[::1]``."""
    value = interpolate(raw)
    if value is None:
        notes.append(f"service {service}: port {raw!r} uses a variable without a default; skipped")
        return None
    spec, _, protocol = value.partition("/")
    if spec.startswith("["):  # an IPv6 host address: drop it
        spec = spec[spec.index("]") + 2 :] if "]:" in spec else spec
    parts = spec.split(":")
    container = parts[-1]
    host = parts[-2] if len(parts) >= 2 else ""
    return _published(service, raw, host, container, protocol or "tcp", notes)


def _long_port(service: str, entry: Mapping[str, Any], notes: list[str]) -> _Published | None:
    # Shown in notes the way the short syntax would write it.
    raw = f"{entry.get('published', '')}:{entry.get('target', '')}/{entry.get('protocol', 'tcp')}"
    host_raw = entry.get("published")
    host = interpolate(str(host_raw)) if host_raw is not None else ""
    container = interpolate(str(entry.get("target", "")))
    if host is None or container is None:
        notes.append(f"service {service}: port {raw} uses a variable without a default; skipped")
        return None
    return _published(service, raw, host, container, str(entry.get("protocol", "tcp")), notes)


def _published(
    service: str, raw: str, host: str, container: str, protocol: str, notes: list[str]
) -> _Published | None:
    if protocol.lower() != "tcp":
        notes.append(
            f"service {service}: port {raw} is {protocol}; kinfra plans TCP ports only, skipped"
        )
        return None
    if "-" in host or "-" in container:
        notes.append(f"service {service}: port range {raw} is not supported; skipped")
        return None
    if not host:
        notes.append(
            f"service {service}: port {raw} has no fixed host port (Docker picks one); skipped"
        )
        return None
    if not (host.isdigit() and container.isdigit()):
        notes.append(f"service {service}: cannot read port {raw}; skipped")
        return None
    host_port, target = int(host), int(container)
    if not (1 <= host_port <= 65535 and 1 <= target <= 65535):
        notes.append(f"service {service}: port {raw} is out of range; skipped")
        return None
    return _Published(service, target, host_port)


def _sanitize_key(raw: str) -> str:
    key = re.sub(r"[^a-z0-9_]+", "_", raw.lower())
    key = re.sub(r"_+", "_", key).lstrip("_0123456789").rstrip("_")
    return key[:_PORT_NAME_MAX].rstrip("_") or "svc"


def _with_suffix(stem: str, suffix: str) -> str:
    return f"{stem[: _PORT_NAME_MAX - len(suffix)].rstrip('_')}{suffix}"


def _scheme(target: int, service: str, health: Mapping[str, _HealthUrl | None]) -> str:
    if target in _TCP_PORTS:
        return "tcp"
    url = health.get(service)
    if target in _HTTPS_PORTS:
        return "https"
    if target in _HTTP_PORTS or (url is not None and url.port == target):
        return "http"
    return "tcp"


def _name_ports(
    published: list[_Published],
    health: Mapping[str, _HealthUrl | None],
    pool_size: int,
    notes: list[str],
    reserved: Mapping[int, str],
    busy: Callable[[int], bool],
) -> tuple[NamedPort, ...]:
    api_service = _api_service(published, health)
    names: set[str] = set()
    bases: dict[str, int] = {}
    seen_services: set[str] = set()
    result: list[NamedPort] = []
    for port in published:
        scheme = _scheme(port.target, port.service, health)
        stem = "api" if port.service == api_service else _sanitize_key(port.service)
        name = stem if port.service not in seen_services else _with_suffix(stem, f"_{port.target}")
        counter = 2
        while name in names:
            name = _with_suffix(stem, f"_{port.target}" if counter == 2 else f"_{counter}")
            counter += 1
        seen_services.add(port.service)
        names.add(name)
        choice = choose_base(port.host, pool_size, bases, reserved, busy)
        if choice.why_moved is not None:
            notes.append(
                f"port '{name}' (service {port.service}): {choice.why_moved} (slots 0-{pool_size} "
                f"need {pool_size + 1} ports); base moved to {choice.base}"
            )
        bases[name] = choice.base
        result.append(NamedPort(name, port.service, port.target, choice.base, scheme))
    return tuple(result)


def _api_service(
    published: list[_Published], health: Mapping[str, _HealthUrl | None]
) -> str | None:
    """The first service named like an API whose first port speaks HTTP."""
    firsts: dict[str, int] = {}
    for port in published:
        firsts.setdefault(port.service, port.target)
    for service, target in firsts.items():
        if service.lower() in _API_SERVICES and _scheme(target, service, health) != "tcp":
            return service
    return None


# --- health --------------------------------------------------------------------

_URL = re.compile(
    r"(?:(?P<scheme>https?)://(?P<host1>localhost|127\.0\.0\.1|0\.0\.0\.0|\[::1\])"
    r"(?::(?P<port1>\d+))?(?P<path1>/[^\s'\"|;&>]*)?)"
    r"|(?:(?<![\w/.])(?:localhost|127\.0\.0\.1|0\.0\.0\.0):(?P<port2>\d+)(?P<path2>/[^\s'\"|;&>]*))"
)


def _health_test(svc_def: Mapping[str, Any]) -> str | None:
    """The healthcheck's command as one string; None when there is none or it is disabled."""
    check = svc_def.get("healthcheck")
    if not isinstance(check, dict) or check.get("disable") is True:
        return None
    test = check.get("test")
    if isinstance(test, list):
        if not test or test[0] == "NONE":
            return None
        return " ".join(str(part) for part in test[1:] if part is not None)
    return str(test) if test else None


def _health_url(svc_def: Mapping[str, Any]) -> _HealthUrl | None:
    """The local HTTP URL the healthcheck fetches, if it fetches one."""
    test = _health_test(svc_def)
    if test is None:
        return None
    match = _URL.search(interpolate(test) or test)
    if match is None:
        return None
    if match.group("scheme"):
        default = 443 if match.group("scheme") == "https" else 80
        port = int(match.group("port1")) if match.group("port1") else default
        return _HealthUrl(port, match.group("path1") or "/")
    return _HealthUrl(int(match.group("port2")), match.group("path2"))


def _depends_on(svc_def: Mapping[str, Any]) -> list[str]:
    deps = svc_def.get("depends_on") or []
    if isinstance(deps, dict):
        return [str(d) for d in deps]
    return [str(d) for d in deps] if isinstance(deps, list) else []


def _service_order(services: Mapping[str, Any]) -> list[str]:
    """Services with their dependencies first; file order otherwise (cycles broken)."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(service: str) -> None:
        if service in order or service in visiting or service not in services:
            return
        visiting.add(service)
        for dep in _depends_on(services[service]):
            visit(dep)
        visiting.discard(service)
        order.append(service)

    for service in services:
        visit(service)
    return order


def _propose_checks(
    services: Mapping[str, Any],
    ports: tuple[NamedPort, ...],
    health: Mapping[str, _HealthUrl | None],
    notes: list[str],
) -> tuple[HealthCheck, ...]:
    by_service: dict[str, list[NamedPort]] = {}
    for port in ports:
        by_service.setdefault(port.service, []).append(port)
    check_of: dict[str, str] = {}  # service -> its check's name
    checks: list[HealthCheck] = []
    for service in _service_order(services):
        service_ports = by_service.get(service)
        if not service_ports:
            continue
        check = _check_for(service, services[service], service_ports, health.get(service), notes)
        if check is None:
            continue
        needs = _needed_checks(service, services, check_of)
        checks.append(
            HealthCheck(check.name, check.type, check.port, check.path, 200, check.timeout, needs)
        )
        check_of[service] = check.name
    return tuple(checks)


def _check_for(
    service: str,
    svc_def: Mapping[str, Any],
    service_ports: list[NamedPort],
    url: _HealthUrl | None,
    notes: list[str],
) -> HealthCheck | None:
    if _health_test(svc_def) is None:
        if any(p.scheme != "tcp" for p in service_ports):
            notes.append(
                f"service {service} has no healthcheck: add a [[checks]] entry for port "
                f"'{service_ports[0].name}' with its health path"
            )
        else:
            notes.append(
                f"service {service} has no healthcheck: no check proposed for port "
                f"'{service_ports[0].name}' (add a tcp check if it should gate startup)"
            )
        return None
    port = service_ports[0]
    if url is not None:
        matching = [p for p in service_ports if p.target == url.port]
        if not matching:
            notes.append(
                f"service {service}: its healthcheck fetches port {url.port}, which is not "
                f"published; proposed a tcp check on '{port.name}' instead"
            )
        elif matching[0].scheme == "tcp":
            port = matching[0]  # a database or broker port: probe it, not its fake HTTP
        else:
            port = matching[0]
            return HealthCheck(
                port.name, CheckType.HTTP, port.name, url.path, 200, HTTP_CHECK_TIMEOUT, ()
            )
    # A healthcheck without a local URL (pg_isready, redis-cli...): a TCP probe.
    return HealthCheck(port.name, CheckType.TCP, port.name, "", 200, TCP_CHECK_TIMEOUT, ())


def _needed_checks(
    service: str, services: Mapping[str, Any], check_of: Mapping[str, str]
) -> tuple[str, ...]:
    """Checks of the services ``service`` depends on, looking through dependencies
    that have no check of their own."""
    needs: list[str] = []
    seen: set[str] = {service}
    pending = list(_depends_on(services[service]))
    while pending:
        dep = pending.pop(0)
        if dep in seen or dep not in services:
            continue
        seen.add(dep)
        if dep in check_of:
            if check_of[dep] not in needs:
                needs.append(check_of[dep])
        else:
            pending.extend(_depends_on(services[dep]))
    return tuple(needs)


# --- code mounts -----------------------------------------------------------------


def _repo_relative(compose_dir: str, source: str) -> str | None:
    """``source`` (relative to the compose file) as a repo-relative path, or None
    when it is absolute, in a home dir, or leaves the repository."""
    if source.startswith(("/", "~", "\\")) or re.match(r"^[A-Za-z]:", source):
        return None
    path = posixpath.normpath(posixpath.join(compose_dir or ".", source))
    if path == ".." or path.startswith("../"):
        return None
    return path


def _build_context(svc_def: Mapping[str, Any]) -> str | None:
    build = svc_def.get("build")
    if build is None:
        return None
    if isinstance(build, str):
        return interpolate(build)
    if isinstance(build, dict):
        return interpolate(str(build.get("context", ".")))
    return None


def _bind_mounts(svc_def: Mapping[str, Any]) -> list[tuple[str, str, bool]]:
    """(source, target, read_only) of the service's bind mounts, in file order."""
    result: list[tuple[str, str, bool]] = []
    for entry in svc_def.get("volumes") or []:
        if isinstance(entry, dict):
            if entry.get("type") != "bind" or not entry.get("source") or not entry.get("target"):
                continue
            source = interpolate(str(entry["source"]))
            read_only = entry.get("read_only") is True
            target = str(entry["target"])
        else:
            value = interpolate(str(entry))
            if value is None:
                continue
            parts = value.split(":")
            if len(parts) < 2 or not parts[0].startswith((".", "/", "~")):
                continue  # a named volume or an anonymous one
            source, target = parts[0], parts[1]
            read_only = len(parts) > 2 and "ro" in parts[2].split(",")
        if source is not None:
            result.append((source, target, read_only))
    return result


def _propose_mounts(
    services: Mapping[str, Any], compose_dir: str, notes: list[str]
) -> tuple[tuple[CodeMount, ...], tuple[CodeMount, ...]]:
    """(mounts, commented-out candidates) for the services built from the repo.

    A service's own repo bind mounts are taken as they are. A built service
    without one gets its build context at /app: an active mount when no service
    has bind mounts (the guess is all there is), a commented-out candidate when
    others do (the file already shows which services take code mounts).
    """
    binds: dict[str, list[tuple[str, str, bool]]] = {}
    guesses: dict[str, list[tuple[str, str, bool]]] = {}
    for service, svc_def in services.items():
        context = _build_context(svc_def)
        if context is None or _is_remote(context):
            continue
        context_path = _repo_relative(compose_dir, context)
        if context_path is None:
            notes.append(f"service {service}: build context {context!r} is outside the repository")
            continue
        own = [
            (rel, target, ro)
            for source, target, ro in _bind_mounts(svc_def)
            if (rel := _repo_relative(compose_dir, source)) is not None and target.startswith("/")
        ]
        if own:
            binds[service] = own
        else:
            guesses[service] = [(context_path, DEFAULT_CODE_TARGET, False)]
    how = "commented out in" if binds else "added to"
    for service, [(source, target, _)] in guesses.items():
        notes.append(
            f"service {service}: its build context '{source}' mounted at {target} is a guess "
            f"({how} [[mounts]]); set the path where its image keeps the code"
        )
    if binds:
        return _group_mounts(binds), _group_mounts(guesses)
    return _group_mounts(guesses), ()


def _is_remote(context: str) -> bool:
    return bool(re.match(r"^[a-z][a-z0-9+.-]*://", context)) or context.startswith("git@")


def _group_mounts(by_service: Mapping[str, list[tuple[str, str, bool]]]) -> tuple[CodeMount, ...]:
    # Grouped by (source, target, read_only) so one entry can serve several services.
    grouped: dict[tuple[str, str, bool], list[str]] = {}
    for service, mounts in by_service.items():
        for key in mounts:
            grouped.setdefault(key, []).append(service)
    return tuple(
        CodeMount(tuple(svcs), source, target, read_only)
        for (source, target, read_only), svcs in grouped.items()
    )


# --- TOML ----------------------------------------------------------------------

_TOML_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def toml_string(value: str) -> str:
    """``value`` as a TOML basic string."""
    out = []
    for char in value:
        if char in _TOML_ESCAPES:
            out.append(_TOML_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _toml_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(toml_string(v) for v in values) + "]"


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else toml_string(key)


def _toml_number(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)


def _comment(text: str) -> str:
    # A note may quote compose content: keep it on one comment line.
    return "# " + " ".join(text.split())


def render_port_line(port: NamedPort) -> str:
    """One ``[ports]`` entry as kinfra.toml writes it."""
    return (
        f"{_toml_key(port.name)} = {{ service = {toml_string(port.service)}, "
        f"target = {port.target}, base = {port.base}, scheme = {toml_string(port.scheme)} }}"
    )


def render_toml(proposal: Proposal, source: str) -> str:
    """The config file text: deterministic, commented, in a fixed order."""
    lines = [
        f"# kinfra config, written by `kinfra init` from {source}.",
        "# Review it (especially the notes below), then run `kinfra sandbox provision`.",
    ]
    if proposal.notes:
        lines.append("#")
        lines.append("# Review:")
        lines.extend(_comment(f"- {note}") for note in proposal.notes)
    lines += [
        "",
        "[project]",
        f"name = {toml_string(proposal.name)}",
        f"prefix = {toml_string(proposal.prefix)}",
        f"compose_files = {_toml_list(proposal.compose_files)}",
        "",
        "# Named host ports. Slot N publishes base + N (slot 0 is local-prod), so the",
        "# bases of two ports must be more than pool_size apart. The bases meet no port",
        "# of another project's slots on this machine (`kinfra ports` shows them all).",
        "[ports]",
    ]
    lines += [render_port_line(port) for port in proposal.ports]
    lines += _render_sandbox(proposal)
    for mount in proposal.mounts:
        lines += ["", *_render_mount(mount)]
    for mount in proposal.mount_candidates:
        lines += ["", "# A guess: uncomment once the target is right."]
        lines += [_comment(line) for line in _render_mount(mount)]
    for check in proposal.checks:
        lines += ["", "[[checks]]", f"name = {toml_string(check.name)}"]
        lines.append(f"type = {toml_string(check.type.value)}")
        lines.append(f"port = {toml_string(check.port)}")
        if check.type is CheckType.HTTP:
            lines.append(f"path = {toml_string(check.path)}")
            lines.append(f"expect = {check.expect}")
        lines.append(f"timeout = {_toml_number(check.timeout)}")
        if check.needs:
            lines.append(f"needs = {_toml_list(check.needs)}")
    lines += [
        "",
        "# Read-only data every slot mounts from one place, e.g.:",
        "# [shared.market_data]",
        '# target = "/data/market"',
        '# services = ["backend"]',
        "# read_only = true",
    ]
    return "\n".join(lines) + "\n"


def _render_mount(mount: CodeMount) -> list[str]:
    return [
        "[[mounts]]",
        f"services = {_toml_list(mount.services)}",
        f"source = {toml_string(mount.source)}",
        f"target = {toml_string(mount.target)}",
        f"read_only = {'true' if mount.read_only else 'false'}",
    ]


def _render_sandbox(proposal: Proposal) -> list[str]:
    pool = proposal.pool_size
    lines = [
        "",
        f"# A pool of {pool} slots: 1-{pool - 2} light, {pool - 1} standard, {pool} heavy.",
        "[sandbox]",
        f"pool_size = {pool}",
        f"standard_slots = [{pool - 1}]",
        f"heavy_slots = [{pool}]",
        f"workers = {_toml_list(proposal.workers)}",
    ]
    if proposal.workers:
        lines += [
            "",
            "# Replicas of each worker service per profile.",
            "[profiles.light]",
            "replicas = 1",
            "",
            "[profiles.standard]",
            "replicas = 2",
            "",
            "[profiles.heavy]",
            "replicas = 4",
        ]
    return lines
