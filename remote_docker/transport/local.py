"""The workstation's own docker client, for when the user asks for it.

``REMOTE_DOCKER_HOST=local docker …``, ``remote-docker local …``, and an
endpoint named explicitly (``-H``, ``--context``, ``DOCKER_HOST``,
``DOCKER_CONTEXT``) all mean "not the docker-machine": the next ``docker`` on
PATH that is not one of our shims is run in our place.
"""

import os

from remote_docker.errors import UsageError

SHIM_MARKER = b"remote_docker"


def is_shim(path: str, own: str | None = None) -> bool:
    """A docker on PATH is ours if it is this very script or a script naming our package."""
    real = os.path.realpath(path)
    if own is not None and real == os.path.realpath(own):
        return True
    try:
        with open(real, "rb") as f:
            head = f.read(1024)
    except OSError:
        return False
    return head.startswith(b"#!") and SHIM_MARKER in head


def find_local_docker(env: dict | os._Environ = os.environ, own: str | None = None) -> str | None:
    for folder in env.get("PATH", os.defpath).split(os.pathsep):
        candidate = os.path.join(folder or ".", "docker")
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK) \
                and not is_shim(candidate, own):
            return candidate
    return None


def exec_local_docker(argv: list[str], why: str, env: dict | os._Environ = os.environ,
                      own: str | None = None) -> None:
    """Replace this process with the local docker client; never returns."""
    docker = find_local_docker(env, own)
    if docker is None:
        raise UsageError(f"{why}, but there is no local docker client on PATH besides "
                         "remote-docker's shim")
    os.execv(docker, [docker, *argv])
