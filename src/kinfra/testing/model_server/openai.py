"""Answers in the OpenAI Responses API (``POST /v1/responses``): a response,
and the same as server-sent events. Codex's tools are taken from the request:
``apply_patch`` when offered (else a shell here-document), its shell tool."""

from __future__ import annotations

import json
import time
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


def _item(body: Mapping[str, Any], step: Step) -> dict[str, Any]:
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


def response(body: Mapping[str, Any], step: Step) -> dict[str, Any]:
    return {
        "id": f"resp_{uuid.uuid4().hex[:20]}",
        "object": "response",
        "created_at": int(time.time()),
        "status": "completed",
        "model": body.get("model") or MODEL,
        "output": [_item(body, step)],
        "usage": {
            "input_tokens": INPUT_TOKENS,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": OUTPUT_TOKENS,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS,
        },
    }


def events(response: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
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
