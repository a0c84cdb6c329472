"""Fabric/paramiko: the same contract as ``openssh.ControlMaster.run``, in pure Python.

For places without an OpenSSH client (``REMOTE_DOCKER_TRANSPORT=fabric`` or
``transport = "fabric"``).  It runs the very scripts the OpenSSH transport
runs (``quoting``): the environment goes up in a 0600 file over a channel of
its own, docker runs as the child of a shell that tags it and turns a signal
death into 128+n, a signal the shim receives is delivered to the tagged docker
client over a second channel, and outputs are fetched afterwards.  Streams are
raw bytes between the channel and fds 0/1/2 (``os.read``/``os.write``): no
Invoke runner, which decodes output to text.

How it runs a call: the main thread ``select``s on the channel and on a
wake-up pipe that the signal handlers write to (so that nothing touches
paramiko inside a signal handler, where the channel lock may be held), and
writes out what arrives; a thread copies stdin into the channel.  Sending
stdin from the main thread would deadlock on bulk data: ``cat`` stops reading
while its output fills our receive window, so our send would wait for a window
that never opens.

Where Fabric cannot match OpenSSH, and what this module does about it:

* no ControlMaster (paramiko cannot share OpenSSH's): every call is a new TCP
  connection, key exchange and authentication (~100 ms on loopback), after
  importing fabric/paramiko/cryptography (~220 ms).  On the test bed a
  ``docker ps`` takes ~540 ms this way against ~90 ms over the ControlMaster;
* nothing prompts: paramiko cannot ask for a passphrase, a password or a host
  key confirmation on the terminal.  Keys must be unencrypted or in ssh-agent
  (Fabric tries the agent, ``~/.ssh/id_*`` and ``IdentityFile``); an unknown
  host key is refused, never added;
* host keys: the same files ssh reads for the OpenSSH transport (ours,
  ``~/.ssh/known_hosts{,2}``, ``/etc/ssh/ssh_known_hosts{,2}``), on every ProxyJump hop
  (Fabric would otherwise auto-add them).  ``UserKnownHostsFile``,
  ``HostKeyAlias`` and ``@cert-authority``/``@revoked`` lines are not
  understood; only key types paramiko implements (ed25519, ecdsa, rsa) match;
* ``~/.ssh/config`` as Fabric reads it: Host/Match blocks giving HostName,
  User, Port, IdentityFile, ProxyJump, ProxyCommand and ForwardAgent (our own
  15 s ConnectTimeout wins, as on ssh's command line); every other option
  (Ciphers, CertificateFile, IdentitiesOnly, ServerAlive*…) is ignored;
* the pty gets no terminal modes: paramiko's pty request sends none, so the
  remote pty starts from sshd's defaults, not from the local ``stty`` settings;
* keep-alives are sent every 15 s but, unlike ``ServerAliveCountMax``, an
  unanswered one does not end the connection: only TCP notices a dead peer;
* a remote shell killed by a signal (not docker: the shell) sends
  ``exit-signal``, which paramiko drops; it ends in 255, as it does with ssh.
"""

import os
import select
import signal
import threading
from collections.abc import Callable
from contextlib import nullcontext

from remote_docker import config, deps
from remote_docker.config import Machine
from remote_docker.errors import ConfigError, ConnectionFailed, ExitStatus
from remote_docker.forward import Plan
from remote_docker.transport import openssh, quoting
from remote_docker.transport.forwarded import (FORWARDED_SIGNALS, RawTerminal, call_tag,
                                                exit_status, finish_output, local_streams)

CHUNK = 65536
CONNECT_TIMEOUT = 15  # as the OpenSSH transport's ConnectTimeout
KEEPALIVE_SECONDS = 15
GLOBAL_KNOWN_HOSTS = ("/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2")  # ssh's default


def run_plan(machine: Machine, plan: Plan, env: dict | os._Environ = os.environ) -> int:
    """Run a forwarded docker command; returns the status the shim should exit with."""
    conn = connect(machine, env)
    try:
        return FabricCall(conn.transport, machine, plan, env).run()
    finally:
        conn.close()


# -- connecting ---------------------------------------------------------------------


def host_key_files(env: dict | os._Environ = os.environ) -> list[str]:
    """The files whose host keys ssh trusts under the OpenSSH transport's options.

    Ours and the user's (its ``UserKnownHostsFile``), then the system-wide ones
    that it leaves to ssh's default (``GlobalKnownHostsFile``).
    """
    home = env.get("HOME") or os.path.expanduser("~")
    return [os.path.join(config.config_dir(env), "known_hosts"),
            os.path.join(home, ".ssh", "known_hosts"),
            os.path.join(home, ".ssh", "known_hosts2"),
            *GLOBAL_KNOWN_HOSTS]


