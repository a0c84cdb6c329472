"""Linux Landlock through raw system calls: the kernel side of the sftp jail.

Why ctypes and not a library: the only Python binding with any history on
PyPI (``landlock``) is a 1.0.0.dev pre-release, and the interface is three
system calls with two small structs.  The numbers (444-446) are the same on
x86_64 and aarch64 (both use the generic table for new calls).

Landlock is additive-deny: a ruleset *handles* a set of access rights, and
after ``restrict_self`` every handled right is denied except beneath the
paths a rule allows it on.  What it cannot restrict (up to ABI 7) is
documented by the kernel: stat, chmod, chown, utime, chdir, readlink and
path walks; ``seccomp_guard`` (or ``sftp_relay``) closes the chmod/chown/utime
part for the jail.
"""

from __future__ import annotations

import ctypes
import os
import stat

SYS_CREATE_RULESET = 444
SYS_ADD_RULE = 445
SYS_RESTRICT_SELF = 446
CREATE_RULESET_VERSION = 1 << 0
RULE_PATH_BENEATH = 1
PR_SET_NO_NEW_PRIVS = 38

# Filesystem rights, with the ABI that introduced each.
EXECUTE = 1 << 0
WRITE_FILE = 1 << 1
READ_FILE = 1 << 2
READ_DIR = 1 << 3
REMOVE_DIR = 1 << 4
REMOVE_FILE = 1 << 5
MAKE_CHAR = 1 << 6
MAKE_DIR = 1 << 7
MAKE_REG = 1 << 8
MAKE_SOCK = 1 << 9
MAKE_FIFO = 1 << 10
MAKE_BLOCK = 1 << 11
MAKE_SYM = 1 << 12
REFER = 1 << 13  # ABI 2: rename/link across directories
TRUNCATE = 1 << 14  # ABI 3
IOCTL_DEV = 1 << 15  # ABI 5
FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1}
FS_LATEST = (1 << 16) - 1  # ABI 5 and later
FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV  # valid on a non-directory

NET_ALL = (1 << 0) | (1 << 1)  # ABI 4: TCP bind and connect
SCOPE_ALL = (1 << 0) | (1 << 1)  # ABI 6: abstract unix sockets and signals

# What the jail needs beneath the served directory.
READ_ONLY = READ_FILE | READ_DIR
READ_WRITE = (READ_ONLY | WRITE_FILE | REMOVE_DIR | REMOVE_FILE | MAKE_DIR | MAKE_REG | MAKE_SYM
              | REFER | TRUNCATE)
# Below ABI 2 a file can never move to another directory, so `mv a sub/` fails.
MINIMUM_ABI = 2


class LandlockUnavailable(OSError):
    """This kernel cannot confine a process with Landlock (too old, or disabled)."""


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1  # the kernel's struct is __attribute__((packed)): 12 bytes
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _syscall(number: int, *args) -> int:
    result = _libc.syscall(ctypes.c_long(number), *args)
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result


def abi_version() -> int:
    """The kernel's Landlock ABI version, or 0 when it has none (or it is disabled)."""
    try:
        return _syscall(SYS_CREATE_RULESET, None, ctypes.c_size_t(0),
                        ctypes.c_uint32(CREATE_RULESET_VERSION))
    except OSError:  # ENOSYS: not built in; EOPNOTSUPP: built in but not enabled at boot
        return 0


def fs_rights(abi: int) -> int:
    """Every filesystem right this ABI knows: all of them are handled, so all are denied."""
    return FS_BY_ABI.get(abi, FS_LATEST) if abi > 0 else 0


class Ruleset:
    """A ruleset handling every right the kernel knows; add rules, then restrict_self."""

    def __init__(self, abi: int | None = None) -> None:
        self.abi = abi_version() if abi is None else abi
        if self.abi < MINIMUM_ABI:
            raise LandlockUnavailable(
                0, f"Landlock ABI {self.abi} (need {MINIMUM_ABI}, Linux 5.19 or later with "
                   "landlock in the boot-time LSM list)")
        self.handled = fs_rights(self.abi)
        attr = _RulesetAttr(self.handled, NET_ALL if self.abi >= 4 else 0,
                            SCOPE_ALL if self.abi >= 6 else 0)
        size = 24 if self.abi >= 6 else 16 if self.abi >= 4 else 8
        self.fd = _syscall(SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size),
                           ctypes.c_uint32(0))

    def allow(self, path: str | bytes, rights: int) -> None:
        """Allow ``rights`` on ``path`` and everything beneath it (its inode, not its name).

        The path is opened with O_PATH, following symlinks: a rule binds to
        what the name resolves to now.  Directory-only rights are dropped on
        a file, and rights this kernel does not handle are dropped too.
        """
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        try:
            if not stat.S_ISDIR(os.fstat(fd).st_mode):
                rights &= FILE_RIGHTS
            attr = _PathBeneathAttr(rights & self.handled, fd)
            _syscall(SYS_ADD_RULE, ctypes.c_int(self.fd), ctypes.c_int(RULE_PATH_BENEATH),
                     ctypes.byref(attr), ctypes.c_uint32(0))
        finally:
            os.close(fd)

    def restrict_self(self) -> None:
        """Confine this thread and every process it starts from now on, irrevocably.

        Call it before starting threads: only the calling thread is confined.
        NO_NEW_PRIVS first, as the kernel requires of an unprivileged caller.
        """
        if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        _syscall(SYS_RESTRICT_SELF, ctypes.c_int(self.fd), ctypes.c_uint32(0))
        os.close(self.fd)
        self.fd = -1
