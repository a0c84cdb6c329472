"""Reverse mounts: a workstation directory as a docker volume ``rd-<uuid>`` on the docker-machine.

``mount`` records the mount, starts its keeper (``keeper.py``) and returns
only once the FUSE mount is live there and the volume exists; then the
caller says how long it lives: ``bind`` (as long as a container) or
``keep`` (until ``unmount``).  If the caller goes away before saying either,
the keeper releases the mount by itself, so a killed ``docker-run`` leaves
nothing.  ``unmount`` releases now and cannot stop half way: what it cannot
undo stays recorded for ``gc``.
"""

from __future__ import annotations

import os
import pwd
import signal
import socket
import subprocess
import time
import uuid as uuidlib
from dataclasses import dataclass, field

from remote_docker import config
from remote_docker.errors import ConfigError, UsageError
from remote_docker.mounts import registry, remote
from remote_docker.mounts.registry import Record
from remote_docker.mounts.remote import MountError, MountInUse
from remote_docker.transport.openssh import ControlMaster

READY_TIMEOUT = 60.0  # the keeper's own steps have shorter deadlines; this is the backstop
RELEASE_TIMEOUT = 20.0
MODES = ("passive", "classic")

__all__ = ["ReverseMount", "MountError", "MountInUse", "mount", "bind", "keep", "hand_down",
           "unmount", "mount_mode", "owner"]


@dataclass
class ReverseMount:
    """One live mount, as its maker sees it."""

    uuid: str
    local_dir: str  # absolute, symlinks resolved
    readonly: bool
    volume: str  # "rd-<uuid>", a docker volume on the docker-machine
    mountpoint: str  # absolute, on the docker-machine
    machine: str
    keeper: int = 0
    _channel: socket.socket | None = field(default=None, repr=False, compare=False)


def _choice(env: dict | os._Environ, variable: str, key: str, choices: tuple[str, ...]) -> str:
    """``variable`` in the environment, else ``key`` in the config, else ``choices[0]``;
    anything else is one line naming the setting and what it may be."""
    value = env.get(variable) or config.read_settings(env).get(key) or choices[0]
    if value not in choices:
        allowed = ", ".join(f"'{c}'" for c in choices[:-1]) + f" or '{choices[-1]}'"
        raise ConfigError(f"{key} {value!r}: use {allowed}")
    return value


def mount_mode(env: dict | os._Environ = os.environ) -> str:
    """``passive`` (default) or ``classic``: REMOTE_DOCKER_MOUNT_MODE, else ``mount_mode``."""
    return _choice(env, "REMOTE_DOCKER_MOUNT_MODE", "mount_mode", MODES)


def readahead_kb(env: dict | os._Environ = os.environ) -> int:
    """REMOTE_DOCKER_READAHEAD_KB, else ``readahead_kb`` in config.toml; 0 leaves the kernel's."""
    from remote_docker.mounts.remote import DEFAULT_READAHEAD_KB

    text = env.get("REMOTE_DOCKER_READAHEAD_KB") or config.read_settings(env).get("readahead_kb")
    if not text:
        return DEFAULT_READAHEAD_KB
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 1 << 20:
        raise ConfigError(f"readahead_kb {text!r}: use a number of KiB (0 to leave the default)")
    return value


STAT_CACHE_MODES = ("auto", "on", "off")


def stat_cache_mode(env: dict | os._Environ = os.environ) -> str:
    """REMOTE_DOCKER_MOUNT_STAT_CACHE, else ``mount_stat_cache``: ``auto`` (the default:
    on when a round trip to the docker-machine is long, see ``stat_cache``), on, off."""
    return _choice(env, "REMOTE_DOCKER_MOUNT_STAT_CACHE", "mount_stat_cache", STAT_CACHE_MODES)


def owner() -> str:
    """``<user>@<workstation host>``: labels our volumes, scopes gc on the docker-machine."""
    return f"{pwd.getpwuid(os.getuid()).pw_name}@{socket.gethostname()}"


