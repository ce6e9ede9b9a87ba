"""kinfra status / env / url / init-shared / secrets check: everyday questions
answered for the instance the current directory belongs to."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any

import typer

from kinfra.cli import render

URL_HELP = "Use this backend URL (wins over everything else)."
PORT_HELP = "Use this API port on localhost (wins over detection, even when equal to the base)."
SLOT_HELP = "Use this slot (0 = local-prod) instead of the detected one."

secrets_app = typer.Typer(help="The secrets declared in kinfra.toml.", no_args_is_help=True)


class EnvFormat(str, Enum):
    sh = "sh"
    fish = "fish"
    json = "json"


def _picked(instance: Any) -> None:
    """Say which instance was picked and why, when it was not this worktree's own."""
    if instance.source not in ("env-file", "flag"):
        render.note(f"{instance.source}: {instance.reason}")


def status_command(
    url: str | None = typer.Option(None, "--url", help=URL_HELP),
    port: int | None = typer.Option(None, "--port", help=PORT_HELP),
    slot: int | None = typer.Option(None, "--slot", "-s", help=SLOT_HELP),
    json_output: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
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


def env_command(
    format: EnvFormat = typer.Option(EnvFormat.sh, "--format", help="sh (default), fish or json."),
    url: str | None = typer.Option(None, "--url", help=URL_HELP),
    port: int | None = typer.Option(None, "--port", help=PORT_HELP),
    slot: int | None = typer.Option(None, "--slot", "-s", help=SLOT_HELP),
) -> None:
    """Print the instance's variables: eval "$(kinfra env)" (fish: kinfra env --format fish | source)."""
    from kinfra.detect import detect

    instance = detect(url=url, port=port, slot=slot)
    _picked(instance)
    values = dict(instance.variables)
    if format is EnvFormat.json:
        render.print_json(values)
        return
    lines = [f"# kinfra: {instance.source}: {instance.reason}"]
    for key, value in values.items():
        if format is EnvFormat.fish:
            lines.append(f"set -gx {key} {_quote(value)};")
        else:
            lines.append(f"export {key}={_quote(value)}")
    render.out("\n".join(lines))


def _quote(value: str) -> str:
    """Single quotes for sh and fish; an embedded quote closes, escapes, reopens."""
    return "'" + value.replace("'", "'\"'\"'") + "'"


def url_command(
    name: str | None = typer.Argument(None, help="Port name (default: the API)."),
    url: str | None = typer.Option(None, "--url", help=URL_HELP),
    port: int | None = typer.Option(None, "--port", help=PORT_HELP),
    slot: int | None = typer.Option(None, "--slot", "-s", help=SLOT_HELP),
) -> None:
    """Print one URL of the instance (for curl "$(kinfra url)/...")."""
    from kinfra.detect import detect
    from kinfra.errors import KinfraError

    instance = detect(url=url, port=port, slot=slot)
    if name is not None and name not in instance.urls:
        known = ", ".join(instance.urls) or "none"
        raise KinfraError(f"no port named {name!r} (known: {known})")
    _picked(instance)
    render.out(instance.url if name is None else instance.urls[name])


def init_shared_command(
    source: Path | None = typer.Option(
        None, "--from", help="Copy each shared dir from PATH/<name> (existing files are kept)."
    ),
    minimal: bool = typer.Option(False, "--minimal", help="Create empty dirs only."),
) -> None:
    """Create $KINFRA_HOME/<project>/shared/ with the shared dirs of kinfra.toml; never deletes data."""
    from kinfra.workflows.project import find_project
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
def secrets_check_command(
    json_output: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
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
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("status")(status_command)
    app.command("env")(env_command)
    app.command("url")(url_command)
    app.command("init-shared")(init_shared_command)
    app.add_typer(secrets_app, name="secrets")
