"""On the docker-machine, between sshfs and the connection: answers lstat from what a
directory listing just said, for under a second, when round trips are long.

Why: a stat walk (``git status``, ``find``, make) lists a directory and then
lstats every entry. sshfs keeps the listing's attributes only until the end
of the wall-clock second (``dcache_timeout=0``, the lowest it has, and what
keeps a workstation change visible within a second). When a second ends in
the middle of a directory, every entry left costs a round trip of its own:
at +20 ms a 5,000-file walk took 10.6 s, three times plain sshfs with its
20-second cache. Here the clock is ``time.monotonic`` and the limit ``TTL``
(0.8 s) from when the answer arrived, so an entry is answered at most that
stale, with no cliff at a second's end; sshfs runs with its own cache off
(``dir_cache=no``), so nothing stacks on top.

Never wrong because of the docker-machine's own changes: any request that
may change the tree (write, setstat, rename, remove, open for writing,
anything unknown) empties the cache before it is sent, and an answer to a
request sent before such a change is not kept (a generation count, as
sshfs's own cache does with its write counter).

A second lane for writes: one ssh channel carries at most its window (2 MiB
in OpenSSH, fixed) per round trip, so at +20 ms sequential writes stopped at
~80 MB/s, the same as plain ``cat`` over the connection. With ``--lane PATH``
the proxy listens there for a second session of the same connection (its
stdin and stdout handed over with SCM_RIGHTS by ``LANE_SOURCE``) and sends
the writes that fall in odd MiB stripes of their file over it; the
workstation's relay feeds both lanes into the one sftp-server. Order is kept
where it matters: writes to the same stripe always take the same lane (in
order there), a write that crosses a stripe's end and every other request
waits until the lane has nothing in flight, and a lane write waits until no
such request is in flight on the first lane.

Standalone (stdlib only, Python >= 3.7): it is sent as source to the
docker-machine's python3 and runs there as ``python3 -c SOURCE TTL [--lane
PATH] -- sshfs ARGS``, sshfs its child speaking SFTP on two pipes. When
python3 is missing the mount runs plain sshfs with its own cache instead.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import threading
import time

TTL = 0.8
STRIPE = 1 << 20  # writes in odd MiBs of a file take the second lane
LANE_WAIT = 30.0  # seconds the lane listener waits for its session

FXP_OPEN, FXP_CLOSE, FXP_READ, FXP_WRITE, FXP_LSTAT, FXP_FSTAT = 3, 4, 5, 6, 7, 8
FXP_OPENDIR, FXP_READDIR, FXP_REALPATH, FXP_STAT, FXP_READLINK = 11, 12, 16, 17, 19
FXP_EXTENDED = 200
FXP_STATUS, FXP_HANDLE, FXP_DATA, FXP_NAME, FXP_ATTRS = 101, 102, 103, 104, 105
FXF_READ = 0x01
ATTR_SIZE, ATTR_UIDGID, ATTR_PERMISSIONS, ATTR_ACMODTIME = 0x1, 0x2, 0x4, 0x8
ATTR_EXTENDED = 0x80000000
S_IFMT, S_IFLNK = 0o170000, 0o120000
# Requests that change nothing (OPEN only when it opens for reading alone).
READ_ONLY = {FXP_CLOSE, FXP_READ, FXP_LSTAT, FXP_FSTAT, FXP_OPENDIR, FXP_READDIR,
             FXP_REALPATH, FXP_STAT, FXP_READLINK}
READ_ONLY_EXTENDED = {b"statvfs@openssh.com", b"fstatvfs@openssh.com", b"limits@openssh.com"}

_U32 = struct.Struct(">I")


def _string(data: bytes, pos: int) -> tuple[bytes, int]:
    (size,) = _U32.unpack_from(data, pos)
    return bytes(data[pos + 4:pos + 4 + size]), pos + 4 + size


def attrs_end(data: bytes, pos: int) -> int:
    """Where the ATTRS starting at ``pos`` end (they are kept as their bytes)."""
    (flags,) = _U32.unpack_from(data, pos)
    pos += 4
    pos += 8 if flags & ATTR_SIZE else 0
    pos += 8 if flags & ATTR_UIDGID else 0
    pos += 4 if flags & ATTR_PERMISSIONS else 0
    pos += 8 if flags & ATTR_ACMODTIME else 0
    if flags & ATTR_EXTENDED:
        (count,) = _U32.unpack_from(data, pos)
        pos += 4
        for _ in range(2 * count):
            _, pos = _string(data, pos)
    return pos


def normal(path: bytes) -> bytes:
    """One spelling per path: no doubled, trailing or ``/.`` slashes (``..`` is kept)."""
    parts = [p for p in path.split(b"/") if p not in (b"", b".")]
    return (b"/" if path.startswith(b"/") else b"") + b"/".join(parts) or b"."


def frame_of(kind: int, request_id: int, payload: bytes) -> bytes:
    """One whole SFTP frame: length, type, id, then ``payload`` as it is."""
    return _U32.pack(5 + len(payload)) + bytes([kind]) + _U32.pack(request_id) + payload


def _text(data: bytes) -> bytes:
    return _U32.pack(len(data)) + data


def attrs_reply(request_id: int, attrs: bytes) -> bytes:
    return frame_of(FXP_ATTRS, request_id, attrs)


FX_OK, FX_EOF = 0, 1
S_IFDIR = 0o040000
# Our own requests (prefetches) take ids half the id space away from sshfs's last one:
# sshfs counts up by one, so its ids in flight never come near ours, even after it wraps.
OWN_DISTANCE = 0x80000000
PREFETCH_PARALLEL = 8  # directory listings fetched at once
PREFETCH_PER_LISTING = 128  # subdirectories of one listing fetched ahead, at most
CHUNK = 100  # entries per NAME reply, as sftp-server sends them
PRUNE_AT = 50_000  # entries (and listed names) kept before the expired ones are dropped
SYNTHETIC = b"\xffrd-"  # handles of listings answered here; the server's are 4 bytes


def _mode(attrs: bytes) -> int | None:
    (flags,) = _U32.unpack_from(attrs, 0)
    if not flags & ATTR_PERMISSIONS:
        return None
    pos = 4 + (8 if flags & ATTR_SIZE else 0) + (8 if flags & ATTR_UIDGID else 0)
    return _U32.unpack_from(attrs, pos)[0]


def is_link(attrs: bytes) -> bool:
    """The ATTRS say symlink (or do not say: then assume it might be one)."""
    mode = _mode(attrs)
    return mode is None or mode & S_IFMT == S_IFLNK


def status_reply(request_id: int, code: int, message: bytes) -> bytes:
    return frame_of(FXP_STATUS, request_id, _U32.pack(code) + _text(message) + _text(b""))


class Listing:
    """A directory's entries (raw: name, long name, ATTRS) as they arrive."""

    def __init__(self, path: bytes, generation: int, own: bool) -> None:
        self.path, self.generation, self.own = path, generation, own
        self.entries: list[tuple[bytes, bytes]] = []  # (name, raw entry)
        self.started: float | None = None
        self.handle = b""
        self.closing = False


