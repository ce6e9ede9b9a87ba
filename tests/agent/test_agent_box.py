"""The agent container derived from (config, worktree): names, mounts, environment (pure)."""

from __future__ import annotations

from pathlib import Path

from kinfra.domain.agent_box import (
    AgentBox,
    ContainerSpec,
    GitDirs,
    Mount,
    MountKind,
    VolumeRole,
    forwarded_env,
    git_guards,
)


def test_names_follow_the_worktree_and_keep_volumes_stay_apart() -> None:
    box = AgentBox("shop", Path("/src/shop-impl-genome-M1"))
    assert box.container == "shop-impl-genome-M1-agent"
    assert box.volume(VolumeRole.HOME) == "shop-impl-genome-M1-agent-home"
    assert box.volume(VolumeRole.LOGS) == "shop-impl-genome-M1-agent-logs"
    one, other = box.volume(VolumeRole.KEEP, "/a/b"), box.volume(VolumeRole.KEEP, "/a-b")
    assert one.startswith("shop-impl-genome-M1-agent-keep-a-b-") and one != other
    assert [role for role in VolumeRole if not role.kept] == [VolumeRole.HOME, VolumeRole.LOGS]


def test_run_args_label_mount_and_never_carry_a_secret() -> None:
    box = AgentBox("shop", Path("/src/odd,name-impl-x-M1"))
    spec = ContainerSpec(
        box=box,
        image="sha256:abc",
        uid=1000,
        gid=1001,
        network="shop-slot-1_default",
        env={"SLOT_NUMBER": "1"},
        mounts=(
            Mount(MountKind.BIND, str(box.worktree), "/workspace"),
            box.volume_mount(VolumeRole.KEEP, "/env/models"),
        ),
        forward=("8001=backend:8080",),
    )
    args = spec.run_args()
    assert args[:3] == ["run", "--detach", "--init"] and args[-1] == "sha256:abc"
    assert "kinfra.agent.user=1000:1001" in args and "kinfra.agent.project=shop" in args
    assert args[args.index("--network") :][:2] == ["--network", "shop-slot-1_default"]
    assert "KINFRA_KEEP=/env/models" in args and "KINFRA_FORWARD=8001=backend:8080" in args
    # A comma in a path is quoted for --mount's CSV.
    assert '"source=/src/odd,name-impl-x-M1"' in args[args.index("--mount") + 1]
    assert "volume-label=kinfra.agent.volume=keep" in " ".join(args)


def test_only_the_agent_clis_settings_are_forwarded_never_keys() -> None:
    environ = {
        "ANTHROPIC_BASE_URL": "http://mock",
        "ANTHROPIC_API_KEY": "sk-secret",
        "ANTHROPIC_AUTH_TOKEN": "tok",
        "CLAUDE_CODE_MAX_RETRIES": "2",
        "DISABLE_TELEMETRY": "1",
        "HTTPS_PROXY": "http://proxy",
        "no_proxy": "localhost",
        "OTEL_EXPORTER_OTLP_HEADERS": "authorization=x",
        "AWS_SECRET_ACCESS_KEY": "aws",
        "HOME": "/root",
        "CLAUDE_CONFIG_DIR": "/root/.claude",
    }
    assert forwarded_env(environ) == {
        "ANTHROPIC_BASE_URL": "http://mock",
        "CLAUDE_CODE_MAX_RETRIES": "2",
        "DISABLE_TELEMETRY": "1",
        "HTTPS_PROXY": "http://proxy",
        "no_proxy": "localhost",
    }


def test_what_host_git_runs_or_follows_is_read_only_and_the_worktree_own_dir_is_not() -> None:
    common = Path("/src/shop/.git")
    own = common / "worktrees" / "shop-impl-genome-M1"
    guards = git_guards(Path("/src/shop-impl-genome-M1"), GitDirs(common, own, True))
    assert [(m.target, m.read_only) for m in guards] == [
        (f"{common}/config", True),
        (f"{common}/hooks", True),
        ("/workspace/.git", True),
        (f"{common}/worktrees", True),
        (str(own), False),
        (f"{own}/commondir", True),
        (f"{own}/gitdir", True),
        (f"{own}/config.worktree", True),
    ]
    assert guards[2].source == "/src/shop-impl-genome-M1/.git"
    # A main checkout's git dir has no pointers of its own to guard.
    assert [m.target for m in git_guards(Path("/src/shop"), GitDirs(common, common))] == [
        f"{common}/config",
        f"{common}/hooks",
    ]
