"""What the ``docker`` shim does about published ports on its hot path.

Only for the commands that can start a container (``cli.docker.MAY_START``): a flock test that the watcher lives,
and spawning it detached when it does not; for ``run``, a one-line warning
for ports that cannot be forwarded (UDP/SCTP, or already taken on this
workstation), and with ``-d`` a short wait until the watcher has forwarded
the ports named, so ``docker run -d -p 8080:80 … && curl localhost:8080``
behaves as with a local docker.  Imports only ``os``, ``fcntl``, ``_socket``,
``time``.
"""

import os

from remote_docker.ports import state

WAIT_SECONDS = 5.0


def spec_ports(spec: str) -> tuple[list[int], str]:
    """The host ports a ``-p``/``--publish`` value names and its protocol.

    ``8080:80``, ``127.0.0.1:8080:80``, ``[::1]:8080:80``, ``8000-8001:80-81``,
    ``80`` (a random host port: none named), ``…/udp``, and the long form
    ``published=8080,target=80,protocol=udp``.  What docker would refuse is
    simply not reported: docker says why.
    """
    if "=" in spec:
        fields = dict(f.split("=", 1) for f in spec.split(",") if "=" in f)
        return _port_range(fields.get("published", "")), fields.get("protocol", "tcp") or "tcp"
    spec, _, proto = spec.partition("/")
    if spec.startswith("["):
        spec = spec.partition("]")[2].lstrip(":")
    parts = spec.split(":")
    host = parts[-2] if len(parts) >= 2 else ""
    return _port_range(host), proto or "tcp"


def _port_range(text: str) -> list[int]:
    first, _, last = text.partition("-")
    if not first.isdigit() or (last and not last.isdigit()):
        return []
    low, high = int(first), int(last or first)
    return list(range(low, high + 1)) if 0 < low <= high < 65536 and high - low < 1024 else []


def port_free(port: int) -> bool:
    """Nobody listens on the workstation's 127.0.0.1:port (a bind test, ~50 µs)."""
    import _socket

    sock = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        sock.close()


def warnings(specs: list[str], ours: set[int]) -> tuple[list[str], list[int]]:
    """One line per port we cannot forward; and the TCP host ports we will forward.

    A port our own watcher already forwards is not "taken": the old container's
    forward is about to be re-pointed (a die event comes before a start).
    """
    lines, tcp = [], []
    for spec in specs:
        ports, proto = spec_ports(spec)
        for port in ports:
            if proto != "tcp":
                lines.append(f"port {port}/{proto} is published on the docker-machine only: "
                             "ssh forwards carry TCP")
            elif port in ours or port_free(port):
                tcp.append(port)
            else:
                lines.append(f"port {port} is already in use on this workstation: "
                             f"localhost:{port} will not reach the container")
    return lines, tcp


def before(cmd, machine_key: str, env: dict | os._Environ, spawn) -> list[int]:
    """Before forwarding ``cmd``: warnings on stderr, the watcher alive; returns
    the TCP ports to wait for afterwards (only for ``run -d``)."""
    if not state.enabled(env):
        return []
    if state.watcher_alive(machine_key, env):
        state.touch(machine_key, env)
    else:
        spawn()
    specs = cmd.values("-p", "--publish") if cmd.command == "run" else []
    if not specs:
        return []
    ours = {f.port for f in state.read(machine_key, env)[1] if f.status == state.LIVE}
    lines, tcp = warnings(specs, ours)
    for line in lines:
        os.write(2, f"docker: {line}\n".encode())
    return tcp if cmd.flag("-d", "--detach") else []


def wait_for(machine_key: str, ports: list[int], env: dict | os._Environ) -> None:
    """After ``run -d``: until the watcher has handled these ports, at most WAIT_SECONDS."""
    import time

    deadline = time.monotonic() + WAIT_SECONDS
    wanted = set(ports)
    while time.monotonic() < deadline and state.watcher_alive(machine_key, env):
        if wanted <= {f.port for f in state.read(machine_key, env)[1]}:
            return
        time.sleep(0.02)


def spawn_watcher(machine_spec: str, machine_key: str, env: dict | os._Environ) -> None:
    """Start the machine's watcher detached (its own session, output to its log).

    Two callers racing both spawn; the second watcher finds the lock held and
    ends at once.  Failing to spawn only costs the forwards: a warning, not
    a failed docker command.
    """
    from remote_docker.mounts.keeper import python_argv

    argv = python_argv("remote_docker.ports.watcher", [machine_spec])
    log = state.path(machine_key, "log", env)
    try:
        os.makedirs(os.path.dirname(log), mode=0o700, exist_ok=True)
        actions = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                   (os.POSIX_SPAWN_OPEN, 1, log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600),
                   (os.POSIX_SPAWN_DUP2, 1, 2)]
        os.posix_spawn(argv[0], argv, env, file_actions=actions, setsid=True)
    except OSError as exc:
        os.write(2, f"docker: published ports will not be forwarded: {exc}\n".encode())
