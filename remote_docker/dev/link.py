"""The ssh link to the session's container: through the docker-machine, keys pinned.

The container's sshd listens only on the docker-machine's loopback.  The
session's ssh config (``ssh -F``, also usable by hand, by editors and by
sshfs) reaches it with a ProxyCommand that is a stdio forward (``-W``) over
the docker-machine's own ControlMaster: no new connection to the
docker-machine, its pinned host key, and whatever ProxyJump chain the user's
``~/.ssh/config`` sets for it (the master was made through it; when the
master is not up, the forward's ssh reads that config itself).  The
container's host key is checked against the session's known_hosts under a
fixed alias, so a new port after a restart changes nothing.

The link keeps a ControlMaster of its own so that each ``dodo`` is one mux
session, not a new ssh handshake; ``stop`` closes it.
"""

from __future__ import annotations

import os
import time

from remote_docker import config
from remote_docker.dev.session import Session, SessionError
from remote_docker.errors import ConnectionFailed
from remote_docker.transport import quoting

TYPE_CHECKING = False  # ControlMaster is imported where used: dodo's warm path needs none of it
if TYPE_CHECKING:
    from remote_docker.transport.openssh import ControlMaster

START_TIMEOUT = 30.0  # the container's sshd is starting when `dev run` first connects
PERSIST = "600"


def machine_master(session: Session, env: dict | os._Environ = os.environ) -> "ControlMaster":
    from remote_docker.transport.openssh import ControlMaster

    return ControlMaster(config.parse_machine(session.machine), env)


def control_path(session: Session, env: dict | os._Environ = os.environ) -> str:
    return os.path.join(config.runtime_dir(env), f"dev-{session.id}")


def proxy_command(master: "ControlMaster") -> str:
    """A stdio forward to the container's port over the docker-machine's master."""
    argv = ["ssh", "-S", master.path, "-o", "ControlMaster=no", *master.host_key_options(),
            "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-W", "127.0.0.1:%p",
            *master.machine.ssh_args()]
    return quoting.join(argv)


def _q(path: str) -> str:
    return f'"{path}"' if any(c in path for c in " \t#") else path


def config_text(session: Session, master: "ControlMaster",
                env: dict | os._Environ = os.environ) -> str:
    return "\n".join([
        f"# remote-docker dev session {session.name}: rewritten by each 'dev run'",
        f"# use: ssh -F {_q(session.ssh_config)} {session.host_alias}",
        f"Host {session.host_alias}",
        "  HostName 127.0.0.1",
        f"  Port {session.port}",
        "  User root",
        f"  HostKeyAlias {session.host_alias}",
        f"  UserKnownHostsFile {_q(session.known_hosts)}",
        "  GlobalKnownHostsFile /dev/null",
        "  StrictHostKeyChecking yes",
        "  UpdateHostKeys no",
        "  CheckHostIP no",
        f"  IdentityFile {_q(session.client_key)}",
        "  IdentitiesOnly yes",
        "  PasswordAuthentication no",
        "  KbdInteractiveAuthentication no",
        "  BatchMode yes",
        "  LogLevel ERROR",
        "  ServerAliveInterval 15",
        f"  ControlPath {_q(control_path(session, env))}",
        "  ControlMaster no",
        f"  ProxyCommand {proxy_command(master)}",
        "",
    ])


def write_config(session: Session, env: dict | os._Environ = os.environ) -> None:
    text = config_text(session, machine_master(session, env), env)
    tmp = session.ssh_config + f".{os.getpid()}"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(text)
    os.replace(tmp, session.ssh_config)


def ssh_base(session: Session) -> list[str]:
    return ["ssh", "-F", session.ssh_config]


def is_warm(session: Session, env: dict | os._Environ = os.environ) -> bool:
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(control_path(session, env))
        return True
    except OSError:
        return False
    finally:
        sock.close()


def ensure(session: Session, env: dict | os._Environ = os.environ,
           timeout: float = 0.0) -> None:
    """The link's master is up; retried for ``timeout`` s while the sshd starts.

    A changed host key is never retried or bypassed: it is one line saying so.
    """
    if is_warm(session, env):
        return
    if not session.port or not os.path.exists(session.ssh_config):
        raise SessionError(f"session {session.name!r} has no running container: "
                           "'remote-docker dev run' starts it")
    machine_master(session, env).ensure()
    import fcntl

    with open(control_path(session, env) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent dodos: one starts the master
        _start_master(session, env, timeout)


def _start_master(session: Session, env: dict | os._Environ, timeout: float) -> None:
    from remote_docker.hostkeys import run_tool

    path = control_path(session, env)
    log = path + ".log"
    argv = [*ssh_base(session), "-o", "ControlMaster=yes", "-o", f"ControlPersist={PERSIST}",
            "-f", "-N", "-E", log, session.host_alias]
    deadline = time.monotonic() + timeout
    while not is_warm(session, env):
        for stale in (path, log):  # a killed master's socket would make ssh run without one
            try:
                os.unlink(stale)
            except FileNotFoundError:
                pass
        proc = run_tool(argv, timeout=60)
        if proc.returncode == 0 and is_warm(session, env):
            return
        why = _read(log) + proc.stderr
        if "HOST IDENTIFICATION HAS CHANGED" in why or "verification failed" in why:
            raise ConnectionFailed(f"session {session.name!r}: the container's host key is not "
                                   f"the one pinned in {session.known_hosts}: refusing to "
                                   "connect", argv, why)
        if time.monotonic() >= deadline:
            last = [line for line in why.splitlines() if line.strip()]
            raise ConnectionFailed(f"cannot reach session {session.name!r}'s container: "
                                   f"{last[-1].strip() if last else 'ssh failed'}", argv, why)
        time.sleep(0.2)


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def close(session: Session, env: dict | os._Environ = os.environ) -> None:
    """End the link's master (and its log); "not running" is fine."""
    import subprocess

    path = control_path(session, env)
    if is_warm(session, env) and os.path.exists(session.ssh_config):
        subprocess.run([*ssh_base(session), "-O", "exit", session.host_alias],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=30)
    for leftover in (path, path + ".log", path + ".lock"):
        try:
            os.unlink(leftover)
        except FileNotFoundError:
            pass


def sweep(known_ids: set[str], env: dict | os._Environ = os.environ) -> list[str]:
    """Masters and logs of sessions that no longer exist here: closed, removed."""
    import glob
    import subprocess

    removed = []
    for path in glob.glob(os.path.join(config.runtime_dir(env), "dev-*")):
        sid, dot, _ = os.path.basename(path)[len("dev-"):].partition(".")
        if sid in known_ids:
            continue
        if not dot:  # the socket itself, not its .log or .lock
            subprocess.run(["ssh", "-S", path, "-O", "exit", "rd-dev"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
            removed.append(f"ssh master {path}")
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    return removed
