"""`kinfra agent build`: kinfra's image on the project's base, tagged by its inputs."""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

import pytest

from kinfra.domain import agent_pins
from kinfra.testing import agentkit
from kinfra.testing.example import kinfra
from kinfra.testing.gitrepo import commit_all, make_repo


def in_image(image: str, *command: str) -> str:
    return subprocess.run(
        ["docker", "run", "--rm", image, *command], capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture
def project(tmp_path: Path, docker_prefix: str) -> Path:
    """A repository whose kinfra.toml builds on the test base (no stack needed)."""
    repo = make_repo(tmp_path, with_origin=False)
    (repo / "kinfra.toml").write_text(
        f'[project]\nname = "{docker_prefix}"\n' + agentkit.agent_config()
    )
    commit_all(repo)
    return repo


def build(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return kinfra(repo, "agent", "build", "--ca-bundle", agentkit.CA_BUNDLE, *args, timeout=1800)


def image_of(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    return result.stdout.split("agent image ", 1)[1].split()[0]


def test_the_image_has_git_node_the_pinned_clis_and_the_ca_bundle(
    agent_image: str, project: Path
) -> None:
    again = build(project)
    assert image_of(again) == agent_image
    assert "is up to date: inputs unchanged" in again.stdout  # not built twice
    versions = in_image(agent_image, "sh", "-c", "claude --version; codex --version; git --version")
    assert f"{agent_pins.CLAUDE_CODE_VERSION} (Claude Code)" in versions
    assert f"codex-cli {agent_pins.CODEX_VERSION}" in versions
    assert "git version" in versions
    # The bundle is in the trust store, and Node is pointed at the store.
    extra = in_image(agent_image, "cat", "/usr/local/share/ca-certificates/kinfra-extra.crt")
    assert extra == Path(agentkit.CA_BUNDLE).read_text()
    env = in_image(agent_image, "sh", "-c", "echo $NODE_EXTRA_CA_CERTS")
    assert env.strip() == "/etc/ssl/certs/ca-certificates.crt"


def test_changed_setup_commands_build_a_new_image(agent_image: str, project: Path) -> None:
    # A token new at every run: this build is never in the cache.
    token = secrets.token_hex(8)
    config = project / "kinfra.toml"
    config.write_text(config.read_text() + f'setup = ["echo {token} > /etc/kinfra-test-setup"]\n')
    with_setup = build(project)
    image = image_of(with_setup)
    try:
        assert image != agent_image and "built in" in with_setup.stdout
        assert in_image(image, "cat", "/etc/kinfra-test-setup") == f"{token}\n"
        again = build(project)
        assert image_of(again) == image and "up to date" in again.stdout
    finally:
        subprocess.run(["docker", "image", "rm", "--force", image], capture_output=True)


def test_the_projects_dockerfile_builds_on_kinfras_image(
    agent_image: str, project: Path, docker_prefix: str
) -> None:
    config = project / "kinfra.toml"
    docker_dir = project / "agent"
    docker_dir.mkdir()
    (docker_dir / "Dockerfile").write_text(
        "ARG KINFRA_AGENT_IMAGE\nFROM ${KINFRA_AGENT_IMAGE}\n"
        "COPY tool.sh /usr/local/bin/project-tool\n"
    )
    (docker_dir / "tool.sh").write_text("#!/bin/sh\necho project tool v1\n")
    (docker_dir / "tool.sh").chmod(0o755)
    config.write_text(config.read_text() + 'dockerfile = "agent/Dockerfile"\n')
    derived = image_of(build(project))
    assert in_image(derived, "sh", "-c", "project-tool; claude --version") == (
        f"project tool v1\n{agent_pins.CLAUDE_CODE_VERSION} (Claude Code)\n"
    )
    # A change in the build context is a new input.
    (docker_dir / "tool.sh").write_text("#!/bin/sh\necho project tool v2\n")
    rebuilt = image_of(build(project))
    assert rebuilt != derived and in_image(rebuilt, "project-tool") == "project tool v2\n"
    # The project's tag follows the last build: new containers are made from it.
    current = subprocess.run(
        [
            "docker",
            "image",
            "inspect",
            "--format",
            "{{.Id}}",
            f"kinfra-agent/{docker_prefix}:current",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert current == in_image_id(rebuilt)


def in_image_id(ref: str) -> str:
    return subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", ref],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


@pytest.mark.parametrize(
    ("setup", "args", "needles"),
    [
        ("", ("--ca-bundle", "/nonexistent/ca.pem"), ("cannot read /nonexistent/ca.pem",)),
        ("", ("--ca-bundle", "kinfra.toml"), ("holds no PEM certificate",)),
        ('dockerfile = "nope/Dockerfile"\n', (), ("[agent] dockerfile: cannot read",)),
        (
            'dockerfile = "Dockerfile"\n',
            (),
            ("must build FROM kinfra's image", "ARG KINFRA_AGENT_IMAGE"),
        ),
        ('base_image = "kinfra-test/no-such-image:1"\n', (), ("cannot be pulled",)),
    ],
)
def test_bad_inputs_are_one_clear_line_and_build_nothing(
    project: Path, setup: str, args: tuple[str, ...], needles: tuple[str, ...]
) -> None:
    config = project / "kinfra.toml"
    text = config.read_text()
    if setup.startswith("base_image"):
        text = text.replace(f'base_image = "{agentkit.BASE_IMAGE}"\n', "")
    config.write_text(text + setup)
    (project / "Dockerfile").write_text("FROM debian:bookworm\n")
    result = kinfra(project, "agent", "build", *args)
    assert result.returncode == 1, result.stdout + result.stderr
    first = result.stderr.splitlines()[0]
    assert first.startswith("kinfra: error: ")
    for needle in needles:
        assert needle in result.stderr
    assert "built" not in result.stdout
