"""The kinfra command line: the one place where errors become exit codes.

Command modules under ``kinfra.cli`` only parse arguments, call one workflow
function and render its result; they import workflows inside the command
function so that ``kinfra --help`` and quick commands stay fast.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
from types import FrameType

import click

from kinfra.cli import everyday as everyday_cli
from kinfra.cli import local_prod as local_prod_cli
from kinfra.cli import orch as orch_cli
from kinfra.cli import sandbox as sandbox_cli
from kinfra.cli import worktree_cmds
from kinfra.cli.clickutil import Command, Group
from kinfra.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, Interrupted, KinfraError

app = Group(
    "kinfra",
    help="Parallel git worktrees, each with its own docker-compose sandbox slot, "
    "and an orchestrator for headless coding agents.",
    no_args_is_help=True,
    # Wrap help at the terminal's width up to 120 columns (click's default stops at 80).
    context_settings={"max_content_width": 120},
)


@click.command("init", cls=Command)
@click.option("--dry-run", is_flag=True, help="Print the config instead of writing it.")
@click.option(
    "--compose-file",
    "-f",
    multiple=True,
    help="Compose file(s) to read (default: the usual names).",
)
@click.option("--name", help="Project name (default: the folder's).")
def init_command(dry_run: bool, compose_file: tuple[str, ...], name: str | None) -> None:
    """Write a starting kinfra.toml from the repository's compose file."""
    from pathlib import Path

    from kinfra.cli import render
    from kinfra.workflows.init import init_project

    result = init_project(Path.cwd(), compose_files=list(compose_file), name=name, dry_run=dry_run)
    if dry_run:
        render.out(result.text, end="")
    else:
        render.ok(f"wrote {result.path}")
        for note in result.notes:
            render.note(note)


# The order of `kinfra --help`: commands, then the groups.
worktree_cmds.register(app)
everyday_cli.register(app)
app.add_command(init_command)
app.add_command(sandbox_cli.app)
app.add_command(everyday_cli.secrets_app)
app.add_command(local_prod_cli.app)
app.add_command(orch_cli.app)


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signum)


def _log_crash(exc: BaseException) -> str:
    import traceback
    from datetime import datetime

    from kinfra.paths import logs_dir

    text = "".join(traceback.format_exception(exc))
    try:
        directory = logs_dir()
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"crash-{datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}.log"
        path.write_text(f"argv: {sys.argv}\n\n{text}", encoding="utf-8")
        return str(path)
    except OSError:
        sys.stderr.write(text)
        return "(could not write a log; traceback above)"


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGINT, _raise_interrupted)
    signal.signal(signal.SIGTERM, _raise_interrupted)
    from kinfra.cli import render

    try:
        app.main(args=argv, prog_name="kinfra", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return EXIT_OK
        return code if isinstance(code, int) else EXIT_ERROR
    except KinfraError as exc:
        render.error(exc)
        return exc.exit_code
    except Interrupted as exc:
        render.plain("interrupted", err=True)
        return EXIT_INTERRUPTED if exc.signum == signal.SIGINT else 128 + exc.signum
    except Exception as exc:
        where = _log_crash(exc)
        render.plain(
            f"kinfra: internal error: {type(exc).__name__}: {exc}\n  full log: {where}", err=True
        )
        return EXIT_ERROR
    finally:
        # The process ends next: a final collection would only walk the
        # thousands of module and class objects start-up made (~8 ms of every
        # command, measured). Frozen, they are skipped; atexit still runs.
        gc.freeze()
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
