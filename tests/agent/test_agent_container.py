"""The agent container of an impl worktree, with real Docker and the real image."""

from __future__ import annotations

import hashlib
import json
import secrets
import subprocess
import urllib.request
from pathlib import Path

import pytest

from kinfra.testing.agentkit import AgentProject, make_agent_project
from kinfra.testing.example import kinfra
from kinfra.testing.gitrepo import git

# The image has Node but neither curl nor wget: print a URL's body, or exit 3.
FETCH = (
    "fetch(process.argv[1], {signal: AbortSignal.timeout(3000)})"
    ".then(r => r.text()).then(t => process.stdout.write(t))"
    ".catch(e => { console.error(String(e)); process.exit(3); })"
)


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout


def fetch(project: AgentProject, url: str) -> subprocess.CompletedProcess[str]:
    return project.kinfra("agent", "run", "--", "node", "-e", FETCH, url)


def test_commands_run_as_the_worktree_owner_with_the_slot_environment(
    agent_project: AgentProject,
) -> None:
    p, wt = agent_project, agent_project.worktree
    script = (
        "id -u; id -g; id -un; pwd; echo sandbox=$IS_SANDBOX slot=$SLOT_NUMBER; "
        "echo from-agent > made-here.txt; git add made-here.txt; git commit -qm 'agent commit'; "
        "exit 7"
    )
    result = p.kinfra("agent", "run", "--", "sh", "-c", script)
    assert result.returncode == 7, result.stderr  # the command's own exit code
    assert result.stdout.splitlines()[:5] == [
        "1000",
        "1000",
        "agent",
        "/workspace",
        "sandbox=1 slot=1",
    ]
    made = wt / "made-here.txt"
    assert made.read_text() == "from-agent\n"
    assert (made.stat().st_uid, made.stat().st_gid) == (1000, 1000)
    # Committed inside, on the worktree's branch, with the user's identity.
    assert git(wt, "log", "-1", "--format=%s|%an").stdout.strip() == "agent commit|kinfra tests"
    assert git(p.repo, "log", "-1", "--format=%s", "impl/genome-M1").stdout.strip() == (
        "agent commit"
    )

    # IS_SANDBOX is the container's, not the image's.
    image_env = json.loads(docker("image", "inspect", "--format", "{{json .Config.Env}}", p.image))
    assert not [item for item in image_env if item.startswith("IS_SANDBOX")]
    plain = docker("run", "--rm", p.image, "sh", "-c", "echo ${IS_SANDBOX:-unset}")
    assert plain.strip() == "unset"

    # Named from the main checkout: the same container.
    named = kinfra(p.repo, "agent", "run", "genome-M1", "--", "cat", "made-here.txt")
    assert (named.returncode, named.stdout) == (0, "from-agent\n"), named.stderr

    status = json.loads(kinfra(p.repo, "agent", "status", "--json").stdout)
    assert [(r["worktree"], r["slot"], r["state"], r["image"], r["network"]) for r in status] == [
        (wt.name, 1, "running", "current", f"{p.prefix}-slot-1_default")
    ]


def test_the_agent_cannot_plant_what_git_on_the_host_would_run(
    agent_project: AgentProject,
) -> None:
    p, wt = agent_project, agent_project.worktree
    common = p.repo / ".git"
    own = common / "worktrees" / wt.name
    config_before = (common / "config").read_bytes()
    plants = {
        "a hook": f"echo 'touch planted' > {common}/hooks/post-commit",
        "the config": f"printf '[core]\\n\\tfsmonitor = touch planted\\n' >> {common}/config",
        "the worktree's .git file": "echo 'gitdir: /workspace/evil' > /workspace/.git",
        "its commondir": f"echo /workspace/evil > {own}/commondir",
        "another worktree's dir": f"mkdir {common}/worktrees/evil",
    }
    for what, command in plants.items():
        planted = p.kinfra("agent", "run", "--", "sh", "-c", command)
        assert planted.returncode != 0, f"{what} could be written from the container"
    assert not (common / "hooks" / "post-commit").exists()
    assert (common / "config").read_bytes() == config_before
    assert (wt / ".git").read_text().startswith(f"gitdir: {own}")
    # What a commit needs stays writable.
    committed = p.kinfra(
        "agent", "run", "--", "sh", "-c",
        "echo x > inside.txt && git add inside.txt && git commit -qm inside && git status --short",
    )  # fmt: skip
    assert committed.returncode == 0, committed.stderr
    assert git(wt, "log", "-1", "--format=%s").stdout.strip() == "inside"


