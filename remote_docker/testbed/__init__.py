"""The local test bed: a docker-machine and a workstation on one machine, real parts on loopback.

`remote-docker testbed up|down|status|exec` drives it; tests use this API.
Standard library only: it runs as root before any dependency is installed.
The bed is for disposable machines; see remote_docker.testbed.bed.
"""

from remote_docker.testbed.bed import down, is_up, status, up
from remote_docker.testbed.code import sync_code
from remote_docker.testbed.process import TestbedError
from remote_docker.testbed.runas import dm_command, dm_env, ws_command, ws_env

__all__ = [
    "TestbedError", "dm_command", "dm_env", "down", "is_up", "status", "sync_code", "up",
    "ws_command", "ws_env",
]
