"""Orchestrator overhead, two ways.

Default (fake agent): a generated plan of N tasks (default 30) with the fake
Claude Code in its 'instant' scenario (init event, result event, exit) inside a
real git repo, with the default embedded telemetry (JSON lines) and atomic
state writes. For each task: overhead = the orchestrator's wall time for the
task (prompt, state transitions with fsync, bookkeeping, spans, metrics) minus
the agent process's own wall time (spawn to exit). Target: median <= 50 ms.

--real-claude: the pinned real ``claude`` CLI on the mock model server, a plan
of 10 tasks (each: the model writes a file, then reports STATUS: done). A is
``kinfra orch run --restart PLAN`` as users run it; B is a shell loop running
the same ``claude -p`` invocations bare (same flags, prompts, config dir, cwd
and model answers, fresh session ids). Paired A B A B after one warm-up pair;
the median of A/B over the pairs. Target: <= 1.05. It also prints A over the
wall time of A's own claude processes (from the run's state): the same ratio
measured inside one run, which load on a shared machine does not blur.

    .venv/bin/python benchmarks/orch_overhead.py [--tasks 30]
    .venv/bin/python benchmarks/orch_overhead.py --real-claude [--pairs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

TARGET_MS = 50.0
TARGET_RATIO = 1.05
REAL_TASKS = 10


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=30)
    parser.add_argument("--real-claude", action="store_true", help="the real claude on the mock")
    parser.add_argument("--pairs", type=int, default=5, help="A B pairs (--real-claude)")
    args = parser.parse_args()
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # users have the bytecode cache
    if args.real_claude:
        return real_claude(args.pairs)
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
        fake_claude.install(str(bin_dir))
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


def _plan(path: Path, tasks: int) -> Path:
    path.write_text(
        "# Milestone 9: Bench\n\n"
        + "".join(
            f"## Task 9.{i}: Task {i}\n\n**Acceptance Criteria:**\n- out_{i}.txt exists\n\n"
            for i in range(1, tasks + 1)
        )
    )
    return path


def real_claude(pairs: int) -> int:
    from dataclasses import replace

    from kinfra.orch.agents.base import AgentRequest
    from kinfra.orch.agents.claude import ClaudeAgent
    from kinfra.orch.context import resolve_context
    from kinfra.orch.plan import read_plan
    from kinfra.orch.prompt import task_prompt
    from kinfra.testing import agents
    from kinfra.testing.benchtime import timed
    from kinfra.testing.gitrepo import commit_all, make_repo
    from kinfra.testing.model_server import ModelServer, WriteFile, done

    if agents.missing("claude"):
        print(f"claude not installed: {agents.INSTALL_HINT}", file=sys.stderr)
        return 1
    claude = agents.agent_binary("claude")
    runs = 2 * (pairs + 1)  # warm-up pair included
    with tempfile.TemporaryDirectory(prefix="kinfra-bench-") as tmp, ModelServer() as server:
        root = Path(tmp)
        os.environ["KINFRA_HOME"] = str(root / "home")
        os.environ.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        os.environ.update(agents.claude_env(server.url))
        os.environ["PATH"] = f"{claude.parent}{os.pathsep}{os.environ['PATH']}"
        repo = make_repo(root, "app", with_origin=False)
        (repo / "kinfra.toml").write_text(
            '[project]\nname = "app"\n\n[orchestrator]\nallowed_tools = ["Write", "Read"]\n'
        )
        commit_all(repo, "kinfra.toml")
        plan_path = _plan(root / "M9_bench.md", REAL_TASKS)
        plan = read_plan(plan_path)
        for i in range(1, REAL_TASKS + 1):
            answers = [WriteFile(f"out_{i}.txt", f"task {i}\n"), done(f"wrote out_{i}.txt")]
            server.script(*(answers * runs), key=f"Task 9.{i} of milestone")

        # B: what kinfra runs for each task, bare: the same argv, prompt, env, cwd.
        ctx = resolve_context(repo)
        settings = ctx.settings
        config_dir = ctx.agent_dir("claude")
        config_dir.mkdir(parents=True, exist_ok=True)
        prompts = []
        for task in plan.tasks:
            prompt = root / f"prompt-{task.id}.txt"
            prompt.write_text(task_prompt(plan, task, slot_env=ctx.slot_env, test_command=None))
            prompts.append(prompt)

        def bare_script() -> Path:
            lines = [f"export CLAUDE_CONFIG_DIR={shlex.quote(str(config_dir))}"]
            for number, prompt in enumerate(prompts, start=1):
                request = AgentRequest(
                    prompt="",
                    workdir=repo,
                    max_turns=settings.max_turns,
                    timeout=settings.task_timeout,
                    idle_timeout=settings.idle_timeout,
                    new_session=str(uuid.uuid4()),
                )
                argv = ClaudeAgent(replace(settings, agent="claude"), str(claude)).argv(request)
                lines.append(f"{shlex.join(argv)} < {prompt} > {root}/bare-{number}.jsonl")
            script = root / "bare.sh"
            script.write_text("set -e\n" + "\n".join(lines) + "\n")
            return script

        kinfra = [str(Path(sys.executable).parent / "kinfra"), "orch", "run", "--restart"]
        state_path = ctx.state_path("M9")
        ratios: list[float] = []
        own: list[float] = []  # A over the wall time of A's own agent processes
        walls: list[tuple[float, float]] = []
        for pair in range(pairs + 1):
            a = timed([*kinfra, str(plan_path)], repo)
            state = json.loads(state_path.read_text())
            agents_wall = sum(t["attempts"][-1]["duration"] for t in state["tasks"])
            b = timed(["sh", str(bare_script())], repo)
            done_lines = [
                (root / f"bare-{n}.jsonl").read_text().count('"subtype":"success"')
                for n in range(1, REAL_TASKS + 1)
            ]
            if done_lines != [1] * REAL_TASKS:
                print(f"a bare run did not succeed: {done_lines}", file=sys.stderr)
                return 1
            if pair:  # the first pair warms the caches
                ratios.append(a / b)
                own.append(a / agents_wall)
                walls.append((a, b))
        stray = server.stray()
    median = statistics.median(ratios)
    a_med = statistics.median(w[0] for w in walls)
    b_med = statistics.median(w[1] for w in walls)
    print(
        f"real claude {claude.parent.parent.parent.name}, {REAL_TASKS} tasks per run "
        f"(Write + final message each), {pairs} pairs after a warm-up pair"
    )
    print(f"kinfra orch run: median {a_med:.2f} s; bare claude -p loop: median {b_med:.2f} s")
    print(f"ratios: {', '.join(f'{r:.3f}' for r in ratios)}")
    print(
        f"per task: kinfra {a_med / REAL_TASKS * 1000:.0f} ms, bare {b_med / REAL_TASKS * 1000:.0f} ms "
        f"(+{(a_med - b_med) / REAL_TASKS * 1000:.0f} ms)"
    )
    print(
        f"kinfra orch run over its own claude processes' wall time (same run, immune to "
        f"load between runs): median {statistics.median(own):.3f} "
        f"({', '.join(f'{r:.3f}' for r in own)})"
    )
    print(f"stray requests at the mock: {len(stray)}")
    verdict = "OK" if median <= TARGET_RATIO else "OVER TARGET"
    print(f"target: median ratio <= {TARGET_RATIO} -> {median:.3f} {verdict}")
    return 0 if median <= TARGET_RATIO and not stray else 1


if __name__ == "__main__":
    sys.exit(main())
