"""The docker-machine's docker socket, as a unix socket on the workstation.

Compose (and any other client of the Engine API that runs on the
workstation) needs a ``DOCKER_HOST`` it can talk HTTP to.  Docker's own
``ssh://`` transport starts a new ssh and ``docker system dial-stdio`` per
connection (~300 ms each, and compose opens several); instead the existing
ControlMaster is asked to listen on a workstation unix socket and forward
each connection to the remote ``/var/run/docker.sock`` as a
``direct-streamlocal`` channel on the connection it already has
(``ssh -O forward -L local.sock:remote.sock``, PROTOCOL.mux's
MUX_C_OPEN_FWD).  A connection then costs one channel open, no login.

Which remote socket: the one the docker-machine's own docker client talks to
(its ``DOCKER_HOST``, ``DOCKER_CONTEXT`` or current context, as the shim's
commands see them), asked once when the forward is made. A rootless engine
(``unix:///run/user/1000/docker.sock``) next to a rootful one is then the
engine ``docker images`` lists, not whichever listens at the default path;
``REMOTE_DOCKER_REMOTE_SOCKET`` overrides the answer.

The forward belongs to the master: it is shared by every caller, lives as
long as the master does, and goes with it.  The socket sits beside the
control socket in the private runtime directory (0700), because whoever can
connect to it commands the remote engine.  A socket left by a master that
died no longer answers: it is replaced, under a lock, by the next caller.
"""

import os

from remote_docker.errors import ConfigError, ConnectionFailed
from remote_docker.transport.openssh import ControlMaster, socket_answers

REMOTE_SOCKET = "/var/run/docker.sock"
MAX_UNIX_PATH = 107  # sun_path is 108 bytes with its NUL


# The current context's endpoint; for the default context that is DOCKER_HOST, or the
# default socket. A client too old for a bare `context inspect` (< 20.10) prints nothing.
ENDPOINT_SCRIPT = ("docker context inspect --format '{{.Endpoints.docker.Host}}' "
                   "2>/dev/null </dev/null")


def remote_socket(env: dict | os._Environ) -> str:
    """The engine's socket on the docker-machine as configured: REMOTE_DOCKER_REMOTE_SOCKET,
    else the default (``forward`` asks the docker-machine's client which it really is)."""
    return env.get("REMOTE_DOCKER_REMOTE_SOCKET") or REMOTE_SOCKET


def endpoint_socket(status: int, host: str, label: str) -> str:
    """The socket path in the docker-machine client's endpoint ``host`` (what
    ``ENDPOINT_SCRIPT`` printed, with its exit ``status``); the default when it said
    nothing (no client there, or one without contexts)."""
    host = host.strip()
    if status != 0 or not host:
        return REMOTE_SOCKET
    if host.startswith("unix://") and len(host) > len("unix://"):
        return host[len("unix://"):]
    raise ConfigError(f"the docker client on {label} talks to {host}, not to a unix socket "
                      "this connection can forward: set REMOTE_DOCKER_REMOTE_SOCKET to the "
                      "engine's socket there")


def discover(master: ControlMaster) -> str:
    """The socket the docker-machine's own docker client uses (``endpoint_socket``)."""
    status, out = master.capture(ENDPOINT_SCRIPT)
    if status == 255:
        raise ConnectionFailed(f"lost the connection to {master.machine.spec} while asking "
                               "where its docker engine listens")
    return endpoint_socket(status, out.decode("utf-8", "replace"), master.machine.spec)


def forwarded_to(master: ControlMaster) -> str | None:
    """The remote socket of the master's live forward (for ``status``); None if none."""
    path = socket_path(master)
    try:
        with open(path + ".remote", encoding="utf-8") as f:
            remote = f.read().strip()
    except OSError:
        return None
    return remote if remote and socket_answers(path) else None


def socket_path(master: ControlMaster) -> str:
    """Beside the control socket; one per remote socket, since a forward, once made, goes
    where it was first asked to (REMOTE_DOCKER_REMOTE_SOCKET set later would be ignored)."""
    remote = remote_socket(master.env)
    if remote == REMOTE_SOCKET:
        return master.path + ".docker.sock"
    import hashlib

    return f"{master.path}-{hashlib.sha256(remote.encode()).hexdigest()[:8]}.docker.sock"


def forward(master: ControlMaster) -> str:
    """The workstation socket forwarded to the remote engine's; made on first use."""
    path = socket_path(master)
    if len(path.encode()) > MAX_UNIX_PATH:
        raise ConfigError(f"the socket path {path} is too long for a unix socket: set "
                          "XDG_RUNTIME_DIR to a shorter directory")
    master.ensure()
    if socket_answers(path):
        return path
    import fcntl

    with open(path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if socket_answers(path):
            return path
        try:
            os.unlink(path)  # left by a master that is gone: ssh would not bind over it
        except FileNotFoundError:
            pass
        remote = master.env.get("REMOTE_DOCKER_REMOTE_SOCKET") or discover(master)
        _request(master, path, remote)
        with open(path + ".remote", "w", encoding="utf-8") as f:
            f.write(remote + "\n")
    return path


def _request(master: ControlMaster, path: str, remote: str) -> None:
    import subprocess

    argv = ["ssh", "-S", master.path, "-O", "forward", "-L", f"{path}:{remote}",
            "-o", "LogLevel=ERROR", *master.machine.ssh_args()]
    offset = master.log_size()
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConnectionFailed(f"cannot forward the docker socket of {master.machine.spec}: "
                               f"{exc}", argv) from None
    if proc.returncode != 0 or not socket_answers(path):
        said = proc.stderr.decode("utf-8", "replace").strip() or \
            master.log_since(offset).strip() or f"ssh exited with {proc.returncode}"
        raise ConnectionFailed(f"cannot forward the docker socket of {master.machine.spec}: "
                               f"{said.splitlines()[-1]}", argv, said, proc.returncode)
