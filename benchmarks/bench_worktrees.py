"""Benchmark: kinfra impl / done / worktrees against the raw commands they wrap.

    .venv/bin/python benchmarks/bench_worktrees.py [--pairs 5]

1. `kinfra impl f<i>/M1` vs `git worktree add` + `docker compose ... up -d --wait`
   of the same stack (the shop example, same slot files and ports), paired A B A B.
2. `kinfra done f<i>-M1` vs `docker compose ... down` + `git worktree remove`.
3. `kinfra worktrees` wall time with 6 claimed (running) slots and 20 worktrees.

Everything runs in a temp dir with its own KINFRA_HOME and a unique compose
prefix; every container, network and volume is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from kinfra.testing.benchtime import bench_home, kinfra, timed
from kinfra.testing.dockerkit import remove_everything, unique_prefix
from kinfra.testing.example import make_example_project


def raw_up(repo: Path, override: Path, project: str, worktree: Path) -> list[list[str | Path]]:
    return [
        ["git", "worktree", "add", "--quiet", "-b", f"raw/{worktree.name}", worktree, "origin/main"],
        [
            "docker", "compose", "-p", project, "--project-directory", worktree,
            "--env-file", override.parent / "raw.env",
            "-f", worktree / "docker-compose.yml", "-f", override,
            "up", "-d", "--wait",
        ],
    ]  # fmt: skip


def raw_down(project: str, worktree: Path) -> list[list[str | Path]]:
    return [
        ["docker", "compose", "-p", project, "down", "--remove-orphans"],
        ["git", "worktree", "remove", worktree],
    ]


def ratio_line(label: str, a: list[float], b: list[float], target: float) -> str:
    ratios = [x / y for x, y in zip(a, b, strict=True)]
    med = statistics.median(ratios)
    verdict = "OK" if med <= target else "OVER TARGET"
    return (
        f"{label}: kinfra median {statistics.median(a):.2f}s, raw median "
        f"{statistics.median(b):.2f}s, paired ratios "
        f"{' '.join(f'{r:.2f}' for r in ratios)} -> median {med:.3f} "
        f"(target <= {target:.2f}) {verdict}"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--list-runs", type=int, default=15)
    options = parser.parse_args()

    workdir = bench_home()
    prefix = unique_prefix()
    pairs = options.pairs
    features = tuple(f"f{i}/M1" for i in range(pairs + 1)) + tuple(f"l{i}/M1" for i in range(20))
    try:
        repo = make_example_project(workdir, prefix, pool_size=6, milestones=features)
        timed(kinfra("sandbox", "provision"), repo)
        slot_dir, project = workdir / "home" / prefix / "slot-1", f"{prefix}-slot-1"

        # Warm-up (image build, page cache): one of each, not measured.
        timed(kinfra("impl", f"f{pairs}/M1"), repo)
        # The raw side uses the override kinfra generated, pointed at its own
        # worktree (as a user doing this by hand would write it).
        warm_path = str(repo.parent / f"{prefix}-impl-f{pairs}-M1")
        template = (slot_dir / "docker-compose.override.yml").read_text()
        shutil.copy(slot_dir / ".env.sandbox", workdir / "raw.env")
        timed(kinfra("done", f"f{pairs}-M1"), repo)
        impl_a, impl_b, done_a, done_b = [], [], [], []
        for i in range(pairs):
            impl_a.append(timed(kinfra("impl", f"f{i}/M1"), repo))
            done_a.append(timed(kinfra("done", f"f{i}-M1"), repo))
            worktree = workdir / f"raw-{i}"
            override = workdir / f"raw-override-{i}.yml"
            override.write_text(template.replace(warm_path, str(worktree)))
            impl_b.append(
                sum(timed(cmd, repo) for cmd in raw_up(repo, override, project, worktree))
            )
            done_b.append(sum(timed(cmd, repo) for cmd in raw_down(project, worktree)))
        print(ratio_line("impl vs git worktree add + compose up --wait", impl_a, impl_b, 1.10))
        print(ratio_line("done vs compose down + git worktree remove", done_a, done_b, 1.10))

        for i in range(6):
            timed(kinfra("impl", f"l{i}/M1"), repo)
        for i in range(6, 20):
            timed(kinfra("impl", f"l{i}/M1", "--no-sandbox"), repo)
        listed = json.loads(
            subprocess.run(
                kinfra("worktrees", "--json"), cwd=repo, capture_output=True, text=True, check=True
            ).stdout
        )
        claimed = sum(1 for row in listed if row["slot"] is not None)
        runs = [timed(kinfra("worktrees"), repo) for _ in range(options.list_runs)]
        print(
            f"worktrees with {claimed} claimed slots and {len(listed)} worktrees: median "
            f"{statistics.median(runs) * 1000:.0f} ms, max {max(runs) * 1000:.0f} ms over "
            f"{len(runs)} runs (target <= 200 ms) "
            f"{'OK' if statistics.median(runs) <= 0.2 else 'OVER TARGET'}"
        )
    finally:
        remove_everything(prefix)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
