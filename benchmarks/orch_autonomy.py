"""The orchestrator's autonomy, measured.

overhead: the orchestrator's time per task beyond its agents' own run time,
  with retries and the E2E fix loop in play. A plan of N tasks (default 30)
  runs with the fake Claude Code answering at once: every task's first attempt
  ends without a STATUS line (a failed attempt: judged, signed, retried in its
  session, told what failed), its second is done; then the E2E step, run by the
  agent, fails, is fixed, and passes. Per task (and for the E2E step): the wall
  time from the previous task's end to this one's, minus its agent processes'
  own wall time (and, less sensitive to a loaded machine, the orchestrator
  process's own CPU time). Target: median <= 20 ms.

doomed: the bundled ``doomed_to_fail`` plan with the real ``claude`` CLI
  against the mock model server: how many agent invocations before the run
  stops. It must equal the cap (max_attempts, 3) or be fewer when a loop is
  detected. Two scripts: the bundled one (the same failure twice: a loop) and
  one whose failures alternate (no loop: the cap).

    .venv/bin/python benchmarks/orch_autonomy.py [overhead] [--tasks 30]
    .venv/bin/python benchmarks/orch_autonomy.py doomed
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_MS = 20.0


def _fake_agent(root: Path) -> None:
    from kinfra.testing import fake_claude

    bin_dir = root / "bin"
    fake_claude.install(str(bin_dir))
    os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"


def overhead(tasks: int) -> int:
    with tempfile.TemporaryDirectory(prefix="kinfra-bench-") as tmp:
        root = Path(tmp)
        os.environ["KINFRA_HOME"] = str(root / "home")
        os.environ.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        from kinfra.orch.events import EventKind, RunEvent
        from kinfra.orch.runloop import RunOptions, run_plan
        from kinfra.orch.state import TaskStatus
        from kinfra.testing.gitrepo import make_repo

        _fake_agent(root)
        repo = make_repo(root, "app", with_origin=False)
        no_status = {"name": "instant", "final": "Done, I think."}
        fail_report = {"name": "instant", "final": "E2E: fail\nEVIDENCE: GET /x -> 404"}
        pass_report = {"name": "instant", "final": "E2E: pass\nEVIDENCE: GET /x -> 200"}
        scenario = {
            "default": "instant",
            "tasks": {
                **{f"9.{i}": [no_status, "instant"] for i in range(1, tasks + 1)},
                "E2E": [fail_report, pass_report],
                "E2E-fix": "instant",
            },
            "log": str(root / "calls.jsonl"),
        }
        (root / "scenario.json").write_text(json.dumps(scenario))
        os.environ["FAKE_AGENT_SCENARIO"] = str(root / "scenario.json")
        plan = root / "M9_bench.md"
        plan.write_text(
            "# Milestone 9: Bench\n\n"
            + "".join(
                f"## Task 9.{i}: Task {i}\n\n**Acceptance Criteria:**\n- it works\n\n"
                for i in range(1, tasks + 1)
            )
            + "## E2E Test: it works end to end\n\nGET /x returns 200.\n"
        )
        events: list[tuple[float, float, RunEvent]] = []
        started, cpu_started = time.monotonic(), time.process_time()
        summary = run_plan(
            RunOptions(plan_path=plan, workdir=repo),
            on_event=lambda e: events.append((time.monotonic(), time.process_time(), e)),
        )
        total = time.monotonic() - started
        if summary.outcome != "done":
            print(f"run did not complete: {summary.outcome}", file=sys.stderr)
            return 1

    # Units: each task up to its `done` attempt's end; the E2E step up to its pass.
    agent_times = iter(agent for _, _, agent in summary.timings)
    overheads: list[float] = []
    cpu: list[float] = []
    mark, cpu_mark = started, cpu_started
    agents_in_unit = 0.0
    attempts = 0
    for at, cpu_at, event in events:
        if event.kind is EventKind.TASK_END:
            agents_in_unit += next(agent_times)
            attempts += 1
        ends_task = event.kind is EventKind.TASK_END and event.status is TaskStatus.DONE
        ends_e2e = event.kind is EventKind.E2E_END and event.message.startswith("E2E passed")
        if (ends_task and event.task_id != "E2E-fix") or ends_e2e:
            overheads.append((at - mark - agents_in_unit) * 1000)
            cpu.append((cpu_at - cpu_mark) * 1000)
            mark, cpu_mark, agents_in_unit = at, cpu_at, 0.0
    median = statistics.median(overheads)
    p90 = statistics.quantiles(overheads, n=10)[-1]
    agents = [agent * 1000 for _, _, agent in summary.timings]
    print(
        f"units: {len(overheads)} ({tasks} tasks + the E2E step), agent attempts: {attempts} "
        f"(each task: one failed + one done; E2E: fail, fix, pass)"
    )
    print(f"agent process wall time: median {statistics.median(agents):.1f} ms")
    print(
        f"orchestrator overhead per task beyond its agents: median {median:.1f} ms, "
        f"p90 {p90:.1f} ms, max {max(overheads):.1f} ms (the first includes the run's set-up)"
    )
    print(
        f"orchestrator CPU time per task (its own process; less sensitive to a loaded machine): "
        f"median {statistics.median(cpu):.1f} ms"
    )
    print(f"whole run: {total:.2f} s")
    verdict = "OK" if median <= TARGET_MS else "OVER TARGET"
    print(f"target: median <= {TARGET_MS:.0f} ms -> {verdict} (ratio {median / TARGET_MS:.2f})")
    return 0 if median <= TARGET_MS else 1


def doomed() -> int:
    from kinfra.testing import agents

    if agents.missing("claude"):
        print(f"claude is not installed: {agents.INSTALL_HINT}", file=sys.stderr)
        return 1
    results = []
    for variant in ("bundled", "alternating"):
        results.append(_doomed_once(variant))
    for variant, invocations, question_kind, seconds in results:
        print(
            f"doomed_to_fail ({variant} script): {invocations} agent invocations, then stopped "
            f"({question_kind}); cap max_attempts = 3; {seconds:.1f} s"
        )
    ok = all(n <= 3 for _, n, _, _ in results) and results[1][1] == 3
    print("target: invocations == cap, or fewer on a detected loop ->", "OK" if ok else "WRONG")
    return 0 if ok else 1


def _doomed_once(variant: str) -> tuple[str, int, str, float]:
    from kinfra.testing import agents, bundled
    from kinfra.testing.example import make_example_project
    from kinfra.testing.model_server import ModelServer, RunCommand, WriteFile, done

    with tempfile.TemporaryDirectory(prefix="kinfra-bench-") as tmp, ModelServer() as server:
        root = Path(tmp)
        os.environ["KINFRA_HOME"] = str(root / "home")
        bin_dir = agents.bin_dir(root / "agent-bin", "claude")
        env = {
            **os.environ,
            **agents.claude_env(server.url),
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        }
        os.environ.update(env)
        repo = make_example_project(
            root,
            "bench",
            with_origin=False,
            extra_config=bundled.shop_orchestrator_config(
                allowed_tools=["Bash", "Edit", "Read", "Write"]
            ),
        )
        key = "Task 1.1 of milestone M1 (Doomed to fail)"
        if variant == "bundled":
            bundled.mock_scripts(server, "doomed_to_fail")
        else:  # no file, a file, no file again: three different failures, no loop
            server.script(
                done("nothing to write"),
                WriteFile("app/data.bin", "zero\n"),
                done("wrote app/data.bin"),
                RunCommand("rm app/data.bin"),
                done("removed it again"),
                key=key,
            )
        from kinfra.orch.runloop import RunOptions, run_plan

        started = time.monotonic()
        summary = run_plan(RunOptions(bundled.plan_path(repo, "doomed_to_fail"), workdir=repo))
        seconds = time.monotonic() - started
        attempts = summary.state.task("1.1").attempts
        (question,) = summary.state.open_questions()
        stray = server.stray()
        if stray:
            raise SystemExit(f"claude reached beyond the mock: {stray}")
        return variant, len(attempts), question.kind.value, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", default="overhead", choices=("overhead", "doomed"))
    parser.add_argument("--tasks", type=int, default=30)
    args: Any = parser.parse_args()
    if args.mode == "doomed":
        return doomed()
    if args.tasks < 20:
        parser.error("use at least 20 tasks")
    return overhead(args.tasks)


if __name__ == "__main__":
    sys.exit(main())
