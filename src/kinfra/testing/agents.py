"""The real agent CLIs, for tests, benchmarks and the demo.

``scripts/ensure-agents.sh`` installs the pinned ``claude`` and ``codex``
(``kinfra.domain.agent_pins``) under ``$KINFRA_AGENTS_DIR`` (default
``/opt/kinfra-agents``); this module finds them and gives the settings under
which they talk to the mock model server (``kinfra.testing.model_server``) and
to nothing else:

- Claude Code: ``ANTHROPIC_BASE_URL`` and a dummy ``ANTHROPIC_API_KEY``; no
  nonessential traffic, auto-updater, telemetry or error reporting; and the
  mock as ``HTTP(S)_PROXY`` (it refuses tunnels and records them as stray)
  with ``NO_PROXY`` for the loopback, so anything else it tried shows up.
- Codex: a ``CODEX_HOME`` whose ``config.toml`` selects a custom provider
  (``wire_api = "responses"``) at the mock, with the update check, analytics,
  plugins and apps off, and the same proxy setting.

What they reach otherwise (seen through the proxy setting): Claude Code 2.1.332
sends ``HEAD /api/hello`` to its base URL and opens three tunnels to
api.anthropic.com:443 (telemetry, feature flags); Codex 0.171.0 opens tunnels
to github.com and api.github.com (plugins, update check), chatgpt.com and
ab.chatgpt.com (apps, analytics). With the settings below: nothing but the
model requests (``POST /v1/messages``, ``POST /v1/responses``), which every
real-agent test checks.

For shell scripts (the demo)::

    eval "$(python -m kinfra.testing.agents claude-env http://127.0.0.1:PORT)"

exports that environment, with the pinned ``claude`` first on PATH.
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from kinfra.adapters.runner import installed
from kinfra.domain.agent_pins import (
    CLAUDE_CODE_PACKAGE,
    CLAUDE_CODE_VERSION,
    CODEX_PACKAGE,
    CODEX_VERSION,
)
from kinfra.domain.config_orch import OrchestratorSettings
from kinfra.orch.agents.base import AgentRequest
from kinfra.orch.context import default_settings

DEFAULT_AGENTS_DIR = Path("/opt/kinfra-agents")
CODEX_MODEL = "gpt-5.5"  # a model codex knows: no fallback-metadata warning, apply_patch offered
MOCK_KEY_ENV = "KINFRA_MOCK_API_KEY"
_PINS = {
    "claude": (CLAUDE_CODE_PACKAGE, CLAUDE_CODE_VERSION),
    "codex": (CODEX_PACKAGE, CODEX_VERSION),
}
INSTALL_HINT = "run ./scripts/ensure-agents.sh (./scripts/setup.sh runs it)"


def agents_dir() -> Path:
    return Path(os.environ.get("KINFRA_AGENTS_DIR") or DEFAULT_AGENTS_DIR)


def agent_binary(name: str) -> Path:
    """Where ensure-agents.sh puts the pinned ``claude`` or ``codex``."""
    package, version = _PINS[name]
    return agents_dir() / f"{package.rsplit('/', 1)[-1]}-{version}" / "node_modules" / ".bin" / name


def missing(*names: str) -> list[str]:
    """Which of the agent CLIs (and node, which codex's launcher needs) are absent."""
    absent = [n for n in names if not agent_binary(n).exists()]
    if "codex" in names and not installed("node"):
        absent.append("node")
    return absent


def bin_dir(folder: Path, *names: str) -> Path:
    """A folder with the named agents linked in, to put first on PATH."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        link = folder / name
        if not link.exists():
            link.symlink_to(agent_binary(name))
    return folder


def _proxy_env(url: str) -> dict[str, str]:
    no_proxy = "127.0.0.1,localhost"
    host = url.split("//", 1)[-1].rsplit(":", 1)[0]
    if host not in ("127.0.0.1", "localhost"):
        no_proxy += f",{host}"
    return {
        "HTTPS_PROXY": url,
        "HTTP_PROXY": url,
        "https_proxy": url,
        "http_proxy": url,
        "NO_PROXY": no_proxy,
        "no_proxy": no_proxy,
    }


def claude_env(url: str, *, max_retries: int | None = 2) -> dict[str, str]:
    """Claude Code's environment for the mock at ``url``. ``max_retries``
    bounds the CLI's own API retries (10 by default, with backoff), so that a
    test of a failing API ends in seconds."""
    env = {
        "ANTHROPIC_BASE_URL": url,
        "ANTHROPIC_API_KEY": "sk-ant-kinfra-mock",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        **_proxy_env(url),
    }
    if max_retries is not None:
        env["CLAUDE_CODE_MAX_RETRIES"] = str(max_retries)
    return env


def codex_home(folder: Path, url: str, *, model: str = CODEX_MODEL) -> Path:
    """A ``CODEX_HOME`` configured for the mock at ``url``. Codex retries a
    failed request itself (``request_max_retries``) and then reconnects
    (``stream_max_retries``, each shown as an ``error`` event): both are kept
    small so that a failing API ends in seconds."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.toml").write_text(
        f'model = "{model}"\n'
        'model_provider = "kinfra-mock"\n'
        "check_for_update_on_startup = false\n"
        "\n"
        "[model_providers.kinfra-mock]\n"
        'name = "kinfra mock model server"\n'
        f'base_url = "{url}/v1"\n'
        'wire_api = "responses"\n'
        f'env_key = "{MOCK_KEY_ENV}"\n'
        "request_max_retries = 1\n"
        "stream_max_retries = 2\n"
        "\n"
        "[analytics]\n"
        "enabled = false\n"
        "\n"
        "[features]\n"
        "plugins = false\n"
        "apps = false\n",
        encoding="utf-8",
    )
    return folder


def codex_env(url: str, home: Path) -> dict[str, str]:
    return {"CODEX_HOME": str(home), MOCK_KEY_ENV: "sk-kinfra-mock", **_proxy_env(url)}


def agent_request(workdir: Path, **overrides: Any) -> AgentRequest:
    """One attempt's request, for adapter tests: Task 1.1's prompt, roomy limits."""
    values: dict[str, Any] = {
        "prompt": "Implement Task 1.1 of milestone M1.\n",
        "workdir": workdir,
        "max_turns": 7,
        "timeout": 60.0,
        "idle_timeout": 30.0,
        "kill_grace": 0.5,
    }
    values.update(overrides)
    return AgentRequest(**values)


def orchestrator_settings(**overrides: Any) -> OrchestratorSettings:
    """The ``[orchestrator]`` defaults with ``overrides``."""
    return replace(default_settings(), **overrides)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "claude-env":
        print("usage: python -m kinfra.testing.agents claude-env URL", file=sys.stderr)
        return 2
    if missing("claude"):
        print(f"claude {CLAUDE_CODE_VERSION} not installed: {INSTALL_HINT}", file=sys.stderr)
        return 1
    env = claude_env(argv[1])
    env["PATH"] = f"{agent_binary('claude').parent}{os.pathsep}{os.environ.get('PATH', '')}"
    for key, value in env.items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
