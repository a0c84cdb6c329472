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


def local_client_env(argv: list[str], env: dict | os._Environ = os.environ) -> dict[str, str]:
    """The environment for the local docker client: ``env``, plus DOCKER_HOST naming the
    workstation's own engine when one is configured and the user named no endpoint."""
    from remote_docker import config

    client_env = dict(env)
    engine = config.local_docker_host(env)
    if not engine or env.get("DOCKER_HOST") or env.get("DOCKER_CONTEXT"):
        return client_env
    from remote_docker import dockercli

    if not dockercli.parse(argv).explicit_endpoint:
        client_env["DOCKER_HOST"] = engine
    return client_env


DEFAULT_SOCKET = "/var/run/docker.sock"


def engine_socket(client_env: dict | os._Environ) -> str | None:
    """The unix socket the local client would talk to, where that is certain: DOCKER_HOST's
    ``unix://`` path, or the default socket when no context is chosen. None for anything
    else (tcp, ssh, a context): then only the client itself knows, and it is used."""
    host = client_env.get("DOCKER_HOST")
    if host:
        return host[len("unix://"):] if host.startswith("unix://") else None
    if client_env.get("DOCKER_CONTEXT"):
        return None
    import json

    from remote_docker.hostkeys import docker_config_dir

    try:
        with open(os.path.join(docker_config_dir(client_env), "config.json"), "rb") as f:
            current = json.load(f).get("currentContext")
    except (OSError, ValueError, AttributeError):  # none, or not one the client could use
        current = None
    return DEFAULT_SOCKET if current in (None, "", "default") else None


def exec_local_docker(argv: list[str], why: str, env: dict | os._Environ = os.environ,
                      own: str | None = None) -> None:
    """Replace this process with the local docker client; never returns."""
    docker = find_local_docker(env, own)
    if docker is None:
        raise UsageError(f"{why}, but there is no local docker client on PATH besides "
                         "remote-docker's shim")
    os.execve(docker, [docker, *argv], local_client_env(argv, env))


def start_save(name: str, env: dict | os._Environ = os.environ):
    """``docker save NAME`` on the workstation's own engine, started now (a ``Piped``), or
    None without a local client (``images`` then says so). A push calls it before it
    imports anything else: the save's first bytes take longest to come."""
    from remote_docker.transport.process import Piped

    docker = find_local_docker(env)
    return None if docker is None else Piped([docker, "save", name],
                                             dict(local_client_env([], env)))
