"""``remote-docker ports``: list the forwards, and ``--sync`` to pick up containers started earlier.

The watcher is the only writer of the record and the only one that talks
to the master about forwards; this asks it (SIGUSR1) or starts it, and
waits for the sync it asked for, so the listing printed after ``--sync`` is
the state of the machine now.
"""

from __future__ import annotations

import os
import signal
import time

from remote_docker.config import Machine
from remote_docker.errors import ConfigError, RemoteDockerError
from remote_docker.ports import publish, state
from remote_docker.ports.state import Forward
from remote_docker.transport.openssh import ControlMaster

SYNC_SECONDS = 30.0


def sync(machine: Machine, env: dict | os._Environ) -> None:
    """Have a live watcher for ``machine`` that has synced since now; raise if it cannot be."""
    if not state.enabled(env):
        raise ConfigError("published ports are turned off (ports = false in the config, "
                          "or REMOTE_DOCKER_PORTS=0)")
    ControlMaster(machine, env).ensure()  # the watcher never makes a master itself
    key = machine.key()
    alive = state.watcher_alive(key, env)
    header, _ = state.read(key, env)
    old_pid, before = header.get("pid", ""), int(header.get("synced", "0"))
    if alive and old_pid:
        os.kill(int(old_pid), signal.SIGUSR1)
    else:
        publish.spawn_watcher(machine.spec, key, env)

    def done(now: dict[str, str]) -> bool:
        synced = int(now.get("synced", "0"))
        if alive and old_pid:
            return now.get("pid") == old_pid and synced > before
        return now.get("pid") not in (None, "", old_pid) and synced >= 1

    deadline = time.monotonic() + SYNC_SECONDS
    while time.monotonic() < deadline:
        if done(state.read(key, env)[0]):
            return
        time.sleep(0.05)
    raise RemoteDockerError(f"the ports watcher did not answer; see {state.path(key, 'log', env)}")


def listing(machine: Machine, env: dict | os._Environ) -> tuple[list[Forward], str]:
    """The recorded forwards and a note when they may no longer be true."""
    key = machine.key()
    _, forwards = state.read(key, env)
    if forwards and not state.watcher_alive(key, env):
        return forwards, ("the ports watcher is gone (killed?): these may be stale; "
                          "'remote-docker ports --sync' puts them right")
    return forwards, ""


def table(forwards: list[Forward]) -> list[str]:
    rows = [("LOCAL", "ON DOCKER-MACHINE", "CONTAINER", "STATUS")]
    rows += [(f"localhost:{f.port}", f"{f.connect_host}:{f.remote_port}", f.name,
              "forwarded" if f.status == state.LIVE else "port taken here: not forwarded")
             for f in forwards]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return ["  ".join([*(r[i].ljust(widths[i]) for i in range(3)), r[3]]) for r in rows]


def collect(machine: Machine, env: dict | os._Environ) -> list[str]:
    """For ``remote-docker gc``: forwards a killed watcher left on a live master are
    handed to a new watcher, which cancels those whose container is gone."""
    key = machine.key()
    _, forwards = state.read(key, env)
    if not forwards or state.watcher_alive(key, env) or not ControlMaster(machine, env).is_warm():
        return []
    publish.spawn_watcher(machine.spec, key, env)
    return [f"{len(forwards)} forwards of a killed ports watcher (a new watcher re-checks them)"]