def _check_mode(mode: str, env: dict | os._Environ) -> None:
    if mode == "classic":
        from remote_docker.mounts import classic

        classic.preflight(env)
        return
    from remote_docker.mounts.jail import JailError, preflight

    try:
        preflight()
    except JailError as exc:
        raise MountError(f"cannot serve a directory in passive mode: {exc} (or use classic "
                         "mode: REMOTE_DOCKER_MOUNT_MODE=classic, or mount_mode = \"classic\" "
                         "in the config file)") from None


def mount(master: ControlMaster, local_dir: str, readonly: bool = False,
          container: str | None = None) -> ReverseMount:
    """Serve ``local_dir`` as a live volume on ``master``'s docker-machine.

    Recorded before anything is made; on any failure everything made is
    undone and one MountError line says why.  With ``container`` it is bound
    at once; otherwise call ``bind`` or ``keep`` before this process ends.
    """
    path = os.path.realpath(local_dir)
    if not os.path.isdir(path):
        raise UsageError(f"{local_dir}: not a directory on this workstation")
    env = master.env
    mode = mount_mode(env)
    _check_mode(mode, env)
    master.ensure()
    record = Record(uuid=str(uuidlib.uuid4()), local_dir=path, machine=master.machine.spec,
                    owner=owner(), readonly=readonly, mode=mode, creator=os.getpid(),
                    readahead_kb=readahead_kb(env), stat_cache=stat_cache_mode(env))
    lock = registry.create(record, env)
    try:
        channel = _start_keeper(record.uuid, lock, env)
        mountpoint = _await_ready(channel, record, env)
    finally:
        os.close(lock)  # the keeper holds its own copy of the lock now, or nothing is left
    m = ReverseMount(record.uuid, path, readonly, record.volume, mountpoint, record.machine,
                     _keeper_pid(record.uuid, env), channel)
    if container:
        bind(master, m, container)
    return m


def _start_keeper(uuid: str, lock: int, env: dict | os._Environ) -> socket.socket:
    from remote_docker.mounts.keeper import python_argv

    ours, theirs = socket.socketpair()
    with open(registry.log_path(uuid, env), "ab") as log:
        argv = python_argv("remote_docker.mounts.keeper",
                           ["--daemon", uuid, str(theirs.fileno()), str(lock)])
        intermediate = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                        pass_fds=(theirs.fileno(), lock), cwd="/", env=env,
                                        start_new_session=True)
    intermediate.wait()  # it forks the keeper and exits at once: no zombie for our caller
    theirs.close()
    return ours


def _await_ready(channel: socket.socket, record: Record, env: dict | os._Environ) -> str:
    """The mountpoint once the keeper says the mount is live; MountError otherwise."""
    channel.settimeout(READY_TIMEOUT)
    try:
        line = channel.makefile("r").readline().strip()
    except socket.timeout:
        _kill_keeper(record.uuid, env)
        channel.close()
        raise MountError(f"the mount of {record.local_dir} was not ready within "
                         f"{READY_TIMEOUT:.0f} s; 'remote-docker gc' cleans up") from None
    channel.settimeout(None)
    kind, _, rest = line.partition(" ")
    if kind == "ready":
        return rest
    channel.close()
    if kind == "error":
        raise MountError(f"cannot mount {record.local_dir} on {record.machine}: {rest}")
    raise MountError(f"the mount keeper for {record.local_dir} died before the mount was live "
                     "('remote-docker gc' cleans up)")


def _keeper_pid(uuid: str, env: dict | os._Environ) -> int:
    record = registry.load(uuid, env)
    return record.keeper if record else 0


def _kill_keeper(uuid: str, env: dict | os._Environ) -> None:
    pid = _keeper_pid(uuid, env)
    if pid and registry.is_held(uuid, env):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _update(m: ReverseMount | str, env: dict | os._Environ, **changes) -> Record:
    uuid = m if isinstance(m, str) else m.uuid
    record = registry.load(uuid, env)
    if record is None or not registry.is_held(uuid, env):
        raise MountError(f"{registry.volume_name(uuid)} is not a live mount")
    for key, value in changes.items():
        setattr(record, key, value)
    registry.save(record, env)
    return record


