"""A scripted mock model server for the real ``claude`` and ``codex`` CLIs.

It speaks, streaming (SSE) and not, the two APIs the agents call:

- Anthropic Messages: ``POST /v1/messages`` (Claude Code, ``ANTHROPIC_BASE_URL``);
- OpenAI Responses: ``POST /v1/responses`` (Codex, a custom provider with
  ``wire_api = "responses"`` and ``base_url = <url>/v1``).

Anything else that reaches it (another path, a ``CONNECT`` when it is also the
agents' ``HTTPS_PROXY``, an absolute-URI proxy request) is answered with an
error and recorded as **stray**: tests assert ``server.stray() == []`` to prove
the CLI reached nothing but the mock. ``agent_env``/``codex_home`` give the
isolation settings that make that hold.

Scripts
-------
A script is a list of steps, each step answering one model request::

    server.script(WriteFile("notes.txt", "hi\\n"), done("wrote notes.txt"), key="Task 1.1")
    server.script(*failures(529, 3), done(), key="Task 1.2")   # 529 three times, then done
    server.script(Forever(RunCommand("true")))                  # endless tool calls, any request

Steps: ``Reply(text)`` (a final message; ``done()``/``needs_human()``/
``blocked()`` add the STATUS block), ``WriteFile(path, content)`` (Claude's
``Write`` tool, Codex's ``apply_patch`` or, when the model has none, a shell
command; a relative path is taken from the agent's working directory by the
agent itself), ``RunCommand(cmd)``
(``Bash`` / shell), ``ToolCall(name, input)`` (any tool, API-specific),
``Fail(status)`` (an API error: 429 rate limit, 500, 529 overloaded...;
``failures(status, k)`` gives k of them), ``Hang(seconds)`` (accept the request
and answer nothing), ``Forever(step)`` (never used up). Every step takes
``delay=`` seconds before its answer starts.

**Keys.** ``key`` is text looked for in the request's user messages (not tool
results): the orchestrator's prompt names its task ("Task 1.1"), and a resumed
session resends its first prompt, so one key follows a task across attempts
and sessions. Scripts are tried in the order they were added; a script with
``key=None`` takes the requests no other key matched. Each script has its own
position: several tasks, sessions and agents can be scripted in one run. A
request no script can answer (none matches, or its script is used up) gets
``Reply(UNSCRIPTED)``, which carries no STATUS line.

**Recording.** Every request is kept as a ``Recorded`` (method, path, headers,
parsed body, API, matched key, the step that answered): ``server.requests(key)``,
``server.model_requests()``, ``server.stray()``; ``Recorded.user_texts()`` and
``Recorded.messages`` let a test check what the agent sent (e.g. the earlier
messages of a session on ``--resume``). ``record=path`` also appends them to a
JSON-lines file, for a server in another process.

**Where it listens.** ``ModelServer(host="127.0.0.1", port=0)``; another host
(a Docker bridge gateway, ``0.0.0.0``) when an agent in a container must reach
it. ``server.url`` is the base URL.

From the command line (scripts, demos, benchmarks)::

    python -m kinfra.testing.model_server [--host H] [--port P] [--scenario FILE.json] [--record FILE]

prints the base URL as its first line and serves until SIGINT/SIGTERM. The
scenario file holds ``{"scripts": [{"key": "Task 1.1", "steps": [STEP...]}]}``
where a STEP is one of ``{"reply": text}``, ``{"done": summary}``,
``{"needs_human": question}``, ``{"write_file": {"path": p, "content": c}}``,
``{"run": command}``, ``{"tool": {"name": n, "input": {...}}}``,
``{"fail": status, "times": k, "retry_after": s}``, ``{"hang": seconds}``,
``{"forever": STEP}``, each with an optional ``"delay"``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

UNSCRIPTED = "The mock model server has no scripted answer for this request."
MODEL = "claude-mock-1"  # echoed back when a request names no model
INPUT_TOKENS = 100  # usage reported for every answer: predictable totals for tests
OUTPUT_TOKENS = 20
ANTHROPIC = "anthropic"
OPENAI = "openai"


# --- steps -------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Step:
    delay: float = 0.0  # seconds before the answer starts


@dataclass(frozen=True)
class Reply(Step):
    """A final assistant message (the agent's turn ends)."""

    text: str


@dataclass(frozen=True)
class ToolCall(Step):
    """One tool call, named as the API's client knows it (``Write``, ``Bash``...)."""

    name: str
    input: Mapping[str, Any]


@dataclass(frozen=True)
class WriteFile(Step):
    """Create/overwrite a file: Claude's ``Write`` tool, Codex's ``apply_patch``."""

    path: str
    content: str


@dataclass(frozen=True)
class RunCommand(Step):
    """A shell command: Claude's ``Bash`` tool, Codex's shell tool."""

    command: str


@dataclass(frozen=True)
class Fail(Step):
    """An API error answer (429 rate limit, 500 server error, 529 overloaded...)."""

    status: int
    message: str = ""
    retry_after: float | None = 0.0  # the retry-after header; None: not sent


@dataclass(frozen=True)
class Hang(Step):
    """Accept the request and answer nothing for ``seconds`` (or until stop)."""

    seconds: float = 3600.0


@dataclass(frozen=True)
class Forever(Step):
    """Answer with ``step`` every time: the script never moves past it."""

    step: Step


def status_text(status: str, summary: str, question: str | None = None, lead: str = "") -> str:
    lines = [lead.strip(), ""] if lead.strip() else []
    lines.append(f"STATUS: {status}")
    if question:
        lines.append(f"QUESTION: {question}")
    lines.append(f"SUMMARY: {summary}")
    return "\n".join(lines)


def done(
    summary: str = "did the task", *, lead: str = "The task is done.", delay: float = 0.0
) -> Reply:
    return Reply(status_text("done", summary, lead=lead), delay=delay)


def needs_human(question: str, summary: str = "stopped for a decision") -> Reply:
    return Reply(status_text("needs_human", summary, question, lead="I need a decision."))


def blocked(summary: str) -> Reply:
    return Reply(status_text("blocked", summary, lead="I cannot go on."))


def failures(status: int, times: int, retry_after: float | None = 0.0) -> list[Fail]:
    return [Fail(status, retry_after=retry_after) for _ in range(times)]


# --- recording ---------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """One request the server received."""

    method: str
    path: str
    headers: Mapping[str, str]  # lower-case names
    body: Any  # parsed JSON, or the raw text
    api: str | None  # ANTHROPIC, OPENAI, or None for a stray request
    key: str | None = None  # the script that answered
    answer: str = ""  # what was sent back (the step, or the error)
    at: float = 0.0

    @property
    def stray(self) -> bool:
        return self.api is None

    @property
    def messages(self) -> list[Any]:
        """The conversation sent: Anthropic ``messages`` or OpenAI ``input``."""
        if not isinstance(self.body, dict):
            return []
        value = self.body.get("messages" if self.api == ANTHROPIC else "input")
        return value if isinstance(value, list) else []

    @property
    def session_id(self) -> str | None:
        return self.headers.get("x-claude-code-session-id") or self.headers.get("session-id")

    def user_texts(self) -> list[str]:
        """The text of every user message, oldest first (tool results left out)."""
        return _user_texts(self.messages)

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "headers": dict(self.headers),
            "body": self.body,
            "api": self.api,
            "key": self.key,
            "answer": self.answer,
            "at": self.at,
        }


