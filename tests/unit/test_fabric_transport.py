"""The Fabric transport's own logic, with loud fakes in place of paramiko's channels.

``FakeTransport`` plays back the remote commands a test expects, in order,
and fails on any other; ``FakeChannel`` has only the channel calls the
transport is meant to use.  No network, no sshd: the real thing is in
tests/integration/test_fabric_transport.py.
"""

import errno
import fcntl
import os
import select
import signal
import socket
import struct
import termios

import paramiko
import pytest

from remote_docker.config import parse_machine
from remote_docker.errors import ConfigError, ConnectionFailed
from remote_docker.forward import OUTPUT_PLACEHOLDER, Plan
from remote_docker.transport import fabric, forwarded, quoting

MACHINE = parse_machine("dm@127.0.0.2")
TAG = "ws.1.abc"


class FakeChannel:
    """One scripted session: what it answers is set when its command is exec'd."""

    def __init__(self, transport: "FakeTransport") -> None:
        self.transport = transport
        self.command: str | None = None
        self.out = bytearray()
        self.err = bytearray()
        self.status = 0
        self.sent = bytearray()
        self.eof_sent = False
        self.closed = False
        self.answer_after_eof = False
        self.pty: dict | None = None
        self._ready, self._wake = os.pipe()

    # what the transport may call
    def exec_command(self, command: str) -> None:
        assert self.command is None, "a channel runs one command"
        self.command = command
        self.transport.started(self)
        if not self.answer_after_eof:
            os.write(self._wake, b"x")

    def get_pty(self, **request) -> None:
        assert self.command is None, "a pty is asked for before the command"
        self.pty = request

    def fileno(self) -> int:
        return self._ready

    def recv_ready(self) -> bool:
        return self.answered and bool(self.out)

    def recv_stderr_ready(self) -> bool:
        return self.answered and bool(self.err)

    def recv(self, n: int) -> bytes:
        data = bytes(self.out[:n])
        del self.out[:n]
        return data

    def recv_stderr(self, n: int) -> bytes:
        data = bytes(self.err[:n])
        del self.err[:n]
        return data

    @property
    def eof_received(self) -> bool:
        return self.answered

    def recv_exit_status(self) -> int:
        return self.status

    def sendall(self, data: bytes) -> None:
        assert not self.eof_sent, "data after EOF"
        self.sent += data

    def shutdown_write(self) -> None:
        self.eof_sent = True
        if self.answer_after_eof:
            os.write(self._wake, b"x")

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self._ready)
            os.close(self._wake)

    @property
    def answered(self) -> bool:
        return self.command is not None and (self.eof_sent or not self.answer_after_eof)


class FakeTransport:
    """Expects ``(command, answer)`` pairs in order; any other command fails the test."""

    def __init__(self, *expected: tuple[str, dict]) -> None:
        self.expected = list(expected)
        self.channels: list[FakeChannel] = []
        self.active = True

    def open_session(self) -> FakeChannel:
        channel = FakeChannel(self)
        self.channels.append(channel)
        return channel

    def started(self, channel: FakeChannel) -> None:
        assert self.expected, f"unexpected remote command: {channel.command!r}"
        command, answer = self.expected.pop(0)
        assert channel.command == command
        channel.out += answer.get("stdout", b"")
        channel.err += answer.get("stderr", b"")
        channel.status = answer.get("status", 0)
        channel.answer_after_eof = answer.get("after_eof", False)

    def is_active(self) -> bool:
        return self.active

    def done(self) -> None:
        assert not self.expected, f"never ran: {self.expected!r}"


def docker(plan: Plan) -> str:
    return quoting.docker_script(plan.argv, TAG, MACHINE.spec, env_file=bool(plan.env),
                                 needs_dir=bool(plan.outputs))


def call(transport: FakeTransport, plan: Plan) -> fabric.FabricCall:
    result = fabric.FabricCall(transport, MACHINE, plan, {})
    result.tag = TAG
    return result


