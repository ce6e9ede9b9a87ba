"""Canary then promote, a failed gate restoring the previous version, rollback,
and secrets that appear nowhere: against a second real Docker engine."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

from kinfra.testing.deploy import Shop, api_url, fetch, release_config, release_version
from kinfra.testing.engine import SecondEngine, registry
from kinfra.testing.example import kinfra
from kinfra.testing.gitrepo import git


def images_by_service(engine: SecondEngine, project: str) -> dict[str, str]:
    out = engine.docker(
        "ps", "--filter", f"label=com.docker.compose.project={project}",
        "--format", '{{.Label "com.docker.compose.service"}} {{.ID}}',
    ).stdout  # fmt: skip
    found = {}
    for line in out.splitlines():
        service, container = line.split()
        found[service] = engine.docker(
            "inspect", "--format", "{{.Image}}", container
        ).stdout.strip()
    return found


def test_canary_then_promote_runs_the_same_image_digests(shop: Shop, engine: SecondEngine) -> None:
    canary = kinfra(shop.repo, "deploy", "prod", "--canary", env=shop.env)

    assert canary.returncode == 0, canary.stderr
    assert "prod-canary runs" in canary.stdout
    assert "promote it with: kinfra deploy promote prod" in canary.stdout
    on_canary = images_by_service(engine, f"{shop.project}-canary")
    assert set(on_canary) == {"backend", "worker", "db"}
    assert images_by_service(engine, shop.project) == {}  # the target itself is untouched

    promoted = kinfra(shop.repo, "deploy", "promote", "prod", env=shop.env)

    assert promoted.returncode == 0, promoted.stderr
    assert images_by_service(engine, shop.project) == on_canary
    assert all(image.startswith("sha256:") for image in on_canary.values())
    assert fetch(api_url(promoted.stdout) + "/app/version.txt") == "v1\n"
    assert fetch(api_url(canary.stdout) + "/app/version.txt") == "v1\n"
    history = json.loads(kinfra(shop.repo, "deploy", "history", "--json", env=shop.env).stdout)
    assert [(r["action"], r["target"], r["outcome"]) for r in history] == [
        ("deploy", "prod-canary", "deployed"),
        ("promote", "prod", "deployed"),
    ]
    assert history[0]["release"]["sha"] == history[1]["release"]["sha"]


def test_a_failed_gate_restores_the_previous_version_and_exits_2(
    shop: Shop, engine: SecondEngine
) -> None:
    first = kinfra(shop.repo, "deploy", "prod", env=shop.env)
    assert first.returncode == 0, first.stderr
    url = api_url(first.stdout)
    v1 = images_by_service(engine, shop.project)
    # v2 comes with a check that cannot pass.
    release_version(shop.repo, "v2")
    release_config(
        shop.repo,
        "[deploy.prod-canary]",
        '[[deploy.prod.checks]]\nname = "search"\ntype = "http"\nport = "api"\n'
        'path = "/api/v1/search"\ntimeout = 2\n\n[deploy.prod-canary]',
        "a search check",
    )

    second = kinfra(shop.repo, "deploy", "prod", env=shop.env)

    assert second.returncode == 2, second.stderr
    error = second.stderr.splitlines()[-2]
    assert "failed its gate: search: failed (status 404 (expected 200) after 2s)" in error
    assert "Restored" in error
    assert fetch(url + "/app/version.txt") == "v1\n"  # the previous version answers
    assert images_by_service(engine, shop.project) == v1
    (record,) = json.loads(
        kinfra(shop.repo, "deploy", "history", "-n", "1", "--json", env=shop.env).stdout
    )
    assert record["outcome"] == "restored" and record["failed_checks"][0].startswith("search:")
    status = json.loads(
        kinfra(shop.repo, "deploy", "status", "prod", "--json", env=shop.env).stdout
    )
    assert status[0]["state"] == "running"
    assert (
        status[0]["release"]["sha"]
        == json.loads(kinfra(shop.repo, "deploy", "history", "--json", env=shop.env).stdout)[0][
            "release"
        ]["sha"]
    )


def test_rollback_switches_to_the_previous_deployment_and_back(
    shop: Shop, engine: SecondEngine
) -> None:
    assert kinfra(shop.repo, "deploy", "prod", env=shop.env).returncode == 0
    v1_sha = git(shop.repo, "rev-parse", "HEAD").stdout.strip()
    v1 = images_by_service(engine, shop.project)
    release_version(shop.repo, "v2")
    second = kinfra(shop.repo, "deploy", "prod", env=shop.env)
    assert second.returncode == 0, second.stderr
    url = api_url(second.stdout)
    assert fetch(url + "/app/version.txt") == "v2\n"
    status = kinfra(shop.repo, "deploy", "status", "prod", env=shop.env).stdout
    assert f"rollback  {v1_sha[:12]} (main)" in status
    assert {f"kinfra-prev:{shop.project}.{s}" for s in v1} <= engine.image_refs()

    back = kinfra(shop.repo, "deploy", "rollback", "prod", env=shop.env)

    assert back.returncode == 0, back.stderr
    assert f"prod runs {v1_sha[:12]} (main)" in back.stdout
    assert fetch(url + "/app/version.txt") == "v1\n"
    assert images_by_service(engine, shop.project) == v1
    # The deployment it replaced is the rollback point now: rolling back again goes forward.
    forward = kinfra(shop.repo, "deploy", "rollback", "prod", env=shop.env)
    assert forward.returncode == 0, forward.stderr
    assert fetch(url + "/app/version.txt") == "v2\n"


def test_the_secret_appears_nowhere_but_in_the_container(
    shop: Shop, engine: SecondEngine, kinfra_home: Path
) -> None:
    secret = shop.env["SHOP_API_TOKEN"]

    result = kinfra(shop.repo, "deploy", "prod", env=shop.env)

    assert result.returncode == 0, result.stderr
    backend = f"{shop.project}-backend-1"
    # It reached the service, as a compose secret copied in through the API...
    assert engine.docker("exec", backend, "cat", "/run/secrets/api_token").stdout == secret
    # ...and nowhere else: output, history, labels, docker inspect, the work dir.
    assert secret not in result.stdout + result.stderr
    everything = [p for p in kinfra_home.rglob("*") if p.is_file()]
    assert all(secret not in p.read_text(errors="replace") for p in everything)
    assert not (kinfra_home / shop.project / "deploys" / "prod").exists()
    containers = engine.docker("ps", "-aq").stdout.split()
    assert secret not in engine.docker("inspect", *containers).stdout
    images = engine.docker("image", "ls", "-q").stdout.split()
    assert secret not in engine.docker("image", "inspect", *images).stdout
    for command in (("status", "--json"), ("history", "--json")):
        shown = kinfra(shop.repo, "deploy", *command, env=shop.env)
        assert secret not in shown.stdout + shown.stderr


def test_through_a_registry_the_target_pulls_what_was_pushed(
    shop: Shop, engine: SecondEngine
) -> None:
    with registry(engine) as address:
        release_config(
            shop.repo,
            'canary = "prod-canary"',
            f'canary = "prod-canary"\nregistry = "{address}"',
            "ship through the registry",
        )
        sha = git(shop.repo, "rev-parse", "HEAD").stdout.strip()

        result = kinfra(shop.repo, "deploy", "prod", env=shop.env)

        assert result.returncode == 0, result.stderr
        assert f"pushing {address}/shop-backend:{sha[:12]}" in result.stderr
        assert "loading" not in result.stderr  # no docker save | load this time
        pulled = {f"{address}/shop-{s}:{sha[:12]}" for s in ("backend", "worker", "db")}
        assert pulled <= engine.image_refs()
        tls = ssl.create_default_context(cafile=str(engine.root / "tls" / "ca.pem"))
        with urllib.request.urlopen(f"https://{address}/v2/_catalog", context=tls) as answer:
            assert "shop-backend" in json.loads(answer.read())["repositories"]
        assert fetch(api_url(result.stdout) + "/app/version.txt") == "v1\n"


def test_an_interrupted_switch_puts_the_previous_version_back(
    shop: Shop, engine: SecondEngine
) -> None:
    first = kinfra(shop.repo, "deploy", "prod", env=shop.env)
    assert first.returncode == 0, first.stderr
    url = api_url(first.stdout)
    release_version(shop.repo, "v2")
    second = subprocess.Popen(
        [sys.executable, "-m", "kinfra", "deploy", "prod"],
        cwd=shop.repo, env={**os.environ, **shop.env},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert second.stderr is not None
    seen = []
    for line in second.stderr:  # wait until compose is switching the target
        seen.append(line)
        if line.startswith(f"… starting {shop.project} on"):
            break
    second.send_signal(signal.SIGINT)
    _, rest = second.communicate(timeout=180)

    assert second.returncode == 130, "".join(seen) + rest
    assert fetch(url + "/app/version.txt") == "v1\n"
    (record,) = json.loads(
        kinfra(shop.repo, "deploy", "history", "-n", "1", "--json", env=shop.env).stdout
    )
    assert record["outcome"] == "restored" and record["error"].startswith("interrupted; restored")
