"""Benchmark: the agent container against the raw docker commands.

    .venv/bin/python benchmarks/bench_agent.py [--pairs 9] [--resets 5]

1. `kinfra agent run -- true` (in the worktree, container already up) vs
   `docker run --rm IMAGE true`, paired A B A B; median of the ratios.
2. `kinfra agent reset` wall time (new container, logs cleared, worktree
   restored), on the example with its slot up.

Uses the shop example with an impl worktree (slot up) owned by a non-root
user, on the test base image (scripts/ensure-agent-base.sh) and the agent
image `kinfra agent build` makes from it (cached after the first build).
Everything it made is removed at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from kinfra.testing import agentkit
from kinfra.testing.benchtime import bench_home, kinfra, timed
from kinfra.testing.dockerkit import remove_everything, unique_prefix


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=9)
    parser.add_argument("--resets", type=int, default=5)
    options = parser.parse_args()

    workdir = bench_home()
    os.environ.update(agentkit.SAFE_DIRECTORY_ENV)
    prefix = unique_prefix()
    try:
        agentkit.ensure_base_image()
        image = _build_image(workdir)
        project = agentkit.make_agent_project(workdir, prefix, image)
        wt = project.worktree
        timed(kinfra("agent", "run", "--", "true"), wt)  # makes the container
        timed(["docker", "run", "--rm", image, "true"], wt)  # warm-up

        mine, raw = [], []
        for _ in range(options.pairs):
            mine.append(timed(kinfra("agent", "run", "--", "true"), wt))
            raw.append(timed(["docker", "run", "--rm", image, "true"], wt))
        ratios = [a / b for a, b in zip(mine, raw, strict=True)]
        med = statistics.median(ratios)
        print(
            f"agent run -- true vs docker run --rm IMAGE true: kinfra median "
            f"{statistics.median(mine):.3f}s, raw median {statistics.median(raw):.3f}s, "
            f"ratios {' '.join(f'{r:.2f}' for r in ratios)} -> median {med:.3f} "
            f"(target <= 1.10) {'OK' if med <= 1.10 else 'OVER TARGET'}"
        )

        resets = [timed(kinfra("agent", "reset"), wt) for _ in range(options.resets)]
        print(
            f"agent reset: median {statistics.median(resets):.2f}s, max {max(resets):.2f}s "
            f"over {len(resets)} runs (target <= 3 s; seed < 30 s) "
            f"{'OK' if statistics.median(resets) <= 3 else 'OVER TARGET'}"
        )
    finally:
        remove_everything(prefix)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def _build_image(workdir: Path) -> str:
    """The agent image for the test config (built once; then found by digest)."""
    from kinfra.testing.gitrepo import make_repo

    repo = make_repo(workdir / "image", with_origin=False)
    name = unique_prefix()
    (repo / "kinfra.toml").write_text(f'[project]\nname = "{name}"\n' + agentkit.agent_config())
    result = subprocess.run(
        kinfra("agent", "build", "--ca-bundle", agentkit.CA_BUNDLE),
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    agentkit.remove_agents(name)
    return result.stdout.split("agent image ", 1)[1].split()[0]


if __name__ == "__main__":
    sys.exit(main())
