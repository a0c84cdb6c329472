"""sftp-server's chmod, chown, utime and truncate by path, done for it beneath the root.

Why: Landlock cannot restrict chmod, chown or utime (nor truncate below ABI
3), and sftp-server's SETSTAT acts by path, so a docker-machine could
otherwise ``chmod 644 ~/.ssh/id_ed25519``.  ``sftp_relay`` closes that by
standing in the SFTP stream, which costs every request two hops through
Python (~35 µs a round trip: a small file create went from ~200 to ~350 µs
measured against sftp-server on tmpfs).  Here the stream goes straight from
the ssh channel to sftp-server, and only those few system calls stop:

- sftp-server runs under a seccomp filter that hands exactly these calls
  (by number, for its one architecture; any other architecture or the x32
  ABI kills it) to this process by user notification (Linux 5.5+);
- this process reads the path from the stopped sftp-server's memory
  (``/proc/PID/mem``: it is our child; its ``prctl(PR_SET_DUMPABLE, 0)``
  is answered "done" by the filter, or the memory could not be read), checks
  the notification is still live, resolves the path with
  ``openat2(RESOLVE_BENEATH)`` from the served directory, makes the change on
  what that resolved to, and answers with the result;
- calls on a file descriptor (``utimensat(fd, NULL, …)``, what FSETSTAT
  uses for times) are let through by the filter itself, deciding on the
  register: sftp-server opened that fd under Landlock.

The seccomp manual warns that user notification is no security policy when
the kernel later re-reads memory the target could change: nothing here is
re-read; the call is made on our own copy, or (fd calls) has no memory
argument to change.  sftp-server is single-threaded and stopped meanwhile,
so the order of effects is the order sshfs asked for them.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import select
import stat
import struct
from typing import NamedTuple

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_EMPTY_PATH = 0x1000
PR_SET_DUMPABLE = 4
PR_SET_PDEATHSIG = 1

SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_NEW_LISTENER = 1 << 3
RET_KILL_PROCESS, RET_USER_NOTIF = 0x80000000, 0x7FC00000
RET_ERRNO, RET_ALLOW = 0x00050000, 0x7FFF0000
NOTIF_RECV, NOTIF_SEND, NOTIF_ID_VALID = 0xC0502100, 0xC0182101, 0x40082102
FLAG_CONTINUE = 1
X32_BIT = 0x40000000


class Call(NamedTuple):
    """A call that changes metadata by path, and where its arguments are (indexes)."""
    op: str  # truncate, chmod, chown, utime (utimbuf), utimes (timeval[2]), utimensat
    dirfd: int | None  # None: the path is relative to the cwd
    path: int
    value: int  # length, mode, uid (gid follows), or the times' address
    flags: int | None  # where AT_SYMLINK_NOFOLLOW may be; None: follow is fixed
    follow: bool = True


CALLS_X86_64 = {
    76: Call("truncate", None, 0, 1, None), 90: Call("chmod", None, 0, 1, None),
    92: Call("chown", None, 0, 1, None), 94: Call("chown", None, 0, 1, None, False),
    132: Call("utime", None, 0, 1, None), 235: Call("utimes", None, 0, 1, None),
    260: Call("chown", 0, 1, 2, 4), 261: Call("utimes", 0, 1, 2, None),
    268: Call("chmod", 0, 1, 2, None), 280: Call("utimensat", 0, 1, 2, 3),
    452: Call("chmod", 0, 1, 2, 3),
}
CALLS_AARCH64 = {
    45: Call("truncate", None, 0, 1, None), 53: Call("chmod", 0, 1, 2, None),
    54: Call("chown", 0, 1, 2, 4), 88: Call("utimensat", 0, 1, 2, 3),
    452: Call("chmod", 0, 1, 2, 3),
}
# Per machine: (AUDIT_ARCH, seccomp(2)'s number, prctl's, the calls).
ARCHES = {"x86_64": (0xC000003E, 317, 157, CALLS_X86_64),
          "aarch64": (0xC00000B7, 277, 167, CALLS_AARCH64)}

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.fchownat.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32, ctypes.c_uint32,
                           ctypes.c_int]
_libc.utimensat.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]


class GuardUnavailable(OSError):
    """This kernel or machine cannot run sftp-server under the guard: use the relay."""


class SeccompData(ctypes.Structure):
    _fields_ = [("nr", ctypes.c_int32), ("arch", ctypes.c_uint32),
                ("instruction_pointer", ctypes.c_uint64), ("args", ctypes.c_uint64 * 6)]


class Notification(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint64), ("pid", ctypes.c_uint32), ("flags", ctypes.c_uint32),
                ("data", SeccompData)]


class Response(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint64), ("val", ctypes.c_int64), ("error", ctypes.c_int32),
                ("flags", ctypes.c_uint32)]


def arch_table() -> tuple[int, int, int, dict] | None:
    return ARCHES.get(platform.machine())


def available() -> bool:
    """Can sftp-server run under the guard here?  This architecture's numbers are known,
    the kernel offers user notification, and a parent may read its child's memory."""
    if arch_table() is None:
        return False
    try:
        with open("/proc/sys/kernel/seccomp/actions_avail") as f:
            if "user_notif" not in f.read().split():
                return False
    except OSError:
        return False
    try:  # Yama 2 and 3: only an admin may read a child's memory
        with open("/proc/sys/kernel/yama/ptrace_scope") as f:
            return int(f.read().strip() or 0) < 2
    except (OSError, ValueError):
        return True  # no Yama: a parent may


