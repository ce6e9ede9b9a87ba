"""What a script is made of: the steps (one answer each), the helpers that
build the usual ones, and the JSON form of a scenario file."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

UNSCRIPTED = "The mock model server has no scripted answer for this request."
MODEL = "claude-mock-1"  # echoed back when a request names no model
INPUT_TOKENS = 100  # usage reported for every answer: predictable totals for tests
OUTPUT_TOKENS = 20


@dataclass(frozen=True, kw_only=True)
class Step:
    """One answer to one model request (the base of every kind of step)."""

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
