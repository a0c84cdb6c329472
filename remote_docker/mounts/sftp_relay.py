"""The SFTP stream between sshfs and the jailed sftp-server, with SETSTAT done safely here.

Where seccomp user notification works, ``seccomp_guard`` does this job off the
stream and no relay runs; the relay is for the rest, and for a mount with a
write lane (two streams into one sftp-server need merging anyway).

Why a relay at all: Landlock (up to ABI 7) cannot restrict chmod, chown or
utime, and below ABI 3 not truncate either.  ``sftp-server`` performs
SETSTAT by path, so without this a docker-machine could chmod or truncate
any file the workstation user owns, anywhere (``chmod 644 ~/.ssh/id_ed25519``).
The jail starts sftp-server with ``-P setstat,lsetstat`` (it refuses them
itself, as a second wall) and this relay answers those two requests: the
path is resolved with ``openat2(RESOLVE_BENEATH)`` from the served directory,
which refuses ``..`` beyond it and absolute symlinks, and the change is made
on what that resolved to.  Every other request passes through unchanged.

SFTP gives every request exactly one reply, so counting requests sent and
replies seen tells when sftp-server has finished everything sent before a
SETSTAT; the relay waits for that before acting, so the order of effects is
the order sshfs asked for them (a truncate after queued writes stays after).

A mount with the docker-machine's stat cache also has a second lane (a
second session of the connection: one ssh channel carries only its 2 MiB
window per round trip). It carries WRITE requests only, which the cache's
proxy sends there in an order that is safe to merge (see ``stat_cache``);
their replies go back on it, the rest on the first.
"""

from __future__ import annotations

import ctypes
import errno
import os
import threading

FXP_INIT = 1
FXP_WRITE = 6
FXP_SETSTAT = 9
FXP_EXTENDED = 200
FXP_STATUS = 101
LSETSTAT = b"lsetstat@openssh.com"

FX_OK, FX_NO_SUCH_FILE, FX_PERMISSION_DENIED, FX_FAILURE, FX_BAD_MESSAGE = 0, 2, 3, 4, 5
FX_OP_UNSUPPORTED = 8
MESSAGES = {FX_OK: "Success", FX_NO_SUCH_FILE: "No such file", FX_PERMISSION_DENIED:
            "Permission denied", FX_FAILURE: "Failure", FX_BAD_MESSAGE: "Bad message",
            FX_OP_UNSUPPORTED: "Operation unsupported"}

ATTR_SIZE, ATTR_UIDGID, ATTR_PERMISSIONS, ATTR_ACMODTIME = 0x1, 0x2, 0x4, 0x8
ATTR_EXTENDED = 0x80000000

MAX_FRAME = 256 * 1024 + 1024  # sftp-server's own limit (SFTP_MAX_MSG_LENGTH), plus headers
# Room for a pipe's worth (1 MiB, jail.py) and a partial frame left from the last read.
BUFFER = 1024 * 1024 + 2 * MAX_FRAME

SYS_OPENAT2 = 437  # the same on x86_64 and aarch64
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_BENEATH = 0x08


