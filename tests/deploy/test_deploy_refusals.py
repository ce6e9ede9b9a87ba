"""What kinfra deploy refuses, before anything starts: a dirty tree, an
unpushed ref, a second deploy to a busy target, an unknown Docker context."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from kinfra.testing.deploy import Shop, release_config, release_version
from kinfra.testing.engine import SecondEngine
from kinfra.testing.example import kinfra
from kinfra.testing.gitrepo import commit_all, git


def started_nothing(shop: Shop, engine: SecondEngine, kinfra_home: Path) -> None:
    assert [name for name in engine.containers() if name.startswith(shop.project)] == []
    shas = {sha[:12] for sha in git(shop.repo, "rev-list", "--all").stdout.split()}
    assert [ref for ref in engine.image_refs() if ref.rsplit(":", 1)[-1] in shas] == []
    assert not (kinfra_home / shop.project / "deploys.jsonl").exists()
    assert git(shop.repo, "worktree", "list").stdout.count("\n") == 1


def test_a_dirty_tree_is_refused_with_nothing_started(
    shop: Shop, engine: SecondEngine, kinfra_home: Path
) -> None:
    (shop.repo / "app" / "index.html").write_text("work in progress\n")

    result = kinfra(shop.repo, "deploy", "prod", env=shop.env)

    assert result.returncode == 1
    assert "has uncommitted changes; nothing was deployed" in result.stderr
    assert "--force" in result.stderr
    started_nothing(shop, engine, kinfra_home)


def test_an_unpushed_ref_is_refused_with_nothing_started(
    shop: Shop, engine: SecondEngine, kinfra_home: Path
) -> None:
    (shop.repo / "app" / "index.html").write_text("local only\n")
    commit_all(shop.repo, "not pushed")

    result = kinfra(shop.repo, "deploy", "prod", env=shop.env)

    assert result.returncode == 1
    sha = git(shop.repo, "rev-parse", "HEAD").stdout.strip()
    assert f"main ({sha[:12]}) is not pushed to any remote; nothing was deployed" in result.stderr
    started_nothing(shop, engine, kinfra_home)
    # An explicit --ref of a pushed commit is fine, even from that checkout.
    pushed = kinfra(shop.repo, "deploy", "prod", "--ref", "origin/main", env=shop.env)
    assert pushed.returncode == 0, pushed.stderr
    assert "prod runs" in pushed.stdout and "(origin/main)" in pushed.stdout


def test_a_second_deploy_to_a_busy_target_is_refused(
    shop: Shop, engine: SecondEngine, kinfra_home: Path
) -> None:
    release_version(shop.repo, "v2")
    lock = kinfra_home / shop.project / "deploys" / "prod.lock"
    first = subprocess.Popen(
        [sys.executable, "-m", "kinfra", "deploy", "prod"],
        cwd=shop.repo, env={**os.environ, **shop.env},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not lock.exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lock.exists(), "the first deploy never took the lock"

        second = kinfra(shop.repo, "deploy", "prod", env=shop.env)

        assert second.returncode == 1
        assert "deploy target prod is already being deployed by kinfra pid" in second.stderr
        assert str(first.pid) in second.stderr
    finally:
        _, err = first.communicate(timeout=240)
    assert first.returncode == 0, err
    assert not lock.exists()
    history = kinfra(shop.repo, "deploy", "history", env=shop.env).stdout
    assert history.count("deployed") == 1


def test_an_unknown_context_is_one_line_naming_the_key(shop: Shop, engine: SecondEngine) -> None:
    release_config(shop.repo, f'context = "{engine.context}"', 'context = "nas"', "typo")

    result = kinfra(shop.repo, "deploy", "prod", env=shop.env)

    assert result.returncode == 1
    first, hint = result.stderr.splitlines()
    assert first == (
        "kinfra: error: kinfra.toml: [deploy.prod] context: no Docker context named 'nas' "
        f"(docker context ls: default, {engine.context})"
    )
    assert "docker context create" in hint
    status = kinfra(shop.repo, "deploy", "status", env=shop.env)
    assert status.returncode == 0
    assert "prod: unreachable" in status.stdout and "no Docker context named 'nas'" in status.stdout


def test_an_engine_that_does_not_answer_is_named_with_nothing_started(
    shop: Shop, engine: SecondEngine, kinfra_home: Path
) -> None:
    # A context whose engine is not there: the right host, a port nothing listens on.
    endpoint = f"tcp://{engine.address}:2999"
    subprocess.run(
        ["docker", "context", "create", "gone", "--docker", f"host={endpoint}"],
        env={**os.environ, **shop.env}, check=True, capture_output=True,
    )  # fmt: skip
    release_config(
        shop.repo, f'context = "{engine.context}"', 'context = "gone"', "an engine that is gone"
    )

    result = kinfra(shop.repo, "deploy", "prod", env=shop.env)

    assert result.returncode == 1
    assert "the engine of Docker context gone cannot be reached" in result.stderr
    assert str(engine.address) in result.stderr
    started_nothing(shop, engine, kinfra_home)
    status = kinfra(shop.repo, "deploy", "status", "prod", env=shop.env)
    assert "prod: unreachable" in status.stdout and "cannot be reached" in status.stdout
