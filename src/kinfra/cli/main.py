"""The kinfra command line: the one place where errors become exit codes.

Command modules under ``kinfra.cli`` only parse arguments, call one workflow
function and render its result; they import workflows inside the command
function so that ``kinfra --help`` and quick commands stay fast.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys
from types import FrameType

import click

from kinfra.cli.clickutil import Command, Group
from kinfra.errors import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    Interrupted,
    KinfraError,
)

# Each command's module, in the order of `kinfra --help`. Only the module of
# the command being run is imported, which keeps every start quick.
COMMANDS = {
    "spec": "kinfra.cli.worktree_cmds:spec_command",
    "impl": "kinfra.cli.worktree_cmds:impl_command",
    "done": "kinfra.cli.worktree_cmds:done_command",
    "finish": "kinfra.cli.worktree_cmds:finish_command",
    "complete": "kinfra.cli.worktree_cmds:complete_command",
    "worktrees": "kinfra.cli.worktree_cmds:worktrees_command",
    "doctor": "kinfra.cli.worktree_cmds:doctor_command",
    "status": "kinfra.cli.everyday:status_command",
    "env": "kinfra.cli.everyday:env_command",
    "url": "kinfra.cli.everyday:url_command",
    "init-shared": "kinfra.cli.everyday:init_shared_command",
    "init": "kinfra.cli.main:init_command",
    "sandbox": "kinfra.cli.sandbox:app",
    "ports": "kinfra.cli.machine:ports_command",
    "secrets": "kinfra.cli.everyday:secrets_app",
    "local-prod": "kinfra.cli.local_prod:app",
    "deploy": "kinfra.cli.deploy:app",
    "orch": "kinfra.cli.orch:app",
    "agent": "kinfra.cli.agent:app",
}

app = Group(
    "kinfra",
    lazy=COMMANDS,
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
        # Not standalone: click's own errors are rendered here, like ours.
        code = app.main(args=argv, prog_name="kinfra", standalone_mode=False)
        return code if isinstance(code, int) else EXIT_OK
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return EXIT_OK
        return code if isinstance(code, int) else EXIT_ERROR
    except click.exceptions.NoArgsIsHelpError as exc:
        render.plain(exc.format_message(), err=True)  # the help: asked for, in effect
        return EXIT_USAGE
    except click.UsageError as exc:
        # One line, like every other error, and its own exit code: a script
        # must tell a wrong command line from a failed start.
        command = exc.ctx.command_path if exc.ctx is not None else "kinfra"
        render.error(KinfraError(exc.format_message(), hint=f"see `{command} --help`"))
        return EXIT_USAGE
    except click.ClickException as exc:
        render.error(KinfraError(exc.format_message()))
        return exc.exit_code
    except click.Abort:
        render.plain("interrupted", err=True)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`kinfra worktrees | head -1`): nothing to say.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
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
