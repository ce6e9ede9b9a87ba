"""kinfra deploy ...: ship the project to other Docker engines (targets in [deploy.<name>])."""

from __future__ import annotations

from typing import Any

import click

from kinfra.cli import render
from kinfra.cli.clickutil import Group, argument

SUBCOMMANDS = ("promote", "status", "rollback", "history")


class DeployGroup(Group):
    """``kinfra deploy TARGET …`` and ``kinfra deploy promote|status|rollback|history …``:
    a first word that is no subcommand is a target to deploy."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["target", *args]
        return super().parse_args(ctx, args)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in super().list_commands(ctx) if name != "target"]

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, "TARGET [--ref REF] [--force] [--canary]")
        formatter.write_usage(ctx.command_path, "COMMAND [ARGS]...", prefix="   or: ")


app = DeployGroup(
    "deploy",
    help="Deploy to other Docker engines (Docker contexts): canary, promote, rollback, status. "
    "`kinfra deploy TARGET` builds the commit from a clean checkout, loads the images into the "
    "target's engine, starts them with compose and runs the target's gate; a failed gate "
    "restores the previous deployment (exit 2).\n\n"
    "\b\nTARGET options:\n"
    "  --ref REF  branch, tag or sha to deploy (default: this checkout's HEAD)\n"
    "  --force    deploy even with uncommitted changes or an unpushed ref\n"
    "  --canary   deploy to the target's canary; then `kinfra deploy promote TARGET`",
    no_args_is_help=True,
)


@app.command("target", hidden=True)
@argument("name", metavar="TARGET", help="A target under [deploy] in kinfra.toml.")
@click.option("--ref", help="Branch, tag or sha to deploy (default: this checkout's HEAD).")
@click.option(
    "--force", is_flag=True, help="Deploy even with uncommitted changes or an unpushed ref."
)
@click.option(
    "--canary", is_flag=True, help="Deploy to the target's canary; then `deploy promote`."
)
def target_command(name: str, ref: str | None, force: bool, canary: bool) -> None:
    """Deploy REF to TARGET (or to its canary)."""
    from kinfra.project import find_project
    from kinfra.workflows.deploy import deploy

    report = deploy(
        find_project(), name, ref=ref, force=force, canary=canary, progress=render.progress()
    )
    _done(report)
    if canary:
        render.out(f"promote it with: kinfra deploy promote {name}")


@app.command("promote")
@argument("name", metavar="TARGET", help="The target whose canary is promoted.")
def promote_command(name: str) -> None:
    """Run on TARGET exactly the images (by digest) its canary runs, behind TARGET's gate."""
    from kinfra.project import find_project
    from kinfra.workflows.deploy import promote

    _done(promote(find_project(), name, progress=render.progress()))


@app.command("rollback")
@argument("name", metavar="TARGET", help="The target to roll back.")
def rollback_command(name: str) -> None:
    """Switch TARGET back to the deployment before the current one (its kinfra-prev images)."""
    from kinfra.project import find_project
    from kinfra.workflows.deploy import rollback

    _done(rollback(find_project(), name, progress=render.progress()))


def _done(report: Any) -> None:
    release = report.release
    render.ok(
        f"{report.target.name} runs {release.short} ({release.ref}): {report.target.project} "
        f"on {report.engine.context} ({report.engine.endpoint})"
    )
    for name, url in report.urls.items():
        render.out(f"  {name:<8} {url}")


@app.command("status")
@argument("name", metavar="[TARGET]", required=False, help="One target (default: all).")
@click.option("--json", "json_output", is_flag=True, help="Machine-readable output.")
def status_command(name: str | None, json_output: bool) -> None:
    """Per target: the engine, the running sha and ref, who deployed it and when, container
    health, commits on main since, and whether a rollback point exists."""
    from kinfra.project import find_project
    from kinfra.workflows.deploy_status import status

    reports = status(find_project(), name)
    if json_output:
        render.print_json([_status_json(r) for r in reports])
        return
    for index, r in enumerate(reports):
        if index:
            render.out("")
        t = r.target
        render.out(
            f"{t.name}: {r.state} ({t.project} on context {t.context} {r.endpoint})".rstrip()
        )
        if r.problem:
            render.out(f"  problem   {r.problem}")
            continue
        if r.release is not None:
            rel = r.release
            render.out(f"  release   {rel.short} ({rel.ref}), deployed by {rel.user} at {rel.time}")
            if r.commits_since is None:
                render.out("  since     unknown (the commit is not in this repository)")
            else:
                render.out(f"  since     {r.commits_since} commit(s) on {r.base} after it")
        point = "none"
        if r.rollback_exists:
            point = (
                f"{r.rollback.short} ({r.rollback.ref})"
                if r.rollback
                else "kept (no history record)"
            )
        render.out(f"  rollback  {point}")
        render.containers_and_urls(r.containers, r.urls)


def _status_json(r: Any) -> dict[str, Any]:
    return {
        "target": r.target.name,
        "context": r.target.context,
        "engine": r.endpoint,
        "project": r.target.project,
        "state": r.state,
        "problem": r.problem,
        "release": r.release.to_dict() if r.release else None,
        "commits_since": r.commits_since,
        "base": r.base,
        "rollback_point": r.rollback_exists,
        "rollback_release": r.rollback.to_dict() if r.rollback else None,
        "containers": [
            {
                "name": c.name,
                "service": c.service,
                "state": c.state,
                "health": c.health,
                "image": c.image,
            }
            for c in r.containers
        ],
        "urls": r.urls,
    }


@app.command("history")
@argument("name", metavar="[TARGET]", required=False, help="One target (default: all).")
@click.option("-n", "limit", type=int, help="Only the last N.")
@click.option("--json", "json_output", is_flag=True, help="Machine-readable output.")
def history_command(name: str | None, limit: int | None, json_output: bool) -> None:
    """Every deploy, promote and rollback, with its outcome ($KINFRA_HOME/<project>/deploys.jsonl)."""
    from kinfra.project import find_project
    from kinfra.workflows.deploy_status import history

    records = history(find_project(), name, limit)
    if json_output:
        render.print_json([r.to_dict() for r in records])
        return
    rows = [
        [
            r.started, r.action.value, r.target, r.release.short, r.release.ref, r.release.user,
            r.outcome.value, f"{r.seconds:.1f}s", "; ".join(r.failed_checks) or r.error,
        ]
        for r in records
    ]  # fmt: skip
    render.table(
        ["time", "action", "target", "sha", "ref", "user", "outcome", "took", "detail"], rows
    )
