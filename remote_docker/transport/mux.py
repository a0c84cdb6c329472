"""A passenger client for OpenSSH's ControlMaster, in Python (PROTOCOL.mux).

Why not ``ssh -S``: starting the ssh client binary costs ~9 ms per call on
this kind of machine (a fifth of a forwarded ``docker ps``), and the ssh mux
client dies on SIGINT without telling the remote side.  The mux protocol
(version 4, documented in OpenSSH's PROTOCOL.mux and stable since OpenSSH 5.x)
lets a client hand its stdin, stdout and stderr to the master over the
control socket; the master then does all the I/O on them itself and reports
the remote exit status.  So the shim speaks it directly: no ssh process per
call, and since the master lives in a session of its own, a Ctrl-C at the
terminal reaches only the shim, which forwards it deliberately.

Only what a passenger needs is implemented: hello, alive check, new session,
and opening/closing a remote forward of a unix socket (``docker.x11``: the
master itself then relays every X connection, as ``ssh -O forward -R`` would);
and opening and closing local port forwards (the published-ports watcher).
Uses ``_socket`` rather than ``socket`` (whose import pulls in ``enum``).
"""

import sys

import _socket

MUX_MSG_HELLO = 0x00000001
MUX_C_NEW_SESSION = 0x10000002
MUX_C_ALIVE_CHECK = 0x10000004
MUX_C_OPEN_FWD = 0x10000006
MUX_C_CLOSE_FWD = 0x10000007
MUX_FWD_LOCAL = 1
MUX_S_OK = 0x80000001
MUX_S_PERMISSION_DENIED = 0x80000002
MUX_S_FAILURE = 0x80000003
MUX_S_EXIT_MESSAGE = 0x80000004
MUX_S_ALIVE = 0x80000005
MUX_S_SESSION_OPENED = 0x80000006
MUX_S_REMOTE_PORT = 0x80000007
MUX_S_TTY_ALLOC_FAIL = 0x80000008
MUX_FWD_REMOTE = 2
PORT_STREAMLOCAL = 0xFFFFFFFE  # (u_int)-2: the "host" is a unix socket path
PROTOCOL_VERSION = 4
NO_ESCAPE_CHAR = 0xFFFFFFFF


class MuxError(Exception):
    """The master refused, spoke another protocol, or went away."""


def u32(value: int) -> bytes:
    return value.to_bytes(4, "big")


def string(value: bytes) -> bytes:
    return u32(len(value)) + value


class Reader:
    """Reads SSH wire-format fields from one packet."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def u32(self) -> int:
        if self.pos + 4 > len(self.data):
            raise MuxError("short packet from the ssh master")
        value = int.from_bytes(self.data[self.pos:self.pos + 4], "big")
        self.pos += 4
        return value

    def string(self) -> bytes:
        size = self.u32()
        value = self.data[self.pos:self.pos + size]
        self.pos += size
        return value


def forward_request(kind: int, request_id: int, listen: str, connect: tuple[str, int]) -> bytes:
    """MUX_C_OPEN_FWD/MUX_C_CLOSE_FWD of a remote forward from a unix socket path ``listen``.

    ``connect`` is (path, PORT_STREAMLOCAL) for a local unix socket, else (host, port).
    """
    return (u32(kind) + u32(request_id) + u32(MUX_FWD_REMOTE) + string(listen.encode())
            + u32(PORT_STREAMLOCAL) + string(connect[0].encode()) + u32(connect[1]))


def session_request(request_id: int, command: str, tty: bool, term: str) -> bytes:
    """The body of MUX_C_NEW_SESSION, as ssh's own mux client encodes it."""
    return (u32(MUX_C_NEW_SESSION) + u32(request_id) + string(b"") + u32(int(tty)) + u32(0)
            + u32(0) + u32(0) + u32(NO_ESCAPE_CHAR) + string(term.encode())
            + string(command.encode("utf-8", "surrogateescape")))


