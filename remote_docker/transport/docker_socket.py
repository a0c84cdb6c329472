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


def remote_socket(env: dict | os._Environ) -> str:
    """The engine's socket on the docker-machine (REMOTE_DOCKER_REMOTE_SOCKET overrides)."""
    return env.get("REMOTE_DOCKER_REMOTE_SOCKET") or REMOTE_SOCKET


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
        _request(master, path, remote_socket(master.env))
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
