"""The sftp jail's pure parts: ldd parsing, argv, path confinement, SFTP framing."""

import errno
import os

import pytest

from remote_docker.mounts import jail, landlock, sftp_relay

LDD = """\tlinux-vdso.so.1 (0x00007ffd)
\t/usr/lib/x86_64-linux-gnu/libnss_wrapper.so (0x00007f01)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f02)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f03)
"""


def test_ldd_paths_are_real_paths_and_the_vdso_is_skipped() -> None:
    paths = jail.parse_ldd(LDD)
    assert paths == [os.path.realpath(p) for p in (
        "/usr/lib/x86_64-linux-gnu/libnss_wrapper.so", "/lib/x86_64-linux-gnu/libc.so.6",
        "/lib64/ld-linux-x86-64.so.2")]


def test_a_library_ldd_cannot_find_is_an_error() -> None:
    with pytest.raises(jail.JailError, match="libfoo.so.1 => not found"):
        jail.parse_ldd("\tlibfoo.so.1 => not found\n")


def test_sftp_server_starts_in_the_root_and_refuses_setstat_itself_when_relayed() -> None:
    assert jail.server_argv("/s", ["-e"], "/w", readonly=False) == \
        ["/s", "-e", "-d", "/w", "-P", "setstat,lsetstat"]
    assert jail.server_argv("/s", [], "/w", readonly=True)[-1] == "-R"
    assert jail.server_argv("/s", [], "/w", readonly=False, relayed=False) == ["/s", "-d", "/w"]


def test_arguments(tmp_path) -> None:
    root = os.path.realpath(tmp_path)
    assert jail.parse_args(["--ro", str(tmp_path), "--", "/s", "-e"]) == \
        (True, root, ["/s", "-e"], -1, False)
    assert jail.parse_args(["--lane", "3", str(tmp_path), "--", "/s"]) == \
        (False, root, ["/s"], 3, False)
    assert jail.parse_args(["--relay", "--ro", str(tmp_path), "--", "/s"]) == \
        (True, root, ["/s"], -1, True)
    for bad in ([], [str(tmp_path)], [str(tmp_path), "/s"], [str(tmp_path), "--"],
                ["--lane", "x", str(tmp_path), "--", "/s"], ["--lane"]):
        with pytest.raises(jail.JailError, match="usage"):
            jail.parse_args(bad)
    with pytest.raises(jail.JailError, match="not a directory"):
        jail.parse_args([str(tmp_path / "nope"), "--", "/s"])


@pytest.mark.parametrize("path, expected", [
    (b"f", b"f"), (b"", b"."), (b"/w", b"."), (b"/w/", b"."), (b"/w/a/b", b"a/b"),
    (b"/w/../etc", b"../etc"),  # left to RESOLVE_BENEATH, which refuses it
    (b"/etc/passwd", None), (b"/wx/f", None), (b"/", None),
])
def test_requests_name_paths_relative_to_the_root(path: bytes, expected) -> None:
    assert sftp_relay.relative_to_root(b"/w", path) == expected


@pytest.mark.parametrize("err, code", [
    (errno.ENOENT, sftp_relay.FX_NO_SUCH_FILE), (errno.EXDEV, sftp_relay.FX_PERMISSION_DENIED),
    (errno.EACCES, sftp_relay.FX_PERMISSION_DENIED), (errno.EIO, sftp_relay.FX_FAILURE),
])
def test_errno_maps_like_sftp_server(err: int, code: int) -> None:
    assert sftp_relay.portable_status(err) == code


