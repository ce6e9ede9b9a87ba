"""The project config, ``kinfra.toml``: its model and its validation.

Pure: ``parse_config`` takes the decoded TOML and returns immutable records or
raises ``ConfigError`` naming the file, the key and the problem. Unknown keys
are errors too, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from kinfra.domain.memory import parse_size
from kinfra.errors import ConfigError

if TYPE_CHECKING:
    from kinfra.domain.config_agent import AgentSettings
    from kinfra.domain.config_deploy import DeployTarget
    from kinfra.domain.config_orch import OrchestratorSettings
    from kinfra.domain.config_stack import CodeMount, HealthCheck, SharedDir
    from kinfra.domain.config_worktree import SessionSettings, WorktreeSettings

CONFIG_FILE = "kinfra.toml"
# Read when a command first needs them (``Config.later``), in this order.
LATER_SECTIONS = ("mounts", "checks", "shared", "worktree", "session", "orchestrator", "agent")
_ARRAYS_OF_TABLES = ("mounts", "checks")

_PROJECT_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
_KEY_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Profile(str, Enum):
    """A slot's size: how many worker replicas it runs and how much memory it is expected to use."""

    LIGHT = "light"
    STANDARD = "standard"
    HEAVY = "heavy"

    @property
    def rank(self) -> int:
        return list(Profile).index(self)


class OnClaim(str, Enum):
    """What a new claim does with the slot's named volumes."""

    KEEP = "keep"  # the last claimant's data stays
    RESET = "reset"  # restored from the project's snapshot (`kinfra sandbox snapshot`)


@dataclass(frozen=True)
class NamedPort:
    """A port of [ports]: a service's container port, published at base + slot id."""

    name: str
    service: str
    target: int  # the container port
    base: int  # host port of slot 0; slot N publishes base + N
    scheme: str  # "http" or "tcp"; decides how its URL is shown

    def host_port(self, slot_id: int) -> int:
        return self.base + slot_id


@dataclass(frozen=True)
class ProfileSpec:
    """A profile of [profiles]: worker replicas, and the memory a slot of it is expected to use."""

    replicas: int
    memory: str  # as written: what a slot of this profile is expected to use
    memory_mb: int = 0


@dataclass(frozen=True)
class SandboxSettings:
    """[sandbox]: pool size and profiles, bind address, workers, wait timeout, memory, on_claim."""

    bind: str
    pool_size: int
    standard_slots: tuple[int, ...]
    heavy_slots: tuple[int, ...]
    workers: tuple[str, ...]
    wait_timeout: float
    memory_budget_mb: int | None = None  # None: a share of the machine's RAM
    on_claim: OnClaim = OnClaim.KEEP

    def profile_of(self, slot_id: int) -> Profile:
        if slot_id in self.heavy_slots:
            return Profile.HEAVY
        if slot_id in self.standard_slots:
            return Profile.STANDARD
        return Profile.LIGHT


@dataclass(frozen=True)
class Config:
    """A project's kinfra.toml, parsed and validated (the sections of ``later`` when first read)."""

    path: Path  # the kinfra.toml this came from
    name: str
    prefix: str
    compose_files: tuple[str, ...]
    designs_dir: str
    test_command: str | None
    ports: tuple[NamedPort, ...]
    sandbox: SandboxSettings
    profiles: Mapping[Profile, ProfileSpec]
    secrets: Mapping[str, str]
    env: Mapping[str, str] = field(default_factory=dict)
    deploy: Mapping[str, DeployTarget] = field(default_factory=dict)  # [deploy.<target>]
    # The sections only some commands read, as written: [[mounts]], [[checks]],
    # [shared], [worktree], [session], [orchestrator] and [agent]. Each is
    # checked, and becomes its records, when first read; ``load_config``
    # reads them all at once. A listing (`kinfra ports` reads every project's
    # config, `kinfra sandbox slots` its own) needs none of them, and their
    # modules and records are a good part of a command's start-up.
    later: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @cached_property
    def mounts(self) -> tuple[CodeMount, ...]:
        from kinfra.domain.config_stack import parse_mounts

        return parse_mounts(self._later().tables("mounts"))

    @cached_property
    def checks(self) -> tuple[HealthCheck, ...]:
        from kinfra.domain.config_stack import parse_checks

        return parse_checks(self._later().tables("checks"), {p.name for p in self.ports})

    @cached_property
    def shared(self) -> tuple[SharedDir, ...]:
        from kinfra.domain.config_stack import parse_shared

        return parse_shared(self._later().table("shared"))

    @cached_property
    def worktree(self) -> WorktreeSettings:
        from kinfra.domain.config_worktree import parse_worktree

        return parse_worktree(self._later().table("worktree"))

    @cached_property
    def session(self) -> SessionSettings:
        from kinfra.domain.config_worktree import parse_session

        return parse_session(self._later().table("session"))

    @cached_property
    def orchestrator(self) -> OrchestratorSettings:
        from kinfra.domain.config_orch import parse_orchestrator

        return parse_orchestrator(self._later().table("orchestrator"))

    @cached_property
    def agent(self) -> AgentSettings:
        from kinfra.domain.config_agent import parse_agent

        return parse_agent(self._later().table("agent"), self.secrets)

    def check_all_sections(self) -> None:
        """Read every section read only when used; raises the first one's ConfigError."""
        for section in LATER_SECTIONS:
            getattr(self, section)

    def _later(self) -> _Table:
        return _Table(self.path, "", self.later)

    @property
    def root(self) -> Path:
        """The checkout the config was read from."""
        return self.path.parent

    def port(self, name: str) -> NamedPort:
        for port in self.ports:
            if port.name == name:
                return port
        raise KeyError(name)