def test_the_slot_answers_by_service_name_and_url_and_another_slot_does_not(
    tmp_path: Path, docker_prefix: str, agent_image: str
) -> None:
    p = make_agent_project(
        tmp_path, docker_prefix, agent_image, milestones=("genome/M1", "genome/M2")
    )
    mine, other = p.worktrees
    for wt, text in ((mine, "slot one\n"), (other, "slot two\n")):
        (wt / "app" / "who.txt").write_text(text)
    url, other_url = p.slot_env(mine)["API_URL"], p.slot_env(other)["API_URL"]

    by_name = fetch(p, "http://backend:8080/app/who.txt")
    assert (by_name.returncode, by_name.stdout) == (0, "slot one\n"), by_name.stderr
    by_url = fetch(p, f"{url}/app/who.txt")  # http://localhost:<slot 1's port>
    assert (by_url.returncode, by_url.stdout) == (0, "slot one\n"), by_url.stderr

    # Slot 2's backend: not by its URL, not through the host, not by its address.
    backend2 = docker(
        "ps", "-q", "--filter", f"label=com.docker.compose.project={docker_prefix}-slot-2",
        "--filter", "label=com.docker.compose.service=backend",
    ).strip()  # fmt: skip
    address = docker(
        "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", backend2
    ).strip()
    port2 = p.slot_env(other)["API_PORT"]
    for refused_url in (
        f"{other_url}/app/who.txt",
        f"http://host.docker.internal:{port2}/app/who.txt",
        f"http://{address}:8080/app/who.txt",
    ):
        refused = fetch(p, refused_url)
        assert refused.returncode == 3, (refused_url, refused.stdout, refused.stderr)
    # The host reaches it, so the refusals above are the container's confinement.
    with urllib.request.urlopen(f"{other_url}/app/who.txt", timeout=5) as response:
        assert response.read() == b"slot two\n"


def test_the_api_key_is_passed_at_run_time_and_written_nowhere_and_shared_data_is_read_only(
    tmp_path: Path,
    docker_prefix: str,
    agent_image: str,
    kinfra_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = "sk-ant-kt-" + secrets.token_hex(16)
    monkeypatch.setenv("KT_AGENT_API_KEY", key)
    p = make_agent_project(
        tmp_path,
        docker_prefix,
        agent_image,
        extra='\n[secrets]\nANTHROPIC_API_KEY = "env://KT_AGENT_API_KEY"\n'
        '\n[shared]\ndata = { target = "/srv/data", services = ["backend"] }\n',
    )
    seen = p.kinfra(
        "agent", "run", "--", "sh", "-c",
        'printf %s "$ANTHROPIC_API_KEY" | sha256sum; echo "ran" > /logs/run.log',
    )  # fmt: skip
    assert seen.returncode == 0, seen.stderr
    assert seen.stdout.split()[0] == hashlib.sha256(key.encode()).hexdigest()

    container = f"{p.worktree.name}-agent"
    logs = subprocess.run(["docker", "logs", container], capture_output=True, text=True)
    in_volume = p.kinfra("agent", "run", "--", "sh", "-c", "cat /logs/*")
    assert in_volume.stdout == "ran\n"
    places = {
        "docker history": docker("history", "--no-trunc", p.image),
        "image inspect": docker("image", "inspect", p.image),
        "container inspect": docker("container", "inspect", container),
        "container logs": logs.stdout + logs.stderr,
        "kinfra output": seen.stdout + seen.stderr,
        "logs volume": in_volume.stdout,
    }
    for path in [*kinfra_home.rglob("*"), *p.worktree.rglob("*")]:
        # The registry, slot files, .env.sandbox... The slot's own .env.secrets
        # (0600, for compose, while the stack runs) is how [secrets] reach the
        # stack, not the agent.
        if path.is_file() and path.name != ".env.secrets":
            places[str(path)] = path.read_text(errors="replace")
    assert any("registry.json" in where for where in places)
    assert [where for where, text in places.items() if key in text] == []

    # The shared data is there, read-only.
    (kinfra_home / p.prefix / "shared" / "data" / "prices.csv").write_text("1,2\n")
    shared = p.kinfra(
        "agent", "run", "--", "sh", "-c",
        'cat "$SHARED_DATA_DIR/prices.csv"; touch /shared/data/x 2>/dev/null || echo read-only',
    )  # fmt: skip
    assert shared.stdout == "1,2\nread-only\n", shared.stderr
