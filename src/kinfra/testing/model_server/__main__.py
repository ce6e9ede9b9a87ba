"""``python -m kinfra.testing.model_server``: see the package doc."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from kinfra.testing.model_server.server import ModelServer


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kinfra.testing.model_server",
        description="Scripted mock of the Anthropic Messages and OpenAI Responses APIs.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--scenario", type=Path, help='JSON file: {"scripts": [...]}')
    parser.add_argument("--record", type=Path, help="append every request here (JSON lines)")
    args = parser.parse_args(argv)
    server = ModelServer(args.host, args.port, record=args.record)
    if args.scenario:
        server.load(json.loads(args.scenario.read_text(encoding="utf-8")))
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    server.start()
    print(server.url, flush=True)
    try:
        stop.wait()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
