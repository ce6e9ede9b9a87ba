"""Benchmark: `kinfra deploy` vs the raw sequence, against a second real engine.

The target is the test suite's second dockerd (its own network namespace,
TLS over TCP, a Docker context). Before each run a new version of the app is
committed and pushed, so every deploy has a new backend image to build and
ship. Paired runs (A B A B ...), medians, ratio printed. Not a test: no asserts.

- kinfra: `kinfra deploy prod` (clean checkout of the commit, build, ship the
  images the target lacks, compose up --wait with the release labels, gate).
- raw: `docker compose build` in the checkout, `docker save <every built
  image> | docker --context X load`, `docker --context X compose up -d --wait`
  of a second compose project with an override carrying the same labels (a
  release label that changes recreates every container on both sides).

    .venv/bin/python benchmarks/bench_deploy.py [--pairs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from kinfra.adapters.compose import compose_program
from kinfra.testing import dockerkit
from kinfra.testing.benchtime import timed
from kinfra.testing.deploy import (
    TOKEN_VARIABLE,
    make_deploy_project,
    release_version,
    remove_release_images,
)
from kinfra.testing.engine import second_engine
from kinfra.testing.gitrepo import git

KINFRA = [sys.executable, "-m", "kinfra"]
SERVICES = ("backend", "worker", "db")


def raw_deploy(repo: Path, context: str, project: str, env: dict[str, str]) -> float:
    sha = git(repo, "rev-parse", "HEAD").stdout.strip()
    override = repo.parent / "raw.override.yml"
    labels = "".join(
        f"      dev.kinfra.deploy.{k}: {v!r}\n"
        for k, v in (("sha", sha), ("ref", "main"), ("user", "raw"),
                     ("time", datetime.now(UTC).isoformat()), ("target", "raw"))
    )  # fmt: skip
    # Its own image names: the example's shop-*:dev belong to the slots of other runs.
    images = [f"{project}-{s}:raw" for s in SERVICES]
    override.write_text(
        "services:\n"
        + "".join(
            f"  {s}:\n    image: {image}\n    labels:\n{labels}"
            for s, image in zip(SERVICES, images, strict=True)
        )
    )
    files = ["-f", "docker-compose.yml", "-f", "deploy/remote.yml", "-f", str(override)]
    compose = [*compose_program(), "-p", project, "--env-file", "deploy/prod-canary.env", *files]
    on_target = {**env, "DOCKER_CONTEXT": context}
    start = time.perf_counter()
    subprocess.run([*compose, "build"], cwd=repo, env=env, check=True, capture_output=True)
    save = subprocess.Popen(["docker", "save", *images], stdout=subprocess.PIPE, env=env)
    subprocess.run(["docker", "--context", context, "load", "-q"], stdin=save.stdout,
                   env=env, check=True, capture_output=True)  # fmt: skip
    assert save.stdout is not None
    save.stdout.close()
    save.wait()
    subprocess.run([*compose, "up", "-d", "--wait"], cwd=repo, env=on_target, check=True,
                   capture_output=True)  # fmt: skip
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=5)
    args = parser.parse_args()
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    work = Path(tempfile.mkdtemp(prefix="kinfra-bench-deploy-"))
    prefix = "kb" + dockerkit.unique_prefix()[2:]
    with second_engine() as engine:
        repo = make_deploy_project(work, prefix, engine.context)
        env = {
            **os.environ, **engine.env(), "KINFRA_HOME": str(work / "home"),
            TOKEN_VARIABLE: "bench-token", "API_TOKEN": "bench-token",
        }  # fmt: skip
        try:
            # Warm-up: the build cache, and the base layers on the target, for both sides.
            subprocess.run([*KINFRA, "deploy", "prod"], cwd=repo, env=env, check=True)
            raw_deploy(repo, engine.context, f"{prefix}-raw", env)
            kinfra_times, raw_times = [], []
            for i in range(args.pairs):
                release_version(repo, f"k{i}")
                kinfra_times.append(timed([*KINFRA, "deploy", "prod"], repo, env))
                release_version(repo, f"r{i}")
                raw_times.append(raw_deploy(repo, engine.context, f"{prefix}-raw", env))
                print(f"pair {i + 1}: kinfra {kinfra_times[-1]:.2f}s  raw {raw_times[-1]:.2f}s "
                      f"ratio {kinfra_times[-1] / raw_times[-1]:.3f}", flush=True)  # fmt: skip
        finally:
            remove_release_images(repo)
            raw = [f"{prefix}-raw-{s}:raw" for s in SERVICES]
            subprocess.run(["docker", "image", "rm", *raw], check=False, capture_output=True)
    ratios = [k / r for k, r in zip(kinfra_times, raw_times, strict=True)]
    print(
        f"kinfra deploy vs raw build + save|load + compose up --wait ({args.pairs} pairs): "
        f"median ratio {statistics.median(ratios):.3f} "
        f"({statistics.median(kinfra_times):.2f} s vs {statistics.median(raw_times):.2f} s)"
    )


if __name__ == "__main__":
    main()
