"""Running the workstation's compose against the docker-machine's engine.

Every subcommand: compose itself, replacing this process (so its output,
terminal handling, signals and exit status are compose's own), with
``DOCKER_HOST`` on the socket the ControlMaster forwards.  For the
subcommands that create containers (``up``, ``run``, ``create``), first the
model with its workstation bind sources made reverse mounts (``model``),
handed to compose on a memfd as its only file, with the project directory
it had, so that the project's name and ``.env`` stay what they were.

The mounts' lifetime: compose inherits their keepers' channels, so each
keeper learns when compose ends, however it ends (``kill -9`` included);
it then lives as long as any container still uses its volume (the keeper
adopts the next user as the last one goes) and releases it after that,
which is what ``down`` (or ``rm``, or ``run --rm``) brings about.  A mount a
running container already uses is reused for the same directory, so a
second ``up`` finds the service's configuration unchanged, as locally.
"""

import os

from remote_docker import config
from remote_docker.compose import model as compose_model
from remote_docker.compose.options import CREATING, ComposeCommand, project_directory
from remote_docker.errors import RemoteDockerError, UsageError
from remote_docker.transport.local import is_shim

TYPE_CHECKING = False
if TYPE_CHECKING:
    from remote_docker.transport.openssh import ControlMaster

OURS = config.COMPOSE_DOCKER_HOST  # set for compose: the docker shim knows DOCKER_HOST is ours
PLUGIN_DIRS = ("~/.docker/cli-plugins", "/usr/local/lib/docker/cli-plugins",
               "/usr/local/libexec/docker/cli-plugins", "/usr/lib/docker/cli-plugins",
               "/usr/libexec/docker/cli-plugins")


class ComposeMissing(RemoteDockerError):
    status = 127


class ConfigFailed(Exception):
    """``compose config`` failed and said why: exit with its status, say nothing more."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def find_compose(env: dict | os._Environ, own: str | None = None) -> str:
    """The workstation's compose: ``docker-compose`` on PATH that is not ours, else the plugin."""
    for folder in env.get("PATH", os.defpath).split(os.pathsep):
        candidate = os.path.join(folder or ".", "docker-compose")
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK) \
                and not is_shim(candidate, own):
            return candidate
    for folder in PLUGIN_DIRS:
        candidate = os.path.join(os.path.expanduser(folder), "docker-compose")
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise ComposeMissing("compose is not installed on this workstation (Debian: apt-get "
                         "install docker-compose; or the docker compose plugin)")


def uses_own_endpoint(cmd: ComposeCommand, env: dict | os._Environ) -> bool:
    """The user named an engine (-H, --context, DOCKER_HOST, DOCKER_CONTEXT): not ours."""
    if env.get("REMOTE_DOCKER_HOST", "").strip() == config.LOCAL or cmd.explicit_endpoint:
        return True
    if env.get("DOCKER_CONTEXT"):
        return True
    host = env.get("DOCKER_HOST", "")
    return bool(host) and host != env.get(OURS)


def run(args: list[str], env: dict | os._Environ, own: str | None = None) -> int:
    """Run ``compose ARGS`` against the docker-machine; returns only when compose did not start."""
    from remote_docker.compose.options import parse

    compose = find_compose(env, own)
    cmd = parse(args)
    if uses_own_endpoint(cmd, env) or not cmd.needs_engine:
        _exec(compose, args, dict(env))
    from remote_docker.transport import docker_socket
    from remote_docker.transport.openssh import ControlMaster

    machine = config.parse_machine(config.machine_spec(env))
    master = ControlMaster(machine, env)
    host = "unix://" + docker_socket.forward(master)
    child_env = {**env, "DOCKER_HOST": host, OURS: host, "REMOTE_DOCKER_HOST": machine.spec}
    child_env.setdefault("COMPOSE_DOCKER_CLI_BUILD", "0")  # the API builder: context sent here
    if cmd.command in CREATING and config.translate_paths(env):
        try:
            args = _with_mounts(compose, cmd, master, child_env)
        except ConfigFailed as failed:
            return failed.status
    _exec(compose, args, child_env)
    raise AssertionError("exec returned")  # pragma: no cover


def _exec(compose: str, args: list[str], env: dict) -> None:
    try:
        os.execve(compose, ["docker-compose", *args], env)
    except OSError as exc:
        raise ComposeMissing(f"cannot run {compose}: {exc.strerror}") from None


def _with_mounts(compose: str, cmd: ComposeCommand, master: "ControlMaster",
                 env: dict) -> list[str]:
    """The argv that runs ``cmd`` on the rewritten model, its mounts live (or cmd's own)."""
    cwd = _cwd()
    directory = project_directory(cmd, env, cwd)
    if directory is None:
        return cmd.argv  # no compose file: compose says so itself
    model = _config(compose, cmd, env)
    sources = compose_model.rewrite(model)
    if not sources and "-" not in cmd.values("-f", "--file"):  # stdin is read: use the model
        return cmd.argv
    served = [_serve(master, source) for source in sources]
    compose_model.name_volumes(model, [v for v, _ in served], [m for _, m in served])
    fd = _model_file(model)
    return [*cmd.without("-f", "--file", "--project-directory"), "-f", f"/dev/fd/{fd}",
            "--project-directory", directory, *cmd.rest]


def _cwd() -> str:
    try:
        return os.getcwd()
    except OSError:
        raise UsageError("the current directory no longer exists") from None


def _config(compose: str, cmd: ComposeCommand, env: dict) -> dict:
    """The resolved model, as ``compose config`` prints it; compose's own error if it cannot."""
    import subprocess

    from remote_docker import deps

    stdin = None
    if "-" in cmd.values("-f", "--file"):  # the file on stdin: read once, given to config
        import sys

        stdin = sys.stdin.buffer.read()
    proc = subprocess.run([compose, *cmd.without(), "config"], input=stdin, env=env,
                          stdout=subprocess.PIPE,
                          stdin=None if stdin is not None else subprocess.DEVNULL)
    if proc.returncode != 0:
        raise ConfigFailed(proc.returncode)  # compose has said why on stderr
    deps.ensure_site_packages()
    import yaml

    model = yaml.safe_load(proc.stdout)
    if not isinstance(model, dict):
        raise UsageError("compose config printed no model")
    return model


def _serve(master: "ControlMaster", source: compose_model.BindSource) -> tuple[str, str]:
    """(volume, mountpoint) of a live mount of ``source``: a container's, else a new one."""
    from remote_docker.mounts import registry, reverse

    os.makedirs(source.local_path, exist_ok=True)  # docker makes a missing bind source
    real = os.path.realpath(source.local_path)
    for record in registry.live_mounts(master.env):
        if (record.local_dir == real and record.readonly == source.readonly
                and record.machine == master.machine.spec and record.container
                and not record.kept and record.mountpoint):
            return record.volume, record.mountpoint
    mount = reverse.mount(master, real, readonly=source.readonly)
    reverse.hand_down(mount)  # compose, exec'd in our place, is the mount's maker now
    return mount.volume, mount.mountpoint


def _model_file(model: dict) -> int:
    """An inheritable memfd holding the model as JSON (which is YAML): nothing on disk."""
    import json

    fd = os.memfd_create("remote-docker-compose.yml", 0)
    os.write(fd, json.dumps(model, indent=1).encode())
    os.lseek(fd, 0, os.SEEK_SET)
    os.set_inheritable(fd, True)
    return fd
