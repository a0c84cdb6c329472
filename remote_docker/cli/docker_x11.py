"""``docker.x11``: ``docker run`` whose X11 windows appear on this workstation's display.

The seed's script used ``ssh -X`` and ``--net=host``.  Here the container
gets a unix socket, ``/tmp/.X11-unix/X0``, that the ssh master relays to the
workstation's X server (``x11/session.py``), and an Xauthority file with the
user's cookie for it (``x11/display.py``): the container keeps its own
network, and the X server stays closed to everyone else.

The container runs in a child ``docker`` shim, so that this process outlives
it whatever ends it (Ctrl-C and a forwarded signal make the shim die of that
signal) and removes the session afterwards; the child holds the session's
lock too, so a ``kill -9`` of this process leaves a session that ``gc``
removes once the container has ended.
"""

from __future__ import annotations

import os
import sys

from remote_docker.cli import guarded
from remote_docker.errors import ExitStatus, UsageError

PROG = "docker.x11"
USAGE = """usage: docker.x11 [docker run options] IMAGE [COMMAND [ARG…]]

Runs IMAGE on the docker-machine (docker run --rm -i --init [-t]) with its X11
windows shown on this workstation's display ($DISPLAY), through the ssh
connection: no --net=host, no xhost +.
"""
CONTAINER_XAUTHORITY = "/tmp/.docker.xauth"
# Shared memory between client and X server cannot work across machines.
NO_SHM_ENV = {"QT_X11_NO_MITSHM": "1", "_X11_NO_MITSHM": "1", "_MITSHM": "0"}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    return guarded(PROG, lambda: _run(args))


def x11_options(socket: str, xauthority: str, remote_prefix: str) -> list[str]:
    """``docker run`` options that give the container the session's display."""
    options = ["-v", f"{remote_prefix}{socket}:/tmp/.X11-unix/X0",
               "-v", f"{remote_prefix}{xauthority}:{CONTAINER_XAUTHORITY}:ro",
               "-e", "DISPLAY=:0", "-e", f"XAUTHORITY={CONTAINER_XAUTHORITY}"]
    for name, value in NO_SHM_ENV.items():
        options += ["-e", f"{name}={value}"]
    return options


def run_argv(args: list[str], options: list[str], interactive: bool) -> list[str]:
    """``--init``: a GUI program is not written to be PID 1, which ignores SIGTERM; under an
    init, Ctrl-C, ``kill`` and closing the terminal end it as they would end it locally."""
    return ["run", "--rm", "-i", "--init", *(["-t"] if interactive else []), *options, *args]


def check_args(args: list[str]) -> list[str]:
    """The host names the user gave the container (for FamilyLocal cookies); refuse -d."""
    from remote_docker import dockercli

    cmd = dockercli.parse(["run", *args])
    if cmd.flag("-d", "--detach"):
        raise UsageError("docker.x11 runs the container in the foreground (its display "
                         "relay ends with it): drop -d")
    if not cmd.positionals:
        raise UsageError("docker.x11: no image given; see 'docker.x11 --help'")
    return cmd.values("-h", "--hostname")


def _master(env: dict | os._Environ):
    from remote_docker import config
    from remote_docker.transport.openssh import ControlMaster

    spec = config.machine_spec(env)
    if spec == config.LOCAL:
        raise UsageError("docker.x11 needs a docker-machine (REMOTE_DOCKER_HOST=local runs the "
                         "workstation's own docker, which can use the display directly)")
    if config.transport_name(env) != "openssh":
        raise UsageError("docker.x11 needs the openssh transport (its master relays the "
                         "display); set transport = \"openssh\"")
    return ControlMaster(config.parse_machine(spec), env)


def _run(args: list[str]) -> int:
    if not args or args[0] in ("--help",):
        sys.stdout.write(USAGE)
        return ExitStatus.OK if args else ExitStatus.USAGE
    from remote_docker import config
    from remote_docker.x11 import display, session

    env = os.environ
    hostnames = check_args(args)
    found = display.find(env)
    master = _master(env)
    master.ensure()
    session.collect(master)
    live, fd = session.open_session(master, found, display.container_xauthority(found, hostnames))
    try:
        prefix = "@" if config.translate_paths(env) else ""
        argv = run_argv(args, x11_options(live.socket, live.xauthority, prefix),
                        os.isatty(0) and os.isatty(1))
        status = run_child(argv, fd)
    finally:
        session.close_session(master, live, fd)
    if status < 0:
        from remote_docker.transport.process import die_of

        die_of(-status)
    return status


def run_child(argv: list[str], lock_fd: int) -> int:
    """The docker shim in a child that shares the session lock; its status (-N: signal N)."""
    import signal
    import subprocess

    from remote_docker.mounts.keeper import python_argv

    child = subprocess.Popen(python_argv("remote_docker.cli.docker", argv), pass_fds=(lock_fd,))

    def relay(signum, _frame) -> None:
        try:
            child.send_signal(signum)
        except ProcessLookupError:
            pass

    # The terminal's Ctrl-C reaches the child too (one process group): ignore it here.
    previous = {signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN),
                signal.SIGQUIT: signal.signal(signal.SIGQUIT, signal.SIG_IGN),
                signal.SIGTERM: signal.signal(signal.SIGTERM, relay),
                signal.SIGHUP: signal.signal(signal.SIGHUP, relay)}
    try:
        return child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
