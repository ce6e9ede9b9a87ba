"""What the scripts under benchmarks/ share: timing one command, the kinfra
users run, and a throwaway KINFRA_HOME. Timings belong in benchmarks, never
in tests."""

from __future__ import annotations

import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


def timed(
    argv: Sequence[str | Path],
    cwd: Path,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
) -> float:
    """Wall seconds of ``argv``; a failure ends the benchmark with its output."""
    args = [str(a) for a in argv]
    start = time.perf_counter()
    result = subprocess.run(
        args, cwd=cwd, env=env, input=stdin, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"failed: {shlex.join(args)}\n{result.stdout}\n{result.stderr}")
    return elapsed


def measured(argv: Sequence[str | Path], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child: user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = timed(argv, cwd)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def kinfra(*args: str) -> list[str]:
    """The installed console script, as users run it."""
    return [str(Path(sys.executable).parent / "kinfra"), *args]


def bench_home(prefix: str = "kinfra-bench-") -> Path:
    """A fresh temp dir whose ``home`` is KINFRA_HOME for this process and
    its children. Bytecode is cached as usual: some sandboxes set
    PYTHONDONTWRITEBYTECODE, which makes every run recompile kinfra, and
    users do not."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    work = Path(tempfile.mkdtemp(prefix=prefix)).resolve()
    os.environ["KINFRA_HOME"] = str(work / "home")
    return work
