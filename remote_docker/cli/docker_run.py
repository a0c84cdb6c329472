"""``docker-run``: ``docker run`` with the current directory mounted where it is.

As the original script did: the workstation's current directory is mounted
at the same absolute path in the container and is its working directory,
``--rm``, ``-i`` (stdin flows) and ``-t`` when the terminal is interactive.
The mount itself is the shim's ordinary ``-v`` translation: a reverse mount,
released when the container ends.
"""

import os
import sys

from remote_docker.cli import guarded
from remote_docker.cli.docker import forward
from remote_docker.errors import ExitStatus, UsageError

PROG = "docker-run"


def run_argv(args: list[str], directory: str, interactive: bool) -> list[str]:
    """The ``docker run`` argv that docker-run stands for."""
    return ["run", "--rm", "-i", *(["-t"] if interactive else []),
            "-v", f"{directory}:{directory}", "-w", directory, *args]


def logical_cwd(env: dict | os._Environ) -> str:
    """``$PWD`` when it names the current directory (keeps the user's symlinked path)."""
    cwd = os.getcwd()
    pwd = env.get("PWD", "")
    if pwd.startswith("/") and os.path.realpath(pwd) == os.path.realpath(cwd):
        return pwd
    return cwd


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    return guarded(PROG, lambda: _run(args))


def _run(args: list[str]) -> int:
    if not args or args[0] in ("-h", "--help"):
        sys.stdout.write("usage: docker-run [docker run options] IMAGE [COMMAND [ARG…]]\n"
                         "Runs IMAGE on the docker-machine with the current directory "
                         "mounted at the same path, as the working directory.\n")
        return ExitStatus.OK if args else ExitStatus.USAGE
    try:
        directory = logical_cwd(os.environ)
    except OSError:
        raise UsageError("the current directory no longer exists") from None
    return forward(run_argv(args, directory, os.isatty(0) and os.isatty(1)), os.environ)