def _user_texts(messages: Iterable[Any]) -> list[str]:
    texts: list[str] = []
    for message in messages:
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
            continue
        parts = [
            str(part.get("text", ""))
            for part in content or []
            if isinstance(part, dict) and part.get("type") in ("text", "input_text")
        ]
        if parts:
            texts.append("\n".join(parts))
    return texts


# --- the server ----------------------------------------------------------------


@dataclass
class _Script:
    key: str | None
    steps: list[Step]
    position: int = 0

    def next(self) -> Step | None:
        if self.position >= len(self.steps):
            return None
        step = self.steps[self.position]
        if not isinstance(step, Forever):
            self.position += 1
            return step
        return step.step


@dataclass
class _State:
    scripts: list[_Script] = field(default_factory=list)
    recorded: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)
    record_path: Path | None = None


class ModelServer:
    """The mock, in a background thread; a context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, record: Path | None = None) -> None:
        self._state = _State(record_path=record)
        self._httpd = _HTTPServer((host, port), _Handler, self._state)
        self._thread: threading.Thread | None = None

    # lifecycle
    def start(self) -> ModelServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._state.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def host(self) -> str:
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # scripting
    def script(self, *steps: Step | Sequence[Step], key: str | None = None) -> None:
        """Add a script (see the module doc); lists of steps are flattened."""
        flat: list[Step] = []
        for item in steps:
            flat.extend([item] if isinstance(item, Step) else item)
        with self._state.lock:
            self._state.scripts.append(_Script(key, flat))

    def load(self, scenario: Mapping[str, Any]) -> None:
        """Add the scripts of a scenario document (the JSON file format)."""
        for entry in scenario.get("scripts", []):
            self.script(*steps_from_json(entry.get("steps", [])), key=entry.get("key"))

    def remaining(self, key: str | None = None) -> int:
        """Steps of the script with ``key`` not used yet."""
        with self._state.lock:
            for s in self._state.scripts:
                if s.key == key:
                    return len(s.steps) - s.position
        raise KeyError(key)

    # what was received
    def requests(self, key: str | None = None) -> list[Recorded]:
        """Model requests (of one script's key, when given)."""
        with self._state.lock:
            rows = list(self._state.recorded)
        return [r for r in rows if not r.stray and (key is None or r.key == key)]

    def model_requests(self) -> list[Recorded]:
        return self.requests()

    def stray(self) -> list[Recorded]:
        with self._state.lock:
            return [r for r in self._state.recorded if r.stray]

    def all_requests(self) -> list[Recorded]:
        with self._state.lock:
            return list(self._state.recorded)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type, state: _State) -> None:
        self.state = state
        super().__init__(address, handler)


