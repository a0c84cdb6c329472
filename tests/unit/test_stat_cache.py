"""The docker-machine side's stat cache: pure SFTP bookkeeping, with a clock we move."""

from __future__ import annotations

import struct

from remote_docker.mounts import remote, stat_cache as sc

U32 = struct.Struct(">I")


def s(data: bytes) -> bytes:
    return U32.pack(len(data)) + data


def frame(kind: int, request_id: int, body: bytes = b"") -> bytes:
    payload = bytes([kind]) + U32.pack(request_id) + body
    return U32.pack(len(payload)) + payload


def attrs(size: int, mode: int = 0o100644) -> bytes:
    flags = sc.ATTR_SIZE | sc.ATTR_PERMISSIONS
    return U32.pack(flags) + struct.pack(">Q", size) + U32.pack(mode)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def listed(cache: sc.StatCache, directory: bytes, entries: dict[bytes, bytes]) -> None:
    """sshfs lists ``directory``: OPENDIR, its handle, one READDIR and its NAME reply."""
    assert cache.request(frame(sc.FXP_OPENDIR, 1, s(directory))) is None
    cache.reply(frame(sc.FXP_HANDLE, 1, s(b"h1")))
    assert cache.request(frame(sc.FXP_READDIR, 2, s(b"h1"))) is None
    body = U32.pack(len(entries) + 1) + s(b".") + s(b".") + attrs(0, 0o40755)
    for name, attr in entries.items():
        body += s(name) + s(b"-rw-r--r-- long name") + attr
    cache.reply(frame(sc.FXP_NAME, 2, body))


def test_a_listing_answers_the_lstats_that_follow() -> None:
    clock = Clock()
    cache = sc.StatCache(0.8, clock)
    listed(cache, b"/home/ws/w/", {b"a": attrs(3), b"b": attrs(7)})
    assert cache.request(frame(sc.FXP_LSTAT, 9, s(b"/home/ws/w//b"))) == \
        frame(sc.FXP_ATTRS, 9, attrs(7))
    assert cache.request(frame(sc.FXP_LSTAT, 10, s(b"/home/ws/w/."))) is None  # not listed
    clock.now += 0.79
    assert cache.request(frame(sc.FXP_LSTAT, 11, s(b"/home/ws/w/a"))) is not None
    clock.now += 0.02  # older than the TTL: asked again, and the answer kept
    assert cache.request(frame(sc.FXP_LSTAT, 12, s(b"/home/ws/w/a"))) is None
    cache.reply(frame(sc.FXP_ATTRS, 12, attrs(4)))
    assert cache.request(frame(sc.FXP_LSTAT, 13, s(b"/home/ws/w/a"))) == \
        frame(sc.FXP_ATTRS, 13, attrs(4))
    assert cache.answered == 3


def test_any_change_empties_it_and_older_answers_are_not_kept() -> None:
    cache = sc.StatCache(0.8, Clock())
    for change in (frame(6, 20, s(b"fh") + b"\0" * 8 + s(b"data")),  # WRITE
                   frame(9, 20, s(b"/w/a") + attrs(0)),  # SETSTAT
                   frame(sc.FXP_OPEN, 20, s(b"/w/a") + U32.pack(0x1A) + U32.pack(0)),
                   frame(sc.FXP_EXTENDED, 20, s(b"posix-rename@openssh.com") + s(b"/w/a"))):
        listed(cache, b"/w", {b"a": attrs(3)})
        assert cache.request(frame(sc.FXP_LSTAT, 30, s(b"/w/a"))) is not None
        assert cache.request(frame(sc.FXP_LSTAT, 31, s(b"/w/x"))) is None  # asked before
        assert cache.request(change) is None
        cache.reply(frame(sc.FXP_ATTRS, 31, attrs(1)))  # ...so may predate the change
        assert cache.request(frame(sc.FXP_LSTAT, 32, s(b"/w/a"))) is None
        assert cache.request(frame(sc.FXP_LSTAT, 33, s(b"/w/x"))) is None


def test_reading_changes_nothing() -> None:
    cache = sc.StatCache(0.8, Clock())
    listed(cache, b"/w", {b"a": attrs(3)})
    cache.request(frame(sc.FXP_OPEN, 40, s(b"/w/a") + U32.pack(sc.FXF_READ) + U32.pack(0)))
    cache.reply(frame(sc.FXP_HANDLE, 40, s(b"fh")))
    cache.request(frame(sc.FXP_READ, 41, s(b"fh") + b"\0" * 8 + U32.pack(4096)))
    cache.request(frame(sc.FXP_EXTENDED, 42, s(b"statvfs@openssh.com") + s(b"/w")))
    # sshfs's fstat right after the open is the server's (so content read is current)...
    assert cache.request(frame(sc.FXP_FSTAT, 43, s(b"fh"))) is None
    cache.reply(frame(sc.FXP_ATTRS, 43, attrs(5)))
    # ...the kernel's while reading is answered by the file's path
    assert cache.request(frame(sc.FXP_FSTAT, 43, s(b"fh"))) == frame(sc.FXP_ATTRS, 43, attrs(5))
    cache.request(frame(sc.FXP_CLOSE, 44, s(b"fh")))
    assert cache.request(frame(sc.FXP_FSTAT, 45, s(b"fh"))) is None  # closed: unknown


