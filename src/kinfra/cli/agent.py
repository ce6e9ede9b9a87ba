"""kinfra agent ...: the agent image and each impl worktree's agent container."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from kinfra.cli import render
from kinfra.cli.clickutil import Command, Group, argument

app = Group(
    "agent",
    help="Coding agents confined in a container per impl worktree, on that worktree's slot.",
    no_args_is_help=True,
)

NAME_HELP = "The impl worktree: <feature>-<milestone>, its directory name, or a unique part (default: the worktree you are in)."


class _DashDash(Command):
    """A command whose words after ``--`` are the command to run, whatever
    they look like (click would otherwise take the first as NAME)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            at = args.index("--")
            ctx.meta["kinfra.command"] = args[at + 1 :]
            args = args[:at]
        else:
            ctx.meta["kinfra.command"] = []
        return super().parse_args(ctx, args)


@app.command("build")
@click.option(
    "--ca-bundle",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A PEM CA bundle the image trusts (trust store and NODE_EXTRA_CA_CERTS); "
    "wins over [agent] ca_bundle. Needed behind a TLS-inspecting proxy.",
)
@click.option("--verbose", "-v", is_flag=True, help="Show all of docker build's output.")
def build_command(ca_bundle: Path | None, verbose: bool) -> None:
    """Build the project's agent image (git, Node.js, claude and codex at kinfra's pins)."""
    from kinfra.project import find_project
    from kinfra.workflows.agent_image import build_agent_image

    def on_line(line: str) -> None:
        # Without --verbose, the build's steps only; the error shows the tail.
        if verbose or line.startswith("Step ") or (line.startswith("#") and " [" in line):
            render.plain(f"  │ {line}", err=True)

    result = build_agent_image(find_project(), ca_bundle, on_line)
    if result.built:
        render.ok(
            f"agent image {result.image} built in {result.seconds:.0f} s ({result.project_tag})"
        )
    else:
        render.ok(
            f"agent image {result.image} is up to date: inputs unchanged ({result.project_tag})"
        )


@app.command("run", cls=_DashDash)
@argument("name", required=False, help=NAME_HELP)
@click.pass_context
def run_command(ctx: click.Context, name: str | None) -> None:
    """Run a command in the worktree's agent container: kinfra agent run [NAME] -- CMD..."""
    from kinfra.project import find_project
    from kinfra.workflows.agent_commands import run_in_agent

    command: list[str] = ctx.meta["kinfra.command"]
    if not command:
        raise click.UsageError("give the command after `--`: kinfra agent run [NAME] -- CMD...")
    tty = sys.stdin.isatty() and sys.stdout.isatty()
    code = run_in_agent(find_project(), name, command, interactive=True, tty=tty)
    raise click.exceptions.Exit(code)


@app.command("shell")
@argument("name", required=False, help=NAME_HELP)
def shell_command(name: str | None) -> None:
    """An interactive shell in the worktree's agent container (made on first use)."""
    from kinfra.project import find_project
    from kinfra.workflows.agent_commands import shell_in_agent

    raise click.exceptions.Exit(shell_in_agent(find_project(), name, tty=sys.stdin.isatty()))


@app.command("reset")
@argument("name", required=False, help=NAME_HELP)
@click.option("--force", is_flag=True, help="Discard uncommitted changes too.")
def reset_command(name: str | None, force: bool) -> None:
    """A fresh container: worktree back at its branch's HEAD, logs cleared, keep volumes kept."""
    from kinfra.project import find_project
    from kinfra.workflows.agent_commands import reset_agent

    result = reset_agent(find_project(), name, force)
    kept = f"; kept {len(result.kept)} volume(s)" if result.kept else ""
    render.ok(
        f"{result.container} reset in {result.seconds:.1f} s: worktree at {result.branch}, "
        f"logs cleared{kept}"
    )


@app.command("status")
@click.option("--json", "json_output", is_flag=True, help="Machine-readable output.")
def status_command(json_output: bool) -> None:
    """The project's impl worktrees and their agent containers."""
    from kinfra.project import find_project
    from kinfra.workflows.agent_commands import agent_status

    rows = agent_status(find_project())
    if json_output:
        render.print_json([_json_row(row) for row in rows])
        return
    if not rows:
        render.out("no impl worktrees")
        return
    render.table(
        ["worktree", "slot", "container", "state", "image", "network"],
        [
            [
                r.worktree,
                str(r.slot) if r.slot is not None else "-",
                r.container,
                r.state,
                r.image,
                r.network or "-",
            ]
            for r in rows
        ],
    )


def _json_row(row: Any) -> dict[str, Any]:
    return {
        "worktree": row.worktree,
        "path": str(row.path),
        "slot": row.slot,
        "container": row.container,
        "state": row.state,
        "image": row.image,
        "network": row.network,
    }


@app.command("rm")
@argument("name", required=False, help=NAME_HELP)
def rm_command(name: str | None) -> None:
    """Remove the worktree's agent container and its volumes, except the `keep` ones."""
    from kinfra.project import find_project
    from kinfra.workflows.agent_commands import remove_agent

    removal = remove_agent(find_project(), name)
    if not removal.container and not removal.volumes:
        render.out("no agent container to remove")
        return
    what = "container" if removal.container else "no container"
    render.ok(f"removed {what} and {len(removal.volumes)} volume(s)")
    for volume in removal.kept:
        render.note(f"kept {volume} ([agent] keep)")
