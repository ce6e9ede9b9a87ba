"""The stack sections of kinfra.toml: ``[[mounts]]`` (the checkout's code in
services), ``[[checks]]`` (the startability gate) and ``[shared.<name>]``
(machine-wide data dirs).

Read when a command first needs them (``Config.mounts``, ``.checks``,
``.shared``): a start, a deploy, the doctor; never a listing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from kinfra.domain.config import _KEY_NAME, _Table


class CheckType(str, Enum):
    """What a health check probes: an HTTP URL or a TCP port."""

    HTTP = "http"
    TCP = "tcp"


@dataclass(frozen=True)
class CodeMount:
    """An entry of [[mounts]]: the checkout's code (a path in it) mounted into services."""

    services: tuple[str, ...]
    source: str  # relative to the worktree (or main checkout)
    target: str  # path inside the container
    read_only: bool


@dataclass(frozen=True)
class HealthCheck:
    """An entry of [[checks]]: one HTTP or TCP check of the startability gate."""

    name: str
    type: CheckType
    port: str  # a NamedPort name
    path: str  # HTTP only
    expect: int  # HTTP status
    timeout: float  # seconds: this check's own budget
    needs: tuple[str, ...]  # checks that must pass first; skipped otherwise


@dataclass(frozen=True)
class SharedDir:
    """A dir of [shared.<name>]: the machine's shared data, mounted into services of every slot."""

    name: str
    target: str
    services: tuple[str, ...]
    read_only: bool


def parse_mounts(tables: list[_Table]) -> tuple[CodeMount, ...]:
    return tuple(_parse_mount(t) for t in tables)


def _parse_mount(t: _Table) -> CodeMount:
    services = t.str_list("services")
    if not services:
        raise t.error("services", "must name at least one service")
    source = t.text("source")
    if source.startswith("/") or ".." in Path(source).parts:
        raise t.error("source", f"{source!r} must be a path inside the worktree")
    target = t.text("target")
    if not target.startswith("/"):
        raise t.error("target", f"{target!r} must be an absolute path in the container")
    mount = CodeMount(services, source, target, t.flag("read_only", False))
    t.done()
    return mount


def parse_checks(tables: list[_Table], port_names: set[str]) -> tuple[HealthCheck, ...]:
    checks: list[HealthCheck] = []
    names: set[str] = set()
    for t in tables:
        type_name = t.text("type")
        try:
            check_type = CheckType(type_name)
        except ValueError:
            raise t.error("type", f"expected 'http' or 'tcp', got {type_name!r}") from None
        port = t.text("port")
        if port not in port_names:
            raise t.error("port", f"{port!r} is not a name under [ports]")
        name = t.text("name", port)
        if name in names:
            raise t.error("name", f"duplicate check name {name!r}")
        path = t.text("path", "/" if check_type is CheckType.HTTP else "")
        if check_type is CheckType.HTTP and not path.startswith("/"):
            raise t.error("path", f"{path!r} must start with '/'")
        needs = t.str_list("needs", ())
        for need in needs:
            if need not in names:
                raise t.error("needs", f"{need!r} is not a check defined before this one")
        checks.append(
            HealthCheck(
                name=name,
                type=check_type,
                port=port,
                path=path,
                expect=t.integer("expect", 200, minimum=100),
                timeout=t.number("timeout", 30),
                needs=needs,
            )
        )
        names.add(name)
        t.done()
    return tuple(checks)


def parse_shared(t: _Table) -> tuple[SharedDir, ...]:
    dirs = []
    for key, st in t.subtables():
        if not _KEY_NAME.match(key):
            raise t.error(key, "shared dir names are lowercase letters, digits and '_'")
        target = st.text("target")
        if not target.startswith("/"):
            raise st.error("target", f"{target!r} must be an absolute path in the container")
        dirs.append(SharedDir(key, target, st.str_list("services"), st.flag("read_only", True)))
        st.done()
    return tuple(dirs)
