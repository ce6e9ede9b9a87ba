"""kinfra deploy against a second real Docker engine: ship, gate, status, history."""

from __future__ import annotations

import json
from pathlib import Path

from kinfra.testing.deploy import (
    TOKEN_VARIABLE,
    Shop,
    api_url,
    fetch,
    make_deploy_project,
    remove_release_images,
)
from kinfra.testing.engine import SecondEngine, leftovers, second_engine
from kinfra.testing.example import kinfra
from kinfra.testing.gitrepo import git


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").stdout.strip()


def labels_of(engine: SecondEngine, project: str) -> list[dict[str, str]]:
    ids = engine.docker("ps", "-q", "--filter", f"label=com.docker.compose.project={project}")
    inspected = json.loads(engine.docker("inspect", *ids.stdout.split()).stdout)
    return [item["Config"]["Labels"] for item in inspected]


def test_deploy_loads_the_images_the_engine_lacked_and_passes_the_gate(
    docker_prefix: str, tmp_path: Path, kinfra_home: Path
) -> None:
    with second_engine() as engine:
        repo = make_deploy_project(tmp_path, docker_prefix, engine.context)
        env = {**engine.env(), TOKEN_VARIABLE: "tok-deploy-test"}
        try:
            sha = head(repo)
            # A new engine has nothing, not even the busybox base the images are built FROM.
            assert engine.image_refs() == set()
            assert engine.image_ids() == set()

            result = kinfra(repo, "deploy", "prod", env=env)

            assert result.returncode == 0, result.stderr
            url = f"http://{engine.address}:"
            assert f"prod runs {sha[:12]} (main)" in result.stdout
            assert url in result.stdout and "localhost" not in result.stdout
            assert "loading 3 image(s)" in result.stderr and "✓ check api" in result.stderr
            refs = {f"shop-{s}:{sha[:12]}" for s in ("backend", "worker", "db")}
            assert refs <= engine.image_refs()
            # The base layers came with the images: the engine can run busybox now.
            assert engine.docker("run", "--rm", f"shop-db:{sha[:12]}", "true", check=False).ok

            api = api_url(result.stdout)
            assert api.startswith(url)
            assert json.loads(fetch(api + "/api/v1/health")) == {"status": "ok"}
            assert fetch(api + "/app/version.txt") == "v1\n"

            labels = labels_of(engine, docker_prefix)
            assert len(labels) == 3
            for container in labels:
                assert container["dev.kinfra.deploy.sha"] == sha
                assert container["dev.kinfra.deploy.ref"] == "main"
                assert container["dev.kinfra.deploy.user"].startswith("root@")
                assert container["dev.kinfra.deploy.time"].endswith("+00:00")

            status = kinfra(repo, "deploy", "status", "prod", "--json", env=env)
            assert status.returncode == 0, status.stderr
            (report,) = json.loads(status.stdout)
            assert report["state"] == "running" and report["engine"] == engine.endpoint
            assert report["release"]["sha"] == sha and report["commits_since"] == 0
            assert report["rollback_point"] is False
            assert {c["health"] for c in report["containers"]} == {"healthy", ""}

            history = kinfra(repo, "deploy", "history", "--json", env=env)
            (record,) = json.loads(history.stdout)
            assert (record["action"], record["outcome"]) == ("deploy", "deployed")
            assert record["release"]["sha"] == sha and set(record["images"]) == {
                "backend", "worker", "db",
            }  # fmt: skip
            # Nothing of the deploy is left on this machine but its history.
            assert git(repo, "worktree", "list").stdout.count("\n") == 1
            deploys = kinfra_home / docker_prefix / "deploys"
            assert sorted(p.name for p in deploys.iterdir()) == []
        finally:
            remove_release_images(repo)
        name = engine.name
    assert leftovers(name) == []


def test_status_counts_the_commits_on_main_since_the_deployed_one(shop: Shop) -> None:
    assert kinfra(shop.repo, "deploy", "prod", env=shop.env).returncode == 0
    deployed = head(shop.repo)
    (shop.repo / "NOTES.md").write_text("later work\n")
    git(shop.repo, "add", "-A")
    git(shop.repo, "commit", "-qm", "later")
    git(shop.repo, "push", "-q", "origin", "main")

    text = kinfra(shop.repo, "deploy", "status", env=shop.env)

    assert text.returncode == 0, text.stderr
    assert f"release   {deployed[:12]} (main), deployed by root@" in text.stdout
    assert "since     1 commit(s) on origin/main after it" in text.stdout
    assert "prod-canary: not deployed" in text.stdout