class ProtocolError(Exception):
    """The peer sent something that is not SFTP: the relay stops."""


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def open_beneath(root_fd: int, path: bytes, flags: int) -> int:
    """openat2 with RESOLVE_BENEATH: ``path`` may not leave ``root_fd`` in any way."""
    how = _OpenHow(flags | os.O_CLOEXEC, 0, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)
    fd = _libc.syscall(ctypes.c_long(SYS_OPENAT2), ctypes.c_int(root_fd), ctypes.c_char_p(path),
                       ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return fd


def portable_status(err: int) -> int:
    """errno to SFTP status, as sftp-server maps it; EXDEV is an escape: denied."""
    if err in (errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP):
        return FX_NO_SUCH_FILE
    if err in (errno.EPERM, errno.EACCES, errno.EFAULT, errno.EXDEV):
        return FX_PERMISSION_DENIED
    if err in (errno.ENAMETOOLONG, errno.EINVAL):
        return FX_BAD_MESSAGE
    if err in (errno.ENOSYS, errno.EOPNOTSUPP):
        return FX_OP_UNSUPPORTED
    return FX_FAILURE


class Reader:
    """SFTP wire fields from one frame body."""

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data, self.pos = data, pos

    def u32(self) -> int:
        if self.pos + 4 > len(self.data):
            raise ProtocolError("short SFTP frame")
        self.pos += 4
        return int.from_bytes(self.data[self.pos - 4:self.pos], "big")

    def u64(self) -> int:
        return (self.u32() << 32) | self.u32()

    def string(self) -> bytes:
        size = self.u32()
        if self.pos + size > len(self.data):
            raise ProtocolError("short SFTP string")
        self.pos += size
        return bytes(self.data[self.pos - size:self.pos])


def status_frame(request_id: int, code: int) -> bytes:
    message = MESSAGES.get(code, "Failure").encode()
    body = (bytes([FXP_STATUS]) + request_id.to_bytes(4, "big") + code.to_bytes(4, "big")
            + len(message).to_bytes(4, "big") + message + (0).to_bytes(4, "big"))
    return len(body).to_bytes(4, "big") + body


def relative_to_root(root: bytes, path: bytes) -> bytes | None:
    """The path below the served root that a request names, or None if it names outside.

    sftp-server runs in the root (``-d``), so a relative path is already
    relative to it; an absolute one must start with the root's own spelling.
    """
    if not path.startswith(b"/"):
        return path or b"."
    if path == root:
        return b"."
    if path.startswith(root.rstrip(b"/") + b"/"):
        return path[len(root.rstrip(b"/")) + 1:] or b"."
    return None


def setstat(root_fd: int, root: bytes, path: bytes, attrs: Reader, follow: bool) -> int:
    """Apply SETSTAT's attributes to ``path`` beneath the root; an SFTP status code.

    Like sftp-server: size, then mode, then times, then owner; each failure
    sets the status and the rest are still tried.
    """
    rel = relative_to_root(root, path)
    if rel is None:
        return FX_PERMISSION_DENIED
    flags = attrs.u32()
    size = attrs.u64() if flags & ATTR_SIZE else None
    owner = (attrs.u32(), attrs.u32()) if flags & ATTR_UIDGID else None
    mode = attrs.u32() & 0o7777 if flags & ATTR_PERMISSIONS else None
    times = (attrs.u32(), attrs.u32()) if flags & ATTR_ACMODTIME else None
    try:
        fd = open_beneath(root_fd, rel, os.O_PATH | (0 if follow else os.O_NOFOLLOW))
    except OSError as exc:
        return portable_status(exc.errno or 0)
    status = FX_OK
    handle = f"/proc/self/fd/{fd}"
    try:
        if not follow and os.path.islink(handle) and (mode is not None or size is not None):
            return FX_OP_UNSUPPORTED  # Linux cannot chmod or truncate a symlink itself
        steps = [(size is not None, lambda: _truncate(handle, size)),
                 (mode is not None, lambda: os.chmod(handle, mode)),
                 (times is not None, lambda: os.utime(handle, times, follow_symlinks=follow)),
                 (owner is not None, lambda: os.chown(handle, *owner, follow_symlinks=follow))]
        for wanted, step in steps:
            if wanted:
                try:
                    step()
                except OSError as exc:
                    status = portable_status(exc.errno or 0)
    finally:
        os.close(fd)
    return status


def _truncate(handle: str, size: int | None) -> None:
    fd = os.open(handle, os.O_WRONLY | os.O_CLOEXEC)  # reopens the resolved inode itself
    try:
        os.ftruncate(fd, size or 0)
    finally:
        os.close(fd)


def split_frames(buf: bytearray) -> tuple[int, int]:
    """(bytes, frames): how much at the front of ``buf`` is whole frames, checking each size."""
    pos = count = 0
    while len(buf) - pos >= 4:
        size = int.from_bytes(buf[pos:pos + 4], "big")
        if size == 0 or size > MAX_FRAME:
            raise ProtocolError(f"SFTP frame of {size} bytes")
        if len(buf) - pos - 4 < size:
            break
        pos += 4 + size
        count += 1
    return pos, count


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class Frames:
    """One direction's byte stream, read into a buffer allocated once.

    Why not ``os.read``: it allocates a new object per call, and at 1 MiB
    that is an mmap, page faults and an munmap every time, plus a copy into
    the pending buffer; ``readv`` into the free end of one buffer costs none
    of that (the relay sits on every byte a mount reads or writes).
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = bytearray(BUFFER)
        self.view = memoryview(self.buf)
        self.filled = 0

    def fill(self) -> tuple[int, int]:
        """Read what is there; (bytes, frames) of whole frames at the front, (-1, 0) at EOF."""
        got = os.readv(self.fd, [self.view[self.filled:]])
        if not got:
            return -1, 0
        self.filled += got
        return split_frames(self.view[:self.filled])

    def consume(self, end: int) -> None:
        """Drop the first ``end`` bytes (sent on); the partial frame left moves to the front."""
        rest = self.filled - end
        if rest:
            self.buf[:rest] = bytes(self.view[end:self.filled])
        self.filled = rest


class Relay:
    """Client stream (sshfs) <-> sftp-server, answering SETSTAT and lsetstat itself."""

    def __init__(self, root: bytes, readonly: bool, client_in: int, client_out: int,
                 server_in: int, server_out: int, lane: int = -1) -> None:
        self.root, self.readonly = root, readonly
        self.root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self.client_in, self.client_out = client_in, client_out
        self.server_in, self.server_out = server_in, server_out
        self.lane = lane  # both directions of the write lane, or -1
        self.lane_ids: set[int] = set()  # lane requests not yet answered
        self.lane_lock = threading.Lock()  # lane_ids
        self.in_lock = threading.Lock()  # whole frames into sftp-server, from either lane
        self.out_lock = threading.Lock()
        self.settled = threading.Condition()
        self.sent = self.answered = 0
        self.error: str | None = None

    def intercepted(self, frame: bytes) -> tuple[int, Reader, bool] | None:
        """(request id, reader at the path, follow symlinks) for a request we answer."""
        reader = Reader(frame, 1)
        if frame[0] == FXP_SETSTAT:
            return reader.u32(), reader, True
        if frame[0] == FXP_EXTENDED:
            request_id = reader.u32()
            if reader.string() == LSETSTAT:
                return request_id, reader, False
        return None

    def answer(self, request_id: int, reader: Reader, follow: bool) -> None:
        with self.settled:  # sftp-server must have done everything asked before this
            self.settled.wait_for(lambda: self.answered >= self.sent or self.error is not None)
        if self.readonly:
            code = FX_PERMISSION_DENIED
        else:
            path = reader.string()
            code = setstat(self.root_fd, self.root, path, reader, follow)
        with self.out_lock:
            write_all(self.client_out, status_frame(request_id, code))

    def forward_requests(self) -> None:
        """Client -> server, taking out the requests this relay answers itself."""
        stream = Frames(self.client_in)
        try:
            while True:
                end, _ = stream.fill()
                if end < 0:
                    return
                view, pos, start, frames = stream.view, 0, 0, 0
                while pos < end:
                    size = int.from_bytes(view[pos:pos + 4], "big")
                    mine = None
                    if view[pos + 4] in (FXP_SETSTAT, FXP_EXTENDED):
                        mine = self.intercepted(bytes(view[pos + 4:pos + 4 + size]))
                    if mine is not None:
                        self._pass_to_server(view, start, pos, frames)
                        self.answer(*mine)
                        start, frames = pos + 4 + size, -1
                    pos += 4 + size
                    frames += 1
                self._pass_to_server(view, start, end, frames)
                stream.consume(end)
        except (OSError, ProtocolError) as exc:
            self._fail(f"client stream: {exc}")
        finally:
            os.close(self.server_in)  # sftp-server sees EOF and exits

    def _pass_to_server(self, view: memoryview, start: int, end: int, frames: int) -> None:
        if start == end:
            return
        with self.settled:
            self.sent += frames
        with self.in_lock:
            write_all(self.server_in, view[start:end])

    def forward_lane(self) -> None:
        """Lane -> server: WRITE requests only, their ids noted so replies go back there.
        Anything else on it ends the relay (the proxy never sends it: a peer that does is
        not to be trusted with the order of anything)."""
        stream = Frames(self.lane)
        try:
            while True:
                end, frames = stream.fill()
                if end < 0:
                    return
                view, pos, ids = stream.view, 0, []
                while pos < end:
                    if view[pos + 4] != FXP_WRITE:
                        raise ProtocolError("the write lane carried something else")
                    ids.append(int.from_bytes(view[pos + 5:pos + 9], "big"))
                    pos += 4 + int.from_bytes(view[pos:pos + 4], "big")
                with self.lane_lock:
                    self.lane_ids.update(ids)
                self._pass_to_server(view, 0, end, frames)
                stream.consume(end)
        except (OSError, ProtocolError) as exc:
            self._fail(f"write lane: {exc}")
            self._hang_up()

    def _hang_up(self) -> None:
        """End the relay from the lane's thread: sshfs's stream is shut, so the request
        thread sees its end and sftp-server its EOF; the mount then ends (ENOTCONN)."""
        import socket

        for fd in (self.client_in, self.lane):
            try:
                socket.socket(fileno=os.dup(fd)).shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # not a socket (tests): its writer's end ends it instead

    def _route(self, view: memoryview, end: int) -> None:
        """Replies while lane requests are in flight: each to the lane its request came on,
        consecutive ones to the same lane in one write."""
        pos = start = 0
        to_lane = False
        while pos < end:
            request_id = int.from_bytes(view[pos + 5:pos + 9], "big")
            with self.lane_lock:
                mine = request_id in self.lane_ids
                self.lane_ids.discard(request_id)
            if mine != to_lane and pos > start:
                self._deliver(view[start:pos], to_lane)
                start = pos
            to_lane = mine
            pos += 4 + int.from_bytes(view[pos:pos + 4], "big")
        if start < end:
            self._deliver(view[start:end], to_lane)

    def _deliver(self, data: memoryview, to_lane: bool) -> None:
        if to_lane:
            write_all(self.lane, data)
        else:
            with self.out_lock:
                write_all(self.client_out, data)

    def forward_replies(self) -> None:
        """Server -> client, whole frames only, so replies of our own never split one."""
        stream = Frames(self.server_out)
        try:
            while True:
                end, frames = stream.fill()
                if end < 0:
                    return
                if not end:
                    continue
                if self.lane_ids:  # set before the request went in: never missed here
                    self._route(stream.view, end)
                else:
                    with self.out_lock:
                        write_all(self.client_out, stream.view[:end])
                stream.consume(end)
                with self.settled:
                    self.answered += frames
                    self.settled.notify_all()
        except (OSError, ProtocolError) as exc:
            self._fail(f"server stream: {exc}")
        finally:
            with self.settled:
                self.error = self.error or "sftp-server ended"
                self.settled.notify_all()

    def _fail(self, message: str) -> None:
        with self.settled:
            self.error = self.error or message
            self.settled.notify_all()

    def run(self) -> None:
        """Relay until either side ends; the caller then waits for sftp-server."""
        requests = threading.Thread(target=self.forward_requests, daemon=True)
        requests.start()
        if self.lane >= 0:
            threading.Thread(target=self.forward_lane, daemon=True).start()
        self.forward_replies()
        os.close(self.client_out)
