"""``remote-docker local ARGS…``: the workstation's own docker, bypassing the shim."""

import os

from remote_docker.transport.local import exec_local_docker


def main(args: list[str]) -> int:
    exec_local_docker(args, "remote-docker local asks for the local docker", os.environ)
    return 0  # not reached: exec_local_docker replaces this process
