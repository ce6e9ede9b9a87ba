"""kinfra ports: the machine-wide view across every registered project."""

from __future__ import annotations

import click

from kinfra.cli import render
from kinfra.cli.clickutil import Command


@click.command("ports", cls=Command)
@click.option("--json", "json_output", is_flag=True, help="Machine-readable output.")
def ports_command(json_output: bool) -> None:
    """The machine's port map: every project's slots, their host ports, what listens now."""
    from kinfra.adapters.registry import RegistryStore
    from kinfra.workflows.machine import machine_ports

    report = machine_ports(RegistryStore().load())
    if json_output:
        render.print_json(
            [
                {
                    "project": p.project,
                    "slot": p.slot_id,
                    "name": p.name,
                    "port": p.port,
                    "listening": p in report.listening,
                    "until_restart": p.until_restart,
                }
                for p in report.ports
            ]
        )
    elif report.ports:
        rows = [
            [
                p.project,
                "local-prod" if p.slot_id == 0 else str(p.slot_id),
                p.name + (" (until restart)" if p.until_restart else ""),
                str(p.port),
                "yes" if p in report.listening else "-",
            ]
            for p in report.ports
        ]
        render.table(["project", "slot", "port", "host port", "listening"], rows)
    else:
        render.out("no projects registered on this machine; `kinfra sandbox provision` adds one")
    for note in report.notes:
        render.note(note)
