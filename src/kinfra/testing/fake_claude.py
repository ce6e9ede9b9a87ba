#!/usr/bin/env python3
"""A fake Claude Code for tests and benchmarks: a real executable that speaks
``claude -p --output-format stream-json --verbose`` and follows a scenario.

Standard library only, so it starts fast under any python3.

Scenario (env ``FAKE_AGENT_SCENARIO``): a scenario name, or the path of a JSON
file ``{"default": <spec>, "tasks": {"4.1": <spec> | [<spec>, ...]}, "log": path}``
where a spec is a name or ``{"name": ..., "cost": 0.25, "seconds": 30}``. A
list gives the spec of each successive invocation for that task (the last one
repeats). The task id comes from ``KINFRA_TASK_ID`` (set by the orchestrator;
``E2E`` for the E2E step and its fixes). A success spec may name the files to
write (``"write": {"app/x.txt": "text"}``) and its final message (``"final"``,
e.g. an ``E2E: pass`` report); ``api_error`` takes a ``"final"`` text too.

Each invocation is appended to the log (``FAKE_AGENT_LOG`` or the file's
"log") as one JSON line: argv, task, scenario, cwd, session id, TRACEPARENT,
pid (and the child pid of the hang scenario), so tests can assert
``--resume <sid>`` and that a killed group is gone.

Scenarios: success (edits a file in cwd), instant, done (explicit STATUS:
done), max_turns, api_error (subtype success + is_error true), hang (ignores
SIGINT/SIGTERM, as does a child it spawns), crash (exits mid-stream, no
result), needs_human, blocked, slow (an event every 0.1 s for "seconds").
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from typing import Any

MODEL = "claude-sonnet-4-5-20250929"


def install(bin_dir: str) -> str:
    """Put a ``claude`` running this fake into ``bin_dir`` (to go first on
    PATH); its path."""
    os.makedirs(bin_dir, exist_ok=True)
    shim = os.path.join(bin_dir, "claude")
    with open(shim, "w", encoding="utf-8") as handle:
        handle.write(f'#!/bin/sh\nexec "{sys.executable}" "{os.path.abspath(__file__)}" "$@"\n')
    os.chmod(shim, 0o755)
    return shim


def _args(argv: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("--max-turns", "--resume", "--session-id", "--model", "--output-format"):
            if i + 1 < len(argv):
                found[arg] = argv[i + 1]
            i += 2
            continue
        i += 1
    return found


def _scenario(task: str) -> tuple[dict[str, Any], str | None]:
    raw = os.environ.get("FAKE_AGENT_SCENARIO", "success")
    log = os.environ.get("FAKE_AGENT_LOG")
    if not os.path.isfile(raw):
        return {"name": raw}, log
    with open(raw, encoding="utf-8") as handle:
        config = json.load(handle)
    log = log or config.get("log")
    spec: Any = config.get("tasks", {}).get(task, config.get("default", "success"))
    if isinstance(spec, list):
        previous = 0
        if log and os.path.exists(log):
            with open(log, encoding="utf-8") as handle:
                for line in handle:
                    with contextlib.suppress(ValueError):
                        previous += json.loads(line).get("task") == task
        spec = spec[min(previous, len(spec) - 1)]
    if isinstance(spec, str):
        spec = {"name": spec}
    return dict(spec), log


def _emit(event: dict[str, Any]) -> None:
    try:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader is gone (orchestrator killed): die like a real CLI would.
        os._exit(141)


def _usage(inp: int, out: int) -> dict[str, Any]:
    return {
        "input_tokens": inp,
        "output_tokens": out,
        "cache_creation_input_tokens": 100,
        "cache_read_input_tokens": 2000,
        "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0},
        "service_tier": "standard",
    }


class Session:
    """One fake session: writes its stream-json events to stdout."""

    def __init__(self, session_id: str, cwd: str) -> None:
        self.session_id = session_id
        self.cwd = cwd
        self.turns = 0
        self.started = time.monotonic()

    def init(self) -> None:
        _emit(
            {
                "type": "system",
                "subtype": "init",
                "cwd": self.cwd,
                "session_id": self.session_id,
                "tools": ["Bash", "Edit", "Read", "Write"],
                "mcp_servers": [],
                "model": MODEL,
                "permissionMode": "default",
                "apiKeySource": "none",
            }
        )

    def assistant(self, content: list[dict[str, Any]]) -> None:
        self.turns += 1
        _emit(
            {
                "type": "assistant",
                "message": {
                    "id": f"msg_{self.turns:04d}",
                    "type": "message",
                    "role": "assistant",
                    "model": MODEL,
                    "content": content,
                    "stop_reason": None,
                    "usage": _usage(10, 20),
                },
                "parent_tool_use_id": None,
                "session_id": self.session_id,
            }
        )

    def tool(self, name: str, tool_input: dict[str, Any], output: str) -> None:
        tool_id = f"toolu_{uuid.uuid4().hex[:12]}"
        self.assistant([{"type": "tool_use", "id": tool_id, "name": name, "input": tool_input}])
        _emit(
            {
                "type": "user",
                "message": {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": tool_id, "content": output}],
                },
                "parent_tool_use_id": None,
                "session_id": self.session_id,
            }
        )

    def result(
        self, text: str, *, subtype: str = "success", is_error: bool = False, cost: float
    ) -> None:
        event: dict[str, Any] = {
            "type": "result",
            "subtype": subtype,
            "is_error": is_error,
            "duration_ms": int((time.monotonic() - self.started) * 1000),
            "duration_api_ms": 1234,
            "num_turns": self.turns,
            "result": text,
            "session_id": self.session_id,
            "total_cost_usd": cost,
            "usage": _usage(100 * self.turns, 50 * self.turns),
            "modelUsage": {
                MODEL: {
                    "inputTokens": 100 * self.turns,
                    "outputTokens": 50 * self.turns,
                    "cacheReadInputTokens": 2000,
                    "cacheCreationInputTokens": 100,
                    "webSearchRequests": 0,
                    "costUSD": cost,
                    "contextWindow": 200000,
                }
            },
            "permission_denials": [],
            "uuid": str(uuid.uuid4()),
        }
        if subtype == "error_max_turns":
            # As the real CLI: the refused turn is counted, the limit is in errors.
            event["terminal_reason"] = "max_turns"
            event["num_turns"] = self.turns + 1
            event["errors"] = [f"Reached maximum number of turns ({self.turns})"]
            del event["result"]
        _emit(event)


def main() -> int:
    argv = sys.argv[1:]
    args = _args(argv)
    task = os.environ.get("KINFRA_TASK_ID", "")
    spec, log = _scenario(task)
    name = spec.get("name", "success")
    cost = float(spec.get("cost", 0.0125))
    prompt = sys.stdin.read() if not sys.stdin.isatty() else ""
    session_id = args.get("--resume") or args.get("--session-id") or str(uuid.uuid4())
    cwd = os.getcwd()
    record: dict[str, Any] = {
        "argv": argv,
        "task": task,
        "scenario": name,
        "cwd": cwd,
        "session_id": session_id,
        "traceparent": os.environ.get("TRACEPARENT"),
        "pid": os.getpid(),
        "prompt_head": prompt[:200],
        "prompt": prompt,
        "env_keys": sorted(os.environ),
        "slot_env": {k: v for k, v in os.environ.items() if k.endswith("_URL")},
    }

    def log_record(extra: dict[str, Any] | None = None) -> None:
        if log:
            with open(log, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({**record, **(extra or {})}) + "\n")

    s = Session(session_id, cwd)
    if name == "hang":
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import signal,time\n"
                "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                "time.sleep(600)\n",
            ]
        )
        log_record({"child_pid": child.pid})
        s.init()
        s.tool("Bash", {"command": "sleep 600"}, "")
        time.sleep(600)
        return 0
    log_record()
    s.init()
    max_turns = int(args.get("--max-turns", "50"))
    if name == "instant":
        s.result(spec.get("final") or "Nothing to do.\n\nSTATUS: done\nSUMMARY: instant", cost=cost)
    elif name in ("success", "done"):
        files = spec.get("write") or {f"fake_agent_{task or 'task'}.txt": None}
        for relative, content in files.items():
            path = os.path.join(cwd, relative)
            s.tool("Read", {"file_path": path}, "File does not exist.")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "a" if content is None else "w", encoding="utf-8") as handle:
                handle.write(
                    content or f"task {task} done by the fake agent (session {session_id})\n"
                )
            s.tool("Write", {"file_path": path, "content": "..."}, "File written.")
        s.tool("Bash", {"command": "make test"}, "all tests passed")
        text = spec.get("final") or f"I implemented task {task} and the tests pass."
        if "final" not in spec and (name == "done" or spec.get("status", True)):
            text += f"\n\nSTATUS: done\nQUESTION: none\nSUMMARY: wrote {', '.join(files)}"
        s.assistant([{"type": "text", "text": text}])
        s.result(text, cost=cost)
    elif name == "max_turns":
        for i in range(max_turns):
            s.tool("Bash", {"command": f"attempt {i}"}, "still failing")
        s.result("", subtype="error_max_turns", is_error=True, cost=cost)
        return 1
    elif name == "api_error":
        text = spec.get("final") or (
            'API Error: 529 {"type":"error","error":{"type":"overloaded_error",'
            '"message":"Overloaded"}}'
        )
        s.assistant([{"type": "text", "text": text}])
        s.result(text, subtype="success", is_error=True, cost=0.0)
        return 1
    elif name == "crash":
        s.tool("Edit", {"file_path": os.path.join(cwd, "x.py")}, "ok")
        sys.stderr.write("fake claude: simulated crash (segfault)\n")
        sys.stderr.flush()
        return 3
    elif name == "needs_human":
        text = (
            "I could not decide how the override should mount config.\n\n"
            "STATUS: needs_human\n"
            "QUESTION: Should config/ be mounted read-only in the override?\n"
            "SUMMARY: generator written except the config mount"
        )
        s.tool("Read", {"file_path": os.path.join(cwd, "README.md")}, "test repo")
        s.assistant([{"type": "text", "text": text}])
        s.result(text, cost=cost)
    elif name == "blocked":
        text = "The database is down.\n\nSTATUS: blocked\nSUMMARY: cannot reach the database"
        s.assistant([{"type": "text", "text": text}])
        s.result(text, cost=cost)
    elif name == "slow":
        deadline = time.monotonic() + float(spec.get("seconds", 30))
        i = 0
        while time.monotonic() < deadline:
            s.tool("Bash", {"command": f"step {i}"}, "ok")
            i += 1
            time.sleep(0.1)
        text = "Slow work finished.\n\nSTATUS: done\nSUMMARY: slow"
        s.result(text, cost=cost)
    else:
        sys.stderr.write(f"fake claude: unknown scenario {name!r}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
