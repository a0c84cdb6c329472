"""`docker load` as one HTTP request on an engine's own socket.

Why not ``ssh host docker load``: that puts a docker client on the
docker-machine between sshd and the engine, and every byte of a push then
passes through one more process: sshd writes it into a pipe, the client
reads it and writes it again, chunk-encoded, into the engine's socket. On a
2-core machine whose two engines need both cores for `docker save` and
`docker load`, a process in the stream costs ~6% of a first push. The
ControlMaster already forwards a workstation socket to the remote engine's
(``docker_socket``), so sshd can write straight into the engine: the request
is the client's own (``POST /images/load?quiet=1``, a chunked tar body), sent
by the push itself. A pull does the same with the workstation's engine, when
its socket is certain (``transport.local.engine_socket``).

``Expect: 100-continue`` tells, before a byte of the archive is sent, that an
engine is really there: a master that cannot open the channel (sshd refuses
streamlocal forwarding, the socket is elsewhere on the docker-machine) just
closes the connection, and the transfer then falls back on a ``docker load``
client. A body cut short (Ctrl-C, ``kill -9``, a failed save) has no final
chunk, so the engine's read fails and nothing is loaded, as with the client.
"""

from __future__ import annotations

import json

import _socket

REQUEST = (b"POST /images/load?quiet=1 HTTP/1.1\r\nHost: docker\r\n"
           b"Content-Type: application/x-tar\r\nTransfer-Encoding: chunked\r\n"
           b"Expect: 100-continue\r\nConnection: close\r\n\r\n")
LAST_CHUNK = b"0\r\n\r\n"
HEAD_LIMIT = 64 << 10


class NoEngine(Exception):
    """Nothing answered on the socket: no HTTP at all, so try another way."""


class Refused(Exception):
    """The engine answered the request with a final status instead of reading the archive."""


def response_error(data: bytes) -> str | None:
    """What went wrong in a load's whole HTTP response, or None if the image loaded.

    An error before the engine began to answer is a status >= 400 with
    ``{"message": …}``; one after it is a 200 whose JSON stream holds an
    ``error`` (the client prints the same two)."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return "the engine gave no answer" if not data.strip() else \
            "the engine answered with something other than HTTP"
    headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(b":") for l in lines[1:])}
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        body = _dechunk(body)
    messages = _json_objects(body)
    for found in messages:
        if found.get("error") or found.get("errorDetail"):
            detail = found.get("errorDetail") or {}
            return str(found.get("error") or detail.get("message") or "load failed")
    if int(parts[1]) >= 400:
        said = next((m["message"] for m in messages if m.get("message")), None)
        return str(said or (parts[2] if len(parts) > 2 else parts[1]).decode(errors="replace"))
    return None


def _dechunk(body: bytes) -> bytes:
    out, pos = [], 0
    while pos < len(body):
        end = body.find(b"\r\n", pos)
        if end < 0:
            break
        try:
            size = int(body[pos:end].split(b";")[0], 16)
        except ValueError:
            break
        if size == 0:
            break
        out.append(body[end + 2:end + 2 + size])
        pos = end + 2 + size + 2
    return b"".join(out)


def _json_objects(body: bytes) -> list[dict]:
    """The engine's messages: one JSON object per line, or a single one."""
    found = []
    for line in body.decode(errors="replace").splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            found.append(value)
    return found


class SocketLoad:
    """One ``docker load`` in flight on a unix socket that reaches the remote engine.

    The request goes out when it is made; ``ready`` waits for the engine's
    100 Continue, so a caller can overlap that round trip with other work;
    the archive is then written to ``fileno()`` in chunks (``layerfilter``
    frames them), and ``finish`` ends the body and reads the verdict.
    """

    framed = True
    ABORT_WAIT = 30.0  # for the engine's word on a cut archive; the push fails anyway

    def __init__(self, path: str) -> None:
        self.early = b""
        self.sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            self.sock.connect(path)
            self.sock.sendall(REQUEST)
        except OSError as exc:
            self.sock.close()
            raise NoEngine(str(exc)) from None

    def fileno(self) -> int:
        return self.sock.fileno()

    def ready(self) -> None:
        """The engine reads the body: NoEngine if nothing answered, Refused if it said no."""
        head = b""
        try:
            while b"\r\n\r\n" not in head and len(head) < HEAD_LIMIT:
                chunk = self.sock.recv(HEAD_LIMIT)
                if not chunk:
                    break
                head += chunk
        except OSError as exc:
            raise NoEngine(str(exc)) from None
        if not head:
            raise NoEngine("the connection closed")
        if head.split(b" ", 2)[1:2] != [b"100"]:
            raise Refused(response_error(head + self._rest()) or "the engine refused the load")
        self.early = head.partition(b"\r\n\r\n")[2]  # the verdict, should it come this soon

    def finish(self) -> tuple[int, bytes]:
        """End the archive; (0, b"") once the engine has loaded it, else (1, its error)."""
        try:
            self.sock.sendall(LAST_CHUNK)
            said = response_error(self._rest())
        except OSError as exc:
            said = f"the connection to the engine broke: {exc}"
        finally:
            self.sock.close()
        return (0, b"") if said is None else (1, said.encode())

    def abort(self) -> tuple[int, bytes]:
        """The archive broke off: no last chunk, so the engine loads nothing; what it said."""
        try:
            self.sock.settimeout(self.ABORT_WAIT)
            self.sock.shutdown(_socket.SHUT_WR)
        except OSError:  # the engine has hung up already; what it said may still be there
            pass
        try:
            said = response_error(self._rest()) or "the archive was cut short"
        except OSError as exc:
            said = str(exc)
        finally:
            self.sock.close()
        return 1, said.encode()

    def kill(self) -> None:
        self.sock.close()

    def _rest(self) -> bytes:
        data, self.early = self.early, b""
        while chunk := self.sock.recv(HEAD_LIMIT):
            data += chunk
        return data
