"""Reading and writing compose YAML, including compose's merge tags: pure.

``!override`` replaces a list (or mapping) from an earlier file instead of
extending it (a plain ``ports:`` list in an override file appends); ``!reset``
removes a key. PyYAML must be taught both, in each direction, and to read
numbers the way Compose (YAML 1.2) does.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

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


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads compose files like Compose does (YAML 1.2 numbers).

    YAML 1.1 reads an unquoted ``22:22`` as the base-60 integer 1342; Compose
    (go-yaml v3) reads it as a string, and so must we for port mappings.
    """


_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag not in (_INT, _FLOAT)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _INT,
    re.compile(r"^(?:[-+]?(?:0|[1-9][0-9_]*)|0x[0-9a-fA-F_]+|0o[0-7_]+)$"),
    list("-+0123456789"),
)
_Loader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*)?\.[0-9_]+(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def _construct_override(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.SequenceNode):
        return Override(loader.construct_sequence(node, deep=True))
    if isinstance(node, yaml.MappingNode):
        mapping = loader.construct_mapping(node, deep=True)
        return OverrideMap({str(key): value for key, value in mapping.items()})
    return loader.construct_scalar(node)  # type: ignore[arg-type]


def _construct_reset(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    return Reset()


_Loader.add_constructor("!override", _construct_override)
_Loader.add_constructor("!reset", _construct_reset)


def load(text: str, filename: str) -> dict[str, Any]:
    """One compose file's document; ConfigError (one line) if it is not one."""
    try:
        data = yaml.load(text, Loader=_Loader)
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


class _Dumper(yaml.SafeDumper):
    pass


def _represent_override(dumper: yaml.SafeDumper, data: Override) -> yaml.Node:
    return dumper.represent_sequence("!override", list(data))


def _represent_reset(dumper: yaml.SafeDumper, data: Reset) -> yaml.Node:
    return dumper.represent_scalar("!reset", "null")


_Dumper.add_representer(Override, _represent_override)
_Dumper.add_representer(Reset, _represent_reset)


def dump(document: Any, header: str = "") -> str:
    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=False)
    return header + body
