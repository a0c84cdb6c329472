"""``remote-docker status`` and ``remote-docker disconnect``.

``status`` answers "where do my docker commands go, and does that work?" in
one screen: the machine and where that choice came from, the connection, the
remote docker, the transport, live mounts.  It asks the docker-machine one
question (``docker version``) over the same ControlMaster the shim uses, so a
green status means the shim works too.
"""

import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from remote_docker import config
from remote_docker.config import Machine
from remote_docker.errors import ConnectionFailed, RemoteCommandFailed, UsageError

if TYPE_CHECKING:
    from remote_docker.transport.openssh import ControlMaster

# One call answers both: the client part prints even when the server is unreachable.
VERSION_FORMAT = "{{.Client.Version}} {{if .Server}}{{.Server.Version}}{{end}}"
DOCKER_VERSION = ["docker", "version", "--format", VERSION_FORMAT]


@dataclass(frozen=True)
class DockerVersions:
    client: str
    server: str


def interpret_probe(spec: str, user: str, returncode: int, stdout: str,
                    stderr: str) -> DockerVersions:
    """Turn the remote ``docker version`` into versions, or one line naming the fix.

    ``user`` is the login on the docker-machine, named in the permission message
    because adding that user to the docker group is the fix.
    """
    words = stdout.split()
    if returncode == 0 and len(words) >= 2:
        return DockerVersions(words[0], words[1])
    err = stderr.lower()
    if returncode == 255:
        raise ConnectionFailed(f"lost the connection to {spec} while asking for docker's version",
                               stderr=stderr, returncode=returncode)
    if returncode == 127 or "command not found" in err or "docker: not found" in err:
        raise RemoteCommandFailed(f"no docker on {spec}: install docker there (Debian: "
                                  "apt-get install docker.io)", DOCKER_VERSION,
                                  stderr=stderr.encode(), returncode=returncode)
    if "permission denied" in err and "docker" in err and "sock" in err:
        who = f"user {user}" if user else "the login user"
        raise RemoteCommandFailed(f"{who} on {spec} may not use docker (add it to the docker "
                                  "group)", DOCKER_VERSION, stderr=stderr.encode(),
                                  returncode=returncode)
    if "cannot connect to the docker daemon" in err:
        raise RemoteCommandFailed(f"docker on {spec} is not running (its client answers, "
                                  "its daemon does not)", DOCKER_VERSION,
                                  stderr=stderr.encode(), returncode=returncode)
    detail = [line for line in stderr.splitlines() if line.strip()]
    raise RemoteCommandFailed(f"'docker version' failed on {spec}: "
                              f"{detail[-1].strip() if detail else f'exit status {returncode}'}",
                              DOCKER_VERSION, stderr=stderr.encode(), returncode=returncode)


def probe_docker(master: "ControlMaster") -> DockerVersions:
    """Ask the docker-machine's docker for its versions over the (started) master."""
    argv = master.session_argv(shlex.join(DOCKER_VERSION), null_stdin=True)
    proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    user = master.machine.user or ""
    if proc.returncode != 0 and not user:
        from remote_docker import hostkeys

        user = hostkeys.resolve_target(master.machine, master.env).user
    return interpret_probe(master.machine.spec, user, proc.returncode, proc.stdout, proc.stderr)


def machine_origin(env: dict | os._Environ) -> str:
    """Where the machine choice came from, for the user who wonders why it is that one."""
    if env.get("REMOTE_DOCKER_HOST") is not None:
        return "from REMOTE_DOCKER_HOST"
    return f"from {config.config_path(env)}"


def live_mount_lines() -> list[str]:
    """Live reverse mounts, once the mounts package provides its registry."""
    try:
        from remote_docker.mounts.registry import live_mounts  # type: ignore[import-not-found]
    except ImportError:
        return []
    return [str(mount) for mount in live_mounts()]


def configured_machine(env: dict | os._Environ) -> Machine | None:
    """The configured machine, or None when it is the workstation's own docker."""
    spec = config.machine_spec(env)
    return None if spec == config.LOCAL else config.parse_machine(spec)


def main_status(args: list[str]) -> int:
    if args:
        raise UsageError("usage: remote-docker status (takes no arguments)")
    from remote_docker.transport.openssh import ControlMaster

    env = os.environ
    machine = configured_machine(env)
    out = sys.stdout
    if machine is None:
        out.write(f"machine:    local, the workstation's own docker ({machine_origin(env)})\n")
        return 0
    out.write(f"machine:    {machine.spec} ({machine_origin(env)})\n")
    out.write(f"transport:  {config.transport_name(env)}\n")
    out.flush()
    master = ControlMaster(machine, env)
    warm = master.is_warm()
    master.ensure()
    versions = probe_docker(master)
    out.write(f"connection: {'warm' if warm else 'was cold, started now'} "
              f"(ControlMaster {master.path})\n")
    out.write(f"docker:     server {versions.server}, client {versions.client} "
              f"(on {machine.spec})\n")
    from remote_docker.transport import docker_socket

    remote = docker_socket.forwarded_to(master)
    if remote:  # made by compose or a push: where their API calls go
        out.write(f"engine:     {remote} on {machine.spec}, forwarded to "
                  f"{docker_socket.socket_path(master)}\n")
    mounts = live_mount_lines()
    out.write("mounts:     " + ("\n            ".join(mounts) if mounts else "none") + "\n")
    return 0


def main_disconnect(args: list[str]) -> int:
    if args:
        raise UsageError("usage: remote-docker disconnect (takes no arguments)")
    from remote_docker.transport.openssh import ControlMaster

    machine = configured_machine(os.environ)
    if machine is None:
        sys.stdout.write("the workstation's own docker needs no connection\n")
        return 0
    master = ControlMaster(machine, os.environ)
    if not master.is_warm():
        sys.stdout.write(f"no open connection to {machine.spec}\n")
        return 0
    master.stop()
    deadline = time.monotonic() + 5  # the master unlinks its socket as it exits
    while master.is_warm() and time.monotonic() < deadline:
        time.sleep(0.05)
    if master.is_warm():
        raise ConnectionFailed(f"the connection to {machine.spec} is still open "
                               f"(control socket {master.path})")
    sys.stdout.write(f"closed the connection to {machine.spec}\n")
    return 0