# --- reading -------------------------------------------------------------------

_REQUIRED: Any = object()
EnumT = TypeVar("EnumT", bound=Enum)


class _Table:
    """A TOML table being validated, with its dotted location for messages."""

    def __init__(self, file: Path, where: str, data: Mapping[str, Any]) -> None:
        self.file = file
        self.where = where
        self.data = data
        self.seen: set[str] = set()

    def error(self, key: str | None, problem: str) -> ConfigError:
        location = f"[{self.where}]" if self.where else "top level"
        if key is not None:
            location += f" {key}"
        return ConfigError(
            f"{self.file.name}: {location}: {problem}",
            hint=f"fix {self.file}",
        )

    def _get(self, key: str, default: Any, kind: type | tuple[type, ...], kind_name: str) -> Any:
        self.seen.add(key)
        if key not in self.data:
            if default is _REQUIRED:
                raise self.error(key, "missing (required)")
            return default
        value = self.data[key]
        # bool is an int subclass; never accept it where a number is meant.
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise self.error(key, f"expected {kind_name}, got {value!r}")
        if not isinstance(value, kind):
            raise self.error(key, f"expected {kind_name}, got {_describe(value)}")
        return value

    def text(self, key: str, default: Any = _REQUIRED) -> Any:
        return self._get(key, default, str, "a string")

    def integer(self, key: str, default: Any = _REQUIRED, minimum: int | None = None) -> Any:
        value = self._get(key, default, int, "an integer")
        if value is not None and minimum is not None and value < minimum:
            raise self.error(key, f"must be at least {minimum}, got {value}")
        return value

    def number(self, key: str, default: Any = _REQUIRED) -> Any:
        value = self._get(key, default, (int, float), "a number")
        if value is not None and value <= 0:
            raise self.error(key, f"must be positive, got {value}")
        return float(value) if value is not None else None

    def choice(self, key: str, default: EnumT) -> EnumT:
        """One of an enum's values, ``default`` when the key is left out."""
        value = self.text(key, default.value)
        try:
            return type(default)(value)
        except ValueError:
            names = [repr(member.value) for member in type(default)]
            expected = " or ".join(filter(None, [", ".join(names[:-1]), names[-1]]))
            raise self.error(key, f"expected {expected}, got {value!r}") from None

    def flag(self, key: str, default: Any = _REQUIRED) -> Any:
        return self._get(key, default, bool, "true or false")

    def str_list(self, key: str, default: Any = _REQUIRED) -> tuple[str, ...]:
        value = self._get(key, default, list, "a list of strings")
        if not all(isinstance(item, str) for item in value):
            raise self.error(key, "expected a list of strings")
        return tuple(value)

    def int_list(self, key: str, default: Any = _REQUIRED) -> tuple[int, ...]:
        value = self._get(key, default, list, "a list of integers")
        if not all(isinstance(item, int) and not isinstance(item, bool) for item in value):
            raise self.error(key, "expected a list of integers")
        return tuple(value)

    def number_list(self, key: str, default: Any = _REQUIRED) -> tuple[float, ...]:
        value = self._get(key, default, list, "a list of numbers")
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
            raise self.error(key, "expected a list of numbers")
        return tuple(float(v) for v in value)

    def table(self, key: str, required: bool = False) -> _Table:
        value = self._get(key, _REQUIRED if required else {}, dict, "a table")
        where = f"{self.where}.{key}" if self.where else key
        return _Table(self.file, where, value)

    def tables(self, key: str) -> list[_Table]:
        """An array of tables, [[key]]."""
        value = self._get(key, [], list, "an array of tables")
        result = []
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                raise self.error(key, f"item {index + 1}: expected a table, got {_describe(item)}")
            where = f"{self.where}.{key}" if self.where else key
            result.append(_Table(self.file, f"{where}][{index + 1}", item))
        return result

    def subtables(self) -> list[tuple[str, _Table]]:
        """Every key of this table, each of which must itself be a table."""
        result = []
        for key in self.data:
            result.append((key, self.table(key, required=True)))
        return result

    def done(self) -> None:
        unknown = [key for key in self.data if key not in self.seen]
        if unknown:
            raise self.error(unknown[0], "unknown key (check its spelling)")


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def load_config(path: Path, *, all_sections: bool = True) -> Config:
    """The config of ``path``, every section checked (``all_sections`` False:
    those of ``LATER_SECTIONS`` when first read, as ``parse_config``)."""
    config = parse_config(path, decode_config(path))
    if all_sections:
        config.check_all_sections()
    return config


