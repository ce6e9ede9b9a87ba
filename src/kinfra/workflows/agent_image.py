"""`kinfra agent build`: the project's agent image.

kinfra's Dockerfile (package data, ``kinfra/data/agent``) adds git, Node.js
and the agent CLIs at the pinned versions to ``[agent] base_image``, then runs
``[agent] setup``; ``[agent] dockerfile`` (the project's own) is built FROM
that. Each image is tagged ``kinfra-agent:<digest of its inputs>`` (the files,
the pins, the base image's id, the CA bundle, the setup commands, the
project's build context), so unchanged inputs are never built again. The
project's tag ``kinfra-agent/<project>:current`` names the result: the image
new agent containers are made from.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from kinfra.adapters import docker
from kinfra.domain import agent_pins
from kinfra.domain.agent_box import IMAGE_REPOSITORY, LABEL_INPUTS, project_image
from kinfra.errors import AgentError
from kinfra.project import Project

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "agent"
_KINFRA_FILES = ("Dockerfile", "entrypoint.sh", "exec.sh", "stop.sh", "forward.js")
_FROM_ARG = "KINFRA_AGENT_IMAGE"  # what the project's Dockerfile builds FROM
_TAIL = 15


@dataclass(frozen=True)
class BuildResult:
    """What `kinfra agent build` built and tagged."""

    image: str  # the content tag of the final image
    project_tag: str  # kinfra-agent/<project>:current
    built: tuple[str, ...]  # the images built now; empty: all were there already
    seconds: float


def build_agent_image(
    project: Project, ca_bundle: Path | None, on_line: Callable[[str], None]
) -> BuildResult:
    started = time.monotonic()
    config = project.config
    settings = config.agent
    bundle = _read_ca_bundle(project, ca_bundle)
    project_file = _project_dockerfile(project)
    base_id = docker.image_id(settings.base_image) or _pull(settings.base_image, on_line)
    setup = "".join(f"{command}\n" for command in settings.setup) or ":\n"
    files = {name: (DATA_DIR / name).read_bytes() for name in _KINFRA_FILES}
    args = {
        "BASE_IMAGE": settings.base_image,
        "CLAUDE_CODE_PACKAGE": agent_pins.CLAUDE_CODE_PACKAGE,
        "CLAUDE_CODE_VERSION": agent_pins.CLAUDE_CODE_VERSION,
        "CODEX_PACKAGE": agent_pins.CODEX_PACKAGE,
        "CODEX_VERSION": agent_pins.CODEX_VERSION,
    }
    digest = inputs_digest(
        [
            *files.items(),
            *((f"arg:{k}", v.encode()) for k, v in args.items()),
            ("base-id", base_id.encode()),
            ("ca-bundle.crt", bundle),
            ("setup.sh", setup.encode()),
        ]
    )
    image = f"{IMAGE_REPOSITORY}:{digest}"
    built: list[str] = []
    if docker.image_id(image) is None:
        with tempfile.TemporaryDirectory(prefix="kinfra-agent-build-") as tmp:
            ctx = Path(tmp)
            for name, data in {
                **files,
                "ca-bundle.crt": bundle,
                "setup.sh": setup.encode(),
            }.items():
                (ctx / name).write_bytes(data)
            _build(image, digest, ctx, ctx / "Dockerfile", args, on_line)
        built.append(image)
    if project_file is not None:
        context = project_file.parent
        digest = inputs_digest([("from", image.encode()), *_tree(context, project_file)])
        derived = f"{IMAGE_REPOSITORY}:{digest}"
        if docker.image_id(derived) is None:
            _build(derived, digest, context, project_file, {_FROM_ARG: image}, on_line)
            built.append(derived)
        image = derived
    current = project_image(config.name)
    docker.tag(image, current)
    return BuildResult(image, current, tuple(built), time.monotonic() - started)


def inputs_digest(parts: Iterable[tuple[str, bytes]]) -> str:
    """16 hex digits of SHA-256 over named parts, each framed by its length."""
    sha = hashlib.sha256()
    for name, data in parts:
        sha.update(f"{name}\0{len(data)}\0".encode())
        sha.update(data)
    return sha.hexdigest()[:16]


def _read_ca_bundle(project: Project, flag: Path | None) -> bytes:
    """The CA bundle's bytes (b"" for none): --ca-bundle wins over [agent] ca_bundle,
    whose relative path is taken from the main checkout."""
    if flag is not None:
        path, origin = flag.expanduser(), "--ca-bundle"
    elif project.config.agent.ca_bundle is not None:
        path = Path(project.config.agent.ca_bundle).expanduser()
        path, origin = (path if path.is_absolute() else project.root / path), "[agent] ca_bundle"
    else:
        return b""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AgentError(
            f"{origin}: cannot read {path} ({exc.strerror or type(exc).__name__})",
            hint="give a PEM file of CA certificates, e.g. /etc/ssl/certs/ca-certificates.crt",
        ) from None
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise AgentError(
            f"{origin}: {path} holds no PEM certificate",
            hint="give a PEM file of CA certificates (-----BEGIN CERTIFICATE----- blocks)",
        )
    return data


def _project_dockerfile(project: Project) -> Path | None:
    name = project.config.agent.dockerfile
    if name is None:
        return None
    path = project.root / name
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise AgentError(
            f"[agent] dockerfile: cannot read {path}",
            hint=f"create it, or remove `dockerfile` from [agent] in {project.config.path}",
        ) from None
    if _FROM_ARG not in text:
        raise AgentError(
            f"[agent] dockerfile: {path} must build FROM kinfra's image",
            hint=f"start it with `ARG {_FROM_ARG}` and `FROM ${{{_FROM_ARG}}}`",
        )
    return path


def _tree(context: Path, dockerfile: Path) -> Iterator[tuple[str, bytes]]:
    """Every file of the project's build context (.git aside), by relative path."""
    yield "Dockerfile:" + dockerfile.name, dockerfile.read_bytes()
    for directory, dirs, names in os.walk(context):
        dirs[:] = sorted(d for d in dirs if d != ".git")
        for name in sorted(names):
            path = Path(directory) / name
            if path.is_file():
                yield str(path.relative_to(context)), path.read_bytes()


