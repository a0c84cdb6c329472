"""The docker-machine's engine: a dockerd on the machine's default socket.

These machines have no systemd, so the bed starts dockerd itself, in the
background, and records that it did (a pidfile in the state dir): `down`
stops only a dockerd the bed started, never one that was already there.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from remote_docker.testbed import layout
from remote_docker.testbed.process import (
    TestbedError, alive, log_tail, processes_named, read_pid, run, spawn_detached, terminate,
    wait_until,
)

START_TIMEOUT = 60


def docker_env() -> dict[str, str]:
    """Root's environment pinned to the default socket.

    A DOCKER_HOST or docker context in root's own environment must not send
    the bed's image builds or cleanup to some other engine.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY")}
    env["DOCKER_HOST"] = f"unix://{layout.DOCKER_SOCKET}"
    return env


def docker(*args: str, check: bool = True, timeout: float = 600):
    """Run the docker client as root against the bed's engine."""
    return run(["docker", *args], env=docker_env(), check=check, timeout=timeout)


def answering(sock_path: Path = layout.DOCKER_SOCKET) -> bool:
    """Whether an engine answers /_ping on the socket.

    A raw request over the unix socket costs a millisecond, where the docker
    client costs tens: `exec` and `status` ask this on every call.
    """
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(2)
            conn.connect(str(sock_path))
            conn.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            reply = b""
            while chunk := conn.recv(4096):
                reply += chunk
    except OSError:
        return False
    return reply.startswith(b"HTTP/1.") and reply.rstrip().endswith(b"OK")


def bed_dockerd() -> int | None:
    """The pid of the dockerd the bed started, if it runs.

    Found by its --pidfile argument when the pidfile itself is gone (a
    dockerd that stops removes the pidfile, even one another dockerd has
    rewritten since), and the pidfile is then written again.
    """
    pid = read_pid(layout.DOCKERD_PIDFILE)
    if alive(pid, "dockerd"):
        return pid
    found = processes_named("dockerd", str(layout.DOCKERD_PIDFILE))
    if not found:
        return None
    layout.DOCKERD_PIDFILE.write_text(f"{found[0]}\n")
    return found[0]


def started_by_bed() -> bool:
    """Whether the running dockerd is the one the bed started."""
    return bed_dockerd() is not None


def _client_answers() -> bool:
    return docker("version", "--format", "{{.Server.Version}}", check=False).returncode == 0


def ensure() -> str:
    """Use the engine that answers, or start dockerd and wait for its client to answer."""
    if answering():
        version = docker("version", "--format", "{{.Server.Version}}").stdout.decode().strip()
        whose = "started by the bed" if started_by_bed() else "already running, not ours"
        return f"ok ({version}, {whose})"
    layout.STATE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    layout.DOCKERD_PIDFILE.unlink(missing_ok=True)
    env = {"PATH": layout.DAEMON_PATH, "HOME": "/root", "LANG": "C.UTF-8"}
    env.update({k: v for k, v in os.environ.items() if k.lower().endswith("_proxy")})
    spawn_detached(
        ["dockerd", "--pidfile", str(layout.DOCKERD_PIDFILE)], layout.DOCKERD_LOG, env=env,
    )
    try:
        wait_until(_client_answers, timeout=START_TIMEOUT, what="dockerd")
    except TestbedError as error:
        raise TestbedError(f"{error}; {log_tail(layout.DOCKERD_LOG)}") from None
    version = docker("version", "--format", "{{.Server.Version}}").stdout.decode().strip()
    return f"started {version}"


def remove_containers_and_volumes() -> list[str]:
    """Remove every container and volume on the engine: the bed owns the machine."""
    if not answering():
        return []
    done = []
    containers = docker("ps", "-aq").stdout.decode().split()
    if containers:
        docker("rm", "-f", "-v", *containers)
        done.append(f"removed {len(containers)} containers")
    volumes = docker("volume", "ls", "-q").stdout.decode().split()
    if volumes:
        docker("volume", "rm", "-f", *volumes)
        done.append(f"removed {len(volumes)} volumes")
    return done


def stop() -> str:
    """Stop dockerd if, and only if, the bed started it."""
    pid = bed_dockerd()
    if pid is None:
        layout.DOCKERD_PIDFILE.unlink(missing_ok=True)
        return ""
    terminate(lambda: [pid] if alive(pid, "dockerd") else [], what="dockerd", grace=30)
    layout.DOCKERD_PIDFILE.unlink(missing_ok=True)
    return "stopped dockerd"
