"""``docker-machine`` and ``docker-search``: commands run on the docker-machine, as the seed did.

``docker-search`` is ``docker search --no-trunc`` there (registries are the
docker-machine's business); ``docker-machine`` runs that tool there, with one
clear line when it is not installed.  Both are ordinary forwarded calls:
same stdout, stderr and exit status as running them there by hand.
"""

import os
import sys

from remote_docker.cli import guarded
from remote_docker.cli.docker import forward


def docker_search(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    return guarded("docker-search", lambda: forward(["search", "--no-trunc", *args], os.environ))


def docker_machine(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    return guarded("docker-machine", lambda: run_remote_tool(["docker-machine", *args],
                                                            os.environ))


def run_remote_tool(argv: list[str], env: dict | os._Environ) -> int:
    """Run ``argv`` on the docker-machine with the terminal as docker would get it."""
    from remote_docker import config, forward as fwd
    from remote_docker.transport import run_plan

    machine = config.parse_machine(config.machine_spec(env))
    plan = fwd.Plan(argv)
    term = fwd.Terminal.detect()
    plan.tty = term.stdin and term.stdout and term.stderr
    plan.stdin = "inherit"
    return run_plan(machine, plan, config.transport_name(env), env)
