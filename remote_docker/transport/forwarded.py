"""One forwarded docker command in flight: start it, forward signals, wait.

Shared by the transports: the call tag that names the remote docker client,
the signals the shim forwards, the terminal handling of a pty session, and
the mapping from the remote status to ours.
"""

import os

import _signal  # the C module behind `signal`, which imports `enum` (~9 ms)

from remote_docker.errors import ConnectionFailed
from remote_docker.forward import Plan

TYPE_CHECKING = False
if TYPE_CHECKING:
    from remote_docker.transport.openssh import ControlMaster

FORWARDED_SIGNALS = {_signal.SIGINT: "INT", _signal.SIGTERM: "TERM",
                     _signal.SIGHUP: "HUP", _signal.SIGQUIT: "QUIT"}


def call_tag() -> str:
    """A unique name for one forwarded call, set in the remote docker's environment.

    It starts with this workstation's name and the shim's pid, so that a later
    ``remote-docker gc`` can tell a remote docker client whose shim is gone.
    """
    node = "".join(c if c.isalnum() or c in "-." else "-" for c in os.uname().nodename)
    return f"{node}.{os.getpid()}.{os.urandom(6).hex()}"


class ForwardedCall:
    """One forwarded docker command in flight: start it, forward signals, wait.

    On a warm master the session is opened by our own mux client
    (``transport.mux``): no ssh process at all.  The ssh binary is used for a
    cold first call (its ssh becomes the master) and if the master refuses
    a session before it opens.
    """

    def __init__(self, master: "ControlMaster", plan: Plan, tag: str, script: str) -> None:
        self.master = master
        self.plan = plan
        self.tag = tag
        self.script = script
        self.received: list[int] = []
        self.pid = 0
        self.argv: list[str] = []

    def run(self, become_master: bool = False) -> int:
        plan = self.plan
        stdout_tmp = f"{plan.stdout_path}.rd-{os.getpid()}" if plan.stdout_path else None
        previous = {s: _signal.signal(s, self._forward) for s in FORWARDED_SIGNALS}
        try:
            status = None if become_master else self._run_passenger(stdout_tmp)
            if status is None:
                status = self._run_ssh(stdout_tmp, become_master)
        finally:
            for s, handler in previous.items():
                _signal.signal(s, handler)
        if stdout_tmp:
            finish_output(stdout_tmp, plan.stdout_path, status == 0)
        return status

    def _run_passenger(self, stdout_tmp: str | None) -> int | None:
        """The session through our mux client; None if the master would not open it."""
        from remote_docker.transport import mux

        plan = self.plan
        try:
            client = mux.MuxClient(self.master.path)
        except mux.MuxError:
            return None
        opened: list[int] = []
        resize = None
        streams = local_streams(plan)
        try:
            stdin = streams.stdin if streams and streams.stdin is not None else \
                0 if plan.stdin == "inherit" else os.open(
                    plan.stdin_path if plan.stdin == "file" else os.devnull, os.O_RDONLY)
            stdout = streams.stdout if streams and streams.stdout is not None else \
                os.open(stdout_tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666) \
                if stdout_tmp else 1
            opened = [fd for fd in (stdin, stdout)
                      if fd > 2 and not (streams and fd in streams.session_fds())]
            try:
                if plan.tty:
                    resize = _relay_window_changes(client.master_pid())
                session = client.open_session(self.script, (stdin, stdout, 2), plan.tty,
                                              os.environ.get("TERM", ""))
            except mux.MuxError:
                if streams:
                    streams.close()
                return None  # nothing ran: the ssh binary may still get a session
            for fd in opened:
                os.close(fd)
            opened.clear()
            if streams:
                streams.start()
            with RawTerminal(0, active=plan.tty) as terminal:
                status = client.wait_exit(session, on_tty_fail=terminal.restore)
        finally:
            for fd in opened:
                os.close(fd)
            client.close()
            if resize is not None:
                _signal.signal(_signal.SIGWINCH, resize)
        if streams:
            streams.finish()
        if status is None:
            raise ConnectionFailed(f"lost the connection to {self.master.machine.spec}")
        return status

    def _run_ssh(self, stdout_tmp: str | None, become_master: bool) -> int:
        """The session through the ssh binary, in a process group of its own (see above)."""
        from remote_docker.transport.process import spawn, wait

        plan = self.plan
        relay = plan.stdin == "inherit" and not plan.tty and os.isatty(0)
        self.argv = argv = self.master.session_argv(
            self.script, tty=plan.tty, null_stdin=plan.stdin == "null",
            become_master=become_master)
        read_end = write_end = -1
        if relay:
            read_end, write_end = os.pipe()
        stdin = read_end if relay else plan.stdin_path if plan.stdin == "file" else None
        streams = local_streams(plan)
        if streams:
            stdin = streams.stdin if streams.stdin is not None else stdin
            stdout_tmp = streams.stdout if streams.stdout is not None else stdout_tmp
        try:
            self.pid = spawn(argv, stdin=stdin, stdout=stdout_tmp, own_group=not plan.tty)
        except BaseException:
            if streams:
                streams.close()
            raise
        if streams:
            streams.start()
            status = wait(self.pid)
            streams.finish()
            return status
        if relay:
            os.close(read_end)
            return _relay_stdin(self.pid, write_end)
        return wait(self.pid)

    def _forward(self, signum: int, frame: object) -> None:
        self.received.append(signum)
        self.master.send_signal(self.tag, FORWARDED_SIGNALS[signum])

    def exit_status(self, status: int) -> int:
        return exit_status(status, self.received)