_MODEL_PATHS = {"/v1/messages": ANTHROPIC, "/v1/responses": OPENAI}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the record is the log

    # every method goes through one place
    def do_POST(self) -> None:
        self._handle()

    do_GET = do_HEAD = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_POST

    def do_CONNECT(self) -> None:
        # The CLIs' HTTPS_PROXY points here: a tunnel would mean traffic
        # to somewhere else. Refuse it, and keep the attempt.
        self._record(None, None, "refused CONNECT")
        self._send(403, b"kinfra mock model server: no tunnels\n", "text/plain", close=True)

    def _handle(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", errors="replace")
        path = self.path.split("?", 1)[0]
        api = _MODEL_PATHS.get(path) if self.command == "POST" else None
        if api is None or not isinstance(body, dict):
            self._record(body, None, "404 stray")
            self._send(404, b'{"error": "not a model endpoint of the mock"}', "application/json")
            return
        key, step = self._next_step(api, body)
        answer = type(step).__name__ if step is not None else "unscripted"
        self._record(body, api, answer, key)
        if step is None:
            step = Reply(UNSCRIPTED)
        self._answer(api, body, step)

    def _next_step(self, api: str, body: dict[str, Any]) -> tuple[str | None, Step | None]:
        conversation = body.get("messages" if api == ANTHROPIC else "input")
        if isinstance(conversation, str):  # OpenAI allows a bare string input
            conversation = [{"role": "user", "content": conversation}]
        text = "\n".join(_user_texts(conversation or []))
        state = self.server.state
        with state.lock:
            chosen = next((s for s in state.scripts if s.key and s.key in text), None)
            if chosen is None:
                chosen = next((s for s in state.scripts if s.key is None), None)
            if chosen is None:
                return None, None
            return chosen.key, chosen.next()

    def _record(self, body: Any, api: str | None, answer: str, key: str | None = None) -> None:
        state = self.server.state
        entry = Recorded(
            method=self.command,
            path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            api=api,
            key=key,
            answer=answer,
            at=time.time(),
        )
        with state.lock:
            state.recorded.append(entry)
            if state.record_path is not None:
                with state.record_path.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(entry.to_json()) + "\n")

    # answers
    def _answer(self, api: str, body: dict[str, Any], step: Step) -> None:
        stopping = self.server.state.stopping
        if step.delay and stopping.wait(step.delay):
            return
        if isinstance(step, Hang):
            stopping.wait(step.seconds)
            self.close_connection = True
            return
        if isinstance(step, Fail):
            self._fail(api, step)
            return
        stream = bool(body.get("stream"))
        if api == ANTHROPIC:
            message = _anthropic_message(body, step)
            if stream:
                self._send_sse(_anthropic_events(message))
            else:
                self._send(200, json.dumps(message).encode(), "application/json")
        else:
            response = _openai_response(body, step)
            if stream:
                self._send_sse(_openai_events(response))
            else:
                self._send(200, json.dumps(response).encode(), "application/json")

    def _fail(self, api: str, step: Fail) -> None:
        kinds = {429: "rate_limit_error", 529: "overloaded_error", 401: "authentication_error"}
        kind = kinds.get(step.status, "api_error")
        message = step.message or f"mock {kind} ({step.status})"
        if api == ANTHROPIC:
            payload: dict[str, Any] = {
                "type": "error",
                "error": {"type": kind, "message": message},
            }
        else:
            payload = {"error": {"type": kind, "message": message, "code": kind}}
        headers = {}
        if step.retry_after is not None:
            headers["retry-after"] = f"{step.retry_after:g}"
            headers["retry-after-ms"] = str(int(step.retry_after * 1000))
        self._send(step.status, json.dumps(payload).encode(), "application/json", headers)

    def _send(
        self,
        status: int,
        data: bytes,
        content_type: str,
        headers: Mapping[str, str] | None = None,
        close: bool = False,
    ) -> None:
        with contextlib.suppress(OSError):
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(data)))
            self.send_header("request-id", f"req_mock_{uuid.uuid4().hex[:16]}")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if close:
                self.send_header("connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

    def _send_sse(self, events: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """Server-sent events, chunked so that each event goes out as it is made."""
        try:
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("cache-control", "no-cache")
            self.send_header("transfer-encoding", "chunked")
            self.send_header("request-id", f"req_mock_{uuid.uuid4().hex[:16]}")
            self.end_headers()
            for name, data in events:
                chunk = f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True  # the agent went away mid-answer


# --- Anthropic Messages ----------------------------------------------------------


def _anthropic_tool(step: Step, body: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    if isinstance(step, ToolCall):
        return step.name, dict(step.input)
    if isinstance(step, WriteFile):
        return "Write", {"file_path": step.path, "content": step.content}
    if isinstance(step, RunCommand):
        return "Bash", {"command": step.command, "description": "scripted command"}
    return None


def _anthropic_message(body: Mapping[str, Any], step: Step) -> dict[str, Any]:
    tool = _anthropic_tool(step, body)
    if tool is not None:
        name, tool_input = tool
        content: list[dict[str, Any]] = [
            {
                "type": "tool_use",
                "id": f"toolu_{uuid.uuid4().hex[:24]}",
                "name": name,
                "input": tool_input,
            }
        ]
        stop_reason = "tool_use"
    else:
        text = step.text if isinstance(step, Reply) else UNSCRIPTED
        content = [{"type": "text", "text": text}]
        stop_reason = "end_turn"
    return {
        "id": f"msg_mock_{uuid.uuid4().hex[:20]}",
        "type": "message",
        "role": "assistant",
        "model": body.get("model") or MODEL,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": INPUT_TOKENS,
            "output_tokens": OUTPUT_TOKENS,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


def _anthropic_events(message: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    start = {**message, "content": [], "stop_reason": None}
    start["usage"] = {**message["usage"], "output_tokens": 1}
    yield "message_start", {"type": "message_start", "message": start}
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            yield (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "text", "text": ""},
                },
            )
            yield (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "text_delta", "text": block["text"]},
                },
            )
        else:
            yield (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {**block, "input": {}},
                },
            )
            yield (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {
                        "type": "input_json_delta",
                        "partial_json": json.dumps(block["input"]),
                    },
                },
            )
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    yield (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
            "usage": {"output_tokens": message["usage"]["output_tokens"]},
        },
    )
    yield "message_stop", {"type": "message_stop"}


