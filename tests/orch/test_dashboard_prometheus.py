"""Every panel of the Grafana dashboard against a real Prometheus (Debian's)
that scrapes ``kinfra orch metrics --listen`` while the bundled plans run:
each panel's PromQL must return at least one series, with a real number."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from kinfra.orch.escalation import record_answer
from kinfra.testing import bundled
from kinfra.testing.ci import unavailable
from kinfra.testing.example import kinfra
from kinfra.testing.prometheus import INSTALL_HINT, Prometheus, binary, free_port

if TYPE_CHECKING:
    from conftest import Agentry

# What Grafana puts in for its variables, over a window holding both rounds.
VARIABLES = {"$__rate_interval": "15m", "$__range": "15m"}


def _need_prometheus() -> None:
    if binary() is None:
        unavailable(f"prometheus not installed: {INSTALL_HINT}")


def _round(agentry: Agentry, repo: Path, worktrees: dict[str, Path], restart: bool) -> None:
    """Every bundled plan once, to its designed end (ambiguous_task answered)."""

    def run(name: str, where: Path, **kw: bool) -> str:
        log = agentry.log.with_name(f"{name}-{'2' if restart else '1'}.jsonl")
        summary = bundled.run_fake_plan(agentry.scenario_file, log, name, where, **kw)
        return str(summary.outcome)

    for name in bundled.PLANS:
        where = worktrees.get(name, repo)
        outcome = run(name, where, restart=restart)
        if name == "ambiguous_task":
            assert outcome == "needs_human"
            record_answer(bundled.plan_path(repo, name), "EUR", repo)
            outcome = run(name, where, resume=True)
        expected = "needs_human" if name == "doomed_to_fail" else "done"
        assert outcome == expected, name


def test_every_dashboard_panel_shows_real_data_in_prometheus(
    agentry: Agentry, tmp_path: Path, docker_prefix: str, kinfra_home: Path
) -> None:
    _need_prometheus()
    repo, worktrees = bundled.make_shop(
        tmp_path,
        docker_prefix,
        e2e=bundled.E2E_COMMAND,
        backoff=[0.1, 0.1],
    )
    dashboard_file = tmp_path / "dashboard.json"
    assert kinfra(repo, "orch", "dashboard", "-o", str(dashboard_file)).returncode == 0
    dashboard = json.loads(dashboard_file.read_text())
    panels = [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p["targets"]]
    assert len({title for title, _ in panels}) >= 6

    port = free_port()
    exporter = subprocess.Popen(
        [sys.executable, "-m", "kinfra", "orch", "metrics", "--listen", f"127.0.0.1:{port}"],
        env={**os.environ, "KINFRA_HOME": str(kinfra_home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with Prometheus(tmp_path / "prometheus", f"127.0.0.1:{port}") as prom:
            prom.wait_scrapes(1)
            _round(agentry, repo, worktrees, restart=False)
            prom.wait_scrapes(2)
            # A second round moves every counter: Prometheus's increase() and
            # rate() need two samples of a series, and a series' first sample
            # counts as its start.
            _round(agentry, repo, worktrees, restart=True)
            prom.wait_scrapes(2)

            up = prom.query('up{job="kinfra"}')["result"]
            assert [r["value"][1] for r in up] == ["1"]
            empty = []
            results: dict[str, list[float]] = {}
            for title, expr in panels:
                query = expr.replace("$project", docker_prefix)
                for name, value in VARIABLES.items():
                    query = query.replace(name, value)
                assert "$" not in query, query
                data = prom.query(query)
                assert data["resultType"] == "vector", (title, data)
                values = [float(r["value"][1]) for r in data["result"]]
                results[title] = values
                if not values or not all(math.isfinite(v) for v in values):
                    empty.append((title, query, data["result"]))
            assert empty == [], "panels without real data:\n" + "\n".join(map(str, empty))
            assert results["Open questions"] == [1.0]  # doomed_to_fail's, waiting
            assert 0 < results["Task success rate"][0] < 1  # doomed_to_fail never succeeds
            # a query for a metric kinfra never emits finds nothing: the check bites
            assert prom.query('kinfra_orch_never_emitted_total{kinfra_project=~".*"}') == {
                "resultType": "vector",
                "result": [],
            }
    finally:
        exporter.send_signal(signal.SIGINT)
        _, stderr = exporter.communicate(timeout=20)
    assert exporter.returncode == 130, stderr
    assert f"serving http://127.0.0.1:{port}/metrics" in stderr

    # the page itself: the exposition format, with help and types
    page = kinfra(repo, "orch", "metrics").stdout
    assert "# TYPE kinfra_orch_tasks_total counter" in page
    assert "# TYPE gen_ai_client_token_usage histogram" in page
    assert (
        f'kinfra_orch_questions_open{{kinfra_milestone="doomed_to_fail-M1",kinfra_project="{docker_prefix}"}} 1'
        in page
    )
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)
