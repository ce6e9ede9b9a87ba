"""kinfra spec / impl / done (finish, complete) / worktrees / doctor."""

from __future__ import annotations

import click

from kinfra.cli import render
from kinfra.cli.clickutil import Command, alias, argument

# The values of kinfra.domain.config.Profile, not imported here to keep start-up fast.
PROFILES = ("light", "standard", "heavy")


@click.command("spec", cls=Command)
@argument("feature", help="Feature name, e.g. genome.")
def spec_command(feature: str) -> None:
    """Create the spec worktree ../<prefix>-spec-<feature> and its design folder."""
    from kinfra.project import find_project
    from kinfra.workflows.worktree_create import spec

    result = spec(find_project(), feature)
    made = "created" if result.branch_created else "reused"
    render.ok(f"spec worktree {result.path} (branch {result.branch}, {made} from {result.base})")
    render.out(f"  design folder: {result.design_dir}")


@click.command("impl", cls=Command)
@argument("target", help="<feature>/<milestone>, e.g. genome/M1.")
@click.option(
    "--profile",
    "-p",
    type=click.Choice(PROFILES),
    default="light",
    show_default=True,
    help="Smallest slot profile to claim.",
)
@click.option("--no-sandbox", is_flag=True, help="Create the worktree only.")
@click.option(
    "--session",
    is_flag=True,
    help="Open a tmux session in the worktree running the configured agent command (agent-deck if installed).",
)
@click.option(
    "--wait",
    is_flag=True,
    help="When the memory budget is full, queue (first come, first served) instead of failing.",
)
@click.option(
    "--fresh",
    is_flag=True,
    help="Reset the slot's volumes to the golden data (`kinfra sandbox snapshot`) before it starts.",
)
def impl_command(
    target: str, profile: str, no_sandbox: bool, session: bool, wait: bool, fresh: bool
) -> None:
    """Create an impl worktree, claim a sandbox slot and start its stack."""
    from kinfra.domain.config import Profile
    from kinfra.project import find_project
    from kinfra.workflows.worktree_create import impl

    def setup_line(line: str) -> None:
        render.plain(f"  setup │ {line}", err=True)

    result = impl(
        find_project(),
        target,
        profile=Profile(profile),
        sandbox=not no_sandbox,
        progress=render.progress(),
        output=setup_line,
        session=session,
        wait=wait,
        fresh=fresh,
    )
    for note in result.notes:
        render.note(note)
    for item in result.copied:
        render.note(f"copied {item} from the main checkout")
    if result.setup is not None and result.setup.returncode != 0:
        render.warn(
            f"setup command `{result.setup.command}` failed (exit {result.setup.returncode}); "
            "the worktree is kept"
        )
    made = "new branch" if result.branch_created else "existing branch"
    render.ok(f"worktree {result.path} ({made} {result.branch}, from {result.base})")
    render.out(f"  milestone  {result.milestone_file}")
    if result.session:
        from kinfra.workflows.sessions import session_name_for

        name = session_name_for(result.path)
        render.out(f"  session    {name} (attach: tmux attach -t {name})")
    if result.slot is None:
        render.out("  sandbox    none (--no-sandbox)")
        return
    slot = result.slot
    render.out(f"  slot       {slot.slot_id} ({slot.profile.value}, {slot.compose_project})")
    for name, url in result.urls.items():
        render.out(f"  {name:<10} {url}")


@click.command("done", cls=Command)
@argument("name", help="<feature>-<milestone>, the directory name, or part of it.")
@click.option("--force", is_flag=True, help="Proceed despite uncommitted or unpushed work.")
@click.option("--keep-branch", is_flag=True, help="Never delete the branch.")
@click.option(
    "--reset-data",
    is_flag=True,
    help="Reset the slot's volumes to the golden data (`kinfra sandbox snapshot`) on release.",
)
def done_command(name: str, force: bool, keep_branch: bool, reset_data: bool) -> None:
    """Stop the worktree's stack (volumes kept), release its slot, remove the worktree."""
    from kinfra.workflows.done_reads import done_here

    result = done_here(name, force=force, keep_branch=keep_branch, reset_data=reset_data)
    if result.slot_id is not None:
        kept = "data reset" if reset_data else "volumes kept"
        render.ok(f"slot {result.slot_id} stopped ({kept}) and released")
    else:
        render.note("the worktree held no slot")
    if result.removed:
        render.ok(f"worktree {result.path} removed")
    if result.branch_deleted:
        render.ok(f"branch {result.branch} deleted (fully merged)")
    for note in result.notes:
        render.note(note)


@click.command("worktrees", cls=Command)
@click.option("--json", "json_output", is_flag=True, help="Machine-readable output.")
def worktrees_command(json_output: bool) -> None:
    """List this repository's spec and impl worktrees and their sandboxes."""
    from kinfra.project import find_project
    from kinfra.workflows.worktree_list import list_worktrees

    views = list_worktrees(find_project(whole_config=False))
    if json_output:
        render.print_json(
            [
                {
                    "name": v.name,
                    "type": v.kind.value,
                    "branch": v.branch,
                    "path": str(v.path),
                    "exists": v.exists,
                    "slot": v.slot_id,
                    "slot_state": v.slot_state,
                    "port": v.port,
                    "sandbox": v.sandbox,
                    "uncommitted": v.dirty,
                    "session": v.session,
                }
                for v in views
            ]
        )
        return
    if not views:
        render.out("no spec or impl worktrees; create one with `kinfra impl <feature>/<milestone>`")
        return

    def changes(dirty: bool | None) -> str:
        return "missing" if dirty is None else ("yes" if dirty else "no")

    render.table(
        ["name", "type", "branch", "sandbox", "changes", "session"],
        [
            [
                v.name,
                v.kind.value,
                v.branch,
                v.sandbox,
                changes(v.dirty),
                "alive" if v.session else "-",
            ]
            for v in views
        ],
    )


@click.command("doctor", cls=Command)
@click.option("--fix", is_flag=True, help="Repair what can be repaired safely.")
@click.option("--json", "json_output", is_flag=True, help="Machine-readable output.")
def doctor_command(fix: bool, json_output: bool) -> None:
    """Compare the registry, git's worktrees and Docker's compose projects."""
    from kinfra.project import find_project
    from kinfra.workflows.doctor import doctor

    report = doctor(find_project(), fix=fix)
    if json_output:
        render.print_json(report.to_json())
    else:
        for note in report.notes:
            render.note(note)
        if not report.findings:
            render.ok("no problems found")
        for finding in report.findings:
            mark = {"fixed": "✓ fixed", "failed": "✗ fix failed", "": "•"}[finding.fixed.value]
            render.out(f"{mark} {finding.kind.value}: {finding.message}")
            if finding.advice and finding.fixed.value != "fixed":
                render.out(f"    → {finding.advice}")
    if report.unresolved:
        raise click.exceptions.Exit(1)


finish_command = alias(done_command, "finish", help="Same as `kinfra done`.")
complete_command = alias(done_command, "complete", help="Same as `kinfra done`.")