def _pull(ref: str, on_line: Callable[[str], None]) -> str:
    result = docker.docker_stream(["pull", ref], on_line)
    found = docker.image_id(ref) if result.ok else None
    if found is None:
        raise AgentError(
            f"base image {ref} is not here and cannot be pulled: {docker.last_line(result.output)}",
            hint="set [agent] base_image to an image this machine has or can pull "
            "(a Debian-based one: the Dockerfile uses apt)",
        )
    return found


def _build(
    image: str,
    digest: str,
    context: Path,
    dockerfile: Path,
    args: dict[str, str],
    on_line: Callable[[str], None],
) -> None:
    argv = ["build", "--tag", image, "--file", str(dockerfile)]
    # No project label: projects with the same inputs share the image.
    argv += ["--label", f"{LABEL_INPUTS}={digest}"]
    for key, value in args.items():
        argv += ["--build-arg", f"{key}={value}"]
    # Plain lines from BuildKit too (the legacy builder prints them anyway).
    result = docker.docker_stream(
        [*argv, str(context)], on_line, env={"BUILDKIT_PROGRESS": "plain"}
    )
    if result.ok:
        return
    tail = "\n".join(result.output.splitlines()[-_TAIL:])
    hint = "see the build output above"
    if "SELF_SIGNED_CERT_IN_CHAIN" in tail or "certificate" in tail.lower():
        hint = (
            "behind a TLS-inspecting proxy, pass its CA: "
            "`kinfra agent build --ca-bundle FILE` or [agent] ca_bundle"
        )
    raise AgentError(
        f"docker build of the agent image failed (exit {result.returncode}):\n{tail}", hint
    )
