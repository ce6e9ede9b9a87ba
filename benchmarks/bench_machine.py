"""Benchmark: the machine-wide views with 10 projects x 6 slots in the
registry, and restoring the example's data volume from golden data.

1. `kinfra ports` and `kinfra sandbox slots` wall time beyond Python's own
   start-up (`python -c pass`), 10 projects of 6 slots and 2 ports each
   registered (target <= 100 ms each); `kinfra --help` alongside, as the
   start-up every command pays.
2. A volume restore (`reset_data`, as `impl --fresh` runs it) of the shop
   example's `dbdata` volume, wall time (target <= 3 s), next to the raw
   `docker run ... tar -x` of the same archive.

Not a test: no asserts. Throwaway repos, KINFRA_HOME and a unique prefix;
everything is removed at the end.

    .venv/bin/python benchmarks/bench_machine.py [--runs 20] [--restores 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from kinfra.testing import dockerkit
from kinfra.testing.benchtime import bench_home, kinfra, measured
from kinfra.testing.example import make_example_project
from kinfra.testing.gitrepo import commit_all, make_repo

KINFRA = kinfra()


def ten_projects(work: Path, prefix: str) -> Path:
    """10 registered projects of 6 slots; returns the first one's checkout."""
    bases = dockerkit.free_port_bases(20, 7)
    first = None
    for i in range(10):
        name = f"{prefix}p{i}"
        repo = make_repo(work, name, with_origin=False)
        (repo / "docker-compose.yml").write_text(
            "services:\n  web:\n    image: busybox:1.36\n    ports: ['80:80']\n"
            "  db:\n    image: busybox:1.36\n    ports: ['5432:5432']\n"
        )
        (repo / "kinfra.toml").write_text(
            f'[project]\nname = "{name}"\n\n[ports]\n'
            f'api = {{ service = "web", target = 80, base = {bases[2 * i]}, scheme = "http" }}\n'
            f'db = {{ service = "db", target = 5432, base = {bases[2 * i + 1]} }}\n\n'
            "[sandbox]\npool_size = 6\n"
        )
        commit_all(repo, "adopted")
        subprocess.run([*KINFRA, "sandbox", "provision"], cwd=repo, check=True, capture_output=True)
        first = first or repo
    assert first is not None
    return first


def listing_figures(repo: Path, runs: int) -> None:
    """Paired runs (python -c pass, then the command) so that the machine's load
    of the moment weighs on both sides of each difference alike. The CPU time
    (user + system) is printed too: on a busy machine it moves much less."""
    # `kinfra --help` is the reference: what any kinfra command costs to start,
    # so that figures from a busy machine can be read against it.
    for args in (["--help"], ["ports"], ["sandbox", "slots"]):
        pairs = [
            (measured([sys.executable, "-c", "pass"], repo), measured([*KINFRA, *args], repo))
            for _ in range(runs)
        ]
        wall = statistics.median(k[0] - p[0] for p, k in pairs)
        cpu = statistics.median(k[1] - p[1] for p, k in pairs)
        print(
            f"kinfra {' '.join(args)} (10 projects x 6 slots): median "
            f"{statistics.median(k[0] for _, k in pairs) * 1000:.0f} ms, python -c pass "
            f"{statistics.median(p[0] for p, _ in pairs) * 1000:.0f} ms, median paired difference "
            f"{wall * 1000:.0f} ms wall, {cpu * 1000:.0f} ms CPU (target <= 100 ms)"
        )


def restore_figures(work: Path, prefix: str, restores: int) -> None:
    from kinfra.adapters.volumes import HELPER_IMAGE
    from kinfra.project import find_project
    from kinfra.workflows.data import golden_dir, reset_data

    repo = make_example_project(work / "shop", f"{prefix}shop", pool_size=1, with_origin=False)
    for step in (["provision"], ["up", "--slot", "1"], ["down", "--slot", "1"]):
        subprocess.run([*KINFRA, "sandbox", *step], cwd=repo, check=True, capture_output=True)
    subprocess.run([*KINFRA, "sandbox", "snapshot", "--slot", "1"], cwd=repo, check=True)
    project = find_project(repo)
    slot = project.slot(1)
    archive = golden_dir(project) / "dbdata.tar"
    volume = f"{slot.compose_project}_dbdata"
    ours, raw = [], []
    for _ in range(restores):
        start = time.perf_counter()
        reset_data(project, slot)
        ours.append(time.perf_counter() - start)
        with archive.open("rb") as stdin:
            start = time.perf_counter()
            subprocess.run(
                ["docker", "run", "--rm", "-i", "-v", f"{volume}:/data", HELPER_IMAGE,
                 "tar", "-C", "/data", "-xf", "-"],
                stdin=stdin, check=True, capture_output=True,
            )  # fmt: skip
            raw.append(time.perf_counter() - start)
    print(
        f"volume restore of dbdata ({archive.stat().st_size // 1024} KB): median "
        f"{statistics.median(ours):.2f} s, max {max(ours):.2f} s (target <= 3 s); raw "
        f"`docker run ... tar -x` median {statistics.median(raw):.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--restores", type=int, default=5)
    args = parser.parse_args()
    work = bench_home()
    prefix = dockerkit.unique_prefix()
    try:
        repo = ten_projects(work, prefix)
        listing_figures(repo, args.runs)
        restore_figures(work, prefix, args.restores)
    finally:
        dockerkit.remove_everything(prefix)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
