"""Benchmark: `kinfra sandbox up` vs raw `docker compose up -d --wait`, and
`kinfra sandbox slots` wall time beyond Python's own start-up.

Runs the bundled example in a throwaway repo and KINFRA_HOME, on free ports.
Paired runs (A B A B ...), medians, ratios printed. Not a test: no asserts.

    .venv/bin/python benchmarks/bench_sandbox.py [--pairs 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from kinfra.testing import dockerkit
from kinfra.testing.benchtime import bench_home, kinfra, timed
from kinfra.testing.gitrepo import commit_all, git

KINFRA = [sys.executable, "-m", "kinfra"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--slots-runs", type=int, default=20)
    args = parser.parse_args()

    work = bench_home()
    prefix = "kb" + dockerkit.unique_prefix()[2:]
    api, db = dockerkit.free_port_bases(2, 8)
    repo = work / prefix
    shutil.copytree(dockerkit.EXAMPLE_DIR, repo)
    text = (repo / "kinfra.toml").read_text()
    text = text.replace('"shop"', f'"{prefix}"').replace("base = 8000", f"base = {api}")
    (repo / "kinfra.toml").write_text(text.replace("base = 5432", f"base = {db}"))
    git(work, "init", "-q", "-b", "main", str(repo))
    commit_all(repo, "bench")
    try:
        subprocess.run([*KINFRA, "sandbox", "provision", "--count", "2"], cwd=repo, check=True)
        # Warm-up: builds the images once, so both sides start from the same cache.
        subprocess.run([*KINFRA, "sandbox", "up", "--slot", "1"], cwd=repo, check=True)
        subprocess.run([*KINFRA, "sandbox", "down", "--slot", "1"], cwd=repo, check=True)

        slot_dir = Path(os.environ["KINFRA_HOME"]) / prefix / "slot-2"
        raw_up = [
            "docker",
            "compose",
            "-p",
            f"{prefix}-slot-2",
            "--project-directory",
            str(repo),
            "--env-file",
            str(slot_dir / ".env.sandbox"),
            "-f",
            str(repo / "docker-compose.yml"),
            "-f",
            str(slot_dir / "docker-compose.override.yml"),
            "up",
            "-d",
            "--wait",
        ]
        raw_down = ["docker", "compose", "-p", f"{prefix}-slot-2", "down"]
        # Write slot 2's files (override with this checkout's code) once for the raw side.
        subprocess.run([*KINFRA, "sandbox", "up", "--slot", "2"], cwd=repo, check=True)
        # Stopped through kinfra, so the checkout's claim on slot 2 is given back.
        subprocess.run([*KINFRA, "sandbox", "down", "--slot", "2"], cwd=repo, check=True)

        kinfra_times, raw_times = [], []
        for _ in range(args.pairs):
            kinfra_times.append(timed([*KINFRA, "sandbox", "up", "--slot", "1"], repo))
            subprocess.run([*KINFRA, "sandbox", "down", "--slot", "1"], cwd=repo, check=True)
            raw_times.append(timed(raw_up, repo))
            subprocess.run(raw_down, check=True, capture_output=True)
        ratios = [k / r for k, r in zip(kinfra_times, raw_times, strict=True)]
        print(
            f"sandbox up: kinfra median {statistics.median(kinfra_times):.2f}s, "
            f"raw compose median {statistics.median(raw_times):.2f}s, "
            f"median paired ratio {statistics.median(ratios):.3f} (target <= 1.10)"
        )

        pass_times = [timed([sys.executable, "-c", "pass"], repo) for _ in range(args.slots_runs)]
        slots_times = [timed(kinfra("sandbox", "slots"), repo) for _ in range(args.slots_runs)]
        extra_ms = (statistics.median(slots_times) - statistics.median(pass_times)) * 1000
        print(
            f"sandbox slots: median {statistics.median(slots_times) * 1000:.0f} ms, "
            f"python -c pass {statistics.median(pass_times) * 1000:.0f} ms, "
            f"difference {extra_ms:.0f} ms (target <= 150 ms)"
        )
    finally:
        for slot in ("1", "2"):
            subprocess.run(
                [*KINFRA, "sandbox", "down", "--slot", slot, "--volumes"],
                cwd=repo,
                capture_output=True,
            )
        dockerkit.remove_everything(prefix)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
