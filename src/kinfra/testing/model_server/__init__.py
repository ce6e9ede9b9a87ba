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
results, nor the context the CLI injects in ``<system-reminder>`` or
``<environment_context>`` blocks): the orchestrator's prompt names its task
("Task 1.1"), and a resumed
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

from kinfra.testing.model_server.server import ANTHROPIC, OPENAI, ModelServer, Recorded
from kinfra.testing.model_server.steps import (
    INPUT_TOKENS,
    OUTPUT_TOKENS,
    UNSCRIPTED,
    Fail,
    Forever,
    Hang,
    Reply,
    RunCommand,
    Step,
    ToolCall,
    WriteFile,
    blocked,
    done,
    failures,
    needs_human,
    status_text,
    step_from_json,
    steps_from_json,
)

__all__ = [
    "ANTHROPIC",
    "INPUT_TOKENS",
    "OPENAI",
    "OUTPUT_TOKENS",
    "UNSCRIPTED",
    "Fail",
    "Forever",
    "Hang",
    "ModelServer",
    "Recorded",
    "Reply",
    "RunCommand",
    "Step",
    "ToolCall",
    "WriteFile",
    "blocked",
    "done",
    "failures",
    "needs_human",
    "status_text",
    "step_from_json",
    "steps_from_json",
]
