"""The mux wire format, checked against a loud fake master on a socketpair."""

import os
import socket
import threading

import pytest

from remote_docker.transport import mux


def test_session_request_matches_openssh_layout() -> None:
    body = mux.session_request(7, "docker ps", True, "xterm")
    r = mux.Reader(body)
    assert r.u32() == mux.MUX_C_NEW_SESSION and r.u32() == 7
    assert r.string() == b""                      # reserved
    assert [r.u32() for _ in range(4)] == [1, 0, 0, 0]  # tty, x11, agent, subsystem
    assert r.u32() == mux.NO_ESCAPE_CHAR
    assert r.string() == b"xterm" and r.string() == b"docker ps"
    assert r.pos == len(body)


def fake_master(sock: socket.socket, script: list) -> None:
    """Answer exactly the expected requests; fail loudly on anything else."""
    def packet() -> mux.Reader:
        size = int.from_bytes(sock.recv(4, socket.MSG_WAITALL), "big")
        return mux.Reader(sock.recv(size, socket.MSG_WAITALL))

    def send(body: bytes) -> None:
        sock.sendall(mux.u32(len(body)) + body)

    hello = packet()
    assert hello.u32() == mux.MUX_MSG_HELLO and hello.u32() == 4
    send(mux.u32(mux.MUX_MSG_HELLO) + mux.u32(4))
    for step in script:
        step(packet, send)
    sock.close()


def hello_client(sock: socket.socket) -> mux.MuxClient:
    """A MuxClient on one end of a socketpair, past the hello exchange."""
    client = object.__new__(mux.MuxClient)
    client.sock, client.request_id = sock, 0
    client._send(mux.u32(mux.MUX_MSG_HELLO) + mux.u32(4))
    client._recv_packet()
    return client


def test_open_session_passes_three_fds_and_reads_exit(tmp_path) -> None:
    ours, theirs = socket.socketpair()
    received = []

    def session(packet, send):
        req = packet()
        assert req.u32() == mux.MUX_C_NEW_SESSION
        rid = req.u32()
        for _ in range(3):
            msg, fds, _, _ = socket.recv_fds(theirs, 1, 1)
            received.extend(fds)
        send(mux.u32(mux.MUX_S_SESSION_OPENED) + mux.u32(rid) + mux.u32(5))
        send(mux.u32(mux.MUX_S_EXIT_MESSAGE) + mux.u32(5) + mux.u32(42))

    thread = threading.Thread(target=fake_master, args=(theirs, [session]))
    thread.start()
    client = hello_client(ours)
    read_end, write_end = os.pipe()
    sid = client.open_session("true", (read_end, write_end, 2))
    assert sid == 5 and client.wait_exit(sid) == 42
    thread.join()
    assert len(received) == 3
    os.write(write_end, b"x")
    assert os.read(received[0], 1) == b"x"  # the master got our very pipe
    for fd in (read_end, write_end, *received):
        os.close(fd)


def test_refusal_is_a_mux_error() -> None:
    ours, theirs = socket.socketpair()

    def refuse(packet, send):
        req = packet()
        req.u32()
        send(mux.u32(mux.MUX_S_PERMISSION_DENIED) + mux.u32(req.u32()) + mux.string(b"no"))

    thread = threading.Thread(target=fake_master, args=(theirs, [refuse]))
    thread.start()
    client = hello_client(ours)
    with pytest.raises(mux.MuxError, match="refused: no"):
        client.master_pid()
    thread.join()


def test_missing_socket_is_a_mux_error(tmp_path) -> None:
    with pytest.raises(mux.MuxError):
        mux.MuxClient(str(tmp_path / "nothing"))
