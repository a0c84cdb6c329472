"""One docker.x11 session: a socket on the docker-machine that reaches the workstation's X server.

The relay is the ssh master itself: a *remote forward* of a unix socket
(``ssh -O forward -R sock:/tmp/.X11-unix/XN``, asked over the mux socket)
makes sshd listen on ``<dir>/X0`` on the docker-machine and the master
connect to the local X server for every connection, so any number of X
connections work and no relay process of ours sits in the data path.  The
container gets that one socket file bind-mounted as ``/tmp/.X11-unix/X0`` and
the session's Xauthority file read-only: no ``--net=host``, no ``xhost +``.

``<dir>`` is ``/tmp/rd-x11-<uid>/<id>`` there (short: a unix socket path
must fit in 108 bytes), in a 0700 parent made by us, so no other account on
the docker-machine can reach the socket; the socket itself is made 0666
because the container may run as any uid (``--user``).

A session is recorded on the workstation before anything is made, in
``$XDG_STATE_HOME/remote-docker/x11/<id>.json``, and the file stays locked
(flock) by the process that runs the container; ``gc`` removes sessions
whose lock is free: the forward on the master and the directory there.
"""

from __future__ import annotations

import fcntl
import json
import os
import uuid as uuidlib
from dataclasses import asdict, dataclass

from remote_docker.errors import RemoteDockerError
from remote_docker.mounts.statedir import lock_is_free
from remote_docker.transport.mux import MuxClient, MuxError
from remote_docker.transport.quoting import quote
from remote_docker.x11.display import WorkstationDisplay

SOCKET = "X0"
XAUTHORITY = "Xauthority"
NO_DIR = 14


@dataclass
class Session:
    id: str
    machine: str  # Machine.spec
    connect: tuple[str, int]
    remote_dir: str = ""  # absolute, once made

    @property
    def socket(self) -> str:
        return f"{self.remote_dir}/{SOCKET}"

    @property
    def xauthority(self) -> str:
        return f"{self.remote_dir}/{XAUTHORITY}"


def sessions_dir(env: dict | os._Environ) -> str:
    base = env.get("XDG_STATE_HOME") or os.path.join(env.get("HOME") or os.path.expanduser("~"),
                                                     ".local", "state")
    return os.path.join(base, "remote-docker", "x11")


def _record_path(session_id: str, env: dict | os._Environ) -> str:
    return os.path.join(sessions_dir(env), f"{session_id}.json")


def _save(session: Session, env: dict | os._Environ, fd: int) -> None:
    data = json.dumps(asdict(session)).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


def _load(path: str) -> Session | None:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        data["connect"] = tuple(data["connect"])
        return Session(**data)
    except (OSError, ValueError, TypeError, KeyError):
        return None


def record(session: Session, env: dict | os._Environ) -> int:
    """Write the record, already locked (made under a temporary name); the fd holds the lock."""
    directory = sessions_dir(env)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    temp = os.path.join(directory, f".{session.id}.json")
    fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    _save(session, env, fd)
    os.rename(temp, _record_path(session.id, env))
    return fd


def remote_dir_script(session_id: str) -> str:
    """Make the session directory, store the Xauthority from stdin, print the directory."""
    return "\n".join([
        'p=/tmp/rd-x11-$(id -u)',
        '[ -d "$p" ] || mkdir -m 700 "$p" 2>/dev/null',
        f'[ -d "$p" ] && [ ! -L "$p" ] && [ -O "$p" ] || exit {NO_DIR}',
        'chmod 700 "$p" || exit 14',
        f'd="$p"/{quote(session_id)} && mkdir -m 700 "$d" || exit {NO_DIR}',
        f'umask 022 && cat > "$d"/{XAUTHORITY} || exit {NO_DIR}',
        "printf '%s\\n' \"$d\"",
    ])


def remove_dir_script(remote_dir: str) -> str:
    return f"rm -rf -- {quote(remote_dir)}"


def open_session(master, display: WorkstationDisplay, xauthority: bytes) -> tuple[Session, int]:
    """Make the session: record, directory with its Xauthority, forward, socket mode.

    Returns the session and the locked record fd (keep it open while the
    container runs; hand it to the process that runs it).  On failure
    everything made is undone before the error is raised.
    """
    master.ensure()
    session = Session(uuidlib.uuid4().hex[:16], master.machine.spec, display.connect)
    fd = record(session, master.env)
    try:
        status, out = master.capture(remote_dir_script(session.id), xauthority)
        if status != 0 or not out.strip():
            raise RemoteDockerError(f"cannot make a directory for the X socket under "
                                    f"/tmp on {master.machine.spec}")
        session.remote_dir = out.decode().strip()
        _save(session, master.env, fd)
        _forward(master, session, open_it=True)
        status, _ = master.capture(f"chmod 666 {quote(session.socket)}")
        if status != 0:
            raise RemoteDockerError(f"the X socket did not appear on {master.machine.spec}")
    except BaseException:
        close_session(master, session, fd)
        raise
    return session, fd


def _forward(master, session: Session, open_it: bool) -> None:
    try:
        client = MuxClient(master.path)
    except MuxError as exc:
        if open_it:
            raise RemoteDockerError(f"cannot relay the X display: {exc}") from None
        return  # no master: its forwards ended with it
    try:
        if open_it:
            client.open_remote_forward(session.socket, session.connect)
        else:
            client.close_remote_forward(session.socket, session.connect)
    except MuxError as exc:
        if open_it:
            raise RemoteDockerError(f"{master.machine.spec} refused to relay the X display "
                                    f"(is AllowStreamLocalForwarding off in its sshd?): "
                                    f"{exc}") from None
    finally:
        client.close()


def close_session(master, session: Session, fd: int | None) -> None:
    """Undo everything; each step tolerates "already gone"; the record goes last.

    If the docker-machine cannot be reached the record stays (unlocked once
    ``fd`` is closed), so ``gc`` finishes later.
    """
    try:
        if session.remote_dir:
            _forward(master, session, open_it=False)
            master.ensure()
            status, _ = master.capture(remove_dir_script(session.remote_dir))
            if status != 0:
                return
        os.unlink(_record_path(session.id, master.env))
    except FileNotFoundError:
        pass
    except RemoteDockerError:
        pass
    finally:
        if fd is not None:
            os.close(fd)


def stale(env: dict | os._Environ) -> list[str]:
    """Paths of records no live process holds."""
    directory = sessions_dir(env)
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    paths = [os.path.join(directory, n) for n in names if n.endswith(".json")
             and not n.startswith(".")]
    return [p for p in paths if lock_is_free(p)]


def collect(master) -> list[str]:
    """Remove the stale sessions of ``master``'s machine; one line per session removed."""
    removed = []
    for path in stale(master.env):
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        session = _load(path)
        if session is None:
            os.unlink(path)
            os.close(fd)
            continue
        if session.machine != master.machine.spec:
            os.close(fd)
            continue
        close_session(master, session, fd)
        removed.append(f"X11 session {session.id} on {session.machine}")
    return removed
