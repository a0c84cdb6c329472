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

Landlock cannot restrict chmod, chown or utime, which sftp-server's SETSTAT
does by path.  Where the kernel offers seccomp user notification, sftp-server
talks to the client directly and this process (``seccomp_guard``) makes
those few calls for it, beneath DIR only; elsewhere, with ``--relay``, or
with a write lane, the relay in ``sftp_relay`` stands in the stream and
answers SETSTAT itself.
"""

from __future__ import annotations

import glob
import grp
import os
import pwd
import socket
import subprocess
import sys
from typing import NamedTuple

from remote_docker.mounts import landlock, seccomp_guard, sftp_relay
from remote_docker.transport.process import widen_pipe  # not later: confined, no .py reads

SFTP_SERVERS = ("/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server",
                "/usr/lib/ssh/sftp-server", "/usr/libexec/sftp-server")
NSS_WRAPPER_GLOBS = ("/usr/lib/*/libnss_wrapper.so", "/usr/lib64/libnss_wrapper.so",
                     "/usr/lib/libnss_wrapper.so", "/usr/local/lib*/libnss_wrapper.so")
USAGE = ("usage: python3 -m remote_docker.mounts.jail [--ro] [--relay] [--lane FD] DIR -- "
         "SFTP_SERVER [ARGS…]")


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
    # /etc/localtime: sftp-server formats each listed entry's time (its long names), and
    # glibc, refused the zone file, tries to open it again for every entry: a 100-entry
    # listing took ~30% longer. The file says only which time zone this machine is in.
    for path in ("/etc/ld.so.cache", "/etc/ld.so.preload", "/etc/localtime"):
        if os.path.exists(path):
            ruleset.allow(path, landlock.READ_FILE)
    ruleset.allow("/dev/null", landlock.READ_FILE | landlock.WRITE_FILE)
    return ruleset


def server_argv(server: str, extra: list[str], root: str, readonly: bool,
                relayed: bool = True) -> list[str]:
    """sftp-server's argv: it starts in the root; relayed, it refuses SETSTAT (the relay
    does it), guarded it does it itself (its calls are the guard's to make)."""
    refuse = ["-P", "setstat,lsetstat"] if relayed else []
    return [server, *extra, "-d", root, *refuse, *(["-R"] if readonly else [])]


class Args(NamedTuple):
    readonly: bool
    root: str
    server_cmd: list[str]  # sftp-server and its arguments
    lane: int = -1  # the write lane's fd, or -1
    relay: bool = False  # the relay even where the guard could run


def parse_args(args: list[str]) -> Args:
    """The command line, or JailError."""
    readonly = relay = False
    lane = -1
    while args[:1] in (["--ro"], ["--relay"], ["--lane"]):
        if args[0] == "--lane":
            if len(args) < 2 or not args[1].isdigit():
                raise JailError(USAGE)
            lane, args = int(args[1]), args[2:]
        else:
            readonly, relay = readonly or args[0] == "--ro", relay or args[0] == "--relay"
            args = args[1:]
    if len(args) < 3 or args[1] != "--":
        raise JailError(USAGE)
    root = os.path.realpath(args[0])
    if not os.path.isdir(root):
        raise JailError(f"{args[0]} is not a directory")
    return Args(readonly, root, args[2:], lane, relay)


def run(args: Args) -> int:
    """Confine this process and sftp-server, then guard or relay it until it ends."""
    server = args.server_cmd[0]
    preload = nss_wrapper()
    libraries = shared_objects(server, preload)
    passwd_fd, group_fd = account_files()
    env = {"LD_PRELOAD": preload, "NSS_WRAPPER_PASSWD": f"/proc/self/fd/{passwd_fd}",
           "NSS_WRAPPER_GROUP": f"/proc/self/fd/{group_fd}", "PATH": "/usr/bin:/bin"}
    ruleset = build_ruleset(args.root, args.readonly, server, libraries)
    # (An unreadable binary makes the kernel mark its process undumpable at exec, and its
    # memory, where the guard reads each path, unreadable to us.)
    if args.lane < 0 and not args.relay and seccomp_guard.available() and \
            os.access(server, os.R_OK):
        # This process must read sftp-server's memory: /proc too, for it alone (the
        # server's own ruleset, nested in this one, has no /proc).
        outer = build_ruleset(args.root, args.readonly, server, libraries)
        outer.allow("/proc", landlock.READ_FILE)
        outer.restrict_self()
        status = guarded(args, ruleset, env)
    else:
        ruleset.restrict_self()
        status = relayed(args, env)
    for fd in (passwd_fd, group_fd):
        os.close(fd)
    return status


def relayed(args: Args, env: dict[str, str]) -> int:
    """sftp-server behind the relay (this process, already confined)."""
    server = args.server_cmd[0]
    to_server_r, to_server_w = os.pipe()
    from_server_r, from_server_w = os.pipe()
    for fd in (to_server_w, from_server_w):
        widen_pipe(fd)  # 64 KiB pipes cost the relay a wake-up per two reads
    pid = os.posix_spawn(server, server_argv(server, args.server_cmd[1:], args.root,
                                             args.readonly), env,
                         file_actions=[(os.POSIX_SPAWN_DUP2, to_server_r, 0),
                                       (os.POSIX_SPAWN_DUP2, from_server_w, 1)])
    for fd in (to_server_r, from_server_w):
        os.close(fd)
    relay = sftp_relay.Relay(args.root.encode(), args.readonly, 0, 1, to_server_w,
                             from_server_r, args.lane)
    relay.run()
    return _exit_status(pid)


def guarded(args: Args, ruleset: landlock.Ruleset, env: dict[str, str]) -> int:
    """sftp-server on our stdin and stdout, its metadata calls made by this process."""
    server = args.server_cmd[0]
    argv = server_argv(server, args.server_cmd[1:], args.root, args.readonly, relayed=False)
    ours, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child execs or exits)
        ours.close()
        _become_server(ruleset, theirs, server, argv, env)
    theirs.close()
    os.close(ruleset.fd)
    message, fds, _, _ = socket.recv_fds(ours, 512, 1)
    ours.close()
    if not fds:
        _exit_status(pid)
        raise JailError("cannot guard sftp-server: " + (message.decode(errors="replace")
                                                          or "it ended"))
    devnull = os.open("/dev/null", os.O_RDWR)  # the stream is sftp-server's alone now
    for fd in (0, 1):
        os.dup2(devnull, fd)
    os.close(devnull)
    seccomp_guard.Guard(args.root, args.readonly, fds[0]).run(pid)
    return _exit_status(pid)


def _become_server(ruleset: landlock.Ruleset, parent: socket.socket, server: str,
                   argv: list[str], env: dict[str, str]) -> None:  # pragma: no cover
    """In the forked child: confine, put the filter on, hand its listener up, exec."""
    try:
        ruleset.restrict_self()
        listener = seccomp_guard.install_filter()
        socket.send_fds(parent, [b"ok"], [listener])
        os.close(listener)
        parent.close()
        os.execve(server, argv, env)
    except BaseException as exc:  # noqa: BLE001 - told to the parent, which says it
        try:
            parent.send(str(exc).encode()[:500])
        finally:
            os._exit(127)


def _exit_status(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        return run(parse_args(args))
    except JailError as exc:
        sys.stderr.write(f"remote-docker jail: {exc}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