def frame(body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + body


def test_frames_are_split_only_where_whole() -> None:
    one, two = frame(b"\x01abc"), frame(b"\x02" + b"x" * 10)
    assert sftp_relay.split_frames(bytearray(one + two)) == (len(one + two), 2)
    assert sftp_relay.split_frames(bytearray(one + two[:5])) == (len(one), 1)
    with pytest.raises(sftp_relay.ProtocolError):
        sftp_relay.split_frames(bytearray((10 ** 7).to_bytes(4, "big") + b"x"))


def test_a_stream_yields_whole_frames_however_it_is_cut(tmp_path) -> None:
    """Frames of every size up to the largest, cut wherever the buffer ends."""
    frames = [frame(bytes([n % 250 + 1]) + os.urandom(size))
              for n, size in enumerate([0, 7, 40000, sftp_relay.MAX_FRAME - 1, 3, 70000] * 3)]
    data = b"".join(frames)
    path = tmp_path / "stream"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    stream = sftp_relay.Frames(fd)
    seen, count = bytearray(), 0
    try:
        while True:
            end, got = stream.fill()
            if end < 0:
                break
            seen += stream.view[:end]
            count += got
            stream.consume(end)
    finally:
        os.close(fd)
    assert (bytes(seen), count, stream.filled) == (data, len(frames), 0)


def test_status_frame_is_sftp_v3() -> None:
    data = sftp_relay.status_frame(7, sftp_relay.FX_PERMISSION_DENIED)
    reader = sftp_relay.Reader(data[4:], 1)
    assert data[4] == sftp_relay.FXP_STATUS
    assert (reader.u32(), reader.u32(), reader.string(), reader.string()) == \
        (7, 3, b"Permission denied", b"")


def setstat_body(path: bytes, mode: int) -> sftp_relay.Reader:
    data = len(path).to_bytes(4, "big") + path + (4).to_bytes(4, "big") + mode.to_bytes(4, "big")
    return sftp_relay.Reader(data)


def test_setstat_changes_only_what_lies_beneath_the_root(tmp_path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.write_text("x")
    outside.chmod(0o600)
    (root / "in").write_text("y")
    (root / "abs").symlink_to(outside)
    (root / "rel").symlink_to("../outside")
    fd = os.open(root, os.O_PATH)
    try:
        def chmod(path: bytes) -> int:
            reader = setstat_body(path, 0o640)
            return sftp_relay.setstat(fd, str(root).encode(), reader.string(), reader, True)

        assert chmod(b"in") == sftp_relay.FX_OK
        assert chmod(str(root / "in").encode()) == sftp_relay.FX_OK
        for escape in (b"abs", b"rel", b"../outside", str(outside).encode()):
            assert chmod(escape) == sftp_relay.FX_PERMISSION_DENIED, escape
    finally:
        os.close(fd)
    assert (root / "in").stat().st_mode & 0o777 == 0o640
    assert outside.stat().st_mode & 0o777 == 0o600


def test_rights_that_a_file_rule_cannot_carry_are_dropped() -> None:
    assert landlock.READ_WRITE & landlock.FILE_RIGHTS == \
        landlock.READ_FILE | landlock.WRITE_FILE | landlock.TRUNCATE
    assert landlock.fs_rights(1) == (1 << 13) - 1
    assert landlock.fs_rights(7) == (1 << 16) - 1
    assert landlock.fs_rights(0) == 0


@pytest.mark.skipif(landlock.abi_version() < landlock.MINIMUM_ABI or
                    not os.path.exists("/etc/localtime"), reason="no Landlock or no zone file")
def test_the_jail_may_read_the_zone_file_and_nothing_else_of_etc(tmp_path) -> None:
    """sftp-server formats every listed entry's time; refused /etc/localtime, glibc tries
    again for each entry (a listing ~30% slower)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover
        try:
            jail.build_ruleset(str(tmp_path), False, "/bin/true", []).restrict_self()
            found = []
            for path in ("/etc/localtime", "/etc/hostname", "/etc/passwd"):
                try:
                    os.close(os.open(path, os.O_RDONLY))
                    found.append("ok")
                except OSError as exc:
                    found.append(str(exc.errno))
            os.write(write_end, " ".join(found).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    with os.fdopen(read_end) as f:
        assert f.read().split() == ["ok", str(errno.EACCES), str(errno.EACCES)]
