"""Decoded JSON -> typed records, checked against the records' own annotations.

State files are kinfra's, but a user (or a disk) can put anything in them:
binary junk, ``"attempts": [1]``, ``"pid": "x"``. ``build`` turns a decoded
JSON value into a dataclass, checking every field against its annotation, and
raises ``ShapeError`` naming the first field that does not fit; the caller
turns that into its one-line "corrupt, here is how to recover" error. New
fields of a record are checked without any code here changing.

Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar, Union

T = TypeVar("T")


class ShapeError(ValueError):
    """A value does not have the shape its record declares; the message
    names where (``tasks[2].attempts[0].number``) and what."""


def build(cls: type[T], data: object, where: str = "") -> T:
    """``cls(**data)`` with every field checked (unknown keys are ignored, so
    that a file written by a newer minor version still reads)."""
    value: T = _convert(cls, data, where or cls.__name__)
    return value


def _convert(kind: Any, value: object, where: str) -> Any:
    return _converter(kind)(value, where)


Converter = Callable[[object, str], Any]


@functools.cache
def _converter(kind: Any) -> Converter:
    """The checking function of one declared type, worked out once per type:
    a registry of 60 slots reads hundreds of values of a handful of types."""
    origin = typing.get_origin(kind)
    if origin in (Union, types.UnionType):
        return _union(typing.get_args(kind))
    if origin in (tuple, list):
        return _sequence(origin, typing.get_args(kind)[0])
    if origin is dict:
        return _mapping(*typing.get_args(kind))
    if kind is Any:
        return _any
    if dataclasses.is_dataclass(kind) and isinstance(kind, type):
        return functools.partial(_record, kind)
    if kind is Path:
        return _path
    if isinstance(kind, type) and issubclass(kind, Enum):
        return functools.partial(_enum, kind)
    if kind in _NAMES or kind is type(None):
        return functools.partial(_scalar, kind)
    raise TypeError(f"jsonshape cannot check {kind!r}")  # a record declared an unknown type


def _union(options: tuple[Any, ...]) -> Converter:
    nullable = type(None) in options
    choices = [_converter(option) for option in options if option is not type(None)]

    def convert(value: object, where: str) -> Any:
        if value is None and nullable:
            return None
        errors = []
        for choice in choices:
            try:
                return choice(value, where)
            except ShapeError as exc:
                errors.append(str(exc))
        raise ShapeError(
            errors[0] if len(errors) == 1 else f"{where}: {_shown(value)} fits no type"
        )

    return convert


def _sequence(origin: type, item: Any) -> Converter:
    convert_item = _converter(item)

    def convert(value: object, where: str) -> Any:
        if not isinstance(value, list):
            raise ShapeError(f"{where}: expected a list, got {_shown(value)}")
        items = [convert_item(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items

    return convert


def _mapping(key_kind: Any, value_kind: Any) -> Converter:
    convert_value = _converter(value_kind)

    def convert(value: object, where: str) -> Any:
        if not isinstance(value, dict):
            raise ShapeError(f"{where}: expected an object, got {_shown(value)}")
        return {
            _key(key_kind, k, where): convert_value(v, f"{where}.{k}") for k, v in value.items()
        }

    return convert


def _any(value: object, where: str) -> Any:
    return value


def _path(value: object, where: str) -> Path:
    # Every path kinfra stores is absolute: a relative one would resolve
    # against whatever directory a command happens to run in.
    if not isinstance(value, str) or not value or not Path(value).is_absolute():
        raise ShapeError(f"{where}: expected an absolute path, got {_shown(value)}")
    return Path(value)


def _enum(kind: type[Enum], value: object, where: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        known = ", ".join(str(m.value) for m in kind)
        raise ShapeError(f"{where}: {_shown(value)} is not one of {known}") from None


def _key(kind: Any, key: str, where: str) -> Any:
    """A JSON object key (always a string) as the record's key type: an int
    key is written as its decimal digits."""
    if kind is int:
        if not (key.isascii() and key.isdigit()):
            raise ShapeError(f"{where}: key {key!r} is not a number")
        return int(key)
    return _convert(kind, key, f"{where} key")


def _scalar(kind: Any, value: object, where: str) -> Any:
    # bool is an int subclass: never accept it where a number is meant.
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        ok = ok and math.isfinite(value)  # type: ignore[arg-type]
        value = float(value) if ok else value  # type: ignore[arg-type]
    elif kind is str:
        ok = isinstance(value, str)
    else:  # NoneType
        ok = value is None
    if not ok:
        raise ShapeError(f"{where}: expected {_NAMES.get(kind, kind)}, got {_shown(value)}")
    return value


_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _record(cls: type, value: object, where: str) -> Any:
    if not isinstance(value, dict):
        raise ShapeError(f"{where}: expected an object, got {_shown(value)}")
    values: dict[str, Any] = {}
    for name, convert, required in _fields_of(cls):
        if name not in value:
            if required:
                raise ShapeError(f"{where}: '{name}' is missing")
            continue
        values[name] = convert(value[name], f"{where}.{name}")
    return cls(**values)


@functools.cache
def _fields_of(cls: type) -> tuple[tuple[str, Converter, bool], ...]:
    """(name, checking function, required) of each field set by ``__init__``:
    worked out once per class (at its first value, so that records may refer
    to each other), since resolving the type hints is the costly part."""
    hints = typing.get_type_hints(cls)
    return tuple(
        (
            field.name,
            _converter(hints[field.name]),
            field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING,
        )
        for field in dataclasses.fields(cls)
        if field.init
    )


def _shown(value: object) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
