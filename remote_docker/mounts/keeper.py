"""The keeper: one detached process per reverse mount, which owns it from start to end.

Why a process of its own: the mount must outlive the command that made it
(``docker-mount`` returns at once; a container runs for hours), and someone
must notice when it should end: ``docker-umount`` (SIGTERM), its container
destroyed, the relay gone, or the process that asked for it gone before it
said how long the mount should live.  It holds the registry lock all along,
so its death, however it dies, is what marks the mount stale.

Passive mode spawns no ssh at all: the jailed sftp-server's socket is handed
to the ControlMaster over its mux socket (``transport.mux``), as the stdin
and stdout of ``sshfs -o passive`` on the docker-machine.  If the keeper is
killed the master ends that session, sshfs sees EOF and exits, and its
``auto_unmount`` takes the mount away: containers get ENOTCONN, not a hang.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time

from remote_docker.config import parse_machine
from remote_docker.errors import RemoteDockerError
from remote_docker.mounts import registry, remote
from remote_docker.mounts.registry import Record
from remote_docker.transport.mux import MuxClient, MuxError
from remote_docker.transport.openssh import ControlMaster
from remote_docker.transport.quoting import join

READY, FAILED = "ready", "error"


def package_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def python_argv(module: str, args: list[str]) -> list[str]:
    """Run ``module``'s main(args) with this interpreter, isolated (-I -S) but able to import us."""
    code = ("import sys; sys.path.insert(0, sys.argv.pop(1)); "
            f"from {module} import main; sys.exit(main(sys.argv[1:]))")
    return [sys.executable, "-I", "-S", "-c", code, package_root(), *args]


def jail_argv(local_dir: str, readonly: bool, lane: int = -1) -> list[str]:
    from remote_docker.mounts.jail import sftp_server

    return python_argv("remote_docker.mounts.jail",
                       [*(["--ro"] if readonly else []),
                        *(["--lane", str(lane)] if lane >= 0 else []),
                        local_dir, "--", sftp_server()])


def log(message: str) -> None:
    sys.stderr.write(f"{time.strftime('%H:%M:%S')} keeper {os.getpid()}: {message}\n")
    sys.stderr.flush()


