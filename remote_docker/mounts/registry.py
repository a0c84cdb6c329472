"""Every reverse mount, recorded on the workstation before anything of it is made.

``$XDG_STATE_HOME/remote-docker/mounts/`` (default ``~/.local/state``) holds
per mount ``<uuid>.json`` (the record, replaced atomically when it changes),
``<uuid>.lock``, ``<uuid>.log`` (the keeper's log) and, while gc waits for a
container to let go of the volume, ``<uuid>.defer``.

Whether a mount is alive is not a pid check but a lock: its keeper holds an
exclusive ``flock`` on ``<uuid>.lock`` for as long as it lives, and the
kernel drops it when the keeper dies however it dies (``kill -9`` included);
a pid can be reused, a lock cannot be inherited by accident.  The lock file
appears already locked (made under a temporary name, locked, then renamed),
so no one ever sees a mount being made as stale.  So "is anything stale?" is
a directory listing and one non-blocking flock per record: microseconds,
cheap enough for the ``docker`` shim's hot path (``statedir.stale_hint``).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import asdict, dataclass, field

from remote_docker.mounts.statedir import lock_is_free, registry_dir


@dataclass
class Record:
    """What the workstation knows about one mount; the keeper fills in the rest as it goes."""

    uuid: str
    local_dir: str
    machine: str  # the docker-machine as configured (Machine.spec)
    owner: str  # "<user>@<workstation host>", also a label on the volume
    readonly: bool = False
    mode: str = "passive"
    created: float = field(default_factory=time.time)
    creator: int = 0  # pid of the process that asked for it
    keeper: int = 0  # pid of the keeper, once it runs
    mountpoint: str = ""  # on the docker-machine, once known
    container: str = ""  # bound container: the mount lives as long as it
    kept: bool = False  # docker-mount: lives until docker-umount
    classic_key: str = ""  # classic mode: the authorized_keys line added for it
    readahead_kb: int = 0  # what the mount's readahead is raised to (0: left as it is)
    stat_cache: str = "off"  # auto (asked for; the keeper decides), on, off

    @property
    def volume(self) -> str:
        return volume_name(self.uuid)

    def __str__(self) -> str:
        holder = f"container {self.container[:12]}" if self.container else \
            "kept" if self.kept else "being set up"
        flags = (" (ro)" if self.readonly else "") + \
            (" (stat cache)" if self.stat_cache == "on" else "")
        return (f"{self.volume}  {self.local_dir}{flags}  on "
                f"{self.machine}  {holder}  {format_age(time.time() - self.created)}")


def volume_name(uuid: str) -> str:
    return f"rd-{uuid}"


def format_age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _path(uuid: str, suffix: str, env: dict | os._Environ) -> str:
    return os.path.join(registry_dir(env), f"{uuid}.{suffix}")


def log_path(uuid: str, env: dict | os._Environ = os.environ) -> str:
    return _path(uuid, "log", env)


def create(record: Record, env: dict | os._Environ = os.environ) -> int:
    """Lock, then record; returns the locked fd (inheritable), which keeps the mount alive.

    Whoever holds a dup of this fd (the caller, then the keeper) keeps the
    mount from being taken for stale.
    """
    directory = registry_dir(env)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    tmp = _path(f".{record.uuid}", "lock", env)
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.rename(tmp, _path(record.uuid, "lock", env))
    save(record, env)
    return fd


def save(record: Record, env: dict | os._Environ = os.environ) -> None:
    """Replace the record atomically: a reader sees the old one or the new one, whole."""
    target = _path(record.uuid, "json", env)
    tmp = f"{target}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(asdict(record), f)
    os.replace(tmp, target)


def load(uuid: str, env: dict | os._Environ = os.environ) -> Record | None:
    try:
        with open(_path(uuid, "json", env), encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    known = set(Record.__dataclass_fields__)
    return Record(**{k: v for k, v in data.items() if k in known})


def uuids(env: dict | os._Environ = os.environ) -> list[str]:
    """Every uuid with a record or a lock file, oldest first."""
    try:
        names = os.listdir(registry_dir(env))
    except FileNotFoundError:
        return []
    found = {n.rsplit(".", 1)[0] for n in names
             if not n.startswith(".") and n.endswith((".json", ".lock"))}
    return sorted(found, key=lambda u: _mtime(_path(u, "lock", env)))


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


def is_held(uuid: str, env: dict | os._Environ = os.environ) -> bool:
    """Someone (a keeper, or a mount being made) holds this mount's lock."""
    return lock_is_free(_path(uuid, "lock", env)) is False


def claim(uuid: str, env: dict | os._Environ = os.environ, shared: bool = False) -> int | None:
    """Lock a mount that no one holds (to clean it up); None while someone holds it
    (or when its lock file is gone: it has just been removed)."""
    try:
        fd = os.open(_path(uuid, "lock", env), os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def defer(uuid: str, env: dict | os._Environ = os.environ) -> None:
    """Mark a claimed record as waiting (its volume is in use): not stale for a while."""
    try:
        with open(_path(uuid, "defer", env), "w"):
            pass
    except OSError:
        pass


def remove(uuid: str, env: dict | os._Environ = os.environ) -> None:
    """Forget a mount: the record, its log, and last its lock (tolerates "already gone")."""
    for suffix in ("json", "log", "defer", "lock"):
        try:
            os.unlink(_path(uuid, suffix, env))
        except FileNotFoundError:
            pass


def live_mounts(env: dict | os._Environ = os.environ) -> list[Record]:
    """Mounts whose keeper is alive (or that are being made right now)."""
    records = []
    for uuid in uuids(env):
        record = load(uuid, env)
        if record is not None and is_held(uuid, env):
            records.append(record)
    return records
