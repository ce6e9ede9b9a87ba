"""The shop example's E2E suite, run by `kinfra orch` as `[orchestrator] e2e`.

kinfra runs it in the worktree with the slot's variables (`API_URL`, the
ports...). It checks what the bundled plans' E2E sections describe, for the
documents that exist in this worktree's `app/` folder, against the running
backend. Exit 0: pass; anything else: fail, with the reasons printed.
"""

import json
import os
import sys
import urllib.request
from pathlib import Path


def get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read().decode())


def main() -> int:
    api = os.environ.get("API_URL")
    if not api:
        print("FAIL: API_URL is not set (run by kinfra with the slot's variables)")
        return 2
    failures = []
    checks = [("api/v1/health", lambda body: body.get("status") == "ok", "status ok")]
    if Path("app/status.json").exists():
        checks.append(("app/status.json", lambda body: body.get("status") == "ok", "status ok"))
    if Path("app/cart.json").exists():
        checks.append(
            ("app/cart.json", lambda body: "items" in body and "total" in body, "items and total")
        )
    for path, ok, wanted in checks:
        url = f"{api}/{path}"
        try:
            body = get(url)
        except (OSError, ValueError) as exc:
            failures.append(f"FAIL {url}: {exc}")
            continue
        if not isinstance(body, dict) or not ok(body):
            failures.append(f"FAIL {url}: expected {wanted}, got {json.dumps(body)}")
        else:
            print(f"ok   {url}: {json.dumps(body)}")
    for line in failures:
        print(line)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