class StatCache:
    """The SFTP bookkeeping, no I/O: what to answer here, what to remember, and
    which requests of its own to send (``to_link``, drained by the caller).

    Besides attributes it keeps whole directory listings for the same TTL: the
    ones sshfs asked for, and those of their subdirectories, fetched ahead
    (``PREFETCH_PARALLEL`` at a time) as soon as a listing is handed to sshfs, so
    a walk finds the next directory already here instead of paying its round
    trips. Only one level ahead of what sshfs really lists, so listing a big
    tree's root does not fetch the whole tree.
    """

    def __init__(self, ttl: float = TTL, clock=time.monotonic) -> None:
        self.ttl, self.clock = ttl, clock
        self.entries: dict[bytes, tuple[float, bytes]] = {}
        self.listings: dict[bytes, tuple[float, list[tuple[bytes, bytes]]]] = {}
        self.listed_names = 0  # entries held in self.listings
        self.handles: dict[bytes, bytes] = {}  # directory or file handle -> its path
        self.opened: set[bytes] = set()  # file handles not yet fstat'ed
        self.reading: dict[bytes, Listing] = {}  # server handle -> listing in progress
        self.synthetic: dict[bytes, list[bytes]] = {}  # our handle -> entries left to give
        self.pending: dict[int, tuple[int, bytes, int]] = {}  # id -> (type, path, generation)
        self.own: dict[int, Listing] = {}  # our request id -> the prefetch it belongs to
        self.queue: list[bytes] = []
        self.in_flight: set[bytes] = set()
        self.fetching = 0
        self.last_id = 0  # sshfs's latest request id
        self.own_count = 0
        self.next_handle = 0
        self.to_link: list[bytes] = []
        self.generation = 0
        self.answered = 0  # requests answered here (for tests and curiosity)

    def _fresh(self, found) -> bool:
        return found is not None and self.clock() - found[0] < self.ttl

    def _prune(self) -> None:
        """Nothing is kept past its TTL anyway: drop what expired once there is a lot of
        it, so a long read-only session over a big tree does not grow without end."""
        if len(self.entries) < PRUNE_AT and self.listed_names < PRUNE_AT:
            return
        now = self.clock()
        self.entries = {k: v for k, v in self.entries.items() if now - v[0] < self.ttl}
        self.listings = {k: v for k, v in self.listings.items() if now - v[0] < self.ttl}
        self.listed_names = sum(len(v[1]) for v in self.listings.values())
        if len(self.entries) >= PRUNE_AT or self.listed_names >= PRUNE_AT:
            self._change()  # all of it fresh: start again rather than grow

    def _change(self) -> None:
        self.generation += 1
        self.entries.clear()
        self.listings.clear()
        self.listed_names = 0
        self.queue.clear()

    def request(self, frame: bytes) -> bytes | None:
        """A whole request frame from sshfs: the reply to give it at once, or None to send it on."""
        kind = frame[4]
        if kind == 1 or len(frame) < 9:  # INIT has no id
            return None
        (request_id,) = _U32.unpack_from(frame, 5)
        self.last_id = request_id
        if kind in (FXP_LSTAT, FXP_STAT):
            path = normal(_string(frame, 9)[0])
            found = self.entries.get(path)
            if self._fresh(found) and (kind == FXP_LSTAT or not is_link(found[1])):
                self.answered += 1
                return attrs_reply(request_id, found[1])
            if kind == FXP_LSTAT:
                self.pending[request_id] = (kind, path, self.generation)
            return None
        if kind == FXP_FSTAT:  # what the kernel asks while a file is read: by its handle
            handle = _string(frame, 9)[0]
            path = self.handles.get(handle)
            if path is None:
                return None
            found = self.entries.get(path)
            if handle in self.opened:  # sshfs's own, right after OPEN: always the server's,
                self.opened.discard(handle)  # so what an open reads is never older
            elif self._fresh(found) and not is_link(found[1]):
                self.answered += 1
                return attrs_reply(request_id, found[1])
            self.pending[request_id] = (FXP_LSTAT, path, self.generation)
            return None
        if kind == FXP_OPENDIR:
            path = normal(_string(frame, 9)[0])
            listing = self.listings.get(path)
            if self._fresh(listing):
                self.answered += 1
                handle = SYNTHETIC + str(self.next_handle).encode()
                self.next_handle += 1
                self.synthetic[handle] = [raw for _, raw in listing[1]]
                self._ahead(path, listing[1])
                return frame_of(FXP_HANDLE, request_id, _text(handle))
            self.pending[request_id] = (FXP_OPENDIR, path, self.generation)
            return None
        if kind == FXP_OPEN:
            self.pending[request_id] = (FXP_OPEN, normal(_string(frame, 9)[0]),
                                        self.generation)
            if self._changes(kind, frame):
                self._change()
            return None
        if kind == FXP_READDIR:
            handle = _string(frame, 9)[0]
            left = self.synthetic.get(handle)
            if left is not None:
                self.answered += 1
                if not left:
                    return status_reply(request_id, FX_EOF, b"End of file")
                chunk, self.synthetic[handle] = left[:CHUNK], left[CHUNK:]
                return frame_of(FXP_NAME, request_id, _U32.pack(len(chunk)) + b"".join(chunk))
            listing = self.reading.get(handle)
            if listing is not None:
                self.pending[request_id] = (FXP_READDIR, handle, self.generation)
            return None
        if kind == FXP_CLOSE:
            handle = _string(frame, 9)[0]
            if self.synthetic.pop(handle, None) is not None:
                self.answered += 1
                return status_reply(request_id, FX_OK, b"")
            self.handles.pop(handle, None)
            self.reading.pop(handle, None)
            self.opened.discard(handle)
            return None
        if self._changes(kind, frame):
            self._change()
        return None

    @staticmethod
    def _changes(kind: int, frame: bytes) -> bool:
        if kind in READ_ONLY:
            return False
        if kind == FXP_OPEN:
            _, pos = _string(frame, 9)
            (pflags,) = _U32.unpack_from(frame, pos)
            return pflags != FXF_READ
        if kind == FXP_EXTENDED:
            return _string(frame, 9)[0] not in READ_ONLY_EXTENDED
        return True

    def reply(self, frame: bytes) -> bool:
        """A whole reply frame from the server: learn from it; False when it answers a
        request of ours (a prefetch), which sshfs must not see."""
        kind = frame[4]
        if len(frame) < 9:
            return True
        (request_id,) = _U32.unpack_from(frame, 5)
        listing = self.own.pop(request_id, None)
        if listing is not None:
            self._prefetched(listing, kind, frame)
            return False
        asked = self.pending.pop(request_id, None)
        if asked is None:
            return True
        what, key, generation = asked
        if what in (FXP_OPEN, FXP_OPENDIR):
            if kind == FXP_HANDLE:
                handle = _string(frame, 9)[0]
                self.handles[handle] = key
                if what == FXP_OPENDIR:
                    self.reading[handle] = Listing(key, generation, own=False)
                else:
                    self.opened.add(handle)
            return True
        if what == FXP_READDIR:
            listing = self.reading.get(key)
            if listing is not None:
                self._listed(listing, kind, frame)
            return True
        if generation == self.generation and kind == FXP_ATTRS:  # else: may predate a change
            self.entries[key] = (self.clock(), bytes(frame[9:]))
            self._prune()
        return True

    def _listed(self, listing: Listing, kind: int, frame: bytes) -> bool:
        """A READDIR's answer for ``listing``; True when the listing is complete."""
        if kind == FXP_NAME:
            now = self.clock()
            listing.started = listing.started or now
            (count,) = _U32.unpack_from(frame, 9)
            pos = 13
            prefix = listing.path.rstrip(b"/") + b"/"
            for _ in range(count):
                start = pos
                name, pos = _string(frame, pos)
                _, pos = _string(frame, pos)  # longname
                end = attrs_end(frame, pos)
                listing.entries.append((name, bytes(frame[start:end])))
                if name not in (b".", b"..") and listing.generation == self.generation:
                    self.entries[prefix + name] = (now, bytes(frame[pos:end]))
                pos = end
            self._prune()
            return False
        complete = kind == FXP_STATUS and _U32.unpack_from(frame, 9)[0] == FX_EOF
        if complete and listing.generation == self.generation and listing.started:
            self.listings[listing.path] = (listing.started, listing.entries)
            self.listed_names += len(listing.entries)
            self._prune()
            if not listing.own:
                self._ahead(listing.path, listing.entries)
        return True

    def _ahead(self, path: bytes, entries: list[tuple[bytes, bytes]]) -> None:
        """Queue the subdirectories of a listing sshfs is given, and start fetching."""
        prefix = path.rstrip(b"/") + b"/"
        wanted = []
        for name, raw in entries:
            if name in (b".", b".."):
                continue
            attrs_at = _string(raw, _string(raw, 0)[1])[1]
            mode = _mode(raw[attrs_at:])
            child = prefix + name
            if mode is not None and mode & S_IFMT == S_IFDIR and \
                    not self._fresh(self.listings.get(child)) and child not in self.queue \
                    and child not in self.in_flight:
                wanted.append(child)
            if len(wanted) >= PREFETCH_PER_LISTING:
                break
        self.queue.extend(wanted)
        self._start()

    def _start(self) -> None:
        while self.queue and self.fetching < PREFETCH_PARALLEL:
            path = self.queue.pop(0)
            listing = Listing(path, self.generation, own=True)
            self.fetching += 1
            self.in_flight.add(path)
            self._send(FXP_OPENDIR, path, listing)

    def _send(self, kind: int, text: bytes, listing: Listing) -> None:
        self.own_count = (self.own_count + 1) % 0x100000
        request_id = (self.last_id + OWN_DISTANCE + self.own_count) & 0xFFFFFFFF
        self.own[request_id] = listing
        self.to_link.append(frame_of(kind, request_id, _text(text)))

    def _prefetched(self, listing: Listing, kind: int, frame: bytes) -> None:
        """One step of a prefetch: OPENDIR -> READDIR ... -> CLOSE."""
        if kind == FXP_HANDLE and not listing.handle:
            listing.handle = _string(frame, 9)[0]
            self._send(FXP_READDIR, listing.handle, listing)
            return
        if listing.handle and kind in (FXP_NAME, FXP_STATUS) and not listing.closing:
            if not self._listed(listing, kind, frame):
                self._send(FXP_READDIR, listing.handle, listing)
                return
            listing.closing = True
            self._send(FXP_CLOSE, listing.handle, listing)
            return
        self.fetching -= 1  # done: the CLOSE answered, or an error before a handle
        self.in_flight.discard(listing.path)
        self._start()


