"""reset, rm and done on a worktree's agent container; targets and refusals."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from kinfra.errors import EXIT_USAGE
from kinfra.testing.agentkit import AgentProject, agent_leftovers, make_agent_project
from kinfra.testing.example import kinfra
from kinfra.testing.gitrepo import git


def container_id(name: str) -> str:
    result = subprocess.run(
        ["docker", "container", "inspect", "--format", "{{.Id}}", name],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() if result.returncode == 0 else ""


def volumes_of(container: str) -> set[str]:
    out = subprocess.run(
        ["docker", "volume", "ls", "--quiet", "--filter", f"label=kinfra.agent.box={container}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.split())


def one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("kinfra: error: "), result.stderr
    assert all(line.startswith("  hint: ") for line in lines[1:]), result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def test_reset_keeps_commits_and_kept_volumes_clears_logs_and_refuses_unsaved_work(
    tmp_path: Path, docker_prefix: str, agent_image: str
) -> None:
    p = make_agent_project(tmp_path, docker_prefix, agent_image, extra='keep = ["/env/models"]\n')
    wt, box = p.worktree, f"{p.worktree.name}-agent"
    work = (
        "echo trained > /env/models/m.bin; echo noisy > /logs/agent.log; "
        "echo kept > committed.txt; git add committed.txt; git commit -qm 'committed work'; "
        "echo scratch > scratch.txt; echo edit >> README.md"
    )
    assert p.kinfra("agent", "run", "--", "sh", "-c", work).returncode == 0
    before = container_id(box)

    refused = p.kinfra("agent", "reset")
    one_line_error(refused, "uncommitted changes", "--force")
    assert container_id(box) == before and (wt / "scratch.txt").exists()

    forced = p.kinfra("agent", "reset", "--force")
    assert forced.returncode == 0, forced.stderr
    assert "logs cleared" in forced.stdout
    assert container_id(box) not in ("", before)  # a new container
    assert not (wt / "scratch.txt").exists()
    assert (wt / "README.md").read_text() == "test repo\n"
    assert (wt / "README.md").stat().st_uid == 1000  # restored by the owner, in the container
    assert (wt / "committed.txt").read_text() == "kept\n"
    assert git(wt, "status", "--porcelain").stdout == ""
    inside = p.kinfra("agent", "run", "--", "sh", "-c", "cat /env/models/m.bin; ls -A /logs")
    assert inside.stdout == "trained\n", inside.stdout + inside.stderr

    # On a clean worktree on its branch, no --force is needed.
    assert p.kinfra("agent", "reset").returncode == 0
    # Not on its branch: refused without --force, as nothing says what is there is saved.
    git(wt, "checkout", "-q", "--detach", "HEAD~1")
    one_line_error(p.kinfra("agent", "reset"), "not its branch impl/genome-M1")
    assert p.kinfra("agent", "reset", "--force").returncode == 0
    assert git(wt, "branch", "--show-current").stdout.strip() == "impl/genome-M1"
    assert (wt / "committed.txt").exists()


def test_rm_and_done_remove_the_container_and_all_but_the_kept_volumes(
    tmp_path: Path, docker_prefix: str, agent_image: str
) -> None:
    p = make_agent_project(
        tmp_path,
        docker_prefix,
        agent_image,
        extra='keep = ["/env/models"]\n',
        milestones=("genome/M1", "genome/M2"),
    )
    second = p.worktrees[1]
    for wt in p.worktrees:
        assert p.kinfra("agent", "run", "--", "true", cwd=wt).returncode == 0
    boxes = [f"{wt.name}-agent" for wt in p.worktrees]
    kept = {v for v in volumes_of(boxes[0]) if "-agent-keep-" in v}
    assert len(volumes_of(boxes[0])) == 3 and len(kept) == 1

    removed = kinfra(p.repo, "agent", "rm", "genome-M1")
    assert removed.returncode == 0, removed.stderr
    assert container_id(boxes[0]) == "" and volumes_of(boxes[0]) == kept
    assert container_id(boxes[1]) != ""  # the other worktree's is untouched

    # done: the stack stops and its network goes, though the agent was on it.
    git(second, "push", "-q", "-u", "origin", "HEAD")
    done = kinfra(p.repo, "done", "genome-M2")
    assert done.returncode == 0, done.stderr
    assert container_id(boxes[1]) == ""
    assert {v for v in volumes_of(boxes[1]) if "-agent-keep-" not in v} == set()
    networks = subprocess.run(
        ["docker", "network", "ls", "--format", "{{.Name}}"], capture_output=True, text=True
    ).stdout.split()
    assert f"{p.prefix}-slot-2_default" not in networks
    # Of either worktree's agent, only the kept volumes are left (and the
    # project's image tag).
    kept_second = {v for v in volumes_of(boxes[1]) if "-agent-keep-" in v}
    assert len(kept_second) == 1
    assert sorted(agent_leftovers(p.prefix)) == sorted(
        {*kept, *kept_second, f"kinfra-agent/{p.prefix}:current"}
    )


def test_targets_resolve_like_done_and_bad_ones_are_one_clear_line(
    agent_project: AgentProject, kinfra_home: Path
) -> None:
    p = agent_project
    # Outside any worktree, with no name: which one is meant is not guessed.
    one_line_error(kinfra(p.repo, "agent", "run", "--", "true"), "is not an impl worktree")
    one_line_error(kinfra(p.repo, "agent", "reset", "nope"), "No worktree matching 'nope'")
    usage = kinfra(p.repo, "agent", "run", "genome-M1")
    assert usage.returncode == EXIT_USAGE and "after `--`" in usage.stderr
    # The orchestrator in a container needs an impl worktree too; no run is left behind.
    plan = "docs/designs/genome/implementation/M1_plan.md"
    one_line_error(
        kinfra(p.repo, "orch", "run", plan, "--in-container"),
        "cannot run the agent in its container",
    )
    assert not list((kinfra_home / p.prefix / "runs").glob("*.json"))
    # A spec worktree has no agent container.
    assert kinfra(p.repo, "spec", "genome").returncode == 0
    one_line_error(kinfra(p.repo, "agent", "run", "genome", "--", "true"), "is a spec worktree")
    # A root-owned worktree: the agent never runs as root.
    os.chown(p.worktree, 0, 0)
    one_line_error(p.kinfra("agent", "run", "--", "true"), "owned by root")
    assert container_id(f"{p.worktree.name}-agent") == ""
    os.chown(p.worktree, 1000, 1000)
    # No image built for a project: a clear line, nothing made.
    subprocess.run(
        ["docker", "image", "rm", "--no-prune", f"kinfra-agent/{p.prefix}:current"],
        capture_output=True,
        check=True,
    )
    one_line_error(p.kinfra("agent", "shell"), "no agent image is built", "kinfra agent build")
    assert container_id(f"{p.worktree.name}-agent") == ""
