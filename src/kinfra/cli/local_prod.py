"""kinfra local-prod ...: the project's production-like instance on slot 0.

Every command acts on the clone registered by `init`, wherever it is run from.
"""

from __future__ import annotations

import click

from kinfra.cli import render
from kinfra.cli.clickutil import Group, argument

app = Group(
    "local-prod",
    help="A production-like instance on reserved slot 0, run from a full clone.",
    no_args_is_help=True,
)


@app.command("init")
def init_command() -> None:
    """Register this full clone (not a worktree) as the project's local-prod."""
    from kinfra.workflows.local_prod import init

    lp = init()
    render.ok(f"local-prod of {lp.project} registered: {lp.clone}")
    for name, url in lp.slot.urls.items():
        render.out(f"  {name:<8} {url}")
    render.out("start it with `kinfra local-prod up`")


@app.command("up")
def up_command() -> None:
    """Start local-prod and wait for the startability gate."""
    from kinfra.workflows.local_prod import up

    report = up(progress=render.progress())
    render.ok(f"local-prod is up ({report.slot.compose_project}, code from {report.code_dir})")
    for name, url in report.urls.items():
        render.out(f"  {name:<8} {url}")


@app.command("down")
def down_command() -> None:
    """Stop local-prod (volumes kept)."""
    from kinfra.workflows.local_prod import down

    lp = down()
    render.ok(f"local-prod of {lp.project} stopped (volumes kept; clone {lp.clone})")


@app.command("status")
@click.option("--json", "json_output", is_flag=True, help="Machine-readable output.")
def status_command(json_output: bool) -> None:
    """Show local-prod's clone, containers, health and URLs."""
    from kinfra.workflows.local_prod import status

    report = status()
    lp = report.local_prod
    if json_output:
        render.print_json(
            {
                "project": lp.project,
                "clone": str(lp.clone),
                "compose_project": lp.slot.compose_project,
                "state": report.state,
                "containers": [
                    {"name": c.name, "service": c.service, "state": c.state, "health": c.health}
                    for c in report.containers
                ],
                "urls": report.urls,
            }
        )
        return
    render.out(f"local-prod of {lp.project} ({lp.slot.compose_project}): {report.state}")
    render.out(f"  clone    {lp.clone}")
    render.containers_and_urls(report.containers, report.urls)


@app.command("logs")
@argument("services", nargs=-1, help="Services to show (default: all).")
@click.option("--follow", "-f", is_flag=True, help="Keep streaming new lines.")
@click.option("--tail", "-n", type=int, help="Lines from the end of each log.")
def logs_command(services: tuple[str, ...], follow: bool, tail: int | None) -> None:
    """Show local-prod's container logs."""
    from kinfra.workflows.local_prod import logs

    raise click.exceptions.Exit(logs(None, list(services), follow, tail))


@app.command("shell")
@argument("service", required=False, help="Service (default: the one running the code).")
def shell_command(service: str | None) -> None:
    """Open a shell (bash, else sh) in a local-prod service."""
    import sys

    from kinfra.workflows.local_prod import shell

    raise click.exceptions.Exit(shell(None, service, sys.stdin.isatty()))


@app.command("destroy")
@click.option("--volumes", is_flag=True, help="Also delete local-prod's volumes.")
@click.option(
    "--project",
    "project",
    help="The project whose local-prod to destroy (default: the one you are in).",
)
def destroy_command(volumes: bool, project: str | None) -> None:
    """Stop local-prod, unregister it and delete kinfra's generated files.
    The clone and every worktree are left exactly as they are."""
    from kinfra.workflows.local_prod import destroy

    report = destroy(volumes=volumes, project=project)
    kept = (
        f"clone kept at {report.clone}" if report.clone.is_dir() else "its clone was already gone"
    )
    render.ok(f"local-prod of {report.project} destroyed; {kept}")
    for path in report.removed:
        render.out(f"  removed {path}")
