"""kinfra sandbox ...: the slot pool and one slot's lifecycle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from kinfra.cli import render
from kinfra.cli.clickutil import Group, argument

app = Group("sandbox", help="Provision slots and run a slot's stack.", no_args_is_help=True)

SLOT_HELP = "Slot number (default: the slot claimed by the worktree you are in)."


def _target_slot(project: Any, explicit: int | None) -> int:
    """--slot, or the slot of the worktree we are in (noting a corrected .env.sandbox)."""
    from kinfra.workflows.targeting import resolve_target

    target = resolve_target(project, explicit)
    if target.note:
        render.note(target.note)
    return target.slot_id


@app.command("provision")
@click.option("--count", type=int, help="Slots to create (default: pool_size).")
@click.option("--dry-run", is_flag=True, help="Show the plan; change nothing.")
def provision_command(count: int | None, dry_run: bool) -> None:
    """Create (or refresh) the project's slots under $KINFRA_HOME/<project>/."""
    from kinfra.project import find_project
    from kinfra.workflows.provision import provision

    project = find_project()
    report = provision(project, count=count, dry_run=dry_run)
    rows = []
    for slot in report.slots:
        if slot.slot_id in report.created:
            action = "would create" if dry_run else "created"
        elif slot.slot_id in report.ports_change:
            action = "claimed: ports change at next start"
        elif slot.slot_id in report.kept_claimed:
            action = "claimed: untouched"
        else:
            action = "would refresh" if dry_run else "refreshed"
        ports = render.ports(slot.ports, report.ports_change.get(slot.slot_id))
        rows.append([str(slot.slot_id), slot.profile.value, slot.compose_project, ports, action])
    render.table(["slot", "profile", "compose project", "ports", "action"], rows)
    for note in report.notes:
        render.note(note)
    if report.ports_change:
        render.note("old→new: a claimed slot keeps its ports until its next start")
    for slot_id in report.beyond_count:
        render.note(f"slot {slot_id} exists beyond --count and was left as it is")
    for slot_id in report.running_unclaimed:
        render.warn(
            f"slot {slot_id} is running but unclaimed; stop it with "
            f"`kinfra sandbox down --slot {slot_id}`"
        )


@app.command("up")
@click.option("--slot", "-s", type=int, help=SLOT_HELP)
@click.option(
    "--code-dir",
    type=click.Path(path_type=Path),
    help="Directory whose code the slot mounts (default: this checkout).",
)
@click.option(
    "--wait",
    is_flag=True,
    help="When the memory budget is full, queue (first come, first served) instead of failing.",
)
def up_command(slot: int | None, code_dir: Path | None, wait: bool) -> None:
    """Start a slot's stack and wait for the startability gate; print its URLs."""
    from kinfra.project import find_project
    from kinfra.workflows.targeting import sandbox_up

    project = find_project()
    result = sandbox_up(project, slot, code_dir=code_dir, progress=render.progress(), wait=wait)
    report = result.report
    slot_id = report.slot.slot_id
    if result.note:
        render.note(result.note)
    if result.reclaimed:
        render.note(f"this worktree's claim had been released; claimed slot {slot_id} again")
    render.ok(f"slot {slot_id} is up ({report.slot.compose_project}, code from {report.code_dir})")
    for name, url in report.urls.items():
        render.out(f"  {name:<8} {url}")


@app.command("down")
@click.option("--slot", "-s", type=int, help=SLOT_HELP)
@click.option("--volumes", is_flag=True, help="Also delete the slot's named volumes.")
def down_command(slot: int | None, volumes: bool) -> None:
    """Stop a slot's containers (volumes are kept unless --volumes)."""
    from kinfra.project import find_project
    from kinfra.workflows.pool import stop_slot

    project = find_project()
    slot_id = _target_slot(project, slot)
    record = stop_slot(project, slot_id, volumes=volumes)
    kept = "volumes removed" if volumes else "volumes kept"
    claim = f"still claimed by {record.claimant}" if record.claimant else "released"
    render.ok(f"slot {slot_id} stopped ({kept}; {claim})")


@app.command("status")
@click.option("--slot", "-s", type=int, help=SLOT_HELP)
@click.option("--json", "json_output", is_flag=True, help="Machine-readable output.")
def status_command(slot: int | None, json_output: bool) -> None:
    """Show a slot's containers, their health, and its URLs."""
    from kinfra.project import find_project
    from kinfra.workflows.slot_status import slot_status

    project = find_project()
    report = slot_status(project, _target_slot(project, slot))
    claimant = report.record.claimant
    if json_output:
        render.print_json(
            {
                "slot": report.slot.slot_id,
                "compose_project": report.slot.compose_project,
                "state": report.state,
                "claimed_by": str(claimant) if claimant else None,
                "containers": [
                    {"name": c.name, "service": c.service, "state": c.state, "health": c.health}
                    for c in report.containers
                ],
                "urls": report.slot.urls,
            }
        )
        return
    render.out(
        f"slot {report.slot.slot_id} ({report.slot.compose_project}, {report.slot.profile.value}): "
        f"{report.state}; claimed by {claimant or 'nobody'}"
    )
    render.containers_and_urls(report.containers, report.slot.urls)


@app.command("config")
@click.option("--slot", "-s", type=int, help=SLOT_HELP)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["yaml", "json"]),
    default="yaml",
    show_default=True,
    help="Output format.",
)
def config_command(slot: int | None, fmt: str) -> None:
    """Print the merged compose configuration `up` would run for a slot (secrets
    redacted); starts nothing. An unclaimed slot shows a claim by this checkout."""
    from kinfra.project import find_project
    from kinfra.workflows.slot_config import merged_config

    project = find_project()
    merged = merged_config(project, _target_slot(project, slot), fmt)
    render.out(merged.text, end="" if merged.text.endswith("\n") else "\n")
    if not merged.claimed:
        render.note(
            f"slot {merged.slot.slot_id} is not claimed: shown as a claim by "
            f"{merged.code_dir} would run it"
        )


