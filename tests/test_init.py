"""`kinfra init`: compose file(s) in, a kinfra.toml the validator accepts out.

Every case runs on real files in a temp dir; the CLI cases run the real
`python -m kinfra` process so exit codes and stderr are what a user sees.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from kinfra.domain import compose_inspect
from kinfra.domain.config import Config, Profile, load_config
from kinfra.domain.config_stack import CheckType
from kinfra.errors import ConfigError, KinfraError
from kinfra.testing.gitrepo import make_repo
from kinfra.workflows.init import init_project, write_new_file

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data" / "compose"
SHOP = REPO / "examples" / "shop"


def kinfra(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "kinfra", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=60,
        check=False,
    )
    assert "Traceback" not in result.stderr
    assert "internal error" not in result.stderr
    return result


def assert_one_line_error(stderr: str, *needles: str) -> None:
    """A user error is one `kinfra: error:` line, at most followed by a hint line."""
    lines = stderr.strip().splitlines()
    assert lines[0].startswith("kinfra: error: "), stderr
    assert len(lines) <= 2, stderr
    if len(lines) == 2:
        assert lines[1].startswith("  hint: "), stderr
    for needle in needles:
        assert needle in lines[0], stderr


def project_with(tmp_path: Path, fixture: str, name: str = "app") -> Path:
    root = tmp_path / name
    root.mkdir()
    shutil.copy(DATA / fixture, root / "compose.yaml")
    return root


def ports_of(config: Config) -> dict[str, tuple[str, int, int, str]]:
    return {p.name: (p.service, p.target, p.base, p.scheme) for p in config.ports}


def checks_of(config: Config) -> list[tuple[str, CheckType, str, str, tuple[str, ...]]]:
    return [(c.name, c.type, c.port, c.path, c.needs) for c in config.checks]


# --- the bundled example -----------------------------------------------------------


def test_init_on_the_shop_example_matches_its_handwritten_config(tmp_path: Path) -> None:
    shop = tmp_path / "shop"
    shutil.copytree(SHOP, shop)
    (shop / "kinfra.toml").unlink()

    result = kinfra(shop, "init")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"✓ wrote {shop / 'kinfra.toml'}"
    generated = load_config(shop / "kinfra.toml")
    expected = load_config(SHOP / "kinfra.toml")
    assert (generated.name, generated.prefix) == (expected.name, expected.prefix) == ("shop",) * 2
    assert generated.compose_files == expected.compose_files
    assert ports_of(generated) == ports_of(expected)
    assert generated.mounts == expected.mounts
    assert checks_of(generated) == checks_of(expected)
    assert [c.timeout for c in generated.checks] == [c.timeout for c in expected.checks]
    assert generated.sandbox == expected.sandbox
    assert [generated.sandbox.profile_of(s) for s in range(1, 7)] == [Profile.LIGHT] * 4 + [
        Profile.STANDARD,
        Profile.HEAVY,
    ]
    # worker and db are built from the repo too: offered, commented out, and noted.
    assert '# source = "worker"' in (shop / "kinfra.toml").read_text()
    assert "note: service worker: its build context 'worker'" in result.stderr


# --- differently shaped compose files -------------------------------------------------


def test_image_only_services_with_long_port_syntax(tmp_path: Path) -> None:
    root = project_with(tmp_path, "image_long.yml", name="Image Long")

    result = init_project(root, compose_files=[], name=None, dry_run=False)

    config = load_config(root / "kinfra.toml")
    assert result.path == root / "kinfra.toml"
    assert config.name == "image-long"
    assert ports_of(config) == {
        "web": ("web", 80, 8080, "http"),
        "cache": ("cache", 6379, 6379, "tcp"),
    }
    assert config.mounts == ()  # nothing is built from the repository
    # The cache's healthcheck is not HTTP: a TCP probe, and it comes first.
    assert checks_of(config) == [
        ("cache", CheckType.TCP, "cache", "", ()),
        ("web", CheckType.HTTP, "web", "/healthz", ("cache",)),
    ]
    assert any("5353" in n and "udp" in n for n in result.notes)
    assert config.sandbox.workers == ()


def test_built_services_with_short_port_syntax(tmp_path: Path) -> None:
    root = project_with(tmp_path, "build_short.yml")

    result = init_project(root, compose_files=[], name="my-shop", dry_run=False)

    config = load_config(root / "kinfra.toml")
    assert (config.name, config.prefix) == ("my-shop", "my-shop")
    assert ports_of(config) == {
        "api": ("api", 3000, 3000, "http"),
        "api_9229": ("api", 9229, 9229, "tcp"),  # a second port of one service
        "postgres": ("postgres", 5432, 5432, "tcp"),
    }
    # No bind mounts anywhere: the build context at /app is the guess, shared
    # by the two services built from it, and flagged for review.
    assert [(m.services, m.source, m.target, m.read_only) for m in config.mounts] == [
        (("api", "celery-worker"), "services/api", "/app", False)
    ]
    assert sum("is a guess" in n for n in result.notes) == 2
    assert checks_of(config) == [
        ("postgres", CheckType.TCP, "postgres", "", ()),
        ("api", CheckType.HTTP, "api", "/health", ("postgres",)),
    ]
    assert config.sandbox.workers == ("celery-worker",)


def test_several_services_with_variables_unpublished_ports_and_overlaps(tmp_path: Path) -> None:
    root = project_with(tmp_path, "multi.yml")

    result = init_project(root, compose_files=[], name=None, dry_run=False)

    config = load_config(root / "kinfra.toml")
    assert ports_of(config) == {
        "gateway": ("gateway", 8000, 8000, "http"),  # ${GATEWAY_PORT:-8000}
        # 8003 is within the pool of 6 of gateway's 8000: moved, and said so.
        "auth_service": ("auth-service", 8080, 8013, "http"),
        "sftp": ("sftp", 22, 2222, "tcp"),  # unquoted 2222:22 is not base-60 here
    }
    notes = "\n".join(result.notes)
    assert "host port 8003 overlaps port 'gateway'" in notes and "moved to 8013" in notes
    assert "port 9000 has no fixed host port" in notes
    assert "7000-7002:7000-7002 is not supported" in notes
    assert "'${UNSET_PORT}:80' uses a variable without a default" in notes
    assert "gateway has no healthcheck" in notes
    # gateway has no check, store has no port: auth needs nothing; sftp needs auth.
    assert checks_of(config) == [
        ("auth_service", CheckType.HTTP, "auth_service", "/ready", ()),
        ("sftp", CheckType.TCP, "sftp", "", ("auth_service",)),
    ]
    # Every note is also in the file, for whoever reads it later.
    assert all(note.split(":")[0] in result.text for note in result.notes)


def test_an_override_file_replaces_ports_tagged_override(tmp_path: Path) -> None:
    root = project_with(tmp_path, "multi.yml")
    shutil.copy(DATA / "multi.override.yml", root / "compose.override.yml")

    result = kinfra(root, "init", "-f", "compose.yaml", "-f", "compose.override.yml")

    assert result.returncode == 0, result.stderr
    config = load_config(root / "kinfra.toml")
    assert config.compose_files == ("compose.yaml", "compose.override.yml")
    assert config.port("gateway").base == 8500
    assert config.port("auth_service").base == 8003  # no longer near gateway's range


def test_compose_file_in_a_subfolder_of_a_git_repo(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, "Big_Project", with_origin=False)
    (repo / "deploy").mkdir()
    (repo / "deploy" / "compose.yml").write_text(
        "services:\n"
        "  backend:\n"
        "    build: ..\n"
        "    ports: ['8000:8000']\n"
        "    volumes: ['../src:/code/src', 'cache:/cache', {type: bind, source: /etc, target: /x}]\n"
        "volumes: {cache: {}}\n"
    )
    sub = repo / "deploy"

    result = kinfra(sub, "init", "-f", "compose.yml", "--name", "big")

    assert result.returncode == 0, result.stderr
    config = load_config(repo / "kinfra.toml")  # at the git toplevel, not in cwd
    assert (config.name, config.compose_files) == ("big", ("deploy/compose.yml",))
    assert ports_of(config) == {"api": ("backend", 8000, 8000, "http")}
    assert [(m.services, m.source, m.target) for m in config.mounts] == [
        (("backend",), "src", "/code/src")
    ]


def test_the_repository_folder_name_becomes_the_project_name(tmp_path: Path) -> None:
    root = project_with(tmp_path, "image_long.yml", name="A_Very-Long.Project Name")
    result = init_project(root, compose_files=[], name=None, dry_run=True)
    project = tomllib.loads(result.text)["project"]
    assert project == {
        "name": "a-very-long-project-name",
        "prefix": "a-very-long",  # 12 characters, trailing '-' dropped
        "compose_files": ["compose.yaml"],
    }


def test_the_usual_compose_names_are_found_in_order(tmp_path: Path) -> None:
    root = project_with(tmp_path, "image_long.yml")
    shutil.copy(DATA / "build_short.yml", root / "docker-compose.yml")
    result = init_project(root, compose_files=[], name=None, dry_run=True)
    assert tomllib.loads(result.text)["project"]["compose_files"] == ["compose.yaml"]
    (root / "compose.yaml").unlink()
    result = init_project(root, compose_files=[], name=None, dry_run=True)
    assert tomllib.loads(result.text)["project"]["compose_files"] == ["docker-compose.yml"]


# --- dry run and never overwriting --------------------------------------------------


def test_dry_run_prints_the_config_and_writes_nothing(tmp_path: Path) -> None:
    root = project_with(tmp_path, "build_short.yml")

    dry = kinfra(root, "init", "--dry-run")

    assert dry.returncode == 0, dry.stderr
    assert sorted(p.name for p in root.iterdir()) == ["compose.yaml"]
    assert tomllib.loads(dry.stdout)["project"]["name"] == "app"
    assert kinfra(root, "init").returncode == 0
    assert (root / "kinfra.toml").read_text() == dry.stdout  # what it showed is what it writes


def test_an_existing_config_is_never_overwritten(tmp_path: Path) -> None:
    root = project_with(tmp_path, "image_long.yml")
    original = b"# mine, hand-written\n[project]\nname = 'x'\n"
    (root / "kinfra.toml").write_bytes(original)

    result = kinfra(root, "init")

    assert result.returncode == 1
    assert_one_line_error(result.stderr, "kinfra.toml already exists")
    assert (root / "kinfra.toml").read_bytes() == original
    # Printing is harmless: a dry run still shows the proposal.
    dry = kinfra(root, "init", "--dry-run")
    assert dry.returncode == 0 and "[ports]" in dry.stdout
    assert (root / "kinfra.toml").read_bytes() == original


def test_the_exclusive_write_refuses_a_file_that_appeared_meanwhile(tmp_path: Path) -> None:
    # The race init_project's early check cannot close: the file shows up after it.
    path = tmp_path / "kinfra.toml"
    path.write_text("theirs\n")
    with pytest.raises(KinfraError, match="already exists") as caught:
        write_new_file(path, "ours\n")
    assert "\n" not in caught.value.message
    assert path.read_text() == "theirs\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kinfra.toml"]  # no temp file left
    write_new_file(tmp_path / "new.toml", "ours\n")
    assert (tmp_path / "new.toml").read_text() == "ours\n"


# --- user errors: one line, exit 1 --------------------------------------------------


def test_no_compose_file(tmp_path: Path) -> None:
    result = kinfra(tmp_path, "init")
    assert result.returncode == 1
    assert_one_line_error(result.stderr, "no compose file in", "compose.yaml")
    assert "kinfra init -f" in result.stderr


def test_a_named_compose_file_that_does_not_exist(tmp_path: Path) -> None:
    result = kinfra(tmp_path, "init", "-f", "nope.yml")
    assert result.returncode == 1
    assert_one_line_error(result.stderr, "compose file nope.yml not found")


def test_a_compose_file_outside_the_repository(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, "repo", with_origin=False)
    shutil.copy(DATA / "image_long.yml", tmp_path / "outside.yml")
    result = kinfra(repo, "init", "-f", "../outside.yml")
    assert result.returncode == 1
    assert_one_line_error(result.stderr, "outside the repository")


def test_invalid_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    ports: [8000:80\n")
    result = kinfra(tmp_path, "init")
    assert result.returncode == 1
    assert_one_line_error(result.stderr, "compose.yaml: not valid YAML at line")
    assert not (tmp_path / "kinfra.toml").exists()


def test_services_must_be_a_mapping(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  - web\n")
    result = kinfra(tmp_path, "init")
    assert result.returncode == 1
    assert_one_line_error(result.stderr, "compose.yaml: 'services' must map")


def test_an_invalid_project_name(tmp_path: Path) -> None:
    root = project_with(tmp_path, "image_long.yml")
    result = kinfra(root, "init", "--name", "My App")
    assert result.returncode == 1
    assert_one_line_error(result.stderr, "project name 'My App'")
    assert not (root / "kinfra.toml").exists()


# --- the pure helpers ------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("8000:8080", (8000, 8080)),
        ("127.0.0.1:8001:8080", (8001, 8080)),
        ("[::1]:8002:8080", (8002, 8080)),
        ("8003:8080/tcp", (8003, 8080)),
        ("${PORT:-8004}:8080", (8004, 8080)),
        ("${PORT-8005}:${TARGET:-8080}", (8005, 8080)),
        ("8080", None),
        ("8000:8080/udp", None),
        ("8000-8002:8000-8002", None),
        ("${PORT}:8080", None),
        ("${PORT:?required}:8080", None),
    ],
)
def test_short_port_syntax(raw: str, expected: tuple[int, int] | None) -> None:
    compose = {"services": {"svc": {"image": "x", "ports": [raw]}}}
    proposal = compose_inspect.propose(compose, name="p", compose_files=["c.yml"], compose_dir="")
    got = [(p.base, p.target) for p in proposal.ports]
    assert got == ([expected] if expected else [])
    if expected is None:
        assert proposal.notes[0].startswith("service svc: port")  # skipped, and why


def test_yaml_reads_ports_like_compose_and_accepts_merge_tags() -> None:
    text = (
        "services:\n  s:\n    ports: !override\n      - 22:22\n      - 8080\n    x: !reset null\n"
    )
    data = compose_inspect.parse_compose(text, "c.yml")
    assert data["services"]["s"]["ports"] == ["22:22", 8080]


@pytest.mark.parametrize(
    "value", ["plain", 'quo"te', "back\\slash", "tab\tnew\nline", "bell\x07", "ünïcode ✓", ""]
)
def test_toml_strings_round_trip(value: str) -> None:
    assert tomllib.loads(f"k = {compose_inspect.toml_string(value)}")["k"] == value


def test_odd_service_names_make_valid_unique_port_names(tmp_path: Path) -> None:
    compose = {
        "services": {
            "9-Front.End": {"image": "x", "ports": ["3000:3000", "3001:3001"]},
            "front_end": {"image": "x", "ports": ["3100:3000"]},
            "x" * 60: {"image": "x", "ports": ["4000:4000", "4100:4001"]},
        }
    }
    proposal = compose_inspect.propose(compose, name="p", compose_files=["c.yml"], compose_dir="")
    names = [p.name for p in proposal.ports]
    assert names[:3] == ["front_end", "front_end_3001", "front_end_3000"]
    assert names[3] == "x" * 32 and names[4] == "x" * 27 + "_4001"
    path = tmp_path / "kinfra.toml"
    path.write_text(compose_inspect.render_toml(proposal, "c.yml"))
    assert [p.name for p in load_config(path).ports] == names


def test_a_base_near_the_top_of_the_port_range_moves_down(tmp_path: Path) -> None:
    compose = {"services": {"s": {"image": "x", "ports": ["65533:80"]}}}
    proposal = compose_inspect.propose(compose, name="p", compose_files=["c.yml"], compose_dir="")
    assert [p.base for p in proposal.ports] == [10000]  # the high range, as for privileged ports
    assert "would pass 65535" in proposal.notes[0]


def test_library_errors_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"^c\.yml: expected a mapping at the top level$"):
        compose_inspect.parse_compose("- a\n", "c.yml")