def test_stat_follows_links_so_a_link_is_asked_for() -> None:
    cache = sc.StatCache(0.8, Clock())
    listed(cache, b"/w", {b"l": attrs(4, 0o120777), b"f": attrs(2)})
    assert cache.request(frame(sc.FXP_LSTAT, 50, s(b"/w/l"))) is not None
    assert cache.request(frame(sc.FXP_STAT, 51, s(b"/w/l"))) is None
    assert cache.request(frame(sc.FXP_STAT, 52, s(b"/w/f"))) is not None


def test_attrs_with_every_field_are_skipped_whole() -> None:
    flags = sc.ATTR_SIZE | sc.ATTR_UIDGID | sc.ATTR_PERMISSIONS | sc.ATTR_ACMODTIME | \
        sc.ATTR_EXTENDED
    full = (U32.pack(flags) + struct.pack(">Q", 5) + U32.pack(1) + U32.pack(2)
            + U32.pack(0o100600) + U32.pack(3) + U32.pack(4) + U32.pack(1) + s(b"k") + s(b"v"))
    assert sc.attrs_end(full + b"rest", 0) == len(full)
    assert not sc.is_link(full) and sc.is_link(U32.pack(0))


def test_one_spelling_per_path() -> None:
    assert sc.normal(b"/a//b/./c/") == b"/a/b/c"
    assert sc.normal(b"/") == b"/" and sc.normal(b".") == b"." and sc.normal(b"a/../b") == b"a/../b"


def test_when_the_cache_is_used() -> None:
    assert remote.stat_cache_wanted("on", 0.001) and not remote.stat_cache_wanted("off", 9)
    assert remote.stat_cache_wanted("auto", 0.05) and not remote.stat_cache_wanted("auto", 0.008)


def test_the_mount_script_falls_back_to_plain_sshfs_without_python() -> None:
    script = remote.passive_sshfs("/m/u", "u", "/home/ws/w", False, stat_cache=True)
    cached, plain = script.rsplit("\n", 1)
    assert "\ncommand -v python3 " in cached and "dir_cache=no" in cached
    assert "dcache_timeout=0" in plain and "python3" not in plain
    assert "python3" not in remote.passive_sshfs("/m/u", "u", "/home/ws/w", False)


def name_reply(request_id: int, entries: dict[bytes, bytes]) -> bytes:
    body = U32.pack(len(entries))
    for name, attr in entries.items():
        body += s(name) + s(b"long " + name) + attr
    return frame(sc.FXP_NAME, request_id, body)


def eof(request_id: int) -> bytes:
    return sc.status_reply(request_id, sc.FX_EOF, b"End of file")


def own(cache: sc.StatCache) -> list[tuple[int, int, bytes]]:
    """The cache's own requests since last asked: (type, id, path or handle)."""
    sent, cache.to_link = cache.to_link, []
    return [(f[4], U32.unpack_from(f, 5)[0], sc._string(f, 9)[0]) for f in sent]


def serve(cache: sc.StatCache, request: tuple[int, int, bytes],
          entries: dict[bytes, bytes]) -> None:
    """Play the server for one of the cache's own directory fetches, to the end."""
    kind, request_id, path = request
    assert kind == sc.FXP_OPENDIR
    assert not cache.reply(frame(sc.FXP_HANDLE, request_id, s(b"H" + path)))
    (kind, request_id, handle), = own(cache)
    assert (kind, handle) == (sc.FXP_READDIR, b"H" + path)
    assert not cache.reply(name_reply(request_id, entries))
    (kind, request_id, _), = own(cache)
    assert not cache.reply(eof(request_id))
    (kind, request_id, _), = own(cache)
    assert kind == sc.FXP_CLOSE
    assert not cache.reply(sc.status_reply(request_id, sc.FX_OK, b""))


DIR = attrs(4096, 0o40755)


