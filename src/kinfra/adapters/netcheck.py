"""Host-side network probes: is a port free, does an HTTP or TCP check pass.

Portable (sockets only, no /proc or ss), so it behaves the same on Linux and
on macOS with Docker Desktop.
"""

from __future__ import annotations

import errno
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from kinfra.errors import ConfigError


def port_is_free(host: str, port: int) -> bool:
    """True when nothing listens on host:port.

    Two probes: binding the address (what Docker will have to do), and a
    connect to loopback, because on macOS a bind to 127.0.0.1 succeeds even
    while another process listens on the wildcard address.
    """
    if tcp_probe("127.0.0.1", port, timeout=0.5).ok:
        return False
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:  # IPv6 switched off, say
        raise _not_here(host) from exc
    with sock:
        # Without SO_REUSEADDR a port in TIME_WAIT reads as busy on Linux; with
        # it, only a real listener (or a bound socket) makes bind fail.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except socket.gaierror as exc:  # a name, not an address
            raise _not_here(host) from exc
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            if exc.errno == errno.EADDRNOTAVAIL:
                raise _not_here(host) from exc
            raise
    return True


def _not_here(host: str) -> ConfigError:
    return ConfigError(
        f"[sandbox] bind address {host} is not an address of this machine",
        hint="set [sandbox] bind in kinfra.toml to 127.0.0.1 (the default), 0.0.0.0, "
        "or an address of one of this machine's interfaces",
    )


@dataclass(frozen=True)
class ProbeResult:
    """Whether an HTTP or TCP probe passed, and a short reason for messages."""

    ok: bool
    detail: str  # "200", "connection refused", "status 503 (expected 200)"...


def tcp_probe(host: str, port: int, timeout: float = 2.0) -> ProbeResult:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return ProbeResult(True, "accepting connections")
    except OSError as exc:
        return ProbeResult(False, exc.strerror or str(exc))


def listening(host: str, port: int, timeout: float = 0.25) -> bool:
    """Whether something accepts connections on an IP address's port now.

    A bare connect on a numeric address: ~10 µs a port where
    ``create_connection`` (a name lookup first) takes ~100, which counts when
    `kinfra ports` looks at every port of every project."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        return sock.connect_ex((host, port)) == 0


def http_probe(url: str, expect: int, timeout: float = 3.0) -> ProbeResult:
    # http.client rather than an HTTP library: one GET on loopback needs
    # nothing more, and it imports in a few ms where httpx takes ~50.
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    connection = connection_class(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        connection.request("GET", parts.path or "/")
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        return ProbeResult(False, getattr(exc, "strerror", None) or type(exc).__name__)
    finally:
        connection.close()
    if status == expect:
        return ProbeResult(True, str(status))
    return ProbeResult(False, f"status {status} (expected {expect})")


def poll(
    probe: Callable[[], ProbeResult], budget: float, interval: float = 0.25
) -> tuple[ProbeResult, float]:
    """Repeat ``probe`` until it passes or ``budget`` seconds have gone.

    Returns the last result and the time taken. Always probes at least once.
    """
    start = time.monotonic()
    deadline = start + budget
    while True:
        result = probe()
        now = time.monotonic()
        if result.ok or now >= deadline:
            return result, now - start
        time.sleep(min(interval, max(0.0, deadline - now)))
        interval = min(interval * 1.5, 1.0)
