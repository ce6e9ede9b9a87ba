"""A real Prometheus (Debian's package) for tests: scrape a target, query it.

``scripts/ensure-prometheus.sh`` (run by ``setup.sh``) unpacks Debian's
``prometheus`` into ``$KINFRA_PROMETHEUS_DIR`` (default ``/opt/kinfra-
prometheus``). Each test starts its own server on a free port with its own
data dir, and stops it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

INSTALL_HINT = "run ./scripts/ensure-prometheus.sh (./scripts/setup.sh runs it)"


def binary() -> Path | None:
    """The Prometheus binary ensure-prometheus.sh installed (or one on PATH)."""
    folder = Path(os.environ.get("KINFRA_PROMETHEUS_DIR") or "/opt/kinfra-prometheus")
    candidate = folder / "bin" / "prometheus"
    if candidate.exists():
        return candidate
    found = shutil.which("prometheus")
    return Path(found) if found else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Prometheus:
    """``with Prometheus(folder, target="127.0.0.1:9464") as prom: prom.query(...)``"""

    def __init__(self, folder: Path, target: str, interval: str = "1s") -> None:
        self.folder = folder
        self.target = target
        self.interval = interval
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Prometheus:
        program = binary()
        if program is None:
            raise RuntimeError(f"prometheus is not installed: {INSTALL_HINT}")
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.folder / "prometheus.yml"
        config.write_text(
            "global:\n"
            f"  scrape_interval: {self.interval}\n"
            f"  evaluation_interval: {self.interval}\n"
            "scrape_configs:\n"
            "  - job_name: kinfra\n"
            f"    static_configs: [{{targets: ['{self.target}']}}]\n",
            encoding="utf-8",
        )
        log = (self.folder / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [
                str(program),
                f"--config.file={config}",
                f"--storage.tsdb.path={self.folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self._wait(lambda: self._get("/-/ready") is not None, "ready")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def _get(self, path: str) -> bytes | None:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as response:
                body: bytes = response.read()
                return body
        except OSError:
            return None

    def _wait(self, predicate: Any, what: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if self.proc is not None and self.proc.poll() is not None:
                log = (self.folder / "prometheus.log").read_text(errors="replace")
                raise RuntimeError(f"prometheus exited ({self.proc.returncode}): {log[-2000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"prometheus not {what} after {timeout:g} s")
            time.sleep(0.2)

    def query(self, expr: str) -> dict[str, Any]:
        """The instant query's ``data`` (raises on an error status)."""
        body = self._get("/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        if body is None:
            raise RuntimeError(f"prometheus did not answer the query {expr!r}")
        answer = json.loads(body)
        if answer.get("status") != "success":
            raise RuntimeError(f"query {expr!r} failed: {answer}")
        data: dict[str, Any] = answer["data"]
        return data

    def scrapes(self) -> int:
        """How many scrapes of the target have landed so far."""
        data = self.query('count_over_time(up{job="kinfra"}[1h])')
        result = data.get("result") or []
        return int(float(result[0]["value"][1])) if result else 0

    def wait_scrapes(self, more: int = 2) -> None:
        """Until ``more`` further scrapes have landed."""
        start = self.scrapes()
        self._wait(lambda: self.scrapes() >= start + more, f"scraped {more} more times")
