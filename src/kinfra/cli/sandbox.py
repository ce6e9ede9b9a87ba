"""kinfra sandbox ...: the slot pool and one slot's lifecycle."""

from __future__ import annotations

import typer

app = typer.Typer(help="Provision slots and run a slot's stack.", no_args_is_help=True)
