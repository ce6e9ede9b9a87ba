"""Agent sessions: one tmux session per worktree, running the agent command.

The seeds leave session management to Agent Deck; when ``agent-deck`` is
installed the session is registered with it instead of created directly.
Neither tool is required: without them ``open_session`` returns a note and
never raises, so ``kinfra impl --session`` still succeeds.
"""

from __future__ import annotations

from pathlib import Path

from kinfra.adapters import tmux
from kinfra.adapters.runner import CommandError, CommandNotFoundError, installed, run


def session_name_for(worktree: Path) -> str:
    """The session is named after the worktree directory."""
    return tmux.session_name(worktree.name)


def open_session(worktree: Path, command: str, socket: str | None = None) -> str | None:
    """Start the worktree's session (idempotent). Returns a note for the user
    when nothing could be started, None when the session runs."""
    name = session_name_for(worktree)
    if installed("agent-deck"):
        return _open_with_agent_deck(name, worktree, command)
    try:
        if tmux.has_session(name, socket):
            return None
        tmux.new_session(name, worktree, command, socket)
    except tmux.TmuxMissing:
        return (
            "tmux is not installed, so no agent session was opened; "
            f"run `{command}` in {worktree} yourself"
        )
    except CommandError as exc:
        return f"could not open tmux session {name}: {exc.message.splitlines()[-1]}"
    return None


def _open_with_agent_deck(name: str, worktree: Path, command: str) -> str | None:
    try:
        run(["agent-deck", "add", "-t", name, "-c", command, str(worktree)], timeout=60)
        run(["agent-deck", "session", "start", name], timeout=60)
    except (CommandError, CommandNotFoundError) as exc:
        return f"agent-deck could not open session {name}: {exc.message.splitlines()[0]}"
    return None


def close_session(worktree: Path, socket: str | None = None) -> None:
    """End the worktree's session if there is one; absent tools are not an error."""
    name = session_name_for(worktree)
    if installed("agent-deck"):
        for args in (["session", "stop", name], ["remove", name]):
            try:
                run(["agent-deck", *args], check=False, timeout=60)
            except CommandNotFoundError:
                return
    try:
        tmux.kill_session(name, socket)
    except tmux.TmuxMissing:
        return


def session_alive(worktree: Path, socket: str | None = None) -> bool:
    try:
        return tmux.has_session(session_name_for(worktree), socket)
    except tmux.TmuxMissing:
        return False


def alive_sessions(worktrees: list[Path], socket: str | None = None) -> set[Path]:
    """The worktrees whose session runs, from one tmux call for all of them."""
    try:
        names = tmux.list_sessions(socket)
    except tmux.TmuxMissing:
        return set()
    return {w for w in worktrees if session_name_for(w) in names}
