"""A dev session's directory on the workstation, and which session a command means.

The directory (``$XDG_DATA_HOME/remote-docker/dev/NAME``) holds everything the
session owns on this side: ``state.json``, the client key, the host key and
the known_hosts that pins it, the overlay's build context, the ssh config
written when the container runs, the history of commands and the default
mountpoint of the container's filesystem.  Resources on the docker-machine
are named from the session's name and a random id made at ``init``, so two
workstations using the same name on one docker-machine never collide.
"""

from __future__ import annotations

import json
import os
import time

from remote_docker.errors import RemoteDockerError, UsageError

NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")
MAX_NAME = 40
ENV_VAR = "REMOTE_DOCKER_DEV"  # names the session commands use, like dockerdo's activate
KEY_DIR = "/etc/rd-dev"  # in the container, the session's volume: keys, environment
LABEL = "remote-docker.dev"  # on the session's image, container and volume: its id
OWNER_LABEL = "remote-docker.dev-owner"  # and <user>@<workstation>, for `dev gc`


class SessionError(RemoteDockerError):
    """No such session, or a session in a state that cannot do what was asked."""


class Session:
    """What ``state.json`` holds; the rest of the directory is derived from ``name``.

    A plain class, not a dataclass: ``dodo`` imports this on every call, and
    ``dataclasses`` costs it ~20 ms.
    """

    FIELDS = ("name", "id", "machine", "base_image", "work_dir", "env_names", "distro", "port",
              "mount_point", "created")

    def __init__(self, name: str, id: str, machine: str, base_image: str, work_dir: str,
                 env_names: list[str] | None = None, distro: str = "", port: int = 0,
                 mount_point: str = "", created: float = 0.0, directory: str = "") -> None:
        self.name = name
        self.id = id  # random, made at init: keeps docker-machine names unique per workstation
        self.machine = machine  # the docker-machine spec, fixed at init
        self.base_image = base_image
        self.work_dir = work_dir  # absolute, symlinks resolved: the same path in the container
        self.env_names = list(env_names or [])
        self.distro = distro  # what overlay found (or was told): apt, apk, dnf, yum, bundle
        self.port = port  # the sshd's port on the docker-machine's loopback, while it runs
        self.mount_point = mount_point  # where `dev mount` mounted the container's filesystem
        self.created = created
        self.directory = directory  # not stored: where it was loaded from

    def fields(self) -> dict:
        return {name: getattr(self, name) for name in self.FIELDS}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Session) and self.fields() == other.fields()

    def __repr__(self) -> str:
        return f"Session({self.name!r}, {self.id!r})"

    # -- names on the docker-machine -------------------------------------------------

    @property
    def tag(self) -> str:
        return f"rd-dev-{self.name}-{self.id}"

    @property
    def image(self) -> str:
        return f"{self.tag}:session"

    @property
    def container(self) -> str:
        return self.tag

    @property
    def volume(self) -> str:
        """Holds the host key and authorized key: kept across stop/start, never committed."""
        return f"{self.tag}-keys"

    @property
    def host_alias(self) -> str:
        """The ssh Host name in the session's ssh config, and the pinned host key's name."""
        return f"rd-dev-{self.name}"

    # -- files in the session directory ----------------------------------------------

    def path(self, *parts: str) -> str:
        return os.path.join(self.directory, *parts)

    @property
    def client_key(self) -> str:
        return self.path("id_ed25519")

    @property
    def host_key(self) -> str:
        return self.path("ssh_host_ed25519_key")

    @property
    def known_hosts(self) -> str:
        return self.path("known_hosts")

    @property
    def ssh_config(self) -> str:
        return self.path("ssh_config")

    @property
    def context_dir(self) -> str:
        """The overlay's build context: Dockerfile, sshd_config, start script."""
        return self.path("overlay")

    @property
    def history_file(self) -> str:
        return self.path("history.jsonl")

    @property
    def default_mount_point(self) -> str:
        return self.path("container")

    def save(self) -> None:
        data = self.fields()
        tmp = self.path(f"state.json.{os.getpid()}")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.replace(tmp, self.path("state.json"))


