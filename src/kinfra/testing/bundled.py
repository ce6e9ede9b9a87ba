"""The seven bundled plans (seed 001) and how tests drive them.

The plans live in the shop example (``examples/shop/docs/designs/<name>/
implementation/M1_<name>.md``), so a copy of the example (``make_example_
project``) carries them and ``kinfra impl <name>/M1`` finds them. Their E2E
suite is ``examples/shop/e2e/check.py``.

``FAKE`` gives, per plan, what the fake Claude Code does (tests of the run
loop); ``mock_scripts`` what the mock model answers the real ``claude``, so
that the real CLI does the same work through its own tools.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kinfra.testing.model_server import ModelServer, Reply, RunCommand, Step, WriteFile, done

PLANS = (
    "hello_world",
    "health_check",
    "three_tasks_clean",
    "ambiguous_task",
    "doomed_to_fail",
    "e2e_will_pass",
    "e2e_will_fail_fixable",
)
E2E_PLANS = ("e2e_will_pass", "e2e_will_fail_fixable")
TITLES = {  # each plan's "# Milestone 1: <title>"
    "hello_world": "Hello world",
    "health_check": "Health check",
    "three_tasks_clean": "Three clean tasks",
    "ambiguous_task": "Ambiguous task",
    "doomed_to_fail": "Doomed to fail",
    "e2e_will_pass": "E2E will pass",
    "e2e_will_fail_fixable": "E2E will fail, fixably",
}
E2E_COMMAND = "python3 e2e/check.py"  # the shop example's E2E suite
CURRENCY_QUESTION = "Which currency should the prices be in?"
CART = '{"items": []}\n'
CART_FIXED = '{"items": [], "total": 0}\n'


def plan_path(root: Path, name: str) -> Path:
    return root / "docs" / "designs" / name / "implementation" / f"M1_{name}.md"


def _writes(files: Mapping[str, str], **extra: Any) -> dict[str, Any]:
    return {"name": "success", "write": dict(files), **extra}


_PRICES = '{"currency": "EUR", "apple": 0.5, "bread": 2.2, "milk": 1.1}\n'

# The fake agent's scenario per plan: task id -> spec(s) (see testing/fake_claude.py).
FAKE: dict[str, dict[str, Any]] = {
    # an API error first: the backoff waits it out, no attempt used
    "hello_world": {"1.1": ["api_error", _writes({"app/hello.txt": "hello world\n"})]},
    "health_check": {
        "1.1": _writes({"app/health.json": '{"status": "ok", "service": "shop"}\n'}),
        "1.2": _writes(
            {
                "scripts/health.sh": 'wget -qO- "$API_URL/app/health.json" '
                '| grep -q \'"status": "ok"\'\n'
            }
        ),
        "1.3": _writes({"app/HEALTH.md": "`scripts/health.sh` checks app/health.json.\n"}),
    },
    "three_tasks_clean": {
        "1.1": _writes({"app/one.txt": "one\n"}),
        "1.2": _writes({"app/two.txt": "two\n"}),
        "1.3": _writes({"app/three.txt": "three\n"}),
    },
    "ambiguous_task": {
        "1.1": [
            _writes(
                {},
                final="The currency is not decided.\n\nSTATUS: needs_human\n"
                f"QUESTION: {CURRENCY_QUESTION}\nSUMMARY: products listed, currency open",
            ),
            _writes({"app/prices.json": _PRICES}),
        ]
    },
    # the check can never pass; the same failure twice: a loop
    "doomed_to_fail": {"1.1": _writes({"app/data.bin": "zero\n"})},
    "e2e_will_pass": {"1.1": _writes({"app/status.json": '{"status": "ok"}\n'})},
    "e2e_will_fail_fixable": {
        "1.1": _writes({"app/cart.json": CART}),
        "E2E-fix": _writes({"app/cart.json": CART_FIXED}),
    },
}


def fake_scenario(name: str) -> dict[str, Any]:
    """The fake agent's scenario document for plan ``name`` (default: a plain success)."""
    return {"default": "success", "tasks": FAKE[name]}


def write_fake_scenario(path: Path, name: str, log: Path) -> None:
    path.write_text(json.dumps({**fake_scenario(name), "log": str(log)}), encoding="utf-8")


