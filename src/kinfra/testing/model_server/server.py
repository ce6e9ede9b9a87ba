"""The server: a thread answering each model request with the next step of the
script its key selects, and recording every request (stray ones included)."""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from kinfra.testing.model_server import anthropic, openai
from kinfra.testing.model_server.steps import (
    UNSCRIPTED,
    Fail,
    Forever,
    Hang,
    Reply,
    Step,
    steps_from_json,
)

ANTHROPIC = "anthropic"
OPENAI = "openai"


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


@dataclass
class _Script:
    """The steps a script answers with, in order, and how many were used."""

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
    """What the server's threads share: the scripts, the recorded requests, the lock."""

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
    """The threading HTTP server, holding the shared state for its handlers."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type, state: _State) -> None:
        self.state = state
        super().__init__(address, handler)


_MODEL_PATHS = {"/v1/messages": ANTHROPIC, "/v1/responses": OPENAI}
_INJECTED = re.compile(r"<(system-reminder|environment_context)>.*?</\1>", re.S)


class _Handler(BaseHTTPRequestHandler):
    """Answers each request with its script's next step (or refuses it), and records it."""

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
        # What the CLI injects (git status with recent commits naming other
        # tasks...) is no key's business.
        text = _INJECTED.sub("", "\n".join(_user_texts(conversation or [])))
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
            message = anthropic.message(body, step)
            if stream:
                self._send_sse(anthropic.events(message))
            else:
                self._send(200, json.dumps(message).encode(), "application/json")
        else:
            response = openai.response(body, step)
            if stream:
                self._send_sse(openai.events(response))
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