# --- OpenAI Responses ------------------------------------------------------------


def _openai_item(body: Mapping[str, Any], step: Step) -> dict[str, Any]:
    call_id = f"call_{uuid.uuid4().hex[:20]}"
    if isinstance(step, WriteFile):
        if _offers_tool(body, "apply_patch"):
            lines = "".join(f"+{line}\n" for line in step.content.splitlines())
            patch = f"*** Begin Patch\n*** Add File: {step.path}\n{lines}*** End Patch\n"
            if _offers_tool(body, "apply_patch", "custom"):
                return {
                    "type": "custom_tool_call",
                    "id": f"ctc_{call_id}",
                    "call_id": call_id,
                    "name": "apply_patch",
                    "input": patch,
                    "status": "completed",
                }
            step = ToolCall("apply_patch", {"input": patch})
        else:
            step = RunCommand(_heredoc(step.path, step.content))
    if isinstance(step, RunCommand):
        name = _shell_tool(body)
        arguments: dict[str, Any]
        if name == "shell":
            arguments = {"command": ["bash", "-lc", step.command]}
        else:
            arguments = (
                {"command": step.command} if name == "shell_command" else {"cmd": step.command}
            )
        step = ToolCall(name, arguments)
    if isinstance(step, ToolCall):
        return {
            "type": "function_call",
            "id": f"fc_{call_id}",
            "call_id": call_id,
            "name": step.name,
            "arguments": json.dumps(dict(step.input)),
            "status": "completed",
        }
    text = step.text if isinstance(step, Reply) else UNSCRIPTED
    return {
        "type": "message",
        "id": f"msg_{uuid.uuid4().hex[:20]}",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def _heredoc(path: str, content: str) -> str:
    """A shell command writing ``content`` to ``path`` (for agents without a patch tool)."""
    marker = "KINFRA_MOCK_EOF"
    body = content if content.endswith("\n") else content + "\n"
    return f"mkdir -p \"$(dirname '{path}')\" && cat > '{path}' <<'{marker}'\n{body}{marker}"


def _tool_names(body: Mapping[str, Any]) -> dict[str, str]:
    names: dict[str, str] = {}
    for tool in body.get("tools") or []:
        if isinstance(tool, dict) and isinstance(tool.get("name"), str):
            names[tool["name"]] = str(tool.get("type"))
    return names


def _offers_tool(body: Mapping[str, Any], name: str, kind: str | None = None) -> bool:
    names = _tool_names(body)
    return name in names and (kind is None or names[name] == kind)


def _shell_tool(body: Mapping[str, Any]) -> str:
    names = _tool_names(body)
    for name in ("exec_command", "shell_command", "shell"):
        if name in names:
            return name
    return "shell"


def _openai_response(body: Mapping[str, Any], step: Step) -> dict[str, Any]:
    return {
        "id": f"resp_{uuid.uuid4().hex[:20]}",
        "object": "response",
        "created_at": int(time.time()),
        "status": "completed",
        "model": body.get("model") or MODEL,
        "output": [_openai_item(body, step)],
        "usage": {
            "input_tokens": INPUT_TOKENS,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": OUTPUT_TOKENS,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS,
        },
    }


def _openai_events(response: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    sequence = iter(range(1_000_000))
    started = {**response, "status": "in_progress", "output": [], "usage": None}
    yield (
        "response.created",
        {"type": "response.created", "sequence_number": next(sequence), "response": started},
    )
    yield (
        "response.in_progress",
        {"type": "response.in_progress", "sequence_number": next(sequence), "response": started},
    )
    for index, item in enumerate(response["output"]):
        yield (
            "response.output_item.added",
            {
                "type": "response.output_item.added",
                "sequence_number": next(sequence),
                "output_index": index,
                "item": {**item, "status": "in_progress"},
            },
        )
        if item["type"] == "message":
            text = item["content"][0]["text"]
            yield (
                "response.output_text.delta",
                {
                    "type": "response.output_text.delta",
                    "sequence_number": next(sequence),
                    "item_id": item["id"],
                    "output_index": index,
                    "content_index": 0,
                    "delta": text,
                },
            )
            yield (
                "response.output_text.done",
                {
                    "type": "response.output_text.done",
                    "sequence_number": next(sequence),
                    "item_id": item["id"],
                    "output_index": index,
                    "content_index": 0,
                    "text": text,
                },
            )
        yield (
            "response.output_item.done",
            {
                "type": "response.output_item.done",
                "sequence_number": next(sequence),
                "output_index": index,
                "item": item,
            },
        )
    yield (
        "response.completed",
        {
            "type": "response.completed",
            "sequence_number": next(sequence),
            "response": response,
        },
    )


# --- scenario files and the command line -------------------------------------------


def step_from_json(data: Mapping[str, Any]) -> Step:
    delay = float(data.get("delay", 0.0))
    if "reply" in data:
        return Reply(str(data["reply"]), delay=delay)
    if "done" in data:
        return done(str(data["done"]), delay=delay)
    if "needs_human" in data:
        reply = needs_human(str(data["needs_human"]))
        return Reply(reply.text, delay=delay)
    if "write_file" in data:
        spec = data["write_file"]
        return WriteFile(str(spec["path"]), str(spec["content"]), delay=delay)
    if "run" in data:
        return RunCommand(str(data["run"]), delay=delay)
    if "tool" in data:
        return ToolCall(str(data["tool"]["name"]), dict(data["tool"].get("input", {})), delay=delay)
    if "fail" in data:
        retry = data.get("retry_after", 0.0)
        return Fail(int(data["fail"]), str(data.get("message", "")), retry_after=retry, delay=delay)
    if "hang" in data:
        return Hang(float(data["hang"]), delay=delay)
    if "forever" in data:
        return Forever(step_from_json(data["forever"]), delay=delay)
    raise ValueError(f"unknown scenario step: {json.dumps(data)}")


def steps_from_json(items: Iterable[Mapping[str, Any]]) -> list[Step]:
    steps: list[Step] = []
    for data in items:
        times = int(data.get("times", 1)) if "fail" in data else 1
        steps.extend(step_from_json(data) for _ in range(times))
    return steps


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