def pin_host_keys(client: object, files: list[str]) -> None:
    """Trust only the keys in ``files``; refuse any other (never add it anywhere)."""
    from paramiko import RejectPolicy

    client.set_missing_host_key_policy(RejectPolicy())
    for path in files:
        try:
            client.load_system_host_keys(path)  # "system": never written back
        except OSError:
            pass  # a file that is missing or unreadable pins nothing, as for ssh


def connect(machine: Machine, env: dict | os._Environ = os.environ) -> object:
    """An open ``fabric.Connection`` to the docker-machine, or ConnectionFailed."""
    conn = pinned_connection(machine, env)
    try:
        conn.open()
    except Exception as exc:  # paramiko raises socket errors, SSHException and friends
        conn.close()
        raise explain_error(machine, exc) from None
    conn.transport.set_keepalive(KEEPALIVE_SECONDS)
    return conn


def pinned_connection(machine: Machine, env: dict | os._Environ = os.environ) -> object:
    """A ``fabric.Connection`` not yet opened, trusting only pinned host keys on every hop."""
    deps.ensure_site_packages()
    try:
        from fabric import Connection
    except ImportError:
        raise ConfigError("the fabric transport needs Fabric on this workstation "
                          "('pip install fabric'), or use REMOTE_DOCKER_TRANSPORT=openssh"
                          ) from None
    import logging

    # Paramiko logs transport errors; with no handler, logging's last resort
    # would print them to stderr, next to the one line we explain them with.
    logging.getLogger("paramiko").addHandler(logging.NullHandler())
    conn = Connection(host=machine.host, user=machine.user, port=machine.port,
                      connect_timeout=CONNECT_TIMEOUT)
    files = host_key_files(env)
    hop = conn
    while isinstance(hop, Connection):  # ProxyJump: each hop is a Connection of its own
        pin_host_keys(hop.client, files)
        hop = hop.gateway
    return conn


def openssh_phrase(exc: BaseException) -> str:
    """What OpenSSH would have logged for this paramiko failure ("" if nothing fits).

    ``openssh.explain_failure`` turns those phrases into our one-line messages,
    so both transports word a failure the same way.
    """
    import errno
    import socket

    import paramiko

    if isinstance(exc, socket.gaierror):
        return "Could not resolve hostname"
    if isinstance(exc, paramiko.BadHostKeyException):
        return "HOST IDENTIFICATION HAS CHANGED"
    if isinstance(exc, paramiko.AuthenticationException) or (
            isinstance(exc, paramiko.SSHException)
            and "No authentication methods available" in str(exc)):  # no key, no agent
        return "Permission denied"
    if isinstance(exc, paramiko.SSHException) and "not found in known_hosts" in str(exc):
        return "Host key verification failed"  # what RejectPolicy raises
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    causes = list(exc.errors.values()) if isinstance(
        exc, paramiko.ssh_exception.NoValidConnectionsError) else [exc]
    codes = {getattr(c, "errno", None) for c in causes}
    for code, phrase in ((errno.ECONNREFUSED, "Connection refused"),
                         (errno.ETIMEDOUT, "timed out"),
                         (errno.EHOSTUNREACH, "No route to host"),
                         (errno.ENETUNREACH, "Network is unreachable")):
        if code in codes:
            return phrase
    return ""


def explain_error(machine: Machine, exc: BaseException) -> ConnectionFailed:
    """One line naming the machine and the cause, worded as for the OpenSSH transport."""
    detail = str(exc) or type(exc).__name__
    phrase = openssh_phrase(exc)
    log = f"{phrase}: {detail}" if phrase else detail
    return openssh.explain_failure(machine, ["fabric", machine.destination], log)


# -- terminals ----------------------------------------------------------------------


def terminal_size(fds: tuple[int, ...] = (0, 1, 2)) -> tuple[int, int] | None:
    """(columns, lines) of the first of ``fds`` that is a terminal, as ssh asks stdin."""
    for fd in fds:
        try:
            size = os.get_terminal_size(fd)
        except OSError:
            continue
        return size.columns, size.lines
    return None


def pty_request(env: dict | os._Environ, size: tuple[int, int] | None) -> dict:
    """Arguments of ``Channel.get_pty``: TERM as ssh sends it (empty if unset) and size."""
    columns, lines = size or (80, 24)
    return {"term": env.get("TERM", ""), "width": columns, "height": lines}


# -- streams ------------------------------------------------------------------------


