"""``remote-docker``: set up and inspect the toolkit (not on the hot path).

Each verb lives in its own module under ``cli/`` and is imported only when
used.  One error boundary: expected failures print ``remote-docker: <message>``
and exit with their status; ``--traceback`` shows the Python traceback instead.
"""

import importlib
import os
import sys

from remote_docker.errors import ExitStatus, RemoteDockerError, UsageError

PROG = "remote-docker"

# verb -> (module under remote_docker.cli, one line of help)
VERBS: dict[str, tuple[str, str]] = {
    "use": ("use", "choose the docker-machine ([user@]host[:port], ssh alias or docker context)"),
    "machines": ("machines", "list known docker-machines (* = in use) [--import-contexts]"),
    "status": ("status", "show the docker-machine, the connection and the remote docker"),
    "local": ("local", "run the workstation's own docker client: remote-docker local ps"),
    "install-shims": ("shims", "put docker and the other shims on PATH ahead of a local docker"),
    "uninstall-shims": ("shims", "remove the shims that install-shims put on PATH"),
    "completion": ("completion", "print shell completion for bash, zsh or fish"),
    "disconnect": ("status", "close the persistent connection to the docker-machine"),
    "mounts": ("mounts", "list live reverse mounts (uuid, workstation dir, container, age)"),
    "gc": ("mounts", "remove reverse mounts left behind by killed processes [--quiet]"),
    "dev": ("dev", "dev sessions: ssh into a container on the docker-machine (dodo CMD…)"),
    "push": ("images", "send images to the docker-machine, only the layers it lacks"),
    "pull": ("images", "bring images back from the docker-machine, only the layers missing here"),
    "ports": ("ports", "list published ports forwarded to localhost [--sync: pick up running ones]"),
    "testbed": ("testbed", "the local test bed: up | down | status | exec -- CMD (root)"),
    "version": ("", "print remote-docker's version"),
}


def usage() -> str:
    width = max(len(v) for v in VERBS)
    lines = [f"usage: {PROG} COMMAND [ARGS…]", "", "commands:"]
    lines += [f"  {verb.ljust(width)}  {text}" for verb, (_, text) in VERBS.items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    traceback = "--traceback" in args
    if traceback:
        args.remove("--traceback")
    try:
        return dispatch(args)
    except RemoteDockerError as exc:
        if traceback:
            raise
        sys.stderr.write(f"{PROG}: {exc.message}\n")
        return exc.status
    except KeyboardInterrupt:
        return ExitStatus.SIGINT
    except OSError as exc:
        if traceback or os.environ.get("REMOTE_DOCKER_TRACEBACK"):
            raise
        from remote_docker.cli import os_error_line

        sys.stderr.write(f"{PROG}: {os_error_line(exc)}\n")
        return ExitStatus.ERROR


def dispatch(args: list[str]) -> int:
    if not args or args[0] in ("-h", "--help", "help"):
        sys.stdout.write(usage())
        return ExitStatus.OK if args else ExitStatus.USAGE
    verb, rest = args[0], args[1:]
    if verb in ("version", "--version"):
        from remote_docker import __version__

        sys.stdout.write(f"remote-docker {__version__}\n")
        return ExitStatus.OK
    if verb not in VERBS:
        raise UsageError(f"unknown command {verb!r}; see '{PROG} --help'")
    module = importlib.import_module(f"remote_docker.cli.{VERBS[verb][0]}")
    handler = getattr(module, "main_" + verb.replace("-", "_"), None) or module.main
    return handler(rest)
