"""``remote-docker machines [--import-contexts]``: the docker-machines this workstation knows."""

import os
import sys

from remote_docker import machines
from remote_docker.errors import ExitStatus, UsageError

USAGE = """usage: remote-docker machines [--import-contexts]

Lists the docker-machines 'remote-docker use' has recorded; '*' marks the one in use.
  --import-contexts  add every docker context whose endpoint is ssh:// (by its name)
Switch with 'remote-docker use NAME'.
"""


def main(args: list[str]) -> int:
    env = os.environ
    if any(a in ("-h", "--help") for a in args):
        sys.stdout.write(USAGE)
        return ExitStatus.OK
    unknown = [a for a in args if a != "--import-contexts"]
    if unknown:
        raise UsageError(f"machines: unknown argument {unknown[0]!r} (see 'remote-docker "
                         "machines --help')")
    if args:
        added = machines.import_contexts(env)
        sys.stderr.write(f"imported {len(added)} docker context(s)"
                         + (f": {', '.join(added)}\n" if added else "\n"))
    rows = machines.listing(env)
    if not rows:
        sys.stderr.write("no docker-machine yet: 'remote-docker use [user@]host' chooses one\n")
        return ExitStatus.OK
    width = max(len(name) for _, name, _ in rows)
    for is_current, name, spec in rows:
        sys.stdout.write(f"{'*' if is_current else ' '} {name.ljust(width)}  {spec}\n")
    return ExitStatus.OK