def sshfs_lists(cache: sc.StatCache, path: bytes, entries: dict[bytes, bytes]) -> None:
    """sshfs lists ``path`` through the server, to EOF."""
    assert cache.request(frame(sc.FXP_OPENDIR, 1, s(path))) is None
    assert cache.reply(frame(sc.FXP_HANDLE, 1, s(b"h")))
    assert cache.request(frame(sc.FXP_READDIR, 2, s(b"h"))) is None
    assert cache.reply(name_reply(2, entries))
    assert cache.request(frame(sc.FXP_READDIR, 3, s(b"h"))) is None
    assert cache.reply(eof(3))
    assert cache.request(frame(sc.FXP_CLOSE, 4, s(b"h"))) is None


def test_subdirectories_are_fetched_ahead_and_then_listed_here() -> None:
    clock = Clock()
    cache = sc.StatCache(0.8, clock)
    sshfs_lists(cache, b"/w", {b".": DIR, b"s": DIR, b"f": attrs(1)})
    (request,) = own(cache)  # only the subdirectory, not the file or "."
    assert request[2] == b"/w/s" and request[1] >= sc.OWN_DISTANCE
    serve(cache, request, {b".": DIR, b"..": DIR, b"g": attrs(2)})
    handle = cache.request(frame(sc.FXP_OPENDIR, 10, s(b"/w/s/")))
    assert handle is not None and handle[4] == sc.FXP_HANDLE
    handle = sc._string(handle, 9)[0]
    listed = cache.request(frame(sc.FXP_READDIR, 11, s(handle)))
    assert listed == name_reply(11, {b".": DIR, b"..": DIR, b"g": attrs(2)})
    assert cache.request(frame(sc.FXP_READDIR, 12, s(handle))) == eof(12)
    assert cache.request(frame(sc.FXP_CLOSE, 13, s(handle)))[4] == sc.FXP_STATUS
    assert cache.request(frame(sc.FXP_LSTAT, 14, s(b"/w/s/g"))) == frame(sc.FXP_ATTRS, 14, attrs(2))
    clock.now += 0.81  # too old now: sshfs's OPENDIR goes to the server
    assert cache.request(frame(sc.FXP_OPENDIR, 15, s(b"/w/s"))) is None


def test_a_change_during_a_fetch_ahead_keeps_nothing_of_it() -> None:
    cache = sc.StatCache(0.8, Clock())
    sshfs_lists(cache, b"/w", {b"s": DIR})
    (request,) = own(cache)
    cache.request(frame(13, 20, s(b"/w/s/old")))  # REMOVE, while the fetch is under way
    serve(cache, request, {b"old": attrs(1)})
    assert cache.request(frame(sc.FXP_OPENDIR, 21, s(b"/w/s"))) is None
    assert cache.request(frame(sc.FXP_LSTAT, 22, s(b"/w/s/old"))) is None


def test_fetches_ahead_are_few_at_a_time_and_failures_free_their_place() -> None:
    cache = sc.StatCache(0.8, Clock())
    sshfs_lists(cache, b"/w", {b"d%d" % i: DIR for i in range(20)})
    started = own(cache)
    assert len(started) == sc.PREFETCH_PARALLEL
    kind, request_id, _ = started[0]
    assert not cache.reply(sc.status_reply(request_id, 3, b"Permission denied"))
    (next_one,) = own(cache)
    assert next_one[2] == b"/w/d%d" % sc.PREFETCH_PARALLEL
    assert cache.request(frame(sc.FXP_OPENDIR, 30, s(b"/w/d0"))) is None  # it failed: asked


def test_a_long_session_does_not_grow_without_end(monkeypatch) -> None:
    monkeypatch.setattr(sc, "PRUNE_AT", 10)
    clock = Clock()
    cache = sc.StatCache(0.8, clock)
    listed(cache, b"/old", {b"f%d" % i: attrs(i) for i in range(8)})
    clock.now += 1
    listed(cache, b"/new", {b"f%d" % i: attrs(i) for i in range(4)})  # 12 > 10: expired go
    assert sorted(cache.entries) == [b"/new/f%d" % i for i in range(4)]
    listed(cache, b"/big", {b"f%d" % i: attrs(i) for i in range(12)})  # all fresh: start again
    assert len(cache.entries) < 10
    assert cache.request(frame(sc.FXP_LSTAT, 60, s(b"/new/f1"))) is None


def test_own_ids_stay_away_from_sshfs_ones_even_when_they_wrap() -> None:
    cache = sc.StatCache(0.8, Clock())
    cache.request(frame(sc.FXP_LSTAT, 0xFFFFFFF0, s(b"/x")))  # sshfs near the top
    sshfs_lists(cache, b"/w", {b"s": DIR})  # ids 1..4: sshfs wrapped
    ((_, request_id, _),) = own(cache)
    assert 0x80000000 <= request_id < 0x80100000
    assert cache.reply(sc.status_reply(0xFFFFFFF0, 2, b"No such file"))  # sshfs's: passed on
