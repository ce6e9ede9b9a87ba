"""Secrets named in ``[secrets]`` of kinfra.toml: resolve references, never show values.

A reference is one of:

- ``env://NAME``: the variable NAME of kinfra's own environment;
- ``dotenv://path#KEY``: KEY in a dotenv file, the path relative to the main
  checkout (so one git-ignored file there serves every worktree);
- ``op://vault/item/field``: read with the 1Password CLI (``op read``);
- ``literal:VALUE``: VALUE itself (the prefix is stripped);
- anything else: the literal value itself, except a value that looks like a
  reference (``scheme:/...``, e.g. ``Env://X``, ``op:/x`` or a URL) with a
  scheme other than the three above: that is refused as a probable typo.
  A literal of that shape (``postgres://user:pw@db/app``) is written with
  the prefix: ``literal:postgres://user:pw@db/app``.

Every message here names the variable and, for non-literal references, where
it was looked up; none contains a value. A literal reference *is* a value, so
it is never echoed either.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from kinfra.adapters.runner import CommandError, CommandNotFoundError, run
from kinfra.domain.slot import parse_env_file
from kinfra.errors import KinfraError, SecretError
from kinfra.paths import SECRETS_FILE as SECRETS_FILE

OP_TIMEOUT = 60.0  # seconds for one `op read`; KINFRA_OP_TIMEOUT overrides it
_MIN_REDACT = 4  # shorter values would mangle every message; none is a real secret


class SecretState(str, Enum):
    """Whether a secret resolves, points at nothing, or could not be looked up."""

    OK = "ok"
    MISSING = "missing"  # the reference points at nothing (unset variable, absent key/file)
    ERROR = "error"  # the lookup itself failed (op not installed, op refused)


@dataclass(frozen=True)
class SecretStatus:
    """One secret, checked: its name, where it is looked up and its state; never its value."""

    name: str
    kind: str  # "literal", "env", "dotenv", "op"
    source: str  # where it is looked up; never the value
    state: SecretState
    detail: str  # why it is missing or failed; never the value


class _Missing(Exception):
    """The reference points at nothing (becomes ``SecretState.MISSING``)."""


class _Failed(Exception):
    """The lookup itself failed (becomes ``SecretState.ERROR``)."""


_LITERAL_PREFIX = "literal:"
_LOOKS_LIKE_REFERENCE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):/")


def kind_of(reference: str) -> str:
    """env, dotenv, op, literal, or invalid (a mistyped reference, probably)."""
    for prefix, kind in (("env://", "env"), ("dotenv://", "dotenv"), ("op://", "op")):
        if reference.startswith(prefix):
            return kind
    if not reference.startswith(_LITERAL_PREFIX) and _LOOKS_LIKE_REFERENCE.match(reference):
        return "invalid"
    return "literal"


def source_of(reference: str) -> str:
    """A printable description of where the value comes from. Never the
    reference of a literal or an invalid one: either may be the value."""
    kind = kind_of(reference)
    if kind == "literal":
        return "(literal in kinfra.toml)"
    if kind == "invalid":
        return "(unknown reference in kinfra.toml)"
    return reference


def _lookup(reference: str, root: Path, environ: Mapping[str, str]) -> str:
    kind = kind_of(reference)
    if kind == "literal":
        return reference.removeprefix(_LITERAL_PREFIX)
    if kind == "invalid":  # not even its scheme is shown: it may be a literal value
        raise _Failed(
            "looks like a reference, but the scheme is not env://, dotenv:// or op:// "
            "(a literal value of that shape takes a `literal:` prefix)"
        )
    if kind == "env":
        name = reference[len("env://") :]
        if name not in environ:
            raise _Missing(f"${name} is not set in kinfra's environment")
        return environ[name]
    if kind == "dotenv":
        return _dotenv(reference[len("dotenv://") :], root)
    return _op_read(reference, op_timeout(environ))


def _dotenv(spec: str, root: Path) -> str:
    path_text, sep, key = spec.partition("#")
    if not sep or not key or not path_text:
        raise _Failed("a dotenv reference is dotenv://path#KEY")
    path = Path(path_text)
    path = path if path.is_absolute() else root / path
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _Missing(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _Failed(f"{path} cannot be read ({type(exc).__name__})") from None
    values = _parse_dotenv(text)
    if key not in values:
        raise _Missing(f"{key} is not defined in {path}")
    return values[key]


def _parse_dotenv(text: str) -> dict[str, str]:
    """KEY=value lines as ``parse_env_file`` reads them, plus quoted values
    that span lines (a PEM key): the value runs to the next line that ends
    with the opening quote. A quote never closed is read as one line."""
    values: dict[str, str] = {}
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index].strip()
        index += 1
        key, sep, value = line.partition("=")
        value = value.strip()
        quote = value[:1]
        opens = sep and not line.startswith("#") and quote in ("'", '"')
        if opens and (len(value) < 2 or not value.endswith(quote)):
            end = next(
                (j for j in range(index, len(lines)) if lines[j].rstrip().endswith(quote)), None
            )
            if end is not None:
                parts = [value[1:], *(ln.rstrip() for ln in lines[index:end])]
                parts.append(lines[end].rstrip()[:-1])
                values[key.strip().removeprefix("export ").strip()] = "\n".join(parts)
                index = end + 1
                continue
        values.update(parse_env_file(line))
    return values


def op_timeout(environ: Mapping[str, str]) -> float:
    """How long one ``op read`` may take: $KINFRA_OP_TIMEOUT, else OP_TIMEOUT."""
    text = environ.get("KINFRA_OP_TIMEOUT", "")
    try:
        value = float(text)
    except ValueError:
        return OP_TIMEOUT
    return value if 0 < value < 24 * 3600 else OP_TIMEOUT


def _op_read(reference: str, timeout: float = OP_TIMEOUT) -> str:
    # op writes the secret to stdout: no message below may contain any of
    # op's stdout, not even a part of it (a timeout cuts it anywhere).
    try:
        result = run(["op", "read", "--no-newline", reference], check=False, timeout=timeout)
    except CommandNotFoundError:
        raise _Failed(
            "the 1Password CLI `op` is not installed (install it and run `op signin`)"
        ) from None
    except CommandError:  # the runner's timeout; its message carries op's output
        raise _Failed(f"`op read` timed out after {timeout:g}s") from None
    except UnicodeDecodeError:
        raise _Failed("`op read` printed something that is not UTF-8 text") from None
    if not result.ok:
        # op's own errors describe the reference, not a value; its stdout
        # (where a value would be) is scrubbed from them all the same.
        first = next((ln.strip() for ln in result.stderr.splitlines() if ln.strip()), "")
        if result.stdout.strip():
            first = redact(first, [result.stdout, result.stdout.strip()])
        raise _Failed(f"`op read` failed (exit {result.returncode}): {first}"[:300])
    return result.stdout


def check(
    secrets: Mapping[str, str], root: Path, environ: Mapping[str, str] | None = None
) -> list[SecretStatus]:
    """The state of every secret, for ``kinfra secrets check``; values discarded."""
    import os

    env = os.environ if environ is None else environ
    statuses = []
    for name, reference in secrets.items():
        state, detail = SecretState.OK, ""
        try:
            _lookup(reference, root, env)
        except _Missing as exc:
            state, detail = SecretState.MISSING, str(exc)
        except _Failed as exc:
            state, detail = SecretState.ERROR, str(exc)
        statuses.append(SecretStatus(name, kind_of(reference), source_of(reference), state, detail))
    return statuses


def resolve_all(
    secrets: Mapping[str, str], root: Path, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Every secret's value, or one SecretError naming each that failed."""
    import os

    env = os.environ if environ is None else environ
    values: dict[str, str] = {}
    problems: list[str] = []
    for name, reference in secrets.items():
        try:
            values[name] = _lookup(reference, root, env)
        except (_Missing, _Failed) as exc:
            problems.append(f"{name}: {exc}")
    if problems:
        raise SecretError(
            "secrets could not be resolved: " + "; ".join(problems),
            hint="see `kinfra secrets check`; nothing was started",
        )
    return values


