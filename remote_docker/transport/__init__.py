"""The only place that spawns ssh: OpenSSH (default, hot path) or Fabric.

``run_plan`` is the one interface the CLI uses to run a forwarded command;
the transport is chosen by ``REMOTE_DOCKER_TRANSPORT`` or ``transport`` in the
config file.  Imports are lazy so that the shim loads only the one it uses.
"""

import os

from remote_docker.config import Machine
from remote_docker.forward import Plan


def run_plan(machine: Machine, plan: Plan, name: str = "openssh",
             env: dict | os._Environ = os.environ) -> int:
    if name == "fabric":
        from remote_docker.transport.fabric import run_plan as fabric_run

        return fabric_run(machine, plan, env)
    from remote_docker.transport.openssh import ControlMaster

    return ControlMaster(machine, env).run(plan)


def write_output(local: str, data: bytes) -> None:
    """A file the docker-machine's docker wrote for us (``--cidfile``, ``--iidfile``), put
    where the user named it: whole or not at all (a temporary name, then a rename), and
    a place it cannot go is docker's own ``open PATH: reason``."""
    tmp = f"{local}.rd-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, local)
    except OSError as exc:
        from remote_docker.errors import DockerError
        from remote_docker.gofs import reason

        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise DockerError(f"open {local}: {reason(exc)}") from None
