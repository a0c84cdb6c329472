"""Classic mounts: sshfs on the docker-machine logs in to the workstation's sshd, as the seed did.

Kept for those who want it (``mount_mode = "classic"``), without what made
the seed's version dangerous: the docker-machine gets a key made for this
one mount (generated there, next to the mountpoint, removed with it), and the
workstation authorizes it for nothing but the jailed sftp-server of this one
directory (``restrict,command="…"`` in ``~/.ssh/authorized_keys``, added for
the mount and removed with it).  Where Landlock is missing the forced
command is a plain ``sftp-server -d DIR``, which confines the key to SFTP
but not to the directory: passive mode refuses that case, classic mode is
the documented way out of it.

How the docker-machine reaches this workstation cannot be guessed: it is
``workstation_host`` in the config file or ``REMOTE_DOCKER_WORKSTATION_HOST``,
as ``[user@]host[:port]``.
"""

from __future__ import annotations

import fcntl
import os

from remote_docker import config
from remote_docker.config import Machine
from remote_docker.mounts import registry, remote
from remote_docker.mounts.registry import Record
from remote_docker.mounts.remote import MountError
from remote_docker.transport.quoting import join, quote

KEY_MARK = "remote-docker-mount-"  # the key's comment: how its line is found again


def workstation(env: dict | os._Environ = os.environ) -> Machine:
    """The workstation as the docker-machine reaches it; MountError saying how to set it."""
    spec = env.get("REMOTE_DOCKER_WORKSTATION_HOST") or \
        config.read_settings(env).get("workstation_host")
    if not spec:
        raise MountError("classic mounts need to know how the docker-machine reaches this "
                         "workstation's sshd: set workstation_host = \"[user@]host[:port]\" in "
                         "the config file, or REMOTE_DOCKER_WORKSTATION_HOST")
    return config.parse_machine(spec)


def preflight(env: dict | os._Environ) -> None:
    workstation(env)


def forced_command(local_dir: str, readonly: bool) -> str:
    """What sshd runs for the mount's key, whatever the client asks for."""
    from remote_docker.mounts import jail
    from remote_docker.mounts.keeper import jail_argv

    try:
        jail.preflight()
        return join(jail_argv(local_dir, readonly))
    except jail.JailError:
        return join([jail.sftp_server(), "-d", local_dir, *(["-R"] if readonly else [])])


def authorized_line(public_key: str, local_dir: str, readonly: bool) -> str:
    """An authorized_keys line: only the forced command, no forwarding, no pty."""
    command = forced_command(local_dir, readonly).replace("\\", "\\\\").replace('"', '\\"')
    return f'restrict,command="{command}" {public_key.strip()}'


def authorized_keys_path() -> str:
    return os.path.join(os.path.expanduser("~"), ".ssh", "authorized_keys")


def _edit_authorized_keys(change, env: dict | os._Environ) -> None:
    """Rewrite authorized_keys atomically under a lock, keeping every other line as it was."""
    path = authorized_keys_path()
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    os.makedirs(registry.registry_dir(env), mode=0o700, exist_ok=True)
    with open(os.path.join(registry.registry_dir(env), ".authorized_keys.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            lines = []
        new = change(lines)
        if new == lines:
            return
        tmp = f"{path}.remote-docker.tmp"
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write("".join(line + "\n" for line in new))
        os.replace(tmp, path)


def start(record: Record, master, env: dict | os._Environ) -> str:
    """Make the mount's key there, authorize it here; the sshfs script for the relay session."""
    host = workstation(env)
    status, out = master.capture(make_key(record.mountpoint, record.uuid))
    public = out.decode().strip()
    if status != 0 or not public.startswith("ssh-"):
        raise MountError(f"could not make a key for the mount on {record.machine} "
                         "(is ssh-keygen installed there?)")
    line = authorized_line(public, record.local_dir, record.readonly)
    record.classic_key = KEY_MARK + record.uuid
    registry.save(record, env)
    _edit_authorized_keys(lambda lines: [*lines, line], env)
    login = f"{host.user}@{host.host}" if host.user else host.host
    return remote.classic_sshfs(record.mountpoint, record.uuid, login, host.port or 22,
                                record.mountpoint + ".key", record.local_dir, record.readonly)


def make_key(mountpoint: str, uuid: str) -> str:
    key = quote(mountpoint + ".key")
    return (f"rm -f {key} {key}.pub && ssh-keygen -q -t ed25519 -N '' "
            f"-C {quote(KEY_MARK + uuid)} -f {key} </dev/null >/dev/null && cat {key}.pub")


def finish(record: Record, env: dict | os._Environ) -> None:
    """Take the mount's key out of authorized_keys (tolerates "already gone")."""
    forget_keys(lambda uuid: uuid == record.uuid, env)


def forget_keys(doomed, env: dict | os._Environ) -> None:
    """Remove our mount keys whose uuid ``doomed(uuid)`` says is gone."""
    def keep(lines: list[str]) -> list[str]:
        return [line for line in lines if not (KEY_MARK in line
                and doomed(line.rsplit(KEY_MARK, 1)[1].split()[0]))]

    try:
        _edit_authorized_keys(keep, env)
    except OSError:
        pass
