"""Where the ports watcher keeps its record, and the cheap questions about it.

The ``docker`` shim asks these on ``run``/``start``/``create``/``compose``,
so this module imports only ``os`` and ``fcntl``: the record is plain text,
one forward per line, not JSON.  A watcher holds ``<machine>.lock`` with
flock for all its life, so however it dies, its death frees the lock (the
mounts' registry uses the same trick, see ``mounts.statedir``).
"""

import os

from remote_docker.mounts.statedir import lock_is_free

LIVE, TAKEN = "live", "taken"


class Forward:
    """One published port and what became of it on the workstation.

    ``status`` is LIVE (the master listens on localhost:port) or TAKEN
    (something else on the workstation had the port: not forwarded).
    """

    __slots__ = ("port", "connect_host", "remote_port", "container", "name", "status")

    def __init__(self, port: int, connect_host: str, remote_port: int, container: str,
                 name: str, status: str = LIVE) -> None:
        self.port = port
        self.connect_host = connect_host  # where the docker-machine reaches the port
        self.remote_port = remote_port
        self.container = container
        self.name = name
        self.status = status

    def line(self) -> str:
        return " ".join([str(self.port), self.connect_host, str(self.remote_port),
                         self.container, self.name or "-", self.status])

    @classmethod
    def parse(cls, line: str) -> "Forward | None":
        fields = line.split()
        if len(fields) != 6 or not fields[0].isdigit() or not fields[2].isdigit():
            return None
        return cls(int(fields[0]), fields[1], int(fields[2]), fields[3], fields[4], fields[5])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Forward) and self.line() == other.line()

    def __repr__(self) -> str:
        return f"Forward({self.line()!r})"


def ports_dir(env: dict | os._Environ = os.environ) -> str:
    """``$XDG_STATE_HOME/remote-docker/ports``, by default under ``~/.local/state``."""
    base = env.get("XDG_STATE_HOME") or os.path.join(env.get("HOME") or os.path.expanduser("~"),
                                                     ".local", "state")
    return os.path.join(base, "remote-docker", "ports")


def path(machine_key: str, suffix: str, env: dict | os._Environ = os.environ) -> str:
    """``<ports_dir>/<machine key>.<suffix>``: forwards, lock, log."""
    return os.path.join(ports_dir(env), f"{machine_key}.{suffix}")


def enabled(env: dict | os._Environ = os.environ) -> bool:
    """``REMOTE_DOCKER_PORTS=0`` or ``ports = false`` in the config turns forwarding off."""
    value = env.get("REMOTE_DOCKER_PORTS")
    if not value:
        from remote_docker.config import read_settings

        value = read_settings(env).get("ports", "")
    return value.strip().lower() not in ("0", "false", "no", "off")


def watcher_alive(machine_key: str, env: dict | os._Environ = os.environ) -> bool:
    """A flock test: microseconds, no process started."""
    return lock_is_free(path(machine_key, "lock", env)) is False


def touch(machine_key: str, env: dict | os._Environ = os.environ) -> None:
    """Tell a live watcher that someone just asked for it: it stays a while longer."""
    try:
        os.utime(path(machine_key, "lock", env))
    except OSError:
        pass


def read(machine_key: str, env: dict | os._Environ = os.environ) -> tuple[dict[str, str], list[Forward]]:
    """The record: its header fields (pid, synced) and its forwards; empty when there is none."""
    try:
        with open(path(machine_key, "forwards", env), encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return {}, []
    header: dict[str, str] = {}
    if lines and lines[0].startswith("#"):
        words = lines.pop(0)[1:].split()
        header = dict(zip(words[::2], words[1::2]))
    forwards = [fwd for fwd in map(Forward.parse, lines) if fwd is not None]
    return header, forwards


def write(machine_key: str, header: dict[str, str], forwards: list[Forward],
          env: dict | os._Environ = os.environ) -> None:
    """Replace the record atomically, so a reader never sees half of it."""
    target = path(machine_key, "forwards", env)
    os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
    head = "# " + " ".join(f"{k} {v}" for k, v in header.items())
    tmp = f"{target}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join([head, *(fwd.line() for fwd in forwards)]) + "\n")
    os.replace(tmp, target)


def remove(machine_key: str, env: dict | os._Environ = os.environ) -> None:
    try:
        os.unlink(path(machine_key, "forwards", env))
    except FileNotFoundError:
        pass