def program(arch: int, prctl: int, calls: dict) -> bytes:
    """The classic-BPF filter: another arch or x32: kill; prctl(PR_SET_DUMPABLE): "done";
    utimensat with a NULL path (futimens: FSETSTAT's times, on an fd sftp-server opened):
    allow, decided here on the register, so it costs no trip through the guard; the
    other calls: notify; the rest: allow."""
    ld, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    fd_form = [n for n, c in calls.items() if c.op == "utimensat"]
    numbers = sorted(n for n in calls if n not in fd_form)
    code: list[tuple] = []  # (op, jump-if-true label, jump-if-false label, k)

    def emit(op: int, k: int, yes: str | None = None, no: str | None = None) -> None:
        code.append((op, yes, no, k))

    labels: dict[str, int] = {}
    emit(ld, 4)  # seccomp_data.arch
    emit(jeq, arch, None, "kill")
    emit(ld, 0)  # .nr
    emit(jge, X32_BIT, "kill", None)
    emit(jeq, prctl, "prctl", None)
    for number in fd_form:
        emit(jeq, number, "fd_form", None)
    for number in numbers:
        emit(jeq, number, "notify", None)
    emit(ret, RET_ALLOW)  # every other call (classic BPF only jumps forward: the
    labels["prctl"] = len(code)  # shared ends come last)
    emit(ld, 16)  # args[0], low half
    emit(jeq, PR_SET_DUMPABLE, "done", "allow")
    labels["done"] = len(code)
    emit(ret, RET_ERRNO)  # errno 0: success, and nothing done
    labels["fd_form"] = len(code)
    emit(ld, 24)  # args[1] (the path), low half
    emit(jeq, 0, None, "notify")
    emit(ld, 28)  # high half
    emit(jeq, 0, "allow", "notify")
    labels["allow"] = len(code)
    emit(ret, RET_ALLOW)
    labels["notify"] = len(code)
    emit(ret, RET_USER_NOTIF)
    labels["kill"] = len(code)
    emit(ret, RET_KILL_PROCESS)

    def offset(at: int, label: str | None) -> int:
        return 0 if label is None else labels[label] - at - 1

    return b"".join(struct.pack("=HBBI", op, offset(at, yes), offset(at, no), k)
                    for at, (op, yes, no, k) in enumerate(code))


