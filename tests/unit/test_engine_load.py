"""`docker load` as an HTTP request: the verdicts an engine can give, and what each becomes.

The engine here is a scripted unix-socket server in a thread, speaking the
HTTP that dockerd's load handler speaks (the bed's tests push through the
real one); it records the request so the framing can be checked.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest

from remote_docker.transport import engine_load

LOADED = b'{"stream":"Loaded image: x:1\\n"}\r\n'
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def chunked(body: bytes) -> bytes:
    return b"%x\r\n%b\r\n0\r\n\r\n" % (len(body), body)


def final(status: str, body: bytes) -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nConnection: close\r\n"
            "Transfer-Encoding: chunked\r\n\r\n").encode() + chunked(body)


class Engine:
    """Accepts one connection and follows ``script``: what it got is in ``received``."""

    def __init__(self, path: Path, script) -> None:
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(str(path))
        self.server.listen(1)
        self.received = b""
        self.thread = threading.Thread(target=self._serve, args=(script,), daemon=True)
        self.thread.start()

    def _serve(self, script) -> None:
        conn, _ = self.server.accept()
        with conn:
            script(self, conn)

    def read_until(self, conn: socket.socket, end: bytes) -> bool:
        while end not in self.received:
            chunk = conn.recv(65536)
            if not chunk:
                return False
            self.received += chunk
        return True

    def stop(self) -> None:
        self.thread.join(timeout=10)
        self.server.close()


@pytest.fixture
def engine(tmp_path):
    started: list[Engine] = []

    def start(script) -> tuple[Engine, str]:
        path = tmp_path / f"engine{len(started)}.sock"
        started.append(Engine(path, script))
        return started[-1], str(path)

    yield start
    for e in started:
        e.stop()


def loads(verdict: bytes):
    def script(e: Engine, conn: socket.socket) -> None:
        e.read_until(conn, b"\r\n\r\n")
        conn.sendall(CONTINUE)
        e.read_until(conn, b"\r\n0\r\n\r\n")
        conn.sendall(verdict)
    return script


def test_a_load_sends_one_chunked_request_and_reads_the_verdict(engine) -> None:
    fake, path = engine(loads(final("200 OK", LOADED)))
    load = engine_load.SocketLoad(path)
    load.ready()
    os.write(load.fileno(), b"5\r\nhello\r\n")
    assert load.finish() == (0, b"")
    head, _, body = fake.received.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /images/load?quiet=1 HTTP/1.1\r\n")
    assert b"Transfer-Encoding: chunked" in head and b"Expect: 100-continue" in head
    assert body == b"5\r\nhello\r\n0\r\n\r\n"


def test_an_error_in_the_load_s_stream_is_its_message(engine) -> None:
    error = b'{"errorDetail":{"message":"unexpected EOF"},"error":"unexpected EOF"}\r\n'
    _, path = engine(loads(final("200 OK", error)))
    load = engine_load.SocketLoad(path)
    load.ready()
    assert load.finish() == (1, b"unexpected EOF")


def test_no_engine_behind_the_socket_is_told_apart_from_a_refusal(engine, tmp_path) -> None:
    """A master that cannot open the channel closes the connection: NoEngine, so the push
    takes another way; an engine that says no (an authorization plugin): Refused."""
    _, gone = engine(lambda e, conn: None)
    with pytest.raises(engine_load.NoEngine):
        engine_load.SocketLoad(gone).ready()
    with pytest.raises(engine_load.NoEngine):
        engine_load.SocketLoad(str(tmp_path / "nothing.sock"))

    def refuse(e: Engine, conn: socket.socket) -> None:
        e.read_until(conn, b"\r\n\r\n")
        conn.sendall(final("403 Forbidden", b'{"message":"authorization denied by plugin"}\n'))
    _, path = engine(refuse)
    with pytest.raises(engine_load.Refused, match="^authorization denied by plugin$"):
        engine_load.SocketLoad(path).ready()


def test_a_cut_archive_sends_no_last_chunk_and_says_why(engine) -> None:
    def script(e: Engine, conn: socket.socket) -> None:
        e.read_until(conn, b"\r\n\r\n")
        conn.sendall(CONTINUE)
        e.read_until(conn, b"never")  # to the client's end of stream
        conn.sendall(final("500 Internal Server Error", b'{"message":"unexpected EOF"}\n'))
    fake, path = engine(script)
    load = engine_load.SocketLoad(path)
    load.ready()
    os.write(load.fileno(), b"3\r\nabc\r\n")
    assert load.abort() == (1, b"unexpected EOF")
    assert not fake.received.endswith(b"0\r\n\r\n")


@pytest.mark.parametrize("reply, said", [
    (final("200 OK", LOADED), None),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 35\r\n\r\n" + LOADED, None),
    (final("500 Internal Server Error", b'{"message":"no space left"}'), "no space left"),
    (b"HTTP/1.1 502 Bad Gateway\r\n\r\n", "Bad Gateway"),
    (b"", "the engine gave no answer"),
    (b"SSH-2.0-OpenSSH\r\n", "the engine answered with something other than HTTP"),
])
def test_response_verdicts(reply: bytes, said: str | None) -> None:
    assert engine_load.response_error(reply) == said


def test_each_remote_socket_has_a_forward_of_its_own(tmp_path) -> None:
    """A forward goes where it was first asked to: a remote socket named later (rootless
    docker, or one that is not there) must not be served by the default's forward."""
    from remote_docker import config
    from remote_docker.transport import docker_socket
    from remote_docker.transport.openssh import ControlMaster

    env = {"XDG_RUNTIME_DIR": str(tmp_path), "HOME": str(tmp_path)}
    machine = config.parse_machine("dm@host")
    paths = {docker_socket.socket_path(ControlMaster(machine, {**env, **extra}))
             for extra in ({}, {"REMOTE_DOCKER_REMOTE_SOCKET": "/var/run/docker.sock"},
                           {"REMOTE_DOCKER_REMOTE_SOCKET": "/run/user/1000/docker.sock"})}
    assert len(paths) == 2 and all(p.endswith(".docker.sock") for p in paths)