class Keeper:
    """One mount's life: set up, report, then wait for the event that ends it."""

    def __init__(self, uuid: str, channel: socket.socket, env: dict | os._Environ) -> None:
        record = registry.load(uuid, env)
        if record is None:
            raise RemoteDockerError(f"no record for mount {uuid}")
        self.record: Record = record
        self.env = env
        self.channel = channel
        self.events: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()  # signal-safe
        self.master = ControlMaster(parse_machine(record.machine), env)
        self.jail: subprocess.Popen | None = None
        self.clients: list[MuxClient] = []
        self.watching = ""  # the container being watched
        self.watch_stdin = -1
        self.relay_stdin = -1
        self.made_remote = False  # anything on the docker-machine yet?

    # -- setup -------------------------------------------------------------------

    def setup(self) -> None:
        """Make the mount live and its volume exist, or raise having made nothing that stays."""
        r = self.record
        self.master.ensure()
        started = time.monotonic()
        status, out = self.master.capture(remote.prepare(r.uuid, r.owner))
        if r.stat_cache == "auto":
            took = time.monotonic() - started
            r.stat_cache = "on" if remote.stat_cache_wanted(r.stat_cache, took) else "off"
        if status != 0:
            raise remote.explain(status, r.machine, self.log_tail())
        self.made_remote = True
        r.mountpoint = out.decode().strip()
        registry.save(r, self.env)
        if r.mode == "classic":
            from remote_docker.mounts import classic

            script = classic.start(r, self.master, self.env)
            stdin = self.detached_stdin()
            self.session(script, stdin, 2, 2, "relay")
            os.close(stdin)
        else:
            # With the stat cache, writes also get a second lane (a second channel: one
            # carries at most its 2 MiB window per round trip); see stat_cache.
            cached = r.stat_cache == "on"
            ours, theirs = socket.socketpair()
            lane = socket.socketpair() if cached and not r.readonly else None
            lane_fds = [lane[0].fileno()] if lane else []
            self.jail = subprocess.Popen(jail_argv(r.local_dir, r.readonly, *lane_fds),
                                         stdin=ours, stdout=ours, cwd="/", pass_fds=lane_fds)
            ours.close()
            script = remote.passive_sshfs(r.mountpoint, r.uuid, r.local_dir, r.readonly,
                                          stat_cache=cached)
            self.session(script, theirs.fileno(), theirs.fileno(), 2, "relay")
            theirs.close()
            if lane:
                lane[0].close()
                self.session(remote.write_lane(r.mountpoint), lane[1].fileno(),
                             lane[1].fileno(), 2, "lane")
                lane[1].close()
        labels = {"remote-docker.uuid": r.uuid, "remote-docker.owner": r.owner,
                  "remote-docker.dir": r.local_dir}
        status, _ = self.master.capture(remote.wait_and_create_volume(
            r.mountpoint, r.uuid, labels, r.readahead_kb))
        if status != 0:
            raise remote.explain(status, r.machine, self.log_tail())

    def detached_stdin(self) -> int:
        """A pipe whose write end we keep: the session's stdin ends when we do."""
        read_end, self.relay_stdin = os.pipe()
        return read_end

    def session(self, script: str, stdin: int, stdout: int, stderr: int, name: str) -> None:
        """Run ``script`` on the master with these fds; put (name, status) on the queue at its end."""
        try:
            client = MuxClient(self.master.path)
            session_id = client.open_session(script, (stdin, stdout, stderr))
        except MuxError as exc:
            raise RemoteDockerError(f"cannot open a session on the connection to "
                                    f"{self.record.machine}: {exc}") from None
        self.clients.append(client)

        def wait() -> None:
            status = client.wait_exit(session_id)
            self.events.put((name, str(status)))

        threading.Thread(target=wait, daemon=True).start()

    def log_tail(self) -> str:
        try:
            with open(registry.log_path(self.record.uuid, self.env), "rb") as f:
                lines = [l for l in f.read()[-4000:].decode(errors="replace").splitlines()
                         if l.strip() and " keeper " not in l]
        except OSError:
            return ""
        return lines[-1].strip() if lines else ""

    # -- the life of the mount ------------------------------------------------------

    def listen(self) -> None:
        """Messages from the process that made the mount; EOF when it is gone."""
        reader = self.channel.makefile("r")
        for line in reader:
            self.events.put(("message", line.strip()))
        self.events.put(("creator-gone", ""))

    def watch(self) -> None:
        """Watch the bound container (again, if the binding changed)."""
        container = self.record.container
        if not container or container == self.watching:
            return
        self.stop_watching()
        out_r, out_w = os.pipe()
        stdin_r, self.watch_stdin = os.pipe()
        self.session(remote.watch_container(container), stdin_r, out_w, 2, "watch-ended")
        os.close(stdin_r)
        os.close(out_w)
        self.watching = container

        def read() -> None:
            with os.fdopen(out_r) as out:
                for line in out:
                    if line.strip() == "gone":
                        self.events.put(("container-gone", container))
                        return

        threading.Thread(target=read, daemon=True).start()

    def stop_watching(self) -> None:
        if self.watch_stdin >= 0:
            os.close(self.watch_stdin)  # the remote docker events is killed when this closes
            self.watch_stdin = -1
        self.watching = ""

    def reload(self) -> None:
        fresh = registry.load(self.record.uuid, self.env)
        if fresh is not None:
            self.record = fresh
        self.watch()

    def loop(self) -> None:
        """Wait for what ends the mount; release it then."""
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, lambda *_: self.events.put(("unmount", "")))
        signal.signal(signal.SIGUSR1, lambda *_: self.events.put(("reload", "")))
        threading.Thread(target=self.listen, daemon=True).start()
        self.reload()
        relay_alive = True
        while True:
            try:
                event, detail = self.events.get(timeout=1)
            except queue.Empty:
                continue
            log(f"event {event} {detail}")
            if event in ("message", "reload"):
                self.reload()
            elif event == "creator-gone":
                self.reload()
                if not (self.record.kept or self.record.container or self.adopt_user()):
                    break
            elif event == "relay":
                relay_alive = False
                if self.release(force=True):
                    return
            elif event == "watch-ended" and self.watching and relay_alive:
                self.watching = ""  # the watch died (connection?): look again
                time.sleep(1)
                self.reload()
            elif event == "container-gone" and self.adopt_user():
                continue  # another container uses the volume too: serve it until its end
            elif event in ("unmount", "container-gone"):
                break
        self.stop_watching()
        self.release(force=True)

    def adopt_user(self) -> bool:
        """Bind the mount to a container that uses its volume, if one does; True when one does.

        The process that asked for the mount can die (``kill -9`` of the
        ``docker`` shim) after its remote ``docker run`` made the container:
        that container keeps running, as it would after a local docker client
        died, and its bind mount must keep working; the mount then lives as
        long as that container, as if it had been bound.  Removing the
        volume is the question asked, so no container can start using it
        after a "no".
        """
        r = self.record
        try:
            status, out = self.master.capture(remote.release_volume(r.uuid, r.mountpoint))
        except RemoteDockerError as exc:
            log(f"adopt: {exc.message}")
            return False
        users = out.decode().split()
        if status != remote.IN_USE or not users:
            return False
        log(f"volume used by container {users[0][:12]}: the mount lives as long as it")
        r.container = users[0]
        registry.save(r, self.env)
        self.watch()
        return True

    def release(self, force: bool) -> bool:
        """Undo the mount here and there; True when nothing is left and the record is gone.

        When a container still uses the volume, the volume stays (and the
        record, so gc knows); the mount itself is taken away all the same.
        """
        r = self.record
        status = -1
        try:
            self.master.ensure()
            status, _ = self.master.capture(remote.release(r.uuid, r.owner, force))
        except RemoteDockerError as exc:
            log(f"release: {exc.message}")
        self.end_relay()
        if r.mode == "classic":
            from remote_docker.mounts import classic

            classic.finish(r, self.env)
        if status == 0:
            registry.remove(r.uuid, self.env)
            return True
        log(f"release left something behind (status {status}); gc will finish it")
        if status == remote.VOLUME_LEFT and r.container:
            return False  # wait for the container's end, then try again
        registry.defer(r.uuid, self.env)
        return True

    def end_relay(self) -> None:
        if self.relay_stdin >= 0:
            os.close(self.relay_stdin)  # classic: the session ends, and sshfs with it
            self.relay_stdin = -1
        if self.jail is not None:
            try:
                self.jail.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.jail.kill()
                self.jail.wait()
        for client in self.clients:
            client.close()
        self.clients = []

    def run(self) -> int:
        self.record.keeper = os.getpid()
        registry.save(self.record, self.env)
        try:
            self.setup()
        except RemoteDockerError as exc:
            log(f"setup failed: {exc.message}")
            if self.made_remote:
                self.release(force=True)
            else:
                self.end_relay()
                registry.remove(self.record.uuid, self.env)
            self.tell(f"{FAILED} {exc.message}")
            return 1
        self.tell(f"{READY} {self.record.mountpoint}")
        self.loop()
        return 0

    def tell(self, line: str) -> None:
        try:
            self.channel.sendall(line.encode() + b"\n")
        except OSError:
            pass  # the caller is gone: listen() will see it


def main(argv: list[str]) -> int:
    """``keeper [--daemon] UUID CHANNEL_FD LOCK_FD``; the lock fd is simply kept open."""
    if argv[:1] == ["--daemon"]:
        argv = argv[1:]
        if os.fork():
            os._exit(0)  # the caller reaps this at once; the keeper is nobody's child
    uuid, channel_fd = argv[0], int(argv[1])
    channel = socket.socket(fileno=channel_fd)
    log(f"mount {uuid}: {join(argv)}")
    try:
        return Keeper(uuid, channel, os.environ).run()
    except RemoteDockerError as exc:
        log(exc.message)
        return 1
