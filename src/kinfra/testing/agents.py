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
"""

from __future__ import annotations

import os
from pathlib import Path

from kinfra.adapters.runner import installed
from kinfra.domain.agent_pins import (
    CLAUDE_CODE_PACKAGE,
    CLAUDE_CODE_VERSION,
    CODEX_PACKAGE,
    CODEX_VERSION,
)

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
