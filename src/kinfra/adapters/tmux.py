"""tmux, through the one subprocess runner.

``socket`` selects a private server (``tmux -L <socket>``); None uses the
value of $KINFRA_TMUX_SOCKET, else the user's default server. Tests use a
private socket so they never touch a developer's sessions.
"""

from __future__ import annotations

import os
from pathlib import Path

from kinfra.adapters.runner import CommandNotFoundError, Result, run

SOCKET_ENV = "KINFRA_TMUX_SOCKET"


class TmuxMissing(Exception):
    """tmux is not installed; callers turn this into a note."""


def _tmux(args: list[str], socket: str | None, check: bool = False) -> Result:
    socket = socket or os.environ.get(SOCKET_ENV) or None
    argv = ["tmux", *(["-L", socket] if socket else []), *args]
    try:
        return run(argv, check=check, timeout=30)
    except CommandNotFoundError as exc:
        raise TmuxMissing("tmux is not installed") from exc


def session_name(text: str) -> str:
    """tmux forbids '.' and ':' in session names."""
    return text.replace(".", "-").replace(":", "-")


def has_session(name: str, socket: str | None = None) -> bool:
    # "=name" matches exactly; a bare name would also match a prefix.
    return _tmux(["has-session", "-t", f"={name}"], socket).ok


def new_session(name: str, cwd: Path, command: str, socket: str | None = None) -> None:
    """A detached session in ``cwd`` whose shell then runs ``command``: when the
    agent exits (or is not installed) the shell stays, showing why."""
    _tmux(["new-session", "-d", "-s", name, "-c", str(cwd)], socket, check=True)
    if command:
        _tmux(["send-keys", "-t", f"={name}:", command, "Enter"], socket, check=True)


def list_sessions(socket: str | None = None) -> set[str]:
    """Names of the server's sessions; empty when no server runs."""
    result = _tmux(["list-sessions", "-F", "#{session_name}"], socket)
    return set(result.stdout.split()) if result.ok else set()


def kill_session(name: str, socket: str | None = None) -> bool:
    return _tmux(["kill-session", "-t", f"={name}"], socket).ok


def pane_path(name: str, socket: str | None = None) -> Path | None:
    result = _tmux(["display-message", "-p", "-t", f"={name}:", "#{pane_current_path}"], socket)
    return Path(result.stdout.strip()) if result.ok and result.stdout.strip() else None
