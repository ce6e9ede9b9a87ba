"""Answers in the Anthropic Messages API (``POST /v1/messages``): a message,
and the same as server-sent events."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from kinfra.testing.model_server.steps import (
    INPUT_TOKENS,
    MODEL,
    OUTPUT_TOKENS,
    UNSCRIPTED,
    Reply,
    RunCommand,
    Step,
    ToolCall,
    WriteFile,
)


def _tool(step: Step, body: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    if isinstance(step, ToolCall):
        return step.name, dict(step.input)
    if isinstance(step, WriteFile):
        return "Write", {"file_path": step.path, "content": step.content}
    if isinstance(step, RunCommand):
        return "Bash", {"command": step.command, "description": "scripted command"}
    return None


def message(body: Mapping[str, Any], step: Step) -> dict[str, Any]:
    tool = _tool(step, body)
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


def events(message: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
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