def mock_scripts(server: ModelServer, name: str) -> None:
    """Script the mock model so that the real ``claude`` works plan ``name``
    through its own tools (Write, Bash). The E2E command (kinfra's) and the
    checks run for real on what it wrote."""
    steps: dict[str, list[Step]] = {
        "ambiguous_task": [
            RunCommand("ls app"),
            Reply(
                "The plan leaves the currency open.\n\nSTATUS: needs_human\n"
                f"QUESTION: {CURRENCY_QUESTION}\nSUMMARY: products listed, currency open"
            ),
            # after the answer, in the same session
            WriteFile("app/prices.json", _PRICES),
            done("wrote app/prices.json in EUR"),
        ],
        "doomed_to_fail": [
            WriteFile("app/data.bin", "zero\n"),
            done("wrote app/data.bin"),
            WriteFile("app/data.bin", "still zero\n"),
            done("rewrote app/data.bin"),
            WriteFile("app/data.bin", "zero, third try\n"),
            done("rewrote app/data.bin again"),
        ],
        "e2e_will_fail_fixable": [WriteFile("app/cart.json", CART), done("wrote app/cart.json")],
        "e2e_will_pass": [
            WriteFile("app/status.json", '{"status": "ok"}\n'),
            done("wrote app/status.json"),
        ],
        "hello_world": [WriteFile("app/hello.txt", "hello world\n"), done("wrote app/hello.txt")],
    }
    if name not in steps:
        raise KeyError(f"no mock script for plan {name}")
    # Keys name the plan (its title is in every prompt), so that one mock
    # serves several plans; a resumed session resends its first prompt.
    title = TITLES[name]
    server.script(*steps[name], key=f"Task 1.1 of milestone M1 ({title})")
    if name == "e2e_will_fail_fixable":
        server.script(
            RunCommand("cat app/cart.json"),
            WriteFile("app/cart.json", CART_FIXED),
            done("added the cart's total"),
            key=f"The E2E test of milestone M1 ({title}) failed",
        )
    if name == "e2e_will_pass":
        fetch = (
            'python3 -c "import os, urllib.request; print(urllib.request.urlopen('
            "os.environ['API_URL'] + '/app/status.json').read().decode())\""
        )
        server.script(
            RunCommand(fetch),
            Reply(
                "Both steps gave their expected result.\n\nE2E: pass\n"
                'EVIDENCE: GET $API_URL/app/status.json -> 200 {"status": "ok"}'
            ),
            key=f"Run the E2E test of milestone M1 ({title})",
        )


def shop_orchestrator_config(**keys: Any) -> str:
    """An ``[orchestrator]`` table for the example project's kinfra.toml."""
    lines = ["", "[orchestrator]"]
    for key, value in keys.items():
        lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


def make_shop(parent: Path, prefix: str, **orchestrator: Any) -> tuple[Path, dict[str, Path]]:
    """A copy of the shop example (``prefix``: the test's docker prefix) with
    its slots provisioned and an impl worktree, on its own running slot, for
    each E2E plan; ``orchestrator`` keys go into its ``[orchestrator]``.
    Returns the main checkout and the E2E plans' worktrees."""
    from kinfra.testing.example import kinfra, make_example_project

    repo = make_example_project(
        parent,
        prefix,
        pool_size=len(E2E_PLANS),
        extra_config=shop_orchestrator_config(**orchestrator),
    )
    result = kinfra(repo, "sandbox", "provision")
    if result.returncode != 0:
        raise AssertionError(result.stderr)
    worktrees = {}
    for name in E2E_PLANS:
        result = kinfra(repo, "impl", f"{name}/M1")
        if result.returncode != 0:
            raise AssertionError(result.stderr)
        worktrees[name] = (parent / f"{prefix}-impl-{name}-M1").resolve()
    return repo, worktrees


def run_fake_plan(
    scenario_file: Path,
    log: Path,
    name: str,
    where: Path,
    *,
    resume: bool = False,
    restart: bool = False,
    on_event: Any = None,
) -> Any:
    """Run plan ``name`` in ``where`` with the fake agent following ``FAKE``
    (its invocations logged to ``log``); the RunSummary."""
    from kinfra.orch.runloop import RunOptions, run_plan

    write_fake_scenario(scenario_file, name, log)
    options = RunOptions(plan_path(where, name), workdir=where, kill_grace=0.5, restart=restart)
    return run_plan(options, resume=resume, on_event=on_event)
