"""Shims whose issues have not landed yet: one honest line and exit 125."""

import sys

from remote_docker.errors import ExitStatus


def _not_yet(name: str) -> int:
    sys.stderr.write(f"{name}: not yet available in this version of remote-docker\n")
    return ExitStatus.USAGE


def docker_build() -> int: return _not_yet("docker-build")
def docker_build_me() -> int: return _not_yet("docker.build.me")
def docker_machine() -> int: return _not_yet("docker-machine")
def docker_search() -> int: return _not_yet("docker-search")
