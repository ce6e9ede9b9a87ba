"""The startability gate: what must hold before a slot counts as up.

Containers running and healthy is compose's job (``up --wait``); this runs
the configured HTTP/TCP checks afterwards, each within its own time budget,
skipping a check whose prerequisite failed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from kinfra.adapters import netcheck
from kinfra.domain.config import CheckType, Config, HealthCheck
from kinfra.domain.slotplan import SlotPlan


class Outcome(str, Enum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class CheckResult:
    name: str
    target: str  # the URL or host:port probed
    outcome: Outcome
    detail: str
    seconds: float


def check_target(check: HealthCheck, plan: SlotPlan) -> str:
    port = plan.ports[check.port]
    if check.type is CheckType.HTTP:
        return f"http://{plan.check_netloc_host}:{port}{check.path}"
    return f"{plan.check_netloc_host}:{port}"


def run_checks(
    config: Config, plan: SlotPlan, on_result: Callable[[CheckResult], None]
) -> list[CheckResult]:
    results: dict[str, CheckResult] = {}
    for check in config.checks:
        target = check_target(check, plan)
        blocked = [n for n in check.needs if results[n].outcome is not Outcome.PASSED]
        if blocked:
            result = CheckResult(
                check.name, target, Outcome.SKIPPED, f"needs {', '.join(blocked)}", 0.0
            )
        else:
            probe = _probe_for(check, plan, target)
            last, seconds = netcheck.poll(probe, check.timeout)
            outcome = Outcome.PASSED if last.ok else Outcome.FAILED
            detail = last.detail if last.ok else f"{last.detail} after {check.timeout:g}s"
            result = CheckResult(check.name, target, outcome, detail, seconds)
        results[check.name] = result
        on_result(result)
    return list(results.values())


def _probe_for(
    check: HealthCheck, plan: SlotPlan, target: str
) -> Callable[[], netcheck.ProbeResult]:
    if check.type is CheckType.HTTP:
        return lambda: netcheck.http_probe(target, check.expect)
    port = plan.ports[check.port]
    return lambda: netcheck.tcp_probe(plan.check_host, port)