class LocalOutput:
    """A local fd that receives a remote stream, as raw bytes.

    When its reader goes away (EPIPE), later data is dropped and ``on_close``
    runs: a local docker whose stdout breaks gets EPIPE and ends with its own
    error (exit 1), it does not die of SIGPIPE, so the remote docker must see
    the same.
    """

    def __init__(self, fd: int, on_close: Callable[[], None] | None = None) -> None:
        self.fd = fd
        self.on_close = on_close
        self.closed = False

    def __call__(self, data: bytes) -> None:
        if self.closed:
            return
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.fd, view):]
        except BrokenPipeError:
            self.closed = True
            if self.on_close:
                self.on_close()


def send_eow(channel: object) -> None:
    """Tell sshd we take no more stdout, so the remote command's stdout breaks too.

    This is what ssh does when its own stdout breaks (``eow@openssh.com``:
    sshd then closes the read end of the command's stdout pipe).  Paramiko
    has no call for it, so the request is built as paramiko builds its own.
    """
    from paramiko.common import cMSG_CHANNEL_REQUEST
    from paramiko.message import Message

    m = Message()
    m.add_byte(cMSG_CHANNEL_REQUEST)
    m.add_int(channel.remote_chanid)
    m.add_string("eow@openssh.com")
    m.add_boolean(False)
    channel.transport._send_user_message(m)


def drain(channel: object, out: Callable[[bytes], None], err: Callable[[bytes], None]) -> bool:
    """Hand on what the channel holds; True once it has said all it will."""
    while channel.recv_ready():
        out(channel.recv(CHUNK))
    while channel.recv_stderr_ready():
        err(channel.recv_stderr(CHUNK))
    return bool(channel.eof_received or channel.closed) and not (
        channel.recv_ready() or channel.recv_stderr_ready())


class StdinPump(threading.Thread):
    """Copies a local fd into the channel until EOF, then sends EOF; stoppable at any time."""

    def __init__(self, fd: int, channel: object) -> None:
        super().__init__(name="remote-docker-stdin", daemon=True)
        self.fd = fd
        self.channel = channel
        self.stop_read, self.stop_write = os.pipe()

    def run(self) -> None:
        while True:
            try:
                ready, _, _ = select.select([self.fd, self.stop_read], [], [])
                if self.stop_read in ready:
                    return
                data = os.read(self.fd, CHUNK)
            except OSError:
                data = b""  # a closed or unreadable stdin ends like an empty one
            try:
                if not data:
                    self.channel.shutdown_write()
                    return
                self.channel.sendall(data)
            except (OSError, EOFError):
                return  # the channel closed under us: the remote side is done

    def stop(self) -> None:
        os.write(self.stop_write, b"x")
        self.join()
        os.close(self.stop_read)
        os.close(self.stop_write)


def capture(transport: object, script: str, stdin: bytes | None = None) -> tuple[int, bytes]:
    """Run a small script of ours; return its exit status and stdout. Stderr passes through."""
    channel = transport.open_session()
    try:
        channel.exec_command(script)
        if stdin:
            channel.sendall(stdin)
        channel.shutdown_write()
        chunks: list[bytes] = []
        fd = channel.fileno()
        while not drain(channel, chunks.append, LocalOutput(2)):
            select.select([fd], [], [])
        return channel.recv_exit_status(), b"".join(chunks)
    finally:
        channel.close()


# -- one forwarded call -------------------------------------------------------------


