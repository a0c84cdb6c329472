"""A ``docker run``/``create`` whose bind sources are workstation paths.

Each workstation path (``bind_sources``) is served to the docker-machine by
a reverse mount before docker sees the command; docker then binds the mount's
volume (a directory) or its path on the docker-machine (a single file).  A
mount lives as long as its container: released right after a foreground
``run --rm``; bound to the container otherwise (``-d``, ``create``, no
``--rm``), so the mount's keeper releases it when the container is removed.
If no container was made (docker refused the command), everything is
released at once.  Nothing is handed to docker before its mount is live.
"""

import os

from remote_docker import bind_sources, dockercli, gofs
from remote_docker.config import Machine
from remote_docker.errors import UsageError
from remote_docker.forward import OUTPUT_PLACEHOLDER, Plan


def run(machine: Machine, plan: Plan, transport: str, env: dict | os._Environ) -> int:
    from remote_docker.mounts import reverse
    from remote_docker.transport import run_plan
    from remote_docker.transport.openssh import ControlMaster

    master = ControlMaster(machine, env)
    master.ensure()
    mounts = []
    released = False
    try:
        targets = []
        served: dict[tuple[str, bool], object] = {}  # one mount per directory and mode
        for request in plan.mounts:
            directory = os.path.dirname(request.local_path) if request.is_file \
                else request.local_path
            if request.create:  # as the engine would make a missing bind source
                try:
                    os.makedirs(directory, exist_ok=True)
                except OSError as exc:
                    raise UsageError(f"bind source path does not exist and cannot be created "
                                     f"here: {directory}: {gofs.reason(exc)}") from None
            key = (directory, request.readonly)
            if key not in served:
                served[key] = reverse.mount(master, directory, readonly=request.readonly)
                mounts.append(served[key])
            mount = served[key]
            targets.append(f"{mount.mountpoint}/{os.path.basename(request.local_path)}"
                           if request.is_file else mount.volume)
        plan.argv = bind_sources.substitute(plan.argv, targets)
        cidfile = _container_id_file(plan)
        status = run_plan(machine, plan, transport, env)
        container = _read_container_id(cidfile)
        if container and outlives_the_command(plan):
            for mount in mounts:
                reverse.bind(master, mount, container)
        else:
            released = True
            _release(master, mounts)
        return status
    except BaseException:
        if not released:
            _release(master, mounts)
        raise


def outlives_the_command(plan: Plan) -> bool:
    """Whether the container still exists when docker returns."""
    cmd = dockercli.parse(plan.argv[1:])
    if cmd.command == "create":
        return True
    return cmd.flag("-d", "--detach") or not cmd.flag("--rm")


def _container_id_file(plan: Plan) -> tuple[str, bool] | None:
    """Where docker will write the container id: the user's --cidfile, or ours."""
    for name, local in plan.outputs:
        if name.startswith("cid"):
            return local, False
    if not outlives_the_command(plan):
        return None
    import tempfile

    fd, local = tempfile.mkstemp(prefix="remote-docker-cid-")
    os.close(fd)
    os.unlink(local)  # docker refuses an existing cidfile; the fetch recreates it
    name = f"cid{len(plan.outputs)}"
    plan.outputs.append((name, local))
    cmd = dockercli.parse(plan.argv[1:])
    at = 1 + len(cmd.global_args) + len(cmd.path)
    plan.argv[at:at] = ["--cidfile", OUTPUT_PLACEHOLDER + name]
    return local, True


def _read_container_id(cidfile: tuple[str, bool] | None) -> str:
    if cidfile is None:
        return ""
    path, ours = cidfile
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return ""
    finally:
        if ours:
            try:
                os.unlink(path)
            except OSError:
                pass


def _release(master, mounts: list) -> None:
    from remote_docker.mounts import reverse

    for mount in mounts:
        reverse.unmount(master, mount)
