"""A compose project's named volumes, saved to and restored from tar files.

The copying runs in a small helper image kinfra builds locally from
``busybox:1.36`` (tar and sh, nothing else), so it never depends on the
project's own images: a restore works whatever the stack's images contain,
and before they are even built. The tar stream goes through the docker CLI
(stdin/stdout), so it works with any Docker context, local or remote.
"""

from __future__ import annotations

from pathlib import Path

from kinfra.adapters.docker import docker, remove_volumes, volumes
from kinfra.errors import DataError

HELPER_IMAGE = "kinfra-volume-helper:1"
_HELPER_DOCKERFILE = 'FROM busybox:1.36\nLABEL org.kinfra.role="volume-helper"\n'
_PROJECT_LABEL = "com.docker.compose.project"
_VOLUME_LABEL = "com.docker.compose.volume"


def ensure_helper() -> None:
    """Build the helper image once (about a second, from busybox:1.36)."""
    if docker(["image", "inspect", HELPER_IMAGE], check=False).ok:
        return
    built = docker(["build", "-q", "-t", HELPER_IMAGE, "-"], check=False, input=_HELPER_DOCKERFILE)
    if not built.ok:
        raise DataError(
            f"could not build kinfra's volume helper image {HELPER_IMAGE} from busybox:1.36",
            hint="busybox:1.36 must be present or pullable (`docker pull busybox:1.36`)",
        )


def project_volumes(compose_project: str) -> dict[str, str]:
    """The named volumes compose made for a project: compose key -> volume name."""
    listed = volumes({_PROJECT_LABEL: compose_project}, key=_VOLUME_LABEL)
    return {key: name for name, key in listed.items() if key}


def create_volume(compose_project: str, key: str) -> str:
    """The volume compose would create for ``key``, with compose's labels, so
    that the next `up` adopts it as its own."""
    name = f"{compose_project}_{key}"
    docker(
        [
            "volume", "create",
            "--label", f"{_PROJECT_LABEL}={compose_project}",
            "--label", f"{_VOLUME_LABEL}={key}",
            name,
        ]
    )  # fmt: skip
    return name


def remove_volume(name: str) -> None:
    remove_volumes([name])


def export_volume(volume: str, archive: Path) -> None:
    """The volume's whole content as a tar file."""
    docker(
        [
            "run",
            "--rm",
            "-v",
            f"{volume}:/data:ro",
            HELPER_IMAGE,
            "tar",
            "-C",
            "/data",
            "-cf",
            "-",
            ".",
        ],
        stdout_file=archive,
    )


def import_volume(volume: str, archive: Path) -> None:
    """Replace the volume's content with the tar file's."""
    script = "cd /data && rm -rf -- * .[!.]* ..?* && tar -xf -"
    docker(
        ["run", "--rm", "-i", "-v", f"{volume}:/data", HELPER_IMAGE, "sh", "-c", script],
        stdin_file=archive,
    )