def _notify(m: ReverseMount | str, record: Record, message: str) -> None:
    """Tell the keeper to look at its record again: over our channel, else by SIGUSR1."""
    channel = None if isinstance(m, str) else m._channel
    if channel is not None:
        try:
            channel.sendall(message.encode() + b"\n")
            return
        except OSError:
            pass
    if record.keeper:
        try:
            os.kill(record.keeper, signal.SIGUSR1)
        except ProcessLookupError:
            pass


def bind(master: ControlMaster, m: ReverseMount | str, container_id: str) -> None:
    """From now on the mount lives as long as that container (its keeper watches it)."""
    record = _update(m, master.env, container=container_id)
    _notify(m, record, "bind")


def keep(master: ControlMaster, m: ReverseMount | str) -> None:
    """The mount outlives its maker: it lives until ``unmount`` (docker-mount's mounts)."""
    record = _update(m, master.env, kept=True)
    _notify(m, record, "keep")


def hand_down(m: ReverseMount) -> None:
    """Let the program this process execs be the mount's maker.

    The keeper hears that its maker is gone when the channel closes; made
    inheritable, the channel stays open in the exec'd program until it ends
    (``compose`` run in the shim's place), however it ends.
    """
    if m._channel is not None:
        os.set_inheritable(m._channel.fileno(), True)
        _HANDED_DOWN.append(m)  # a collected socket closes its fd: keep it until the exec


_HANDED_DOWN: list[ReverseMount] = []


def resolve(name: str) -> str:
    """A uuid from ``rd-<uuid>`` or ``<uuid>``."""
    return name[3:] if name.startswith("rd-") else name


def unmount(master: ControlMaster, m_or_uuid: ReverseMount | str) -> None:
    """Release the mount now; "already gone" is fine; a volume in use is MountInUse.

    The volume goes first, here: if a container uses it nothing at all is
    changed.  Then the keeper is asked to finish (it owns the relay); if it
    does not in time, or is dead, the release is done from here.
    """
    env = master.env
    uuid = resolve(m_or_uuid if isinstance(m_or_uuid, str) else m_or_uuid.uuid)
    master.ensure()
    record = registry.load(uuid, env)
    who = record.owner if record else owner()
    mountpoint = record.mountpoint if record else ""
    status, out = master.capture(remote.release_volume(uuid, mountpoint))
    if status == remote.IN_USE:
        users = " ".join(out.decode().split()) or "a container"
        raise MountInUse(f"{registry.volume_name(uuid)} is in use by {users}: remove that "
                         "first (docker rm)")
    if status != 0:
        raise remote.explain(status, master.machine.spec)
    if record is not None and registry.is_held(uuid, env) and record.keeper:
        try:
            os.kill(record.keeper, signal.SIGTERM)
        except ProcessLookupError:
            pass
        if _wait_released(uuid, env, RELEASE_TIMEOUT):
            return
        _kill_keeper(uuid, env)
        _wait_released(uuid, env, 5)
    release_here(master, uuid, who, env)


def _wait_released(uuid: str, env: dict | os._Environ, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not registry.is_held(uuid, env):
            return registry.load(uuid, env) is None
        time.sleep(0.02)
    return False


def release_here(master: ControlMaster, uuid: str, who: str, env: dict | os._Environ) -> None:
    """Release a mount whose keeper is gone: remote side, classic key, then the record."""
    lock = registry.claim(uuid, env)
    if lock is None and registry.is_held(uuid, env):
        raise MountError(f"{registry.volume_name(uuid)} is held by a keeper that did not stop")
    try:
        status, _ = master.capture(remote.release(uuid, who, force=True))
        record = registry.load(uuid, env)
        if record is not None and record.mode == "classic":
            from remote_docker.mounts import classic

            classic.finish(record, env)
        if status != 0:
            registry.defer(uuid, env)
            raise remote.explain(status, master.machine.spec)
        registry.remove(uuid, env)
    finally:
        if lock is not None:
            os.close(lock)
