"""``python3 -IS -m remote_docker.mounts.jail [--ro] DIR -- SFTP_SERVER [ARGS…]``: a jailed sftp-server.

``sftp-server -d DIR`` is not a jail: ``..``, absolute symlinks and a plain
request for ``/`` all reach the whole account.  This launcher confines it
(and itself) with Landlock before the first request is read:

- beneath DIR: read and write (or only read with ``--ro``);
- read and execute on exactly the sftp-server binary and the shared objects
  ``ldd`` lists for it (symlinks resolved), read on ``/etc/ld.so.cache``;
- read and write on ``/dev/null`` (sftp-server opens it at start);
- nothing else: no other file, no TCP, no signals or abstract sockets
  outside (as far as the kernel's Landlock ABI reaches).

sftp-server asks ``getpwuid`` for its own account before anything else, which
reads ``/etc/passwd``; letting it read that file would let the docker-machine
read it too.  So ``libnss_wrapper`` (Debian: libnss-wrapper) is preloaded and
given a one-line passwd and group of this user's own, in memfds.

Then the relay in ``sftp_relay`` stands between the client and sftp-server
to do SETSTAT itself, beneath DIR only: Landlock cannot restrict chmod.
"""

from __future__ import annotations

import fcntl
import glob
import grp
import os
import pwd
import subprocess
import sys

from remote_docker.mounts import landlock, sftp_relay

SFTP_SERVERS = ("/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server",
                "/usr/lib/ssh/sftp-server", "/usr/libexec/sftp-server")
NSS_WRAPPER_GLOBS = ("/usr/lib/*/libnss_wrapper.so", "/usr/lib64/libnss_wrapper.so",
                     "/usr/lib/libnss_wrapper.so", "/usr/local/lib*/libnss_wrapper.so")
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
USAGE = ("usage: python3 -m remote_docker.mounts.jail [--ro] [--lane FD] DIR -- SFTP_SERVER "
         "[ARGS…]")


class JailError(Exception):
    """The jail cannot be built here; the message is one line for the user."""


def sftp_server() -> str:
    """OpenSSH's sftp-server where distributions put it, or JailError."""
    for path in SFTP_SERVERS:
        if os.access(path, os.X_OK):
            return path
    raise JailError("OpenSSH's sftp-server is not installed on this workstation (Debian: "
                    "apt-get install openssh-sftp-server)")


def preflight() -> str:
    """Can a jail be built here?  The sftp-server path, or JailError saying what is missing.

    Checked before a mount is recorded, so that a workstation without
    Landlock hears so at once, with the way out.
    """
    abi = landlock.abi_version()
    if abi < landlock.MINIMUM_ABI:
        raise JailError(f"this kernel cannot confine sftp-server with Landlock (ABI {abi}, "
                        f"need {landlock.MINIMUM_ABI}: Linux 5.19 or later with landlock enabled)")
    nss_wrapper()
    return sftp_server()


def nss_wrapper() -> str:
    """The libnss_wrapper shared object, or JailError saying how to install it."""
    for pattern in NSS_WRAPPER_GLOBS:
        found = sorted(glob.glob(pattern))
        if found:
            return os.path.realpath(found[0])
    raise JailError("the sftp jail needs libnss_wrapper on this workstation (Debian/Ubuntu: "
                    "apt-get install libnss-wrapper; Fedora: dnf install nss_wrapper)")