class FabricCall:
    """One forwarded docker command over a paramiko transport: upload, run, fetch, map status."""

    def __init__(self, transport: object, machine: Machine, plan: Plan,
                 env: dict | os._Environ = os.environ) -> None:
        self.transport = transport
        self.machine = machine
        self.plan = plan
        self.env = env
        self.tag = call_tag()
        self.received: list[int] = []
        self.kill_channels: list[object] = []

    def run(self) -> int:
        plan = self.plan
        if plan.env:
            status, _ = capture(self.transport, quoting.upload_script(f"env-{self.tag}"),
                                quoting.env_script(plan.env))
            if status != 0:
                raise ConnectionFailed(f"could not pass the environment to {self.machine.spec}")
        script = quoting.docker_script(plan.argv, self.tag, self.machine.spec,
                                       env_file=bool(plan.env), needs_dir=bool(plan.outputs))
        status = self.execute(script)
        for name, local in plan.outputs:
            self.fetch(quoting.output_path(self.tag, name), local)
        return exit_status(status, self.received)

    def fetch(self, remote_name: str, local: str) -> None:
        status, data = capture(self.transport, quoting.fetch_script(remote_name))
        if status == 0:
            from remote_docker.transport import write_output

            write_output(local, data)

    def stdin_fd(self) -> int | None:
        """What feeds the remote stdin: in a pty session always the terminal (Ctrl-C is a byte)."""
        if self.plan.stdin == "file":
            return os.open(self.plan.stdin_path, os.O_RDONLY)
        if self.plan.stdin == "inherit" or self.plan.tty:
            return 0
        return None

    def execute(self, script: str) -> int:
        """Run the docker script; its status as ``process.wait`` gives it (-n: we died of n)."""
        plan = self.plan
        stdout_tmp = f"{plan.stdout_path}.rd-{os.getpid()}" if plan.stdout_path else None
        streams = local_streams(plan)
        out = streams.stdout if streams and streams.stdout is not None else \
            os.open(stdout_tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666) \
            if stdout_tmp else 1
        source = streams.stdin if streams and streams.stdin is not None else self.stdin_fd()
        if streams:  # our reads and writes go through these fds, the threads do the rest
            streams.detach_session_fds()
            streams.start()
        channel = self.transport.open_session()
        status = None
        try:
            if plan.tty:
                channel.get_pty(**pty_request(self.env, terminal_size()))
            channel.exec_command(script)
            with RawTerminal(0) if plan.tty else nullcontext(), \
                    SignalRelay(self, channel, plan.tty) as relay:
                pump = StdinPump(source, channel) if source is not None else None
                if pump:
                    pump.start()
                else:
                    channel.shutdown_write()
                try:
                    status = self.relay_output(channel, out, relay)
                finally:
                    channel.close()  # first: a pump waiting for window space gives up
                    if pump:
                        pump.stop()
        finally:
            channel.close()
            for kill in self.kill_channels:
                kill.close()
            if out != 1:
                os.close(out)
            if source not in (None, 0):
                os.close(source)
            if stdout_tmp:
                finish_output(stdout_tmp, plan.stdout_path, status == 0)
        if streams:
            streams.finish()
        return status

    def relay_output(self, channel: object, out: int, relay: "SignalRelay") -> int:
        fd = channel.fileno()
        stdout = LocalOutput(out, on_close=lambda: send_eow(channel))
        stderr = LocalOutput(2)
        while True:
            ready, _, _ = select.select([fd, relay.wake_fd], [], [])
            if relay.wake_fd in ready:
                relay.handle()
            if drain(channel, stdout, stderr):
                break
        status = channel.recv_exit_status()
        if status < 0:  # closed without an exit status
            if not self.transport.is_active():
                raise ConnectionFailed(f"lost the connection to {self.machine.spec}")
            return ExitStatus.SSH
        return status

    def send_signal(self, signame: str) -> None:
        """Deliver a signal to this call's remote docker client; does not wait for it."""
        kill = self.transport.open_session()
        kill.exec_command(quoting.kill_script(self.tag, signame))
        self.kill_channels.append(kill)


class SignalRelay:
    """Signals caught during a call, acted on by the main loop.

    The handlers do nothing; Python's C-level handler writes each signal's
    number to the wake-up pipe, which the loop reads.  So paramiko is only
    touched from the loop, never from a handler that may have interrupted a
    thread holding a channel's lock, and no signal is missed whichever thread
    the kernel delivered it to.
    """

    def __init__(self, call: FabricCall, channel: object, tty: bool) -> None:
        self.call = call
        self.channel = channel
        self.signals = list(FORWARDED_SIGNALS) + ([signal.SIGWINCH] if tty else [])
        self.wake_fd, self.wake_write = os.pipe()
        self.previous: dict[int, object] = {}
        self.previous_wakeup = -1

    def __enter__(self) -> "SignalRelay":
        os.set_blocking(self.wake_fd, False)
        os.set_blocking(self.wake_write, False)
        if threading.current_thread() is threading.main_thread():
            self.previous_wakeup = signal.set_wakeup_fd(self.wake_write)
            self.previous = {s: signal.signal(s, _noted) for s in self.signals}
        return self

    def __exit__(self, *exc: object) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)
        if self.previous:
            signal.set_wakeup_fd(self.previous_wakeup)
        os.close(self.wake_fd)
        os.close(self.wake_write)

    def handle(self) -> None:
        try:
            signums = os.read(self.wake_fd, 512)
        except BlockingIOError:
            return
        for signum in signums:
            if signum == signal.SIGWINCH:
                size = terminal_size()
                if size:
                    self.channel.resize_pty(width=size[0], height=size[1])
            elif signum in FORWARDED_SIGNALS:
                self.call.received.append(signum)
                self.call.send_signal(FORWARDED_SIGNALS[signum])


def _noted(signum: int, frame: object) -> None:
    """A handler that does nothing: the wake-up pipe carries the signal to the loop."""
