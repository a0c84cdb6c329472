"""The guard that makes sftp-server's metadata calls for it: its filter, and a real child.

The filter is checked by running its BPF in a small interpreter; the guard by
a forked child under the real filter that calls chmod, chown, utime and
truncate on names inside and outside its root, as a docker-machine could make
sftp-server do.
"""

import errno
import json
import os
import platform
import struct

import pytest

from remote_docker.mounts import seccomp_guard

TABLE = seccomp_guard.arch_table()
needs_guard = pytest.mark.skipif(not seccomp_guard.available(),
                                 reason="no seccomp user notification here")


def run_bpf(code: bytes, nr: int, arch: int, arg0: int = 0, arg1: int = 0) -> int:
    """Classic BPF as the kernel runs a seccomp filter (only what program() emits)."""
    data = struct.pack("=iIQ6Q", nr, arch, 0, arg0, arg1, 0, 0, 0, 0)
    insns = [struct.unpack("=HBBI", code[i:i + 8]) for i in range(0, len(code), 8)]
    pc, acc = 0, 0
    while True:
        op, jt, jf, k = insns[pc]
        if op == 0x20:
            acc = struct.unpack_from("=I", data, k)[0]
        elif op == 0x15:
            pc += jt if acc == k else jf
        elif op == 0x35:
            pc += jt if acc >= k else jf
        elif op == 0x06:
            return k
        else:
            raise AssertionError(f"unexpected BPF op {op:#x}")
        pc += 1


@pytest.mark.parametrize("machine", sorted(seccomp_guard.ARCHES))
def test_the_filter_stops_exactly_the_metadata_calls(machine: str) -> None:
    arch, _, prctl, calls = seccomp_guard.ARCHES[machine]
    code = seccomp_guard.program(arch, prctl, calls)
    for nr, call in calls.items():
        assert run_bpf(code, nr, arch, arg1=0x7FFC_1234_5678) == seccomp_guard.RET_USER_NOTIF, nr
        if call.op == "utimensat":  # a NULL path: futimens on an fd, decided in the filter
            assert run_bpf(code, nr, arch, arg1=0) == seccomp_guard.RET_ALLOW
            for path in (0x1000, 1 << 32):  # either half of the pointer set: a path
                assert run_bpf(code, nr, arch, arg1=path) == seccomp_guard.RET_USER_NOTIF
        else:
            assert run_bpf(code, nr, arch) == seccomp_guard.RET_USER_NOTIF, nr
    for nr in (0, 1, 2, 3, 56, 57, 59, 63, 257, 437):  # read, write, open…, openat2
        if nr not in calls and nr != prctl:
            assert run_bpf(code, nr, arch) == seccomp_guard.RET_ALLOW, nr
    assert run_bpf(code, prctl, arch, seccomp_guard.PR_SET_DUMPABLE) == seccomp_guard.RET_ERRNO
    assert run_bpf(code, prctl, arch, 38) == seccomp_guard.RET_ALLOW  # NO_NEW_PRIVS
    assert run_bpf(code, min(calls), 0x40000003) == seccomp_guard.RET_KILL_PROCESS  # i386
    assert run_bpf(code, 90 | seccomp_guard.X32_BIT, arch) == seccomp_guard.RET_KILL_PROCESS


CHILD_STEPS = [
    ("chmod inside", lambda: os.chmod("in", 0o640)),
    ("chmod absolute inside", lambda root: os.chmod(os.path.join(root, "in"), 0o600)),
    ("chmod outside", lambda root: os.chmod(os.path.join(os.path.dirname(root), "out"), 0o666)),
    ("chmod ../out", lambda: os.chmod("../out", 0o666)),
    ("chmod through a link to out", lambda: os.chmod("rel", 0o666)),
    ("chmod by link to /etc/passwd", lambda: os.chmod("abs", 0o666)),
    ("truncate inside", lambda: os.truncate("in", 2)),
    ("truncate through a link to out", lambda: os.truncate("rel", 0)),
    ("utime inside", lambda: os.utime("in", (1000, 2000))),
    ("utime a link itself", lambda: os.utime("inlink", (3000, 4000), follow_symlinks=False)),
    ("utime now", lambda: os.utime("in2")),
    ("utime outside", lambda: os.utime("rel", (5, 5))),
    ("chown inside to myself", lambda: os.chown("in", os.getuid(), os.getgid())),
    ("lchown a link itself", lambda: os.chown("rel", os.getuid(), -1, follow_symlinks=False)),
    ("chown through a link to out", lambda: os.chown("rel", os.getuid(), -1)),
    ("chmod a link itself", lambda: _fchmodat2("inlink", 0o600, 0x100)),
    ("futimens on an fd", lambda: _futimens("in2")),
    ("truncate to a negative length", lambda: os.truncate("in2", -1)),
]