def data_dir(env: dict | os._Environ = os.environ) -> str:
    """``$XDG_DATA_HOME/remote-docker/dev``: sessions outlive reboots, unlike runtime state."""
    base = env.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "remote-docker", "dev")


def check_name(name: str) -> str:
    """A session name docker accepts inside image, container and volume names."""
    if not name or len(name) > MAX_NAME or not set(name) <= NAME_CHARS or \
            not name[0].isalnum():
        raise UsageError(f"session name {name!r}: use up to {MAX_NAME} lower-case letters, "
                         "digits, '-', '_' or '.', starting with a letter or digit")
    return name


def default_name(directory: str) -> str:
    """The work directory's base name, made into a valid session name."""
    base = os.path.basename(directory.rstrip("/")).lower()
    name = "".join(c if c in NAME_CHARS else "-" for c in base).lstrip("-_.")[:MAX_NAME]
    return name or "dev"


def create(name: str, machine: str, base_image: str, work_dir: str, env_names: list[str],
           env: dict | os._Environ = os.environ) -> Session:
    """Make the session directory (0700) and its state; refuse an existing one."""
    directory = os.path.join(data_dir(env), check_name(name))
    os.makedirs(os.path.dirname(directory), mode=0o700, exist_ok=True)
    try:
        os.mkdir(directory, 0o700)
    except FileExistsError:
        raise UsageError(f"session {name!r} exists already ({directory}): use it, or "
                         f"'remote-docker dev rm -s {name}' first") from None
    session = Session(name=name, id=os.urandom(4).hex(), machine=machine,
                      base_image=base_image, work_dir=work_dir, env_names=list(env_names),
                      created=time.time(), directory=directory)
    session.save()
    return session


def load(name: str, env: dict | os._Environ = os.environ) -> Session:
    directory = os.path.join(data_dir(env), check_name(name))
    try:
        with open(os.path.join(directory, "state.json"), encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise SessionError(f"no dev session {name!r} (see 'remote-docker dev list')") from None
    except (OSError, ValueError) as exc:
        raise SessionError(f"session {name!r}: cannot read {directory}/state.json: {exc}") \
            from None
    known = {k: v for k, v in data.items() if k in Session.FIELDS}
    return Session(**known, directory=directory)


def names(env: dict | os._Environ = os.environ) -> list[str]:
    root = data_dir(env)
    try:
        entries = sorted(os.listdir(root))
    except FileNotFoundError:
        return []
    return [n for n in entries if os.path.isfile(os.path.join(root, n, "state.json"))]


def _under(path: str, directory: str) -> bool:
    return bool(directory) and (path == directory or path.startswith(directory.rstrip("/") + "/"))


def find(chosen: str | None, cwd: str, env: dict | os._Environ = os.environ) -> Session:
    """The session a command means: ``-s NAME``, ``$REMOTE_DOCKER_DEV``, the one whose
    work dir (or container mount) holds the current directory, or the only one."""
    name = chosen or env.get(ENV_VAR)
    if name:
        return load(name, env)
    all_names = names(env)
    here = os.path.realpath(cwd)
    sessions = [load(n, env) for n in all_names]
    holding = [s for s in sessions if _under(here, s.work_dir) or _under(here, s.mount_point)]
    if holding:
        return max(holding, key=lambda s: len(s.work_dir))
    if len(sessions) == 1:
        return sessions[0]
    if not sessions:
        raise SessionError("no dev session: start one with 'remote-docker dev init "
                           "--image IMAGE'")
    raise SessionError(f"which dev session? {', '.join(all_names)}: use -s NAME, set "
                       f"{ENV_VAR}, or cd into a session's work dir")


def container_path(session: Session, cwd: str) -> str | None:
    """The container directory that mirrors ``cwd``, or None when nothing does.

    Under the work dir: the same path (it is mounted there).  Under the
    container's filesystem mounted with ``dev mount``: the path inside it.
    """
    here = os.path.realpath(cwd)
    if _under(here, session.mount_point):
        inside = os.path.relpath(here, session.mount_point)
        return "/" if inside == "." else "/" + inside
    if _under(here, session.work_dir):
        return here
    return None
