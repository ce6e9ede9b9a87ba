"""What the command modules need on top of plain click, kept small.

- ``argument(..., help=...)``: click before 8.5 takes no help text for
  arguments; these carry one (as ``help_text``, so that click 8.5+ does not
  print a second section), shown in an "Arguments" section of ``--help``.
- ``Group``: lists its commands in the order they were added, each with the
  whole first paragraph of its help (click would cut it to fit one line).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


class HelpArgument(click.Argument):
    """A positional argument with a help line."""

    def __init__(self, param_decls: Sequence[str], help_text: str = "", **attrs: Any) -> None:
        super().__init__(param_decls, **attrs)
        self.help_text = help_text


def argument(*param_decls: str, help: str, **attrs: Any) -> Callable[[F], F]:
    """``click.argument`` with a help line for ``--help``."""
    return click.argument(*param_decls, cls=HelpArgument, help_text=help, **attrs)


class Command(click.Command):
    """A command whose ``--help`` documents its arguments before its options."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [
            (param.make_metavar(ctx), param.help_text + ("  [required]" if param.required else ""))
            for param in self.get_params(ctx)
            if isinstance(param, HelpArgument)
        ]
        if rows:
            with formatter.section("Arguments"):
                formatter.write_dl(rows)
        super().format_options(ctx, formatter)


class Group(click.Group):
    """Commands in the order they were added, with untruncated one-paragraph help."""

    command_class = Command
    group_class = type  # groups made with .group() are Groups too

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is None or command.hidden:
                continue
            text = command.short_help or (command.help or "")
            rows.append((name, " ".join(text.strip().split("\n\n")[0].split())))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def alias(command: click.Command, name: str, help: str) -> Command:
    """Another name for ``command``: same parameters and callback, its own help."""
    return Command(name, callback=command.callback, params=command.params, help=help)