@app.command("snapshot")
@click.option("--slot", "-s", type=int, help=SLOT_HELP)
def snapshot_command(slot: int | None) -> None:
    """Save a stopped slot's named volumes as the project's golden data (what
    `impl --fresh`, `on_claim = "reset"` and `done --reset-data` restore)."""
    from kinfra.domain.memory import format_size
    from kinfra.project import find_project
    from kinfra.workflows.data import snapshot

    project = find_project()
    report = snapshot(project, _target_slot(project, slot))
    saved = ", ".join(f"{k} ({format_size(n / 2**20)})" for k, n in report.volumes.items())
    render.ok(f"golden data of {project.name} saved from slot {report.slot_id}: {saved}")
    render.out(f"  in {report.directory}")


@app.command("logs")
@argument("services", nargs=-1, help="Services to show (default: all).")
@click.option("--slot", "-s", type=int, help=SLOT_HELP)
@click.option("--follow", "-f", is_flag=True, help="Keep streaming new lines.")
@click.option("--tail", "-n", type=int, help="Lines from the end of each log.")
def logs_command(
    services: tuple[str, ...], slot: int | None, follow: bool, tail: int | None
) -> None:
    """Show a slot's container logs."""
    from kinfra.adapters import compose
    from kinfra.adapters.registry import RegistryStore
    from kinfra.project import find_project

    project = find_project()
    slot_id = _target_slot(project, slot)
    RegistryStore().load().require_project(project.name).slot(slot_id)  # provisioned
    code = compose.logs(project.slot(slot_id).compose_project, list(services), follow, tail)
    raise click.exceptions.Exit(code)


@app.command("slots")
@click.option("--json", "json_output", is_flag=True, help="Machine-readable output.")
def slots_command(json_output: bool) -> None:
    """List the project's slots: profile, memory, ports, claimant and live status."""
    from kinfra.domain.memory import format_size
    from kinfra.workflows.slot_listing import list_slots_here

    project, listing = list_slots_here()
    views = listing.views
    if json_output:
        render.print_json(
            [
                {
                    "slot": v.slot.slot_id,
                    "profile": v.slot.profile.value,
                    "memory": project.config.profiles[v.slot.profile].memory,
                    "memory_mb": v.expected_mb,
                    "used_mb": None if v.used_mb is None else round(v.used_mb, 1),
                    "ports": dict(v.slot.ports),
                    "ports_until_restart": v.ports_now,
                    "compose_project": v.slot.compose_project,
                    "claimed_by": str(v.record.claim.path) if v.record.claim else None,
                    "claimed_at": v.record.claim.at if v.record.claim else None,
                    "status": v.live,
                }
                for v in views
            ]
        )
    else:
        if not views:
            render.out("no slots provisioned; run `kinfra sandbox provision`")
        rows = [
            [
                str(v.slot.slot_id),
                v.slot.profile.value,
                project.config.profiles[v.slot.profile].memory,
                "-" if v.used_mb is None else format_size(v.used_mb),
                render.ports(v.slot.ports, v.ports_now),
                v.record.claim.path.name if v.record.claim else "-",
                v.live,
            ]
            for v in views
        ]
        if rows:
            render.table(
                ["slot", "profile", "memory", "used", "ports", "claimed by", "status"], rows
            )
        memory = listing.memory
        if memory is not None and (memory.running or memory.starting or memory.waiting):
            waiting = f"; {len(memory.waiting)} waiting" if memory.waiting else ""
            render.out(
                f"memory budget: {format_size(memory.used_mb)} of {format_size(memory.budget_mb)} "
                f"expected in use on this machine ({memory.holders()}){waiting}"
            )
    if listing.note:
        render.note(listing.note)
    if any(v.ports_now for v in views):
        render.note("old→new: a claimed slot keeps its ports until its next start")
    for v in views:
        if v.running and v.record.claim is None:
            render.warn(
                f"slot {v.slot.slot_id} is running but unclaimed; stop it with "
                f"`kinfra sandbox down --slot {v.slot.slot_id}`"
            )


@app.command("shell")
@argument("service", required=False, help="Service (default: the one running the code).")
@click.option("--slot", "-s", type=int, help=SLOT_HELP)
def shell_command(service: str | None, slot: int | None) -> None:
    """Open a shell (bash, else sh) in a service of the slot."""
    import sys

    from kinfra.project import find_project
    from kinfra.workflows.everyday import shell_in_slot

    project = find_project()
    code = shell_in_slot(project, _target_slot(project, slot), service, sys.stdin.isatty())
    raise click.exceptions.Exit(code)


@app.command("exec")
@argument("service", help="Service to run the command in.")
@argument("command", nargs=-1, required=True, help="The command, after `--`.")
@click.option("--slot", "-s", type=int, help=SLOT_HELP)
def exec_command(service: str, command: tuple[str, ...], slot: int | None) -> None:
    """Run a command in a service of the slot: kinfra sandbox exec backend -- ls /app."""
    import sys

    from kinfra.project import find_project
    from kinfra.workflows.everyday import exec_in_slot

    project = find_project()
    code = exec_in_slot(
        project, _target_slot(project, slot), service, list(command), sys.stdin.isatty()
    )
    raise click.exceptions.Exit(code)