def decode_config(path: Path) -> dict[str, Any]:
    """The TOML of ``path``, decoded but not yet checked."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError(
            f"{path} not found", hint="run `kinfra init` at the repository root to create one"
        ) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    import tomllib  # ~7 ms of start-up: not when the config cache has the file

    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path.name}: not valid TOML: {exc}", hint=f"fix {path}") from exc
    except RecursionError as exc:
        raise ConfigError(
            f"{path.name}: not valid TOML: nested too deeply", hint=f"fix {path}"
        ) from exc


def parse_config(path: Path, data: Mapping[str, Any]) -> Config:
    """The config of decoded TOML: [project], [sandbox], [ports], [profiles],
    [secrets], [env] and [deploy] checked now, the sections of ``LATER_SECTIONS``
    when first read (``load_config`` reads them all)."""
    top = _Table(path, "", data)

    project = top.table("project", required=True)
    name = project.text("name")
    if not _PROJECT_NAME.match(name):
        raise project.error(
            "name", f"{name!r} must be lowercase letters, digits and '-', at most 40 characters"
        )
    prefix = project.text("prefix", name)
    if not _PROJECT_NAME.match(prefix):
        raise project.error(
            "prefix", f"{prefix!r} must be lowercase letters, digits and '-', at most 40 characters"
        )
    compose_files = project.str_list("compose_files", ("docker-compose.yml",))
    if not compose_files:
        raise project.error("compose_files", "must name at least one compose file")
    designs_dir = project.text("designs_dir", "docs/designs")
    test_command = project.text("test_command", None)
    project.done()

    sandbox = _parse_sandbox(top.table("sandbox"))
    ports = _parse_ports(top.table("ports"), sandbox.pool_size)
    port_names = {p.name for p in ports}
    profiles = _parse_profiles(top.table("profiles"))
    secrets = _parse_env_table(top.table("secrets"), secret=True)
    env = _parse_env_table(top.table("env"))

    # Only their shape now (a table, an array of tables); the rest when read.
    later = {
        section: [t.data for t in top.tables(section)]
        if section in _ARRAYS_OF_TABLES
        else top.table(section).data
        for section in LATER_SECTIONS
    }
    deploy_t = top.table("deploy")
    deploy: Mapping[str, DeployTarget] = {}
    if deploy_t.data:  # its module and records only for a project that deploys somewhere
        from kinfra.domain.config_deploy import parse_deploy  # imports this module

        deploy = parse_deploy(
            deploy_t,
            project=name,
            compose_files=compose_files,
            port_names=port_names,
            wait_timeout=sandbox.wait_timeout,
        )
    top.done()

    return Config(
        path=path,
        name=name,
        prefix=prefix,
        compose_files=compose_files,
        designs_dir=designs_dir,
        test_command=test_command,
        ports=ports,
        sandbox=sandbox,
        profiles=profiles,
        secrets=secrets,
        env=env,
        deploy=deploy,
        later=later,
    )


def _parse_sandbox(t: _Table) -> SandboxSettings:
    pool_size = t.integer("pool_size", 6, minimum=1)
    if pool_size > 50:
        raise t.error("pool_size", f"at most 50 slots, got {pool_size}")
    default_std = (pool_size - 1,) if pool_size >= 3 else ()
    default_heavy = (pool_size,) if pool_size >= 3 else ()
    standard = t.int_list("standard_slots", default_std)
    heavy = t.int_list("heavy_slots", default_heavy)
    for key, slots in (("standard_slots", standard), ("heavy_slots", heavy)):
        for slot in slots:
            if not 1 <= slot <= pool_size:
                raise t.error(key, f"slot {slot} is outside the pool (1..{pool_size})")
    both = set(standard) & set(heavy)
    if both:
        raise t.error("heavy_slots", f"slot {min(both)} is also listed in standard_slots")
    bind = t.text("bind", "127.0.0.1")
    try:
        import ipaddress  # only when a bind address is set

        ipaddress.ip_address(bind)
    except ValueError:
        raise t.error(
            "bind", f"{bind!r} is not an IP address (e.g. 127.0.0.1, 0.0.0.0, ::1 or ::)"
        ) from None
    settings = SandboxSettings(
        bind=bind,
        pool_size=pool_size,
        standard_slots=standard,
        heavy_slots=heavy,
        workers=t.str_list("workers", ()),
        wait_timeout=t.number("wait_timeout", 120),
        memory_budget_mb=_memory(t, "memory_budget", None),
        on_claim=t.choice("on_claim", OnClaim.KEEP),
    )
    t.done()
    return settings


def _parse_ports(t: _Table, pool_size: int) -> tuple[NamedPort, ...]:
    ports: list[NamedPort] = []
    for key, pt in t.subtables():
        if not _KEY_NAME.match(key):
            raise t.error(key, "port names are lowercase letters, digits and '_'")
        base = pt.integer("base", minimum=1)
        if base + pool_size > 65535:
            raise pt.error("base", f"{base} + {pool_size} slots exceeds 65535")
        target = pt.integer("target", minimum=1)
        if target > 65535:
            raise pt.error("target", f"{target} is not a port number")
        scheme = pt.text("scheme", "http" if key in ("api", "web", "http", "ui") else "tcp")
        if scheme not in ("http", "https", "tcp"):
            raise pt.error("scheme", f"expected 'http', 'https' or 'tcp', got {scheme!r}")
        ports.append(NamedPort(key, pt.text("service"), target, base, scheme))
        pt.done()
    # Slot 0 (local-prod) to slot pool_size all publish base + slot: the ranges
    # of two names must not meet, or two slots would fight over one host port.
    for i, a in enumerate(ports):
        for b in ports[i + 1 :]:
            if abs(a.base - b.base) <= pool_size:
                raise t.error(
                    b.name,
                    f"host ports {b.base}-{b.base + pool_size} overlap those of "
                    f"'{a.name}' ({a.base}-{a.base + pool_size}) across the pool of {pool_size}; "
                    f"put their bases at least {pool_size + 1} apart",
                )
    return tuple(ports)


_DEFAULT_PROFILES = {
    Profile.LIGHT: ProfileSpec(1, "1.5 GB", 1536),
    Profile.STANDARD: ProfileSpec(2, "2.5 GB", 2560),
    Profile.HEAVY: ProfileSpec(4, "4 GB", 4096),
}


def _memory(t: _Table, key: str, default: str | None) -> int | None:
    """A size ("1.5 GB", "512 MB") in megabytes."""
    text = t.text(key, default)
    if text is None:
        return None
    try:
        megabytes = parse_size(text)
    except ValueError as exc:
        raise t.error(key, str(exc)) from None
    if megabytes <= 0:
        raise t.error(key, f"must be more than zero, got {text!r}")
    return megabytes


def _parse_profiles(t: _Table) -> Mapping[Profile, ProfileSpec]:
    profiles = dict(_DEFAULT_PROFILES)
    for key, pt in t.subtables():
        try:
            profile = Profile(key)
        except ValueError:
            raise t.error(key, "profiles are light, standard and heavy") from None
        default = _DEFAULT_PROFILES[profile]
        memory = pt.text("memory", default.memory)
        profiles[profile] = ProfileSpec(
            replicas=pt.integer("replicas", default.replicas, minimum=0),
            memory=memory,
            memory_mb=_memory(pt, "memory", default.memory) or 0,
        )
        pt.done()
    return profiles


def _parse_env_table(t: _Table, secret: bool = False) -> Mapping[str, str]:
    """[env] or [secrets]. A [secrets] value may be the secret itself, so its
    errors name only the type of a wrong value, never the value."""
    result: dict[str, str] = {}
    for key in t.data:
        if not _ENV_NAME.match(key):
            raise t.error(key, "must be a valid environment variable name")
        value = t.data[key]
        if secret and not isinstance(value, str):
            raise t.error(key, f"expected a string, got {_type_name(value)}")
        result[key] = t.text(key)
    t.done()
    return result


def _type_name(value: Any) -> str:
    """What a TOML value is, without showing it."""
    import datetime

    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, (datetime.date, datetime.time)):
        return "a date/time"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return "a value of another type"