class MuxClient:
    """One connection to a master's control socket."""

    def __init__(self, path: str) -> None:
        self.sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            self.sock.connect(path)
            self._send(u32(MUX_MSG_HELLO) + u32(PROTOCOL_VERSION))
            hello = Reader(self._recv_packet())
            if hello.u32() != MUX_MSG_HELLO or hello.u32() != PROTOCOL_VERSION:
                raise MuxError("the ssh master speaks another mux protocol version")
        except OSError as exc:
            self.sock.close()
            raise MuxError(f"cannot talk to the ssh master: {exc.strerror or exc}") from None
        except MuxError:
            self.sock.close()
            raise
        self.request_id = 0

    def close(self) -> None:
        self.sock.close()

    def _send(self, body: bytes) -> None:
        self.sock.sendall(u32(len(body)) + body)

    def _recv_exact(self, size: int) -> bytes:
        chunks = []
        while size:
            chunk = self.sock.recv(size)
            if not chunk:
                raise MuxError("the ssh master closed the connection")
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def _recv_packet(self) -> bytes:
        size = int.from_bytes(self._recv_exact(4), "big")
        if size > 256 * 1024:
            raise MuxError("oversized packet from the ssh master")
        return self._recv_exact(size)

    def _reply(self, expected: int) -> Reader:
        reply = Reader(self._recv_packet())
        kind = reply.u32()
        if reply.u32() != self.request_id:
            raise MuxError("out-of-sequence reply from the ssh master")
        self.request_id += 1
        if kind in (MUX_S_PERMISSION_DENIED, MUX_S_FAILURE):
            raise MuxError("the ssh master refused: " + reply.string().decode("utf-8", "replace"))
        if kind != expected:
            raise MuxError(f"unexpected reply 0x{kind:08x} from the ssh master")
        return reply

    def master_pid(self) -> int:
        """The master's pid: SIGWINCH is relayed to it, as ssh's own client does."""
        self._send(u32(MUX_C_ALIVE_CHECK) + u32(self.request_id))
        return self._reply(MUX_S_ALIVE).u32()

    def open_remote_forward(self, listen: str, connect: tuple[str, int]) -> None:
        """Have the server listen on unix socket ``listen``; each connection goes to ``connect``.

        The forward belongs to the master, not to this client: it stays until
        ``close_remote_forward`` (or the master's end), so callers record it.
        """
        self._send(forward_request(MUX_C_OPEN_FWD, self.request_id, listen, connect))
        self._reply(MUX_S_OK)

    def close_remote_forward(self, listen: str, connect: tuple[str, int]) -> None:
        self._send(forward_request(MUX_C_CLOSE_FWD, self.request_id, listen, connect))
    def forward(self, listen: tuple[str, int], connect: tuple[str, int], close: bool = False) -> None:
        """Add (or with ``close``, cancel) ``-L listen:connect`` on the master, as
        ``ssh -O forward``/``-O cancel`` would; MuxError says why it failed.

        The master keeps the forward after this client goes; adding one it
        already has is answered OK.  A cancel must name exactly what was added.
        """
        kind = MUX_C_CLOSE_FWD if close else MUX_C_OPEN_FWD
        self._send(u32(kind) + u32(self.request_id) + u32(MUX_FWD_LOCAL)
                   + string(listen[0].encode()) + u32(listen[1])
                   + string(connect[0].encode()) + u32(connect[1]))
        self._reply(MUX_S_OK)

    def open_session(self, command: str, fds: tuple[int, int, int], tty: bool = False,
                     term: str = "") -> int:
        """Start ``command`` with the given stdin/stdout/stderr; returns the session id."""
        self._send(session_request(self.request_id, command, tty, term))
        for fd in fds:
            self.sock.sendmsg([b"\0"], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS,
                                         fd.to_bytes(4, sys.byteorder))])
        return self._reply(MUX_S_SESSION_OPENED).u32()

    def wait_exit(self, session_id: int, on_tty_fail=None) -> int | None:
        """Wait for the session's end; its exit value, or None if the master vanished.

        Reads until the master closes the socket even after the exit message:
        closing early would make the master drop output still in flight.
        """
        status = None
        while True:
            try:
                packet = self._recv_packet()
            except (MuxError, OSError):
                return status
            reader = Reader(packet)
            kind = reader.u32()
            if kind == MUX_S_EXIT_MESSAGE and reader.u32() == session_id:
                status = reader.u32()
            elif kind == MUX_S_TTY_ALLOC_FAIL and on_tty_fail is not None:
                on_tty_fail()