def install_filter() -> int:
    """In the process about to become sftp-server (no_new_privs already set): the filter
    on, and the listener fd returned.  Dies with its parent (the guard)."""
    table = arch_table()
    if table is None:
        raise GuardUnavailable(0, f"no seccomp numbers for {platform.machine()}")
    arch, sys_seccomp, prctl, calls = table
    if _libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0) != 0:
        raise _errno_error()
    code = program(arch, prctl, calls)
    buf = ctypes.create_string_buffer(code, len(code))
    prog = struct.pack("=HxxxxxxQ", len(code) // 8, ctypes.addressof(buf))
    prog_buf = ctypes.create_string_buffer(prog, len(prog))
    fd = _libc.syscall(ctypes.c_long(sys_seccomp), ctypes.c_uint(SECCOMP_SET_MODE_FILTER),
                       ctypes.c_uint(SECCOMP_FILTER_FLAG_NEW_LISTENER), prog_buf)
    if fd < 0:
        raise _errno_error()
    return fd


def _errno_error() -> OSError:
    err = ctypes.get_errno()
    return OSError(err, os.strerror(err))


class Guard:
    """The supervisor: answers sftp-server's stopped calls until it has ended."""

    def __init__(self, root: str, readonly: bool, listener: int) -> None:
        from remote_docker.mounts.sftp_relay import open_beneath, relative_to_root

        self.open_beneath, self.relative_to_root = open_beneath, relative_to_root
        self.root, self.readonly, self.listener = root.encode(), readonly, listener
        self.root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self.calls = (arch_table() or (0, 0, 0, {}))[3]
        self.mem: dict[int, int] = {}
        self.warned = False

    def run(self, pid: int = 0) -> None:
        """Until every process under the filter is gone (the listener then hangs up), or
        ``pid`` (sftp-server) has exited: kernels before 5.8 never hang up."""
        poller = select.poll()
        poller.register(self.listener, select.POLLIN)
        if pid:
            try:
                poller.register(os.pidfd_open(pid), select.POLLIN)
            except OSError:
                pass  # before 5.3: the hang-up is all there is
        while True:
            events = dict(poller.poll())
            mask = events.pop(self.listener, 0)
            if events or mask & (select.POLLHUP | select.POLLERR) and not mask & select.POLLIN:
                return
            self.serve_one()

    def serve_one(self) -> None:
        note = Notification()
        if _libc.ioctl(self.listener, ctypes.c_ulong(NOTIF_RECV), ctypes.byref(note)) != 0:
            return  # ENOENT: the caller was interrupted before we took it
        error, flags = self.decide(note)
        reply = Response(note.id, 0, -error if error else 0, flags)
        _libc.ioctl(self.listener, ctypes.c_ulong(NOTIF_SEND), ctypes.byref(reply))

    def decide(self, note: Notification) -> tuple[int, int]:
        """(errno or 0, response flags) for one stopped call."""
        call = self.calls.get(note.data.nr)
        if call is None:
            return errno.EPERM, 0
        args = note.data.args
        follow = call.follow if call.flags is None else \
            not args[call.flags] & AT_SYMLINK_NOFOLLOW
        if call.op == "utimensat" and args[call.path] == 0:
            return 0, FLAG_CONTINUE  # futimens: the filter lets it by; a second wall
        if call.dirfd is not None and \
                ctypes.c_int32(args[call.dirfd] & 0xFFFFFFFF).value != AT_FDCWD:
            return errno.EPERM, 0  # sftp-server names everything from its directory
        if self.readonly:
            return errno.EROFS, 0
        try:
            path = self.read_string(note.pid, args[call.path])
            times = self.read_times(note.pid, call.op, args[call.value])
            if not self.live(note.id):
                return errno.ENOENT, 0
            self.apply(call, path, follow, args, times)
        except OSError as exc:
            return exc.errno or errno.EPERM, 0
        except (OverflowError, ValueError):  # an address or length no call could take
            return errno.EINVAL, 0
        return 0, 0

    def live(self, note_id: int) -> bool:
        """The call is still waiting (so the pid is still that caller's)."""
        value = ctypes.c_uint64(note_id)
        return _libc.ioctl(self.listener, ctypes.c_ulong(NOTIF_ID_VALID),
                           ctypes.byref(value)) == 0

    def memory(self, pid: int) -> int:
        fd = self.mem.get(pid)
        if fd is None:
            try:
                fd = self.mem[pid] = os.open(f"/proc/{pid}/mem", os.O_RDONLY | os.O_CLOEXEC)
            except OSError as exc:  # an LSM may forbid it: say so once, in the mount's log
                if not self.warned:
                    self.warned = True
                    import sys

                    sys.stderr.write(f"remote-docker jail: cannot read sftp-server's memory "
                                     f"({exc.strerror}): chmod, chown, utime and truncate by "
                                     "name fail in this mount\n")
                raise
        return fd

    def read(self, pid: int, address: int, size: int) -> bytes:
        data = os.pread(self.memory(pid), size, address)
        if len(data) != size:
            raise OSError(errno.EFAULT, "short read of the caller's memory")
        return data

    def read_string(self, pid: int, address: int) -> bytes:
        """A NUL-terminated path, a page at a time (the next page may not be mapped)."""
        if not address:
            raise OSError(errno.EFAULT, "NULL path")
        found = b""
        while len(found) < 4096:
            chunk = os.pread(self.memory(pid), 4096 - (address % 4096), address)
            if not chunk:
                raise OSError(errno.EFAULT, "unreadable path")
            end = chunk.find(b"\0")
            if end >= 0:
                return found + chunk[:end]
            found += chunk
            address += len(chunk)
        raise OSError(errno.ENAMETOOLONG, "path too long")

    def read_times(self, pid: int, op: str, pointer: int) -> bytes | None:
        """The two times as struct timespec[2], or None ("now") for a NULL pointer."""
        if op not in ("utime", "utimes", "utimensat") or not pointer:
            return None
        if op == "utimensat":
            return self.read(pid, pointer, 32)
        if op == "utime":  # struct utimbuf: actime, modtime (seconds)
            a, m = struct.unpack("=qq", self.read(pid, pointer, 16))
            return struct.pack("=qqqq", a, 0, m, 0)
        a, au, m, mu = struct.unpack("=qqqq", self.read(pid, pointer, 32))  # timeval[2]
        return struct.pack("=qqqq", a, au * 1000, m, mu * 1000)

    def apply(self, call: Call, path: bytes, follow: bool, args: list[int],
              times: bytes | None) -> None:
        """The change, on what ``path`` resolves to beneath the root; OSError if refused."""
        rel = self.relative_to_root(self.root, path)
        if rel is None:
            raise OSError(errno.EACCES, "outside the served directory")
        try:
            fd = self.open_beneath(self.root_fd, rel,
                                   os.O_PATH | (0 if follow else os.O_NOFOLLOW))
        except OSError as exc:  # EXDEV: it would leave the root
            raise OSError(errno.EACCES if exc.errno == errno.EXDEV else exc.errno,
                          exc.strerror) from None
        try:
            handle = f"/proc/self/fd/{fd}"  # the resolved inode itself
            link = not follow and stat.S_ISLNK(os.fstat(fd).st_mode)  # followed: never
            value = args[call.value]
            if call.op == "truncate":
                os.truncate(handle, ctypes.c_int64(value).value)  # off_t: negative is EINVAL
            elif call.op == "chmod":
                if link:
                    raise OSError(errno.EOPNOTSUPP, "a symlink has no mode of its own")
                os.chmod(handle, value & 0o7777)
            elif call.op == "chown":
                uid, gid = value & 0xFFFFFFFF, args[call.value + 1] & 0xFFFFFFFF
                _check(_libc.fchownat(fd, b"", uid, gid, AT_EMPTY_PATH))  # O_PATH is enough
            elif link:  # the link's own times: by name, from its (resolved) directory
                parent_rel, _, name = rel.rpartition(b"/")
                parent = self.open_beneath(self.root_fd, parent_rel or b".",
                                           os.O_PATH | os.O_DIRECTORY)
                try:
                    _check(_libc.utimensat(parent, name, times, AT_SYMLINK_NOFOLLOW))
                finally:
                    os.close(parent)
            else:
                _check(_libc.utimensat(AT_FDCWD, handle.encode(), times, 0))
        finally:
            os.close(fd)


def _check(result: int) -> None:
    if result != 0:
        raise _errno_error()
