"""[sandbox] bind: a name or a foreign address is one clear line, never a crash."""

from __future__ import annotations

from pathlib import Path

import pytest

from kinfra.adapters import netcheck
from kinfra.domain.config import load_config
from kinfra.errors import ConfigError
from kinfra.testing import dockerkit
from kinfra.testing.cli import kinfra, ok
from kinfra.testing.dockerkit import free_port_bases
from kinfra.testing.example import make_example_project

NOT_HERE = "198.51.100.77"  # TEST-NET-2 (RFC 5737): never an address of this machine


def _config_with_bind(tmp_path: Path, bind: str) -> Path:
    path = tmp_path / "kinfra.toml"
    path.write_text(f'[project]\nname = "app"\n[sandbox]\nbind = "{bind}"\n')
    return path


@pytest.mark.parametrize("bind", ["127.0.0.1", "0.0.0.0", "::", "::1", "192.168.1.20"])
def test_ip_addresses_are_accepted(tmp_path: Path, bind: str) -> None:
    assert load_config(_config_with_bind(tmp_path, bind)).sandbox.bind == bind


@pytest.mark.parametrize("bind", ["localhostt", "localhost", "10.0.0.300", ""])
def test_a_bind_that_is_not_an_ip_address_is_a_config_error(tmp_path: Path, bind: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(_config_with_bind(tmp_path, bind))
    message = caught.value.message
    assert "\n" not in message
    assert message.startswith("kinfra.toml: [sandbox] bind: ") and "not an IP address" in message


def test_port_check_on_an_address_of_another_machine_is_a_clear_error() -> None:
    (port,) = free_port_bases(1, 1)
    with pytest.raises(ConfigError) as caught:
        netcheck.port_is_free(NOT_HERE, port)
    assert caught.value.message == (
        f"[sandbox] bind address {NOT_HERE} is not an address of this machine"
    )
    # Addresses this machine has still work, IPv6 loopback included.
    assert netcheck.port_is_free("127.0.0.1", port)
    assert netcheck.port_is_free("::1", port)


@pytest.mark.docker
def test_sandbox_up_with_a_foreign_bind_address_says_so(tmp_path: Path, docker_prefix: str) -> None:
    repo = make_example_project(tmp_path, docker_prefix, mini=True, with_origin=False)
    ok(repo, "sandbox", "provision")
    config = repo / "kinfra.toml"
    config.write_text(
        config.read_text().replace("[sandbox]\n", f'[sandbox]\nbind = "{NOT_HERE}"\n')
    )
    result = kinfra(repo, "sandbox", "up", "--slot", "1")
    assert result.returncode == 1
    first = result.stderr.splitlines()[0]
    assert (
        first
        == f"kinfra: error: [sandbox] bind address {NOT_HERE} is not an address of this machine"
    )

    config.write_text(config.read_text().replace(NOT_HERE, "localhostt"))
    named = kinfra(repo, "sandbox", "up", "--slot", "1")
    assert named.returncode == 1 and "not an IP address" in named.stderr
    assert dockerkit.compose_projects(docker_prefix) == []
