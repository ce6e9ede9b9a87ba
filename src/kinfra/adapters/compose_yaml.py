"""Reading and writing compose YAML, including compose's merge tags.

``!override`` replaces a list from the base file instead of appending to it
(a plain ``ports:`` list in an override file appends); ``!reset`` removes a
key. PyYAML needs to be told about both, in each direction.
"""

from __future__ import annotations

from typing import Any

import yaml


class Override(list[Any]):
    """A sequence emitted as ``!override [...]``."""


class Reset:
    """A value emitted as ``!reset null``: removes the key from the merged file."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Reset)

    def __hash__(self) -> int:
        return hash(Reset)


class _Dumper(yaml.SafeDumper):
    pass


def _represent_override(dumper: yaml.SafeDumper, data: Override) -> yaml.Node:
    return dumper.represent_sequence("!override", list(data))


def _represent_reset(dumper: yaml.SafeDumper, data: Reset) -> yaml.Node:
    return dumper.represent_scalar("!reset", "null")


_Dumper.add_representer(Override, _represent_override)
_Dumper.add_representer(Reset, _represent_reset)


class _Loader(yaml.SafeLoader):
    pass


def _construct_tagged(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.SequenceNode):
        return Override(loader.construct_sequence(node, deep=True))
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if tag_suffix == "reset":
        return Reset()
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_Loader.add_multi_constructor("!", _construct_tagged)


def dump(document: Any, header: str = "") -> str:
    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=False)
    return header + body


def load(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)