def render_env_file(values: Mapping[str, str]) -> str:
    """A compose --env-file. Single quotes keep compose from interpolating ``$``."""
    lines = ["# Generated by kinfra: resolved secrets. Mode 0600; never commit or print."]
    for name, value in values.items():
        if "'" in value:
            escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "$$")
            escaped = escaped.replace("\n", "\\n")
            lines.append(f'{name}="{escaped}"')
        else:
            lines.append(f"{name}='{value}'")
    return "\n".join(lines) + "\n"


def redact(text: str, values: Iterable[str]) -> str:
    """``text`` with every secret value replaced by ``[secret]``.

    A multi-line value (a PEM key...) is also redacted line by line: output
    is often split into lines and re-joined (``a / b``) or shown one line at
    a time, and then the whole value no longer matches.
    """
    needles: set[str] = set()
    for value in values:
        if len(value) >= _MIN_REDACT:
            needles.add(value)
        if "\n" in value or "\r" in value:
            needles.update(
                line.strip() for line in value.splitlines() if len(line.strip()) >= _MIN_REDACT
            )
    for needle in sorted(needles, key=len, reverse=True):
        text = text.replace(needle, "[secret]")
    return text


def redact_exception(exc: BaseException, values: Iterable[str]) -> None:
    """Scrub secret values from an exception, its cause chain and their args,
    before anything prints or records it (compose may echo a value)."""
    values = [v for v in values if v]
    if not values:
        return
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, KinfraError):
            current.message = redact(current.message, values)
            if current.hint:
                current.hint = redact(current.hint, values)
        current.args = tuple(redact(a, values) if isinstance(a, str) else a for a in current.args)
        current = current.__cause__ or current.__context__


def local_values(
    secrets: Mapping[str, str], root: Path, environ: Mapping[str, str] | None = None
) -> list[str]:
    """The values resolvable without a network call (literal, env://,
    dotenv://), for redaction; ``op://`` ones are skipped, and so is any that
    does not resolve."""
    import os

    env = os.environ if environ is None else environ
    values = []
    for reference in secrets.values():
        if kind_of(reference) in ("literal", "env", "dotenv"):
            try:
                values.append(_lookup(reference, root, env))
            except (_Missing, _Failed):
                continue
    return values