# -- one forwarded call -----------------------------------------------------------------


def test_streams_and_status_pass_through_as_bytes(capfdbinary) -> None:
    plan = Plan(["docker", "run", "--rm", "busybox"])
    raw = b"a\r\nb\n\x00\xff"
    transport = FakeTransport((docker(plan), {"stdout": raw, "stderr": b"err\n", "status": 3}))
    assert call(transport, plan).run() == 3
    assert tuple(capfdbinary.readouterr()) == (raw, b"err\n")
    transport.done()
    assert transport.channels[0].eof_sent, "stdin 'null' must be an immediate EOF"
    assert transport.channels[0].pty is None


def test_stdout_to_a_file_is_renamed_into_place(tmp_path) -> None:
    plan = Plan(["docker", "save", "busybox"])
    plan.stdout_path = str(tmp_path / "image.tar")
    raw = bytes(range(256)) * 1000
    transport = FakeTransport((docker(plan), {"stdout": raw}))
    assert call(transport, plan).run() == 0
    assert (tmp_path / "image.tar").read_bytes() == raw
    assert os.listdir(tmp_path) == ["image.tar"]


def test_stdout_file_is_not_left_behind_on_failure(tmp_path) -> None:
    plan = Plan(["docker", "save", "nope"])
    plan.stdout_path = str(tmp_path / "image.tar")
    transport = FakeTransport((docker(plan), {"stdout": b"partial", "status": 1}))
    assert call(transport, plan).run() == 1
    assert os.listdir(tmp_path) == []


def test_env_goes_up_in_a_file_before_docker_and_never_on_a_command_line(capfd) -> None:
    plan = Plan(["docker", "run", "-e", "SECRET", "busybox"])
    plan.env = {"SECRET": "hunter2 'x'"}
    transport = FakeTransport((quoting.upload_script(f"env-{TAG}"), {}),
                              (docker(plan), {"stdout": b"ok\n"}))
    assert call(transport, plan).run() == 0
    transport.done()
    upload, run = transport.channels
    assert bytes(upload.sent) == quoting.env_script(plan.env) and upload.eof_sent
    assert all("hunter2" not in c.command for c in transport.channels)
    assert capfd.readouterr().out == "ok\n"


def test_env_upload_failure_is_one_line() -> None:
    plan = Plan(["docker", "run", "-e", "A", "busybox"])
    plan.env = {"A": "1"}
    transport = FakeTransport((quoting.upload_script(f"env-{TAG}"), {"status": 1}))
    with pytest.raises(ConnectionFailed, match="could not pass the environment to dm@127.0.0.2"):
        call(transport, plan).run()


def test_outputs_are_fetched_after_the_command(tmp_path) -> None:
    cidfile = tmp_path / "cid"
    plan = Plan(["docker", "run", f"--cidfile={OUTPUT_PLACEHOLDER}cid0", "busybox"])
    plan.outputs = [("cid0", str(cidfile))]
    transport = FakeTransport(
        (docker(plan), {}),
        (quoting.fetch_script(quoting.output_path(TAG, "cid0")), {"stdout": b"f00d"}))
    assert call(transport, plan).run() == 0
    transport.done()
    assert cidfile.read_bytes() == b"f00d"


def test_a_stdin_file_is_sent_whole_then_eof(tmp_path) -> None:
    data = os.urandom(300_000)
    (tmp_path / "in.tar").write_bytes(data)
    plan = Plan(["docker", "load"])
    plan.stdin, plan.stdin_path = "file", str(tmp_path / "in.tar")
    transport = FakeTransport((docker(plan), {"after_eof": True}))
    assert call(transport, plan).run() == 0
    channel = transport.channels[0]
    assert bytes(channel.sent) == data and channel.eof_sent


