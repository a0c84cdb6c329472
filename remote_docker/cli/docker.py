"""The ``docker`` shim: any docker command, run on the docker-machine.

This is the hot path.  It imports only what forwarding needs (see
``python -X importtime``): config, the argv grammar, the plan and the OpenSSH
transport; no Fabric, no rich, no subprocess, no signal, no re.
"""

import os
import sys

from remote_docker.cli import guarded

TYPE_CHECKING = False  # the names below only for type checkers: the hot path imports lazily
if TYPE_CHECKING:
    from remote_docker.dockercli import DockerCommand

PROG = "docker"
# Commands that may start a container, so published ports may appear: only
# these look at the ports watcher (the module is not even imported otherwise).
MAY_START = frozenset({"run", "start", "restart", "create", "unpause", "compose"})


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    return guarded(PROG, lambda: forward(args, os.environ))


def forward(args: list[str], env: dict | os._Environ) -> int:
    from remote_docker import config, dockercli, forward as fwd
    from remote_docker.transport import run_plan

    cmd = dockercli.parse(args)
    why = _local_reason(cmd, env)
    if why:
        from remote_docker.transport.local import exec_local_docker

        exec_local_docker(args, why, env, own=sys.argv[0])
    if cmd.path[:1] == ["compose"]:  # the workstation's compose, as a plugin would run
        from remote_docker.compose import run as compose

        collect_stale_mounts(env)  # before: compose replaces this process
        return compose.run(args[len(cmd.global_args) + 1:], env)
    machine = config.parse_machine(config.machine_spec(env))
    plan = fwd.plan(args, env, fwd.Terminal.detect(), translate=config.translate_paths(env),
                    parsed=cmd)
    if cmd.command == "cp":
        from remote_docker import container_copy

        if container_copy.is_local_copy(cmd):
            return container_copy.copy(machine, cmd, env, config.transport_name(env))
    transport = config.transport_name(env)
    ports_to_wait = published_ports(cmd, machine, env) if transport == "openssh" else []
    if plan.mounts:
        from remote_docker import mounted_run

        status = mounted_run.run(machine, plan, transport, env)
    else:
        status = run_plan(machine, plan, transport, env)
    if ports_to_wait and status == 0:
        from remote_docker.ports.publish import wait_for

        wait_for(machine.key(), ports_to_wait, env)
    collect_stale_mounts(env)
    return status


def published_ports(cmd: "DockerCommand", machine, env: dict | os._Environ) -> list[int]:
    """A command that may start containers: warn about ports we cannot forward, and
    have the machine's ports watcher running (a flock test when it is)."""
    if cmd.command.split(" ")[0] not in MAY_START:
        return []
    if cmd.command in ("run", "create") and not cmd.has("-p", "--publish", "-P", "--publish-all"):
        return []  # publishes nothing: no watcher needed
    from remote_docker.ports import publish

    key = machine.key()
    return publish.before(cmd, key, env,
                          spawn=lambda: publish.spawn_watcher(machine.spec, key, env))


def collect_stale_mounts(env: dict | os._Environ) -> None:
    """Mounts a killed command left behind are cleaned by the next call, quietly.

    Asking costs a directory listing (``statedir`` imports nothing heavy); only
    when something is stale does a detached ``remote-docker gc --quiet`` start,
    so this call's own exit is not delayed by ssh round trips.
    """
    from remote_docker.mounts import statedir

    if not statedir.stale_hint(env):
        return
    from remote_docker.mounts.keeper import python_argv

    argv = python_argv("remote_docker.cli.remote_docker", ["gc", "--quiet"])
    null = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_RDWR, 0) for fd in (0, 1, 2)]
    try:
        os.posix_spawn(argv[0], argv, env, file_actions=null, setsid=True)
    except OSError:
        pass  # gc runs at the next call, or by hand


def _local_reason(cmd: "DockerCommand", env: dict | os._Environ) -> str:
    """Why this call should go to the workstation's own docker, or "" if it should not.

    An endpoint the user names (-H, --context, DOCKER_HOST, DOCKER_CONTEXT)
    wins over the configured docker-machine, as it would with a plain docker.
    """
    from remote_docker import config

    if env.get("REMOTE_DOCKER_HOST", "").strip() == config.LOCAL:
        return "REMOTE_DOCKER_HOST=local asks for the local docker"
    for var in ("DOCKER_HOST", "DOCKER_CONTEXT"):
        if env.get(var) and env[var] != env.get(config.COMPOSE_DOCKER_HOST):
            return f"{var} is set, which names a docker daemon explicitly"
    if cmd.explicit_endpoint:
        return "-H/--host/--context names a docker daemon explicitly"
    if cmd.command.split(" ")[0] == "context":
        return ("'docker context' manages a local docker client's endpoints (remote-docker "
                "chooses the docker-machine with 'remote-docker use')")
    return ""
