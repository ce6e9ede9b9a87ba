"""Orchestrator overhead per task, beyond the agent's own run time.

Runs a generated plan of N tasks (default 30) with the fake Claude Code in its
'instant' scenario (init event, result event, exit) inside a real git repo,
with the default embedded telemetry (JSON lines) and atomic state writes. For
each task: overhead = the orchestrator's wall time for the task (prompt, state
transitions with fsync, lock-free bookkeeping, spans, metrics) minus the agent
process's own wall time (spawn to exit, measured by the process controller).

Target: median <= 50 ms.

    .venv/bin/python benchmarks/orch_overhead.py [--tasks 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

TARGET_MS = 50.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=30)
    args = parser.parse_args()
    if args.tasks < 20:
        parser.error("use at least 20 tasks")

    with tempfile.TemporaryDirectory(prefix="kinfra-bench-") as tmp:
        root = Path(tmp)
        os.environ["KINFRA_HOME"] = str(root / "home")
        os.environ["FAKE_AGENT_SCENARIO"] = "instant"
        os.environ.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        from kinfra.orch.runloop import RunOptions, run_plan
        from kinfra.testing import fake_claude
        from kinfra.testing.gitrepo import make_repo

        repo = make_repo(root, "app", with_origin=False)
        bin_dir = root / "bin"
        bin_dir.mkdir()
        shim = bin_dir / "claude"
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{fake_claude.__file__}" "$@"\n')
        shim.chmod(0o755)
        os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
        plan = root / "M9_bench.md"
        plan.write_text(
            "# Milestone 9: Bench\n\n"
            + "".join(
                f"## Task 9.{i}: Task {i}\n\n**Acceptance Criteria:**\n- it works\n\n"
                for i in range(1, args.tasks + 1)
            )
        )
        started = time.monotonic()
        summary = run_plan(RunOptions(plan_path=plan, workdir=repo))
        total = time.monotonic() - started
        if summary.outcome != "done":
            print(f"run did not complete: {summary.outcome}", file=sys.stderr)
            return 1

    overheads = [(wall - agent) * 1000 for _, wall, agent in summary.timings]
    agents = [agent * 1000 for _, _, agent in summary.timings]
    median = statistics.median(overheads)
    p90 = statistics.quantiles(overheads, n=10)[-1]
    per_task_total = total * 1000 / len(overheads)
    print(f"tasks: {len(overheads)}  (fake agent 'instant', JSONL telemetry, fsynced state)")
    print(f"agent process wall time: median {statistics.median(agents):.1f} ms")
    print(
        f"orchestrator overhead per task: median {median:.1f} ms, p90 {p90:.1f} ms, "
        f"max {max(overheads):.1f} ms"
    )
    print(
        f"whole run: {total:.2f} s = {per_task_total:.1f} ms per task "
        f"(incl. plan parse, lock, telemetry setup/shutdown)"
    )
    verdict = "OK" if median <= TARGET_MS else "OVER TARGET"
    print(f"target: median <= {TARGET_MS:.0f} ms -> {verdict} (ratio {median / TARGET_MS:.2f})")
    return 0 if median <= TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