def _fchmodat2(name: str, mode: int, flags: int) -> None:
    """The call itself (452 on both machines): glibc may answer a link's chmod alone."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(ctypes.c_long(452), -100, name.encode(), mode, flags) != 0:
        raise OSError(ctypes.get_errno(), "fchmodat2")


def _futimens(name: str) -> None:
    fd = os.open(name, os.O_WRONLY)
    try:
        os.utime(fd, (7000, 8000))
    finally:
        os.close(fd)


def _child(root: str, report: int, ready: int) -> None:
    """Under the filter: each step's errno (0: done), and whether it stayed dumpable."""
    import ctypes
    import socket

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(38, 1, 0, 0, 0)  # NO_NEW_PRIVS, as Landlock's restrict_self sets it
    listener = seccomp_guard.install_filter()
    socket.send_fds(socket.socket(fileno=ready), [b"ok"], [listener])
    os.chdir(root)
    found = {"dumpable_call": libc.prctl(4, 0, 0, 0, 0)}
    for name, step in CHILD_STEPS:
        try:
            step(root) if step.__code__.co_argcount else step()
            found[name] = 0
        except OSError as exc:
            found[name] = exc.errno
    found["dumpable"] = libc.prctl(3, 0, 0, 0, 0)  # PR_GET_DUMPABLE
    os.write(report, json.dumps(found).encode())
    os._exit(0)


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "out").write_text("secret")
    (tmp_path / "out").chmod(0o600)
    (root / "in").write_text("hello")
    (root / "in2").write_text("x")
    (root / "rel").symlink_to("../out")
    (root / "abs").symlink_to("/etc/passwd")
    (root / "inlink").symlink_to("in")
    return root


@needs_guard
@pytest.mark.parametrize("readonly", [False, True])
def test_the_guard_changes_only_what_lies_beneath_the_root(tree, readonly: bool) -> None:
    import socket

    root = str(tree)
    outside = tree.parent / "out"
    passwd = os.stat("/etc/passwd")
    report_r, report_w = os.pipe()
    ours, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # pragma: no cover
        try:
            _child(root, report_w, theirs.detach())
        finally:
            os._exit(1)
    os.close(report_w)
    theirs.close()
    _, fds, _, _ = socket.recv_fds(ours, 16, 1)
    guard = seccomp_guard.Guard(root, readonly, fds[0])
    guard.run(pid)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    with os.fdopen(report_r) as f:
        found = json.load(f)
    assert found.pop("dumpable_call") == 0 and found.pop("dumpable") == 1
    escapes = [n for n in found if "out" in n.split()[-1] or "passwd" in n]
    assert len(escapes) == 7, escapes
    for name in escapes:
        assert found[name] == (errno.EROFS if readonly else errno.EACCES), name
    assert found["chmod a link itself"] == (errno.EROFS if readonly else errno.EOPNOTSUPP)
    assert found["futimens on an fd"] == 0  # passed on: Landlock decides what it opened
    assert found.pop("truncate to a negative length") == (errno.EROFS if readonly
                                                          else errno.EINVAL)
    assert oct(outside.stat().st_mode & 0o777) == oct(0o600)
    assert outside.read_text() == "secret"
    assert os.stat("/etc/passwd") == passwd
    inside = tree / "in"
    if readonly:
        assert all(found[n] == errno.EROFS for n in found
                   if n not in escapes and n not in ("futimens on an fd", "chmod a link itself"))
        assert inside.read_text() == "hello"
        return
    assert all(found[n] == 0 for n in found
               if n not in escapes and n != "chmod a link itself"), found
    st = inside.stat()
    assert (st.st_mode & 0o777, st.st_size, st.st_atime, st.st_mtime) == (0o600, 2, 1000, 2000)
    link = os.lstat(tree / "inlink")
    assert (link.st_atime, link.st_mtime) == (3000, 4000)
    assert os.stat(tree / "in2").st_mtime == 8000
    assert found["chmod a link itself"] == errno.EOPNOTSUPP


def test_an_unknown_machine_has_no_guard(monkeypatch) -> None:
    monkeypatch.setattr(platform, "machine", lambda: "riscv64")
    assert not seccomp_guard.available()
    with pytest.raises(seccomp_guard.GuardUnavailable):
        seccomp_guard.install_filter()


def test_memory_that_cannot_be_read_fails_the_call_and_says_so_once(tmp_path, capsys) -> None:
    guard = seccomp_guard.Guard(str(tmp_path), False, -1)
    gone = 4_194_303  # above any pid_max default: no such process
    for _ in range(2):
        with pytest.raises(OSError):
            guard.read_string(gone, 0x1000)
    assert capsys.readouterr().err.count("cannot read sftp-server's memory") == 1
