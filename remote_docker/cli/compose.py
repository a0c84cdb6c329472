"""``docker-compose``: the workstation's compose, driving the docker-machine's engine.

``docker compose …`` reaches the same code from the ``docker`` shim.  See
``remote_docker.compose`` for how, and why compose runs on the workstation.
"""

import os
import sys

from remote_docker.cli import guarded

PROG = "docker-compose"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    return guarded(PROG, lambda: run(args))


def run(args: list[str]) -> int:
    from remote_docker.cli.docker import collect_stale_mounts
    from remote_docker.compose import run as compose

    collect_stale_mounts(os.environ)  # what a killed command left, as every docker call does
    return compose.run(args, os.environ, own=sys.argv[0])