def read_exact(fd: int, size: int) -> bytes:
    """Exactly ``size`` bytes; EOFError at the end of the stream."""
    data = os.read(fd, size)
    while len(data) < size:
        more = os.read(fd, size - len(data))
        if not more:
            raise EOFError
        data += more
    if not data and size:
        raise EOFError
    return data


def _write_all(fd: int, data) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def move(src: int, dst: int, size: int) -> None:
    """Pass ``size`` bytes on: ``splice`` (no copy through Python: a mount's reads and
    writes are most of what crosses here), or read and write where it cannot."""
    while size:
        try:
            done = os.splice(src, dst, min(size, 1 << 20))
        except (AttributeError, OSError):  # no splice, or neither end a pipe
            chunk = read_exact(src, min(size, 1 << 16))
            _write_all(dst, chunk)
            done = len(chunk)
        if not done:
            raise EOFError
        size -= done


def widen(fd: int) -> None:
    """Pipes of 1 MiB, not 64 KiB: fewer wake-ups per MiB for sshfs and for us."""
    import fcntl

    try:
        fcntl.fcntl(fd, 1031, 1 << 20)  # F_SETPIPE_SZ
    except OSError:
        pass


class Proxy:
    """sshfs's pipes <-> this process's stdin/stdout (the connection to the workstation).

    Frame by frame: the 9 bytes of length, type and id are read; a WRITE's or a
    DATA's payload is then spliced on, anything else read whole and shown to the
    cache. Replies and the cache's own answers both go to sshfs, whole frames
    under one lock.
    """

    def __init__(self, cache: StatCache, sshfs_in: int, sshfs_out: int,
                 link_in: int = 0, link_out: int = 1) -> None:
        self.cache = cache
        self.sshfs_in, self.sshfs_out, self.link_in, self.link_out = \
            sshfs_in, sshfs_out, link_in, link_out
        self.to_sshfs = threading.Lock()
        self.to_link = threading.Lock()
        self.lock = threading.Lock()  # the cache, shared by both threads
        self.lane_in = self.lane_out = -1  # the second lane, once its session is here
        self.order = threading.Condition()  # guards the two below
        self.lane_busy = 0  # requests sent on the lane and not yet answered
        self.ordered: set[int] = set()  # ids in flight on the link that a lane write waits for
        self.lane_conn = None  # the lane session's socket, held open while we run

    def _send_own(self, frames: list[bytes]) -> None:
        """The cache's own requests (prefetches), whole frames between sshfs's."""
        if frames:
            with self.to_link:
                _write_all(self.link_out, b"".join(frames))

    def requests(self) -> None:
        """sshfs -> workstation, answering what the cache can."""
        while True:
            head = read_exact(self.sshfs_out, 9)  # every request has 9 (INIT: exactly)
            (size,) = _U32.unpack_from(head, 0)
            if head[4] == FXP_WRITE:  # its data is spliced on, never looked at
                with self.lock:
                    self.cache.request(head)  # a write: forget everything
                if self.lane_out >= 0:
                    self._write(head, size)
                    continue
                with self.to_link:
                    _write_all(self.link_out, head)
                    move(self.sshfs_out, self.link_out, size - 5)
                continue
            frame = head + read_exact(self.sshfs_out, size - 5)
            laned = self.lane_out >= 0
            if laned:  # the lane's writes are done before this is looked at or sent
                with self.order:
                    self.order.wait_for(lambda: self.lane_busy == 0)
            with self.lock:
                local = self.cache.request(frame)
                own, self.cache.to_link = self.cache.to_link, []
            if local is None:
                if laned and len(frame) >= 9:
                    with self.order:
                        self.ordered.add(_U32.unpack_from(frame, 5)[0])
                with self.to_link:
                    _write_all(self.link_out, frame)
            else:
                with self.to_sshfs:
                    _write_all(self.sshfs_in, local)
            self._send_own(own)

    def _write(self, head: bytes, size: int) -> None:
        """A WRITE once the lane is up: by the stripe its bytes fall in (see the module)."""
        more = read_exact(self.sshfs_out, 4)
        (handle_size,) = _U32.unpack_from(more, 0)
        more += read_exact(self.sshfs_out, handle_size + 12)
        offset = struct.unpack_from(">Q", more, 4 + handle_size)[0]
        (length,) = _U32.unpack_from(more, 12 + handle_size)
        rest = size - 5 - len(more)
        stripe = offset // STRIPE
        if stripe != (offset + max(length, 1) - 1) // STRIPE:  # crosses: ordered
            with self.order:
                self.order.wait_for(lambda: self.lane_busy == 0)
                self.ordered.add(_U32.unpack_from(head, 5)[0])
        elif stripe % 2:
            with self.order:
                self.order.wait_for(lambda: not self.ordered)
                self.lane_busy += 1
            _write_all(self.lane_out, head + more)
            move(self.sshfs_out, self.lane_out, rest)
            return
        with self.to_link:
            _write_all(self.link_out, head + more)
            move(self.sshfs_out, self.link_out, rest)

    def _answered(self, request_id: int) -> None:
        if request_id in self.ordered:
            with self.order:
                self.ordered.discard(request_id)
                self.order.notify_all()

    def replies(self) -> None:
        """workstation -> sshfs, learning from listings and lstats."""
        while True:
            head = read_exact(self.link_in, 5)
            (size,) = _U32.unpack_from(head, 0)
            if head[4] == FXP_DATA:
                head += read_exact(self.link_in, 4)
                with self.lock:
                    self.cache.pending.pop(_U32.unpack_from(head, 5)[0], None)
                with self.to_sshfs:
                    _write_all(self.sshfs_in, head)
                    move(self.link_in, self.sshfs_in, size - 5)
                self._answered(_U32.unpack_from(head, 5)[0])
                continue
            frame = head + read_exact(self.link_in, size - 1)
            if len(frame) >= 9:
                self._answered(_U32.unpack_from(frame, 5)[0])
            with self.lock:
                onward = self.cache.reply(frame)
                own, self.cache.to_link = self.cache.to_link, []
            if onward:
                with self.to_sshfs:
                    _write_all(self.sshfs_in, frame)
            self._send_own(own)

    def lane_replies(self) -> None:
        """The lane's replies (WRITE statuses only) -> sshfs. Each one tells that a write
        is done at the workstation: what the cache learnt while it was in flight may be
        older than that write, so it is forgotten."""
        while True:
            head = read_exact(self.lane_in, 5)
            (size,) = _U32.unpack_from(head, 0)
            if head[4] != FXP_STATUS or not 9 <= size + 4 <= 1 << 16:
                raise EOFError  # not a write's reply: the lane is broken, so is the mount
            frame = head + read_exact(self.lane_in, size - 1)
            with self.lock:
                self.cache._change()
            with self.to_sshfs:
                _write_all(self.sshfs_in, frame)
            with self.order:
                self.lane_busy -= 1
                self.order.notify_all()

    def take_lane(self, lane_in: int, lane_out: int, sshfs: subprocess.Popen | None) -> None:
        """Start using the lane: its replies are read first, then writes may take it."""
        self.lane_in = lane_in
        threading.Thread(target=_guarded, args=(self.lane_replies, sshfs), daemon=True).start()
        self.lane_out = lane_out