def test_no_exit_status_is_255_like_ssh() -> None:
    plan = Plan(["docker", "ps"])
    transport = FakeTransport((docker(plan), {"status": -1}))
    assert call(transport, plan).run() == 255


def test_a_lost_connection_is_one_line() -> None:
    plan = Plan(["docker", "ps"])
    transport = FakeTransport((docker(plan), {"status": -1}))
    transport.active = False
    with pytest.raises(ConnectionFailed, match="lost the connection to dm@127.0.0.2"):
        call(transport, plan).run()


@pytest.mark.parametrize("status, received, die_of", [
    (0, [], 0), (3, [signal.SIGINT], 0), (130, [], 0), (130, [signal.SIGINT], signal.SIGINT),
    (143, [signal.SIGINT, signal.SIGTERM], signal.SIGTERM), (255, [signal.SIGINT], 0),
    (-signal.SIGPIPE, [], signal.SIGPIPE)])
def test_status_mapping_is_the_openssh_one(status: int, received: list, die_of: int) -> None:
    assert forwarded.signal_to_die_of(status, received) == die_of


# -- signals ---------------------------------------------------------------------------


def test_a_signal_is_delivered_remotely_from_the_loop_not_the_handler() -> None:
    transport = FakeTransport((quoting.kill_script(TAG, "INT"), {}))
    forwarded = call(transport, Plan(["docker", "run", "busybox"]))
    before = signal.getsignal(signal.SIGINT)
    with fabric.SignalRelay(forwarded, channel=None, tty=False) as relay:
        os.kill(os.getpid(), signal.SIGINT)  # would be KeyboardInterrupt without the relay
        assert transport.channels == [], "nothing may run inside the handler"
        ready, _, _ = select.select([relay.wake_fd], [], [], 10)
        assert ready
        relay.handle()
    assert signal.getsignal(signal.SIGINT) is before
    transport.done()
    assert forwarded.received == [signal.SIGINT]


# -- streams ----------------------------------------------------------------------------


def test_local_output_drops_data_after_its_reader_goes() -> None:
    read_end, write_end = os.pipe()
    closes = []
    out = fabric.LocalOutput(write_end, on_close=lambda: closes.append(1))
    out(b"first")
    assert os.read(read_end, 100) == b"first"
    os.close(read_end)
    out(b"second")
    out(b"third")
    os.close(write_end)
    assert closes == [1]


def test_stdin_pump_copies_then_sends_eof_and_stops_when_asked() -> None:
    channel = FakeChannel(FakeTransport())
    read_end, write_end = os.pipe()
    pump = fabric.StdinPump(read_end, channel)
    pump.start()
    os.write(write_end, b"hello")
    os.close(write_end)
    pump.join(10)
    assert (bytes(channel.sent), channel.eof_sent) == (b"hello", True)
    pump.stop()
    os.close(read_end)

    idle_read, idle_write = os.pipe()  # never written: the pump must still stop at once
    pump = fabric.StdinPump(idle_read, FakeChannel(FakeTransport()))
    pump.start()
    pump.stop()
    assert not pump.is_alive()
    os.close(idle_read)
    os.close(idle_write)


# -- terminals --------------------------------------------------------------------------


def test_pty_request_sends_term_as_ssh_does() -> None:
    assert fabric.pty_request({"TERM": "xterm-256color"}, (101, 33)) == {
        "term": "xterm-256color", "width": 101, "height": 33}
    assert fabric.pty_request({}, None) == {"term": "", "width": 80, "height": 24}


def test_terminal_size_is_read_from_the_first_terminal() -> None:
    master, slave = os.openpty()
    read_end, write_end = os.pipe()
    try:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
        assert fabric.terminal_size((read_end, slave)) == (101, 33)
        assert fabric.terminal_size((read_end,)) is None
    finally:
        for fd in (master, slave, read_end, write_end):
            os.close(fd)


