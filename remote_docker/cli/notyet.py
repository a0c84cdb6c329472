"""Shims whose issues have not landed yet: one honest line and exit 125."""

import sys

from remote_docker.errors import ExitStatus


def _not_yet(name: str) -> int:
    sys.stderr.write(f"{name}: not yet available in this version of remote-docker\n")
    return ExitStatus.USAGE


def docker_x11() -> int: return _not_yet("docker.x11")
def apt_docker() -> int: return _not_yet("apt-docker")
def make_dockerfile() -> int: return _not_yet("make_dockerfile")
def docker_compose() -> int: return _not_yet("docker-compose")
