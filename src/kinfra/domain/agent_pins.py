"""The agent CLI versions kinfra is tested with and installs.

One place for the pins: the test setup (scripts) installs these with npm, the
agent image (`kinfra agent build`) installs the same versions, and the README
names them. Raise them together, after the real-agent tests pass.
"""

from __future__ import annotations

CLAUDE_CODE_PACKAGE = "@anthropic-ai/claude-code"
CLAUDE_CODE_VERSION = "2.1.332"
CODEX_PACKAGE = "@openai/codex"
CODEX_VERSION = "0.171.0"