def test_raw_terminal_is_restored() -> None:
    master, slave = os.openpty()
    try:
        before = termios.tcgetattr(slave)
        with fabric.RawTerminal(slave):
            assert not termios.tcgetattr(slave)[3] & (termios.ICANON | termios.ECHO | termios.ISIG)
        assert termios.tcgetattr(slave) == before
    finally:
        os.close(master)
        os.close(slave)


# -- connecting -------------------------------------------------------------------------


def test_host_key_files_are_ours_then_the_users_then_the_systems() -> None:
    env = {"HOME": "/h", "XDG_CONFIG_HOME": "/c"}
    assert fabric.host_key_files(env) == [
        "/c/remote-docker/known_hosts", "/h/.ssh/known_hosts", "/h/.ssh/known_hosts2",
        "/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"]


class FakeClient:
    def __init__(self) -> None:
        self.policy = None
        self.loaded: list[str] = []

    def set_missing_host_key_policy(self, policy: object) -> None:
        self.policy = policy

    def load_system_host_keys(self, path: str) -> None:
        with open(path):
            self.loaded.append(path)


def test_unknown_host_keys_are_rejected_and_missing_files_skipped(tmp_path) -> None:
    present = tmp_path / "known_hosts"
    present.write_text("")
    client = FakeClient()
    fabric.pin_host_keys(client, [str(tmp_path / "missing"), str(present)])
    assert isinstance(client.policy, paramiko.RejectPolicy)
    assert client.loaded == [str(present)]


def test_every_proxyjump_hop_is_pinned(tmp_path, monkeypatch) -> None:
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "config").write_text(
        "Host dmalias\n  HostName 127.0.0.2\n  ProxyJump hop@127.0.0.5\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    conn = fabric.pinned_connection(parse_machine("dmalias"), {"HOME": str(tmp_path)})
    assert conn.host == "127.0.0.2" and conn.gateway.host == "127.0.0.5"
    for hop in (conn, conn.gateway):
        assert isinstance(hop.client._policy, paramiko.RejectPolicy)


def refused() -> Exception:
    return paramiko.ssh_exception.NoValidConnectionsError(
        {("127.0.0.2", 1): ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")})


@pytest.mark.parametrize("make, words", [
    (lambda: socket.gaierror(-2, "Name or service not known"), "unknown host '127.0.0.2'"),
    (refused, "connection refused (is sshd running?)"),
    (lambda: TimeoutError("timed out"), "connection timed out"),
    (lambda: OSError(errno.EHOSTUNREACH, "No route to host"), "no route to host"),
    (lambda: paramiko.BadHostKeyException("127.0.0.2", paramiko.RSAKey.generate(1024),
                                          paramiko.RSAKey.generate(1024)),
     "has changed: if you expected that, re-pin it"),
    (lambda: paramiko.SSHException("Server '127.0.0.2' not found in known_hosts"),
     "is not pinned: check and pin it with 'remote-docker use dm@127.0.0.2'"),
    (lambda: paramiko.AuthenticationException("Authentication failed."),
     "refused our login: check that 'ssh dm@127.0.0.2' works"),
    (lambda: paramiko.SSHException("No authentication methods available"),
     "refused our login: check that 'ssh dm@127.0.0.2' works"),
    (lambda: paramiko.SSHException("Error reading SSH protocol banner"),
     "cannot connect to dm@127.0.0.2: Error reading SSH protocol banner"),
])
def test_paramiko_failures_are_worded_as_for_openssh(make, words: str) -> None:
    failure = fabric.explain_error(MACHINE, make())
    assert isinstance(failure, ConnectionFailed) and failure.status == 255
    assert words in failure.message and "\n" not in failure.message


def test_missing_fabric_says_how_to_get_it(monkeypatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_fabric(name, *args, **kwargs):
        if name == "fabric":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_fabric)
    with pytest.raises(ConfigError, match="pip install fabric"):
        fabric.pinned_connection(MACHINE, {})
