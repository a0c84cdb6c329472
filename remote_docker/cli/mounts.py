"""``docker-mount``, ``docker-umount``, ``remote-docker mounts`` and ``remote-docker gc``.

Thin: the logic is in ``remote_docker.mounts``.  docker-mount prints only the
volume name on stdout, so ``docker run -v "$(docker-mount)":/w …`` works.
"""

from __future__ import annotations

import os
import sys

from remote_docker.cli import guarded
from remote_docker.errors import ExitStatus, RemoteDockerError, UsageError

MOUNT_USAGE = """usage: docker-mount [DIR] [--ro]

Serve DIR (default: the current directory) from this workstation to the
docker-machine and print the name of a docker volume bound to it, for
docker run -v NAME:/path.  It stays until docker-umount NAME.
"""
UMOUNT_USAGE = """usage: docker-umount NAME…|--all

Remove docker-mount's volumes (rd-…), their mounts and directories on the
docker-machine.  --all: every mount of this workstation on that machine.
"""
GC_USAGE = """usage: remote-docker gc [--quiet]

Remove every mount left behind by a process that was killed: records here,
volumes, mounts, directories and sshfs processes on the docker-machine;
docker.x11 sessions (display relay, X socket and cookie file); and
the port forwards a killed ports watcher left (a new watcher re-checks them).
"""


def _master(env: dict | os._Environ):
    from remote_docker import config
    from remote_docker.transport.openssh import ControlMaster

    spec = config.machine_spec(env)
    if spec == config.LOCAL:
        raise UsageError("reverse mounts need a docker-machine; the workstation's own docker "
                         "can bind DIR directly (docker run -v DIR:/path)")
    return ControlMaster(config.parse_machine(spec), env)


def _wants_help(args: list[str], usage: str) -> bool:
    if any(a in ("-h", "--help") for a in args):
        sys.stdout.write(usage)
        return True
    return False


def docker_mount(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    return guarded("docker-mount", lambda: run_mount(args))


def run_mount(args: list[str]) -> int:
    if _wants_help(args, MOUNT_USAGE):
        return ExitStatus.OK
    readonly = "--ro" in args
    rest = [a for a in args if a != "--ro"]
    if len(rest) > 1 or any(a.startswith("-") for a in rest):
        raise UsageError("usage: docker-mount [DIR] [--ro]")
    from remote_docker.mounts import reverse

    master = _master(os.environ)
    m = reverse.mount(master, rest[0] if rest else ".", readonly)
    reverse.keep(master, m)
    sys.stdout.write(m.volume + "\n")
    return ExitStatus.OK


def docker_umount(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    return guarded("docker-umount", lambda: run_umount(args))


def run_umount(args: list[str]) -> int:
    if _wants_help(args, UMOUNT_USAGE):
        return ExitStatus.OK
    if not args or ("--all" in args and len(args) > 1):
        raise UsageError("usage: docker-umount NAME…|--all")
    from remote_docker.mounts import registry, reverse

    env = os.environ
    master = _master(env)
    if args == ["--all"]:
        names = [u for u in registry.uuids(env)
                 if (r := registry.load(u, env)) is None or r.machine == master.machine.spec]
    else:
        names = args
    failed = 0
    for name in names:
        if not reverse.resolve(name) or "/" in name:
            raise UsageError(f"{name!r} is not a mount name (rd-…)")
        try:
            reverse.unmount(master, name)
        except RemoteDockerError as exc:
            sys.stderr.write(f"docker-umount: {registry.volume_name(reverse.resolve(name))}: "
                             f"{exc.message}\n")
            failed = exc.status
    return failed


def main_mounts(args: list[str]) -> int:
    if _wants_help(args, "usage: remote-docker mounts\n\nList live reverse mounts.\n"):
        return ExitStatus.OK
    if args:
        raise UsageError("usage: remote-docker mounts (takes no arguments)")
    from remote_docker.mounts import registry

    env = os.environ
    for uuid in registry.uuids(env):
        record = registry.load(uuid, env)
        if record is None:
            continue
        stale = "" if registry.is_held(uuid, env) else \
            "  (stale: its keeper is gone; remote-docker gc removes it)"
        sys.stdout.write(f"{record}{stale}\n")
    return ExitStatus.OK


def main_gc(args: list[str]) -> int:
    if _wants_help(args, GC_USAGE):
        return ExitStatus.OK
    quiet = "--quiet" in args
    if [a for a in args if a != "--quiet"]:
        raise UsageError("usage: remote-docker gc [--quiet]")
    from remote_docker.mounts import gc
    from remote_docker.ports import control

    from remote_docker.x11 import session as x11_sessions

    master = _master(os.environ)
    removed = (gc.collect(master, quiet=quiet) + x11_sessions.collect(master)
               + control.collect(master.machine, os.environ))
    if not quiet:
        for line in removed:
            sys.stdout.write(f"removed {line}\n")
    return ExitStatus.OK