def local_streams(plan: Plan):
    """The in-process stdin writer / stdout reader of a plan, if it has any (``streams``)."""
    if plan.stdin_writer is None and plan.stdout_reader is None:
        return None
    from remote_docker.transport.streams import LocalStreams

    return LocalStreams(plan)


def signal_to_die_of(status: int, received: list[int]) -> int:
    """The signal the shim must die of, 0 if none: ours, or one we forwarded that killed docker."""
    if status < 0:
        return -status
    if status > 128 and status - 128 in received:
        return status - 128
    return 0


def exit_status(status: int, received: list[int]) -> int:
    """Map a call's status to the shim's, the same for every transport (may not return)."""
    signum = signal_to_die_of(status, received)
    if signum:
        from remote_docker.transport.process import die_of

        die_of(signum)
    return status


def _relay_window_changes(master_pid: int):
    """Pass SIGWINCH on to the master, which reads the new size from our tty.

    This is what ssh's own mux client does; returns the previous handler.
    """
    def relay(signum: int, frame: object) -> None:
        try:
            os.kill(master_pid, _signal.SIGWINCH)
        except OSError:
            pass

    return _signal.signal(_signal.SIGWINCH, relay)


class RawTerminal:
    """The local terminal in raw mode for a pty session, always restored.

    With a pty the remote side does all line editing and signal generation, so
    keys (Ctrl-C included) must reach it as bytes, as with ``ssh -t``.
    TCSADRAIN, as ssh: output already written is shown, typed-ahead input kept.
    """

    def __init__(self, fd: int = 0, active: bool = True) -> None:
        self.fd = fd
        self.active = active
        self.saved: list | None = None

    def __enter__(self) -> "RawTerminal":
        if self.active and os.isatty(self.fd):
            import termios
            import tty

            self.saved = termios.tcgetattr(self.fd)
            tty.setraw(self.fd, termios.TCSADRAIN)
        return self

    def restore(self) -> None:
        if self.saved is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)
            self.saved = None

    def __exit__(self, *exc: object) -> None:
        self.restore()


def finish_output(tmp: str, target: str, ok: bool) -> None:
    if ok:
        os.replace(tmp, target)
    else:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass


def _relay_stdin(pid: int, write_end: int) -> int:
    """Copy a terminal stdin into ssh, which cannot read it from its own process group."""
    import select

    from remote_docker.transport.process import wait

    pidfd = os.pidfd_open(pid)
    try:
        while True:
            ready, _, _ = select.select([0, pidfd] if write_end >= 0 else [pidfd], [], [])
            if pidfd in ready:
                return wait(pid)
            data = os.read(0, 65536)
            try:
                if data:
                    os.write(write_end, data)
                    continue
            except BrokenPipeError:
                pass
            os.close(write_end)
            write_end = -1
    finally:
        os.close(pidfd)
        if write_end >= 0:
            os.close(write_end)
