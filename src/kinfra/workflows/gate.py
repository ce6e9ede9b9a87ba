"""The startability gate: what must hold before a slot counts as up.

Containers running and healthy is compose's job (``up --wait``); this checks
what compose cannot: each worker service runs as many replicas as the
slot's profile says, and the configured HTTP/TCP checks pass, each within
its own time budget, skipping a check whose prerequisite failed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

from kinfra.adapters import compose, netcheck
from kinfra.domain.config import Config
from kinfra.domain.config_stack import CheckType, HealthCheck
from kinfra.domain.slot import Slot


class Outcome(str, Enum):
    """How one gate check ended."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class CheckResult:
    """One gate check: what it probed, how it ended and why, how long it took."""

    name: str
    target: str  # the URL or host:port probed
    outcome: Outcome
    detail: str
    seconds: float


def run_gate(
    config: Config, slot: Slot, on_result: Callable[[CheckResult], None]
) -> list[CheckResult]:
    """Every gate step after ``up --wait``: the workers, then the checks."""
    return worker_checks(slot, on_result) + run_checks(config, slot, on_result)


def check_target(check: HealthCheck, slot: Slot) -> str:
    return _target(check, slot.check_host, slot.ports[check.port])


def _target(check: HealthCheck, host: str, port: int) -> str:
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return f"http://{netloc}{check.path}" if check.type is CheckType.HTTP else netloc


def run_checks(
    config: Config, slot: Slot, on_result: Callable[[CheckResult], None]
) -> list[CheckResult]:
    return probe_checks(config.checks, lambda c: (slot.check_host, slot.ports[c.port]), on_result)


def probe_checks(
    checks: Sequence[HealthCheck],
    locate: Callable[[HealthCheck], tuple[str, int] | str],
    on_result: Callable[[CheckResult], None],
) -> list[CheckResult]:
    """The checks, in order, against any address: ``locate`` gives a check's
    (host, port), or the reason it has none (a deploy target that does not
    publish the port), which fails it. A check whose prerequisite did not
    pass is skipped, not waited for."""
    results: dict[str, CheckResult] = {}
    for check in checks:
        where = locate(check)
        blocked = [n for n in check.needs if results[n].outcome is not Outcome.PASSED]
        if isinstance(where, str):
            result = CheckResult(check.name, check.port, Outcome.FAILED, where, 0.0)
        elif blocked:
            target = _target(check, *where)
            result = CheckResult(
                check.name, target, Outcome.SKIPPED, f"needs {', '.join(blocked)}", 0.0
            )
        else:
            result = _probe(check, *where)
        results[check.name] = result
        on_result(result)
    return list(results.values())


def _probe(check: HealthCheck, host: str, port: int) -> CheckResult:
    target = _target(check, host, port)
    if check.type is CheckType.HTTP:
        probe = lambda: netcheck.http_probe(target, check.expect)  # noqa: E731
    else:
        probe = lambda: netcheck.tcp_probe(host, port)  # noqa: E731
    last, seconds = netcheck.poll(probe, check.timeout)
    outcome = Outcome.PASSED if last.ok else Outcome.FAILED
    detail = last.detail if last.ok else f"{last.detail} after {check.timeout:g}s"
    return CheckResult(check.name, target, outcome, detail, seconds)


_WORKER_WAIT = 30.0


def worker_checks(slot: Slot, on_result: Callable[[CheckResult], None]) -> list[CheckResult]:
    """Each worker service runs as many replicas as the profile says."""
    if not slot.workers:
        return []
    expected = dict(slot.workers)
    started = time.monotonic()
    running: dict[str, int] = {}
    while True:
        counts = compose.running_services(slot.compose_project)
        running = {service: counts.get(service, 0) for service in expected}
        if running == expected or time.monotonic() - started > _WORKER_WAIT:
            break
        time.sleep(0.5)
    seconds = time.monotonic() - started
    results = []
    for service, want in expected.items():
        have = running[service]
        outcome = Outcome.PASSED if have == want else Outcome.FAILED
        detail = f"{have}/{want} running ({slot.profile.value} profile)"
        result = CheckResult(f"workers:{service}", service, outcome, detail, seconds)
        on_result(result)
        results.append(result)
    return results