def shared_objects(binary: str, preload: str) -> list[str]:
    """What the dynamic loader maps for ``binary`` with ``preload``: real paths, from ldd."""
    env = {"LD_PRELOAD": preload, "PATH": "/usr/bin:/bin", "LANG": "C"}
    try:
        out = subprocess.run(["ldd", binary], capture_output=True, env=env, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise JailError(f"cannot list the libraries of {binary} with ldd: {exc}") from None
    return parse_ldd(out.decode("utf-8", "replace"))


def parse_ldd(text: str) -> list[str]:
    """Paths from ldd's output; a library it could not find is an error, not a gap."""
    paths = []
    for line in text.splitlines():
        line = line.strip()
        if "not found" in line:
            raise JailError(f"ldd: {line}")
        target = line.split("=>", 1)[1] if "=>" in line else line
        target = target.split(" (", 1)[0].strip()
        if target.startswith("/"):
            paths.append(os.path.realpath(target))
    return paths


def account_files() -> tuple[int, int]:
    """memfds holding this user's own passwd and group lines, for nss_wrapper.

    Inherited by sftp-server (not close-on-exec) and named as /proc/self/fd/N:
    they are the only account data it can see.
    """
    user = pwd.getpwuid(os.getuid())
    group_name = _group_name(os.getgid())
    passwd = f"{user.pw_name}:x:{user.pw_uid}:{user.pw_gid}::{user.pw_dir}:/bin/false\n"
    group = f"{group_name}:x:{os.getgid()}:\n"
    fds = []
    for name, text in (("passwd", passwd), ("group", group)):
        fd = os.memfd_create(f"rd-jail-{name}", 0)
        os.write(fd, text.encode())
        fds.append(fd)
    return fds[0], fds[1]


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def build_ruleset(root: str, readonly: bool, server: str, libraries: list[str]) -> \
        landlock.Ruleset:
    try:
        ruleset = landlock.Ruleset()
    except landlock.LandlockUnavailable as exc:
        raise JailError(f"this kernel cannot confine sftp-server: {exc.strerror}") from None
    ruleset.allow(root, landlock.READ_ONLY if readonly else landlock.READ_WRITE)
    for path in [os.path.realpath(server), *libraries]:
        ruleset.allow(path, landlock.EXECUTE | landlock.READ_FILE)
    for path in ("/etc/ld.so.cache", "/etc/ld.so.preload"):
        if os.path.exists(path):
            ruleset.allow(path, landlock.READ_FILE)
    ruleset.allow("/dev/null", landlock.READ_FILE | landlock.WRITE_FILE)
    return ruleset


def server_argv(server: str, extra: list[str], root: str, readonly: bool) -> list[str]:
    """sftp-server's argv: it starts in the root and refuses SETSTAT (the relay does it)."""
    return [server, *extra, "-d", root, "-P", "setstat,lsetstat", *(["-R"] if readonly else [])]


def _widen_pipe(fd: int) -> None:
    """1 MiB pipes (the unprivileged maximum): 64 KiB ones cost a relay wake-up per two reads."""
    try:
        fcntl.fcntl(fd, F_SETPIPE_SZ, 1 << 20)
    except OSError:
        pass  # only speed is lost


def parse_args(args: list[str]) -> tuple[bool, str, list[str], int]:
    """(readonly, root, [sftp-server, args…], write lane fd or -1); JailError on anything
    else."""
    readonly, lane = False, -1
    if args[:1] == ["--ro"]:
        readonly, args = True, args[1:]
    if args[:1] == ["--lane"] and len(args) > 1 and args[1].isdigit():
        lane, args = int(args[1]), args[2:]
    if len(args) < 3 or args[1] != "--":
        raise JailError(USAGE)
    root = os.path.realpath(args[0])
    if not os.path.isdir(root):
        raise JailError(f"{args[0]} is not a directory")
    return readonly, root, args[2:], lane


def run(readonly: bool, root: str, server_cmd: list[str], lane: int = -1) -> int:
    """Confine this process, start sftp-server in the same confinement, relay until EOF."""
    server = server_cmd[0]
    preload = nss_wrapper()
    ruleset = build_ruleset(root, readonly, server, shared_objects(server, preload))
    passwd_fd, group_fd = account_files()
    env = {"LD_PRELOAD": preload, "NSS_WRAPPER_PASSWD": f"/proc/self/fd/{passwd_fd}",
           "NSS_WRAPPER_GROUP": f"/proc/self/fd/{group_fd}", "PATH": "/usr/bin:/bin"}
    to_server_r, to_server_w = os.pipe()
    from_server_r, from_server_w = os.pipe()
    for fd in (to_server_w, from_server_w):
        _widen_pipe(fd)
    ruleset.restrict_self()
    pid = os.posix_spawn(server, server_argv(server, server_cmd[1:], root, readonly), env,
                         file_actions=[(os.POSIX_SPAWN_DUP2, to_server_r, 0),
                                       (os.POSIX_SPAWN_DUP2, from_server_w, 1)])
    for fd in (to_server_r, from_server_w, passwd_fd, group_fd):
        os.close(fd)
    relay = sftp_relay.Relay(root.encode(), readonly, 0, 1, to_server_w, from_server_r, lane)
    relay.run()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        return run(*parse_args(args))
    except JailError as exc:
        sys.stderr.write(f"remote-docker jail: {exc}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
