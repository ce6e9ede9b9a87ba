"""[agent] of kinfra.toml: defaults, and each mistake as one line naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from kinfra.domain.config import Config, load_config
from kinfra.domain.config_agent import DEFAULT_BASE_IMAGE, AgentSandbox
from kinfra.errors import ConfigError

MINIMAL = '[project]\nname = "app"\n'


def config_of(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "kinfra.toml"
    path.write_text(MINIMAL + text)
    return load_config(path)


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        config_of(tmp_path, text)
    message = caught.value.message
    assert "\n" not in message and message.startswith("kinfra.toml: [agent]"), message
    return message


def test_defaults_pull_a_debian_node_image_and_pass_the_known_agent_keys(tmp_path: Path) -> None:
    config = config_of(
        tmp_path, '[secrets]\nANTHROPIC_API_KEY = "env://K"\nDB_PASSWORD = "env://P"\n'
    )
    agent = config.agent
    assert agent.base_image == DEFAULT_BASE_IMAGE == "node:22-bookworm-slim"
    assert (agent.setup, agent.dockerfile, agent.ca_bundle, agent.keep) == ((), None, None, ())
    # The agent gets its own key, never the stack's other secrets by default.
    assert agent.secrets == ("ANTHROPIC_API_KEY",)


def test_a_full_agent_section(tmp_path: Path) -> None:
    agent = config_of(
        tmp_path,
        '[secrets]\nMY_KEY = "env://K"\n[agent]\nbase_image = "debian:bookworm"\n'
        'setup = ["apt-get update", "apt-get install -y make"]\n'
        'dockerfile = "docker/agent.Dockerfile"\nca_bundle = "/etc/ssl/certs/corp.pem"\n'
        'keep = ["/env/models/", "/home/agent/.cache"]\nsecrets = ["MY_KEY"]\n',
    ).agent
    assert agent.setup == ("apt-get update", "apt-get install -y make")
    assert agent.keep == ("/env/models", "/home/agent/.cache")
    assert (agent.dockerfile, agent.secrets) == ("docker/agent.Dockerfile", ("MY_KEY",))


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('keep = ["env/models"]', "must be an absolute path"),
        ('keep = ["/workspace/node_modules"]', "kinfra's own place"),
        ('keep = ["/home/agent"]', "kinfra's own place"),
        ('keep = ["/logs"]', "kinfra's own place"),
        ('keep = ["/"]', "cannot be a volume"),
        ('keep = ["/a", "/a/"]', "lists a path twice"),
        ('secrets = ["NOPE"]', "'NOPE' is not a name under [secrets]"),
        ('dockerfile = "/etc/Dockerfile"', "must be a path inside the repository"),
        ('dockerfile = "../Dockerfile"', "must be a path inside the repository"),
        ('base_image = "has space"', "is not an image reference"),
        ("setup = 'make'", "expected a list of strings"),
        ('basse_image = "x"', "unknown key"),
    ],
)
def test_mistakes_are_one_line_naming_the_key(tmp_path: Path, text: str, needle: str) -> None:
    assert needle in error_of(tmp_path, f"[agent]\n{text}\n")


def test_the_orchestrator_runs_the_agent_on_the_host_unless_told_container(
    tmp_path: Path,
) -> None:
    assert config_of(tmp_path, "").orchestrator.sandbox is AgentSandbox.HOST
    chosen = config_of(tmp_path, '[orchestrator]\nsandbox = "container"\n').orchestrator
    assert chosen.sandbox is AgentSandbox.CONTAINER
    with pytest.raises(ConfigError) as caught:
        config_of(tmp_path, '[orchestrator]\nsandbox = "docker"\n')
    assert caught.value.message == (
        "kinfra.toml: [orchestrator] sandbox: expected 'host' or 'container', got 'docker'"
    )
