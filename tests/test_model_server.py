"""The mock model server itself: scripts by key, both APIs' streams, errors,
hangs, the record of every request, stray traffic, and its command line."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from kinfra.testing.model_server import (
    UNSCRIPTED,
    Fail,
    Forever,
    Hang,
    ModelServer,
    RunCommand,
    WriteFile,
    done,
    failures,
    needs_human,
)


def _post(
    server: ModelServer, path: str, body: dict[str, Any], timeout: float = 10
) -> tuple[int, dict[str, str], str]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=timeout)
    try:
        conn.request("POST", path, json.dumps(body), {"content-type": "application/json"})
        response = conn.getresponse()
        return (
            response.status,
            {k.lower(): v for k, v in response.getheaders()},
            response.read().decode(),
        )
    finally:
        conn.close()


def _anthropic(text: str, stream: bool = True) -> dict[str, Any]:
    return {
        "model": "m",
        "stream": stream,
        "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}],
    }


def _events(sse: str) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in sse.splitlines() if line.startswith("data: ")]


def test_scripts_answer_by_key_in_order_and_default_takes_the_rest() -> None:
    with ModelServer() as server:
        server.script(WriteFile("/w/a.txt", "A\n"), done("a done"), key="Task 1.1")
        server.script(needs_human("which db?"), key="Task 1.2")
        server.script(Forever(RunCommand("true")))
        _, _, first = _post(server, "/v1/messages", _anthropic("Do Task 1.1"))
        _, _, second = _post(server, "/v1/messages", _anthropic("Do Task 1.1"))
        # context the CLI injects is not matched: here a commit naming Task 1.1
        reminder = "<system-reminder>\nRecent commits: M1 Task 1.1: done\n</system-reminder>\n"
        _, _, other = _post(server, "/v1/messages", _anthropic(reminder + "Do Task 1.2"))
        for _ in range(3):
            _, _, endless = _post(server, "/v1/messages", _anthropic("anything else"))
        _, _, used_up = _post(server, "/v1/messages", _anthropic("Do Task 1.1", stream=False))
    tool = _events(first)[1]["content_block"]
    assert (tool["type"], tool["name"]) == ("tool_use", "Write")
    assert json.loads(_events(first)[2]["delta"]["partial_json"]) == {
        "file_path": "/w/a.txt",
        "content": "A\n",
    }
    assert _events(first)[-2]["delta"]["stop_reason"] == "tool_use"
    assert "STATUS: done\nSUMMARY: a done" in _events(second)[2]["delta"]["text"]
    assert "QUESTION: which db?" in _events(other)[2]["delta"]["text"]
    assert _events(endless)[1]["content_block"]["name"] == "Bash"
    assert json.loads(used_up)["content"][0]["text"] == UNSCRIPTED
    assert [r.key for r in server.requests()] == ["Task 1.1"] * 2 + ["Task 1.2"] + [None] * 3 + [
        "Task 1.1"
    ]
    assert [r.answer for r in server.requests("Task 1.1")] == ["WriteFile", "Reply", "unscripted"]
    assert server.stray() == []


def test_api_errors_k_times_then_success_with_retry_after() -> None:
    with ModelServer() as server:
        server.script(*failures(529, 2, retry_after=3), Fail(429), done())
        answers = [_post(server, "/v1/messages", _anthropic("x")) for _ in range(4)]
    assert [a[0] for a in answers] == [529, 529, 429, 200]
    assert answers[0][1]["retry-after"] == "3"
    assert json.loads(answers[0][2])["error"]["type"] == "overloaded_error"
    assert json.loads(answers[2][2])["error"]["type"] == "rate_limit_error"


def test_openai_responses_stream_message_and_tool_calls() -> None:
    body = {
        "model": "gpt-x",
        "stream": True,
        "input": [
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "Task 2.1"}],
            }
        ],
        "tools": [
            {"type": "function", "name": "exec_command"},
            {"type": "custom", "name": "apply_patch"},
        ],
    }
    with ModelServer() as server:
        server.script(
            RunCommand("make test"), WriteFile("a.txt", "A\n"), done("ok"), key="Task 2.1"
        )
        runs, patch, final = (_post(server, "/v1/responses", body)[2] for _ in range(3))
    call = _events(runs)[-2]["item"]
    assert (call["type"], call["name"], json.loads(call["arguments"])) == (
        "function_call",
        "exec_command",
        {"cmd": "make test"},
    )
    edit = _events(patch)[-2]["item"]
    assert edit["type"] == "custom_tool_call" and "*** Add File: a.txt\n+A\n" in edit["input"]
    completed = _events(final)[-1]
    assert completed["type"] == "response.completed"
    assert completed["response"]["usage"]["input_tokens"] == 100
    assert "STATUS: done" in completed["response"]["output"][0]["content"][0]["text"]


def test_stray_requests_and_tunnels_are_refused_and_recorded() -> None:
    with ModelServer() as server:
        conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
        conn.request("GET", "/api/hello")
        assert conn.getresponse().status == 404
        conn.close()
        conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
        conn.request("CONNECT", "api.anthropic.com:443")
        assert conn.getresponse().status == 403
        conn.close()
    assert [(r.method, r.path) for r in server.stray()] == [
        ("GET", "/api/hello"),
        ("CONNECT", "api.anthropic.com:443"),
    ]
    assert server.requests() == []


def test_a_hang_answers_nothing_and_ends_with_the_server() -> None:
    server = ModelServer().start()
    server.script(Hang(60))
    started = time.monotonic()
    try:
        _post(server, "/v1/messages", _anthropic("x"), timeout=0.5)
    except TimeoutError:
        pass
    else:
        raise AssertionError("the hang answered")
    server.stop()
    assert time.monotonic() - started < 5
    assert [r.answer for r in server.requests()] == ["Hang"]


def test_command_line_serves_a_scenario_file_on_another_address(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.json"
    scenario.write_text(
        json.dumps(
            {
                "scripts": [
                    {
                        "key": "Task 1.1",
                        "steps": [{"fail": 500, "times": 2}, {"done": "ok", "delay": 0.1}],
                    }
                ]
            }
        )
    )
    record = tmp_path / "requests.jsonl"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kinfra.testing.model_server",
            "--host",
            "127.0.0.2",
            "--scenario",
            str(scenario),
            "--record",
            str(record),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        host, port = url.removeprefix("http://").split(":")
        assert host == "127.0.0.2"
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        statuses = []
        for _ in range(3):
            conn.request("POST", "/v1/messages", json.dumps(_anthropic("Task 1.1")))
            response = conn.getresponse()
            response.read()
            statuses.append(response.status)
        conn.close()
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    assert statuses == [500, 500, 200]
    rows = [json.loads(line) for line in record.read_text().splitlines()]
    assert [r["answer"] for r in rows] == ["Fail", "Fail", "Reply"]
    assert rows[0]["body"]["messages"][0]["content"][0]["text"] == "Task 1.1"
    assert proc.returncode == 0