def listen_for_lane(path: str, proxy: Proxy, sshfs: subprocess.Popen) -> None:
    """Wait (LANE_WAIT at most) for the lane session at ``path``; take its stdin and
    stdout. Its process stays until this one ends (its session must stay open)."""
    import socket

    if not hasattr(socket, "recv_fds"):  # Python < 3.9: one lane, as plain sshfs
        return
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        if os.path.exists(path):
            os.unlink(path)
        listener.bind(path)
        listener.listen(1)
        listener.settimeout(LANE_WAIT)
        conn, _ = listener.accept()
        conn.settimeout(LANE_WAIT)
        _, fds, _, _ = socket.recv_fds(conn, 1, 2)
    except OSError:
        return
    finally:
        os.umask(old)
        listener.close()
        if os.path.exists(path):
            os.unlink(path)
    if len(fds) != 2:
        return
    for fd in fds:
        widen(fd)
    proxy.lane_conn = conn  # kept open: closing it would end the lane's session
    proxy.take_lane(fds[0], fds[1], sshfs)


LANE_SOURCE = """import socket, sys, time
for _ in range(500):
    try:
        s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); break
    except OSError:
        time.sleep(0.02)
else:
    sys.exit(1)
socket.send_fds(s, [b"L"], [0, 1])
s.recv(1)
"""


