"""The ports watcher: one detached process per docker-machine that keeps forwards in step.

Why a process: containers start and stop without us (``compose``, restart
policies, someone else's ``docker run`` on the machine), so someone must
follow ``docker events``; and a forward must end when its container does,
long after the ``docker run`` that started it returned.  It never starts a
master itself (it has no terminal to ask for a passphrase on): it waits for
the one the shim's own call makes, and ends when that master is gone, since
its forwards went with it.  Its ``docker events`` session keeps the master
from persisting out while forwards exist; with none left for IDLE_SECONDS it
ends, so the master can.

One thread, one ``select``: the events pipe and a wake-up pipe for signals
(SIGUSR1: sync now, for ``remote-docker ports --sync``; SIGTERM: cancel every
forward and end).  Its flock on ``<machine>.lock`` is its liveness; a watcher
killed with -9 leaves forwards on the master and a record saying which, and
the next watcher starts from that record, so it cancels what is no longer
wanted.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import signal
import sys
import time

from remote_docker.config import Machine, parse_machine
from remote_docker.errors import RemoteDockerError
from remote_docker.ports import bindings, state
from remote_docker.ports.publish import port_free
from remote_docker.ports.state import LIVE, TAKEN, Forward
from remote_docker.transport.mux import MuxClient, MuxError
from remote_docker.transport.openssh import ControlMaster
from remote_docker.transport.quoting import quote

IDLE_SECONDS = 60.0
MASTER_WAIT_SECONDS = 30.0
LISTEN_HOST = "localhost"  # ssh binds the loopback addresses only (GatewayPorts stays off)

EVENTS_SCRIPT = "\n".join([
    # replay from this second, so nothing between "ready" and the subscription is lost
    "t=$(date +%s)",
    "docker events --since \"$t\" --filter type=container --filter event=start "
    "--filter event=die --format '{{.Actor.ID}} {{.Action}}' &",
    'p=$!',
    'echo ready',
    '{ cat >/dev/null; kill "$p" 2>/dev/null; } <&0 &',  # our end closed: stop following
    'wait "$p"',
])
RUNNING_SCRIPT = 'ids=$(docker ps -q --no-trunc) && { [ -z "$ids" ] || docker inspect $ids; }'


def log(message: str) -> None:
    sys.stderr.write(f"{time.strftime('%H:%M:%S')} ports {os.getpid()}: {message}\n")
    sys.stderr.flush()


class Watcher:
    """Follows one machine's containers and mirrors their published TCP ports as forwards."""

    def __init__(self, machine: Machine, env: dict | os._Environ) -> None:
        self.machine = machine
        self.key = machine.key()
        self.env = env
        self.master = ControlMaster(machine, env)
        self.forwards: list[Forward] = []
        self.synced = 0
        self.last_active = time.monotonic()
        self.events: MuxClient | None = None
        self.events_fd = -1
        self.events_stdin = -1
        self.buffer = b""
        self.wake_r, self.wake_w = os.pipe()
        self.pending: set[str] = set()  # "sync", "stop" from signals

    # -- forwards on the master ----------------------------------------------------

    def _mux(self, fwd: Forward, close: bool) -> None:
        client = MuxClient(self.master.path)
        try:
            client.forward((LISTEN_HOST, fwd.port), (fwd.connect_host, fwd.remote_port), close)
        finally:
            client.close()

    def add(self, fwd: Forward) -> None:
        """Forward fwd.port, unless the workstation has it already; TAKEN is then recorded."""
        old = next((f for f in self.forwards if f.port == fwd.port), None)
        if old is not None:
            same = (old.connect_host, old.remote_port) == (fwd.connect_host, fwd.remote_port)
            if not (same and old.status == LIVE):
                self.cancel(old)
            self.forwards.remove(old)
            if same and old.status == LIVE:
                fwd.status = self._open(fwd, check_free=False)  # a duplicate is answered OK
                self.forwards.append(fwd)
                return
        fwd.status = self._open(fwd, check_free=True)
        self.forwards.append(fwd)

    def _open(self, fwd: Forward, check_free: bool) -> str:
        if check_free and not port_free(fwd.port):
            log(f"port {fwd.port} is already in use on the workstation: not forwarded "
                f"({fwd.name})")
            return TAKEN
        try:
            self._mux(fwd, close=False)
        except MuxError as exc:
            log(f"port {fwd.port}: {exc} ({fwd.name})")
            return TAKEN
        log(f"forwarding localhost:{fwd.port} to {fwd.connect_host}:{fwd.remote_port} "
            f"({fwd.name})")
        return LIVE

    def cancel(self, fwd: Forward) -> None:
        if fwd.status != LIVE:
            return
        self.last_active = time.monotonic()  # idle counts from the last forward's end
        try:
            self._mux(fwd, close=True)
            log(f"cancelled localhost:{fwd.port} ({fwd.name})")
        except MuxError as exc:
            log(f"cancel {fwd.port}: {exc}")  # already gone with a restarted master

    def remove_container(self, cid: str) -> None:
        for fwd in [f for f in self.forwards if f.container == cid[:12]]:
            self.cancel(fwd)
            self.forwards.remove(fwd)

    def apply(self, wanted: list[Forward]) -> None:
        """Make the forwards exactly ``wanted``: cancel first, so a port can change hands."""
        keys = {(f.port, f.connect_host, f.remote_port) for f in wanted}
        for fwd in list(self.forwards):
            if (fwd.port, fwd.connect_host, fwd.remote_port) not in keys:
                self.cancel(fwd)
                self.forwards.remove(fwd)
        for fwd in wanted:
            self.add(fwd)

    def save(self) -> None:
        header = {"pid": str(os.getpid()), "synced": str(self.synced)}
        state.write(self.key, header, sorted(self.forwards, key=lambda f: f.port), self.env)

    # -- what docker says ------------------------------------------------------------

    def inspect(self, script: str) -> list[dict]:
        status, out = self.master.capture(script)
        try:
            data = json.loads(out or b"[]")
        except ValueError:
            log(f"unreadable docker inspect output (status {status})")
            return []
        return [c for c in data if isinstance(c, dict) and (c.get("State") or {}).get("Running")]

    def wanted(self, containers: list[dict]) -> list[Forward]:
        result: list[Forward] = []
        for info in containers:
            forwards, skipped = bindings.of_container(info)
            result += forwards
            for port in skipped:
                log(f"port {port} of {forwards[0].name if forwards else info.get('Name')} is "
                    "not forwarded: ssh forwards carry TCP")
        return result

    def sync(self) -> None:
        self.apply(self.wanted(self.inspect(RUNNING_SCRIPT)))
        self.synced += 1
        self.save()

    def on_event(self, line: str) -> None:
        cid, _, action = line.partition(" ")
        if action == "die":
            self.remove_container(cid)
        elif action == "start":
            for fwd in self.wanted(self.inspect("docker inspect " + quote(cid))):
                self.add(fwd)
        else:
            return
        self.save()

    # -- the events session ------------------------------------------------------------

    def open_events(self) -> bool:
        """Follow docker events on the master; False when the master is gone."""
        out_r, out_w = os.pipe()
        stdin_r, self.events_stdin = os.pipe()
        try:
            self.events = MuxClient(self.master.path)
            self.events.open_session(EVENTS_SCRIPT, (stdin_r, out_w, 2))
        except MuxError as exc:
            log(f"cannot follow docker events: {exc}")
            os.close(out_r)
            return False
        finally:
            os.close(stdin_r)  # the master has its own copies now
            os.close(out_w)
        self.events_fd = out_r
        return self._read_until_ready()

    def _read_until_ready(self) -> bool:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.events_fd], [], [], 1)
            if ready and not self._fill():
                return False
            if b"ready\n" in self.buffer:
                self.buffer = self.buffer.split(b"ready\n", 1)[1]
                return True
        return False

    def _fill(self) -> bool:
        chunk = os.read(self.events_fd, 4096)
        self.buffer += chunk
        return bool(chunk)

    def close_events(self) -> None:
        for fd in (self.events_stdin, self.events_fd):
            if fd >= 0:
                os.close(fd)
        self.events_stdin = self.events_fd = -1
        if self.events is not None:
            self.events.close()
            self.events = None

    # -- life ------------------------------------------------------------------------

    def on_signal(self, signum: int, _frame) -> None:
        self.pending.add("sync" if signum == signal.SIGUSR1 else "stop")

    def idle(self) -> bool:
        if any(f.status == LIVE for f in self.forwards):
            return False
        try:
            asked = os.stat(state.path(self.key, "lock", self.env)).st_mtime
        except OSError:
            asked = 0
        since = min(time.monotonic() - self.last_active, time.time() - asked)
        return since > IDLE_SECONDS

    def loop(self) -> str:
        """Until stopped, idle, or the master is gone; returns why it ended."""
        while True:
            if "stop" in self.pending:
                return "stopped"
            if "sync" in self.pending:
                self.pending.discard("sync")
                self.sync()
            if not state.enabled(self.env):
                return "turned off in the config"
            if self.idle():
                return f"no forwards for {IDLE_SECONDS:.0f} s"
            ready, _, _ = select.select([self.events_fd, self.wake_r], [], [], 1)
            if self.wake_r in ready:
                os.read(self.wake_r, 64)
            if self.events_fd in ready:
                if not self._fill():
                    if not self.master.is_warm():
                        self.forwards = []  # they went with the master
                        return "the connection ended"
                    self.close_events()
                    if not self.open_events():
                        return "cannot follow docker events"
                    self.sync()
                    continue
                *lines, self.buffer = self.buffer.split(b"\n")
                for line in lines:
                    self.on_event(line.decode(errors="replace").strip())

    def wait_for_master(self) -> bool:
        deadline = time.monotonic() + MASTER_WAIT_SECONDS
        while not self.master.is_warm():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def run(self) -> int:
        os.set_blocking(self.wake_w, False)
        signal.set_wakeup_fd(self.wake_w)
        for signum in (signal.SIGUSR1, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self.on_signal)
        self.forwards = state.read(self.key, self.env)[1]  # a killed watcher's, maybe still there
        why = "no connection to the docker-machine"
        if not state.enabled(self.env):
            why = "turned off in the config"  # only cancel what a killed watcher left
        elif self.wait_for_master() and self.open_events():
            try:
                self.sync()
                why = self.loop()
            except (RemoteDockerError, OSError) as exc:
                why = str(getattr(exc, "message", exc))
        for fwd in self.forwards:
            self.cancel(fwd)
        self.close_events()
        state.remove(self.key, self.env)
        log(f"ends: {why}")
        return 0


def hold_lock(machine_key: str, env: dict | os._Environ) -> int | None:
    """The watcher's liveness lock, held until the process ends; None if another holds it."""
    lock = state.path(machine_key, "lock", env)
    os.makedirs(os.path.dirname(lock), mode=0o700, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def main(argv: list[str]) -> int:
    """``watcher MACHINE``: run until there is nothing to watch (spawned detached)."""
    machine = parse_machine(argv[0])
    if hold_lock(machine.key(), os.environ) is None:
        return 0  # another watcher has this machine
    log(f"watching {machine.spec}")
    return Watcher(machine, os.environ).run()
