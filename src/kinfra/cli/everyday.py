"""kinfra status / env / url / init-shared / secrets check: everyday questions
answered for the instance the current directory belongs to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from kinfra.cli import render
from kinfra.cli.clickutil import Command, Group, argument

URL_HELP = "Use this backend URL (wins over everything else)."
PORT_HELP = "Use this API port on localhost (wins over detection, even when equal to the base)."
SLOT_HELP = "Use this slot (0 = local-prod) instead of the detected one."

secrets_app = Group("secrets", help="The secrets declared in kinfra.toml.", no_args_is_help=True)


def _picked(instance: Any) -> None:
    """Say which instance was picked and why, when it was not this worktree's own."""
    if instance.source not in ("env-file", "flag"):
        render.note(f"{instance.source}: {instance.reason}")


@click.command("status", cls=Command)
@click.option("--url", help=URL_HELP)
@click.option("--port", type=int, help=PORT_HELP)
@click.option("--slot", "-s", type=int, help=SLOT_HELP)
@click.option("--json", "json_output", is_flag=True, help="Machine-readable output.")
def status_command(url: str | None, port: int | None, slot: int | None, json_output: bool) -> None:
    """Show the instance this directory belongs to: slot, containers, health, URLs."""
    from kinfra.workflows.everyday import instance_status, probe_url

    report = instance_status(url=url, port=port, slot=slot)
    instance = report.instance
    state = report.state
    if state == "unknown":
        state = "answering" if probe_url(instance.url) else "not answering"
    if json_output:
        render.print_json(
            {
                "slot": instance.slot,
                "source": instance.source,
                "reason": instance.reason,
                "compose_project": instance.compose_project,
                "state": state,
                "containers": [
                    {"name": c.name, "service": c.service, "state": c.state, "health": c.health}
                    for c in report.containers
                ],
                "urls": dict(instance.urls),
                "ports": dict(instance.ports),
            }
        )
        return
    which = "local-prod" if instance.slot == 0 else f"slot {instance.slot}"
    if instance.source == "default":
        which = "base ports"
    elif instance.slot is None:
        which = instance.url
    project = f" ({instance.compose_project})" if instance.compose_project else ""
    render.out(f"{which}{project}: {state}")
    render.out(f"  picked: {instance.source}: {instance.reason}")
    render.containers_and_urls(report.containers, instance.urls)
    if report.note:
        render.note(report.note)


@click.command("env", cls=Command)
@click.option(
    "--format",
    type=click.Choice(["sh", "fish", "json"]),
    default="sh",
    show_default=True,
    help="sh (default), fish or json.",
)
@click.option("--url", help=URL_HELP)
@click.option("--port", type=int, help=PORT_HELP)
@click.option("--slot", "-s", type=int, help=SLOT_HELP)
def env_command(format: str, url: str | None, port: int | None, slot: int | None) -> None:
    """Print the instance's variables: eval "$(kinfra env)" (fish: kinfra env --format fish | source)."""
    from kinfra.detect import detect

    instance = detect(url=url, port=port, slot=slot)
    _picked(instance)
    values = dict(instance.variables)
    if format == "json":
        render.print_json(values)
        return
    lines = [f"# kinfra: {instance.source}: {instance.reason}"]
    for key, value in values.items():
        if format == "fish":
            lines.append(f"set -gx {key} {_quote(value)};")
        else:
            lines.append(f"export {key}={_quote(value)}")
    render.out("\n".join(lines))


def _quote(value: str) -> str:
    """Single quotes for sh and fish; an embedded quote closes, escapes, reopens."""
    return "'" + value.replace("'", "'\"'\"'") + "'"


@click.command("url", cls=Command)
@argument("name", required=False, help="Port name (default: the API).")
@click.option("--url", help=URL_HELP)
@click.option("--port", type=int, help=PORT_HELP)
@click.option("--slot", "-s", type=int, help=SLOT_HELP)
def url_command(name: str | None, url: str | None, port: int | None, slot: int | None) -> None:
    """Print one URL of the instance (for curl "$(kinfra url)/...")."""
    from kinfra.detect import detect
    from kinfra.errors import KinfraError

    instance = detect(url=url, port=port, slot=slot)
    if name is not None and name not in instance.urls:
        known = ", ".join(instance.urls) or "none"
        raise KinfraError(f"no port named {name!r} (known: {known})")
    _picked(instance)
    render.out(instance.url if name is None else instance.urls[name])


@click.command("init-shared", cls=Command)
@click.option(
    "--from",
    "source",
    type=click.Path(path_type=Path),
    help="Copy each shared dir from PATH/<name> (existing files are kept).",
)
@click.option("--minimal", is_flag=True, help="Create empty dirs only.")
def init_shared_command(source: Path | None, minimal: bool) -> None:
    """Create $KINFRA_HOME/<project>/shared/ with the shared dirs of kinfra.toml; never deletes data."""
    from kinfra.project import find_project
    from kinfra.workflows.shared import init_shared

    report = init_shared(find_project().config, source, minimal)
    for name in report.created + report.existing:
        made = "created" if name in report.created else "exists"
        counts = ""
        if name in report.copied:
            counts = f", {report.copied[name]} files copied, {report.kept[name]} already there"
        render.out(f"  {name:<12} {made}{counts}")
    for line in report.notes:
        render.note(line)
    render.ok(f"shared data ready in {report.root}")


@secrets_app.command("check")
@click.option("--json", "json_output", is_flag=True, help="Machine-readable output.")
def secrets_check_command(json_output: bool) -> None:
    """Report ok / missing / error for each secret, never its value."""
    from kinfra.workflows.everyday import check_secrets

    statuses = check_secrets()
    if json_output:
        render.print_json(
            [
                {
                    "name": s.name,
                    "kind": s.kind,
                    "source": s.source,
                    "state": s.state.value,
                    "detail": s.detail,
                }
                for s in statuses
            ]
        )
    elif not statuses:
        render.out("no [secrets] in kinfra.toml")
    else:
        render.table(
            ["name", "state", "source", "detail"],
            [[s.name, s.state.value, s.source, s.detail or "-"] for s in statuses],
        )
    if any(s.state.value != "ok" for s in statuses):
        raise click.exceptions.Exit(1)
