"""The workstation's own engine: a second dockerd that only ws may use.

Image push/pull moves images between two engines, so the bed needs one on
the "workstation" beside the docker-machine's. It is a dockerd of its own
(socket, data root, exec root with its own managed containerd, pidfile, an
empty config file instead of /etc/docker/daemon.json, a cgroup parent)
with no bridge and no iptables rules, so it cannot fight the main engine
over networks or firewall chains. It also runs in a network namespace of its
own (`unshare --net`): dockerd 20.10 started with `--bridge=none` deletes
any link named docker0 it can see, which would take the main engine's
default network away from every container started after it. Its socket belongs to group ws: ws's `docker` reaches it
the way a workstation user's reaches their own engine, and dm cannot.

The main engine is never touched except to `docker save` busybox from it.
"""

from __future__ import annotations

import os

from remote_docker.testbed import layout
from remote_docker.testbed.dockerd import answering, docker
from remote_docker.testbed.images import BUSYBOX
from remote_docker.testbed.process import (
    TestbedError, alive, log_tail, processes_named, read_pid, run, spawn_detached, terminate,
    wait_until,
)

START_TIMEOUT = 60


def ws_docker(*args: str, check: bool = True, input: bytes | None = None):
    """The docker client as root against the workstation's engine."""
    env = {"PATH": layout.DAEMON_PATH, "HOME": "/root", "LANG": "C.UTF-8",
           "DOCKER_HOST": layout.WS_DOCKER_HOST}
    return run(["docker", *args], env=env, check=check, input=input)


def dockerd_argv() -> list[str]:
    return [
        "unshare", "--net", "--",
        "dockerd",
        "--host", layout.WS_DOCKER_HOST,
        "--group", layout.WS_USER,
        "--data-root", str(layout.WS_DOCKER_DATA_ROOT),
        "--exec-root", str(layout.WS_DOCKER_EXEC_ROOT),
        "--pidfile", str(layout.WS_DOCKERD_PIDFILE),
        "--config-file", str(layout.WS_DOCKERD_CONFIG),
        "--cgroup-parent", "remote-docker-testbed-ws",
        "--bridge=none", "--iptables=false", "--ip-masq=false",
    ]


def pid() -> int | None:
    """The ws engine's dockerd, by pidfile or else by its --pidfile argument."""
    found = read_pid(layout.WS_DOCKERD_PIDFILE)
    if alive(found, "dockerd"):
        return found
    pids = processes_named("dockerd", str(layout.WS_DOCKERD_PIDFILE))
    return pids[0] if pids else None


def running() -> bool:
    return answering(layout.WS_DOCKER_SOCKET)


def _start() -> str:
    layout.WS_DOCKER_RUN_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    layout.WS_DOCKER_DATA_ROOT.mkdir(mode=0o710, parents=True, exist_ok=True)
    layout.WS_DOCKERD_CONFIG.write_text("{}\n")
    if pid() is None:
        layout.WS_DOCKERD_PIDFILE.unlink(missing_ok=True)
        layout.WS_DOCKER_SOCKET.unlink(missing_ok=True)
        env = {"PATH": layout.DAEMON_PATH, "HOME": "/root", "LANG": "C.UTF-8"}
        spawn_detached(dockerd_argv(), layout.WS_DOCKERD_LOG, env=env)
    try:
        wait_until(running, timeout=START_TIMEOUT, what="the workstation's dockerd")
    except TestbedError as error:
        raise TestbedError(f"{error}; {log_tail(layout.WS_DOCKERD_LOG)}") from None
    return "started"


def _image_id(client, image: str) -> str:
    result = client("image", "inspect", "--format", "{{.Id}}", image, check=False)
    return result.stdout.decode().strip() if result.returncode == 0 else ""


def _load_busybox() -> str:
    """busybox:latest from the main engine, the same image id on both."""
    wanted = _image_id(docker, BUSYBOX)
    if not wanted:
        raise TestbedError(f"{BUSYBOX} is missing on the main engine")
    if _image_id(ws_docker, BUSYBOX) == wanted:
        return ""
    ws_docker("load", input=docker("save", BUSYBOX).stdout)
    return f"loaded {BUSYBOX}"


def ensure() -> str:
    """Start the ws engine unless it answers, and give it busybox; fast when up."""
    done = [] if running() else [_start()]
    os.chmod(layout.WS_DOCKER_SOCKET, 0o660)
    loaded = _load_busybox()
    done += [loaded] if loaded else []
    return ", ".join(done) or "ok"


def stop() -> str:
    """Stop the ws engine if it runs; its images stay in its data root for the next up."""
    found = pid()
    if found is None:
        return ""
    terminate(lambda: [found] if alive(found, "dockerd") else [], what="ws dockerd", grace=30)
    layout.WS_DOCKERD_PIDFILE.unlink(missing_ok=True)
    return "stopped the workstation's dockerd"
