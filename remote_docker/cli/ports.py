"""``remote-docker ports [--sync]``: the workstation's forwards of published ports.

Thin: the logic is in ``remote_docker.ports``.
"""

from __future__ import annotations

import os
import sys

from remote_docker.errors import ExitStatus, UsageError

USAGE = """usage: remote-docker ports [--sync]

List the containers' published ports forwarded to this workstation's localhost.
--sync: look at the docker-machine now (containers started before the watcher,
or while it was not running) and forward or cancel what changed.
"""


def main(args: list[str]) -> int:
    if any(a in ("-h", "--help") for a in args):
        sys.stdout.write(USAGE)
        return ExitStatus.OK
    if [a for a in args if a != "--sync"]:
        raise UsageError("usage: remote-docker ports [--sync]")
    from remote_docker import config
    from remote_docker.ports import control

    env = os.environ
    spec = config.machine_spec(env)
    if spec == config.LOCAL:
        raise UsageError("the workstation's own docker publishes on localhost itself")
    machine = config.parse_machine(spec)
    if "--sync" in args:
        control.sync(machine, env)
    forwards, note = control.listing(machine, env)
    if forwards:
        sys.stdout.write("\n".join(control.table(forwards)) + "\n")
    if note:
        sys.stderr.write(f"remote-docker: {note}\n")
    return ExitStatus.OK
