"""Reading and writing compose YAML, including compose's merge tags: pure
(but for ``load_file``, which reads one file).

``!override`` replaces a list (or mapping) from an earlier file instead of
extending it (a plain ``ports:`` list in an override file appends); ``!reset``
removes a key. PyYAML must be taught both, in each direction, and to read
numbers the way Compose (YAML 1.2) does.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

from kinfra.errors import ConfigError


class Override(list[Any]):
    """A sequence tagged ``!override``: replaces instead of extending."""


class OverrideMap(dict[str, Any]):
    """A mapping tagged ``!override``: replaces instead of merging."""


class Reset:
    """A value tagged ``!reset``: removes the key inherited from earlier files."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Reset)

    def __hash__(self) -> int:
        return hash(Reset)


@functools.cache
def _loader() -> type[Any]:
    """SafeLoader that reads compose files like Compose does (YAML 1.2 numbers).

    YAML 1.1 reads an unquoted ``22:22`` as the base-60 integer 1342; Compose
    (go-yaml v3) reads it as a string, and so must we for port mappings.
    Built on first use: importing PyYAML costs ~10 ms that listing commands
    never need.
    """
    import yaml

    class Loader(yaml.SafeLoader):
        """A SafeLoader that reads numbers as Compose does, and ``!override`` and ``!reset``."""

    int_tag = "tag:yaml.org,2002:int"
    float_tag = "tag:yaml.org,2002:float"
    Loader.yaml_implicit_resolvers = {
        first: [(tag, regex) for tag, regex in resolvers if tag not in (int_tag, float_tag)]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    Loader.add_implicit_resolver(
        int_tag,
        re.compile(r"^(?:[-+]?(?:0|[1-9][0-9_]*)|0x[0-9a-fA-F_]+|0o[0-7_]+)$"),
        list("-+0123456789"),
    )
    Loader.add_implicit_resolver(
        float_tag,
        re.compile(
            r"^(?:[-+]?(?:[0-9][0-9_]*)?\.[0-9_]+(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
        ),
        list("-+0123456789."),
    )

    def construct_override(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
        if isinstance(node, yaml.SequenceNode):
            return Override(loader.construct_sequence(node, deep=True))
        if isinstance(node, yaml.MappingNode):
            mapping = loader.construct_mapping(node, deep=True)
            return OverrideMap({str(key): value for key, value in mapping.items()})
        return loader.construct_scalar(node)  # type: ignore[arg-type]

    def construct_reset(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
        return Reset()

    Loader.add_constructor("!override", construct_override)
    Loader.add_constructor("!reset", construct_reset)
    return Loader


def load(text: str, filename: str) -> dict[str, Any]:
    """One compose file's document; ConfigError (one line) if it is not one."""
    import yaml

    try:
        data = yaml.load(text, Loader=_loader())
    except RecursionError as exc:
        raise ConfigError(
            f"{filename}: nested too deeply to be a compose file", hint=f"fix {filename}"
        ) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(
            f"{filename}: not valid YAML{where}: {problem}", hint=f"fix {filename}"
        ) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{filename}: expected a mapping at the top level", hint=f"fix {filename}"
        )
    services = data.get("services", {})
    if not isinstance(services, dict) or not all(isinstance(s, dict) for s in services.values()):
        raise ConfigError(
            f"{filename}: 'services' must map service names to mappings", hint=f"fix {filename}"
        )
    return data


def load_file(path: Path) -> dict[str, Any]:
    """``load`` of one of the project's compose files, read from disk; one
    line naming the file if it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(
            f"compose file {path} cannot be read: {reason}",
            hint="check [project] compose_files in kinfra.toml",
        ) from exc
    return load(text, str(path))


@functools.cache
def _dumper() -> type[Any]:
    import yaml

    class Dumper(yaml.SafeDumper):
        """A SafeDumper writing ``Override`` and ``Reset`` as ``!override`` and ``!reset``."""

    def represent_override(dumper: yaml.SafeDumper, data: Override) -> yaml.Node:
        return dumper.represent_sequence("!override", list(data))

    def represent_reset(dumper: yaml.SafeDumper, data: Reset) -> yaml.Node:
        return dumper.represent_scalar("!reset", "null")

    Dumper.add_representer(Override, represent_override)
    Dumper.add_representer(Reset, represent_reset)
    return Dumper


def dump(document: Any, header: str = "") -> str:
    import yaml

    body = yaml.dump(document, Dumper=_dumper(), sort_keys=False, default_flow_style=False)
    return header + body
