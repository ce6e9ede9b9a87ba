"""What the command modules need on top of plain click, kept small.

- ``argument(..., help=...)``: click before 8.5 takes no help text for
  arguments; these carry one (as ``help_text``, so that click 8.5+ does not
  print a second section), shown in an "Arguments" section of ``--help``.
- ``Group``: lists its commands in the order they were added, each with the
  whole first paragraph of its help (click would cut it to fit one line);
  commands named in ``lazy`` are imported only when used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
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
    """Commands in the order they were added, with untruncated one-paragraph help.

    ``lazy`` maps command names to ``"module:attribute"``, in the order help
    lists them: a command's module is imported when the command is run (or
    help lists it), so each start imports only the module it needs.
    """

    command_class = Command
    group_class = type  # groups made with .group() are Groups too

    def __init__(
        self, name: str | None = None, lazy: Mapping[str, str] | None = None, **attrs: Any
    ) -> None:
        super().__init__(name, **attrs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*self.lazy, *(name for name in self.commands if name not in self.lazy)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            module, _, attribute = self.lazy[cmd_name].partition(":")
            command = getattr(importlib.import_module(module), attribute)
            if not isinstance(command, click.Command):
                raise TypeError(f"{self.lazy[cmd_name]} is not a click command")
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

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