def main(argv: list[str]) -> int:
    """``TTL [--lane PATH] -- sshfs ARGS…``: run sshfs on pipes and stand between it and
    stdin/stdout (and the lane's session, with ``--lane``)."""
    ttl, rest = float(argv[0]), argv[1:]
    lane = ""
    if rest[:1] == ["--lane"]:
        lane, rest = rest[1], rest[2:]
    command = rest[1:]
    sshfs = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    for fd in (sshfs.stdin.fileno(), sshfs.stdout.fileno(), 0, 1):
        widen(fd)
    proxy = Proxy(StatCache(ttl), sshfs.stdin.fileno(), sshfs.stdout.fileno())
    if lane:
        threading.Thread(target=listen_for_lane, args=(lane, proxy, sshfs), daemon=True).start()
    replies = threading.Thread(target=_guarded, args=(proxy.replies, sshfs), daemon=True)
    replies.start()
    _guarded(proxy.requests, sshfs)
    return sshfs.wait()


def _guarded(direction, sshfs: subprocess.Popen | None) -> None:
    """Either direction ending (EOF, a broken pipe) ends the mount: sshfs is stopped,
    which unmounts (auto_unmount) and gives the container ENOTCONN, never a hang."""
    try:
        direction()
    except (OSError, EOFError):
        pass
    if sshfs is not None and sshfs.poll() is None:
        sshfs.terminate()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
