"""Where the workstation keeps its reverse-mount records, and the cheap question about them.

Kept apart from ``registry`` (dataclasses, json) because the ``docker`` shim
asks ``stale_hint`` on every call: this module imports only ``os``,
``fcntl`` and ``time``, and answers with a listing and one non-blocking
``flock`` per record (see ``registry`` for why a lock tells liveness).
"""

import fcntl
import os
import time

# A record whose cleanup had to wait (its volume is still used by a container)
# is not reported as stale again for this long, so the shim does not start a
# gc on every call while that container exists.
RETRY_AFTER = 60.0


def registry_dir(env: dict | os._Environ = os.environ) -> str:
    """``$XDG_STATE_HOME/remote-docker/mounts``, by default under ``~/.local/state``."""
    base = env.get("XDG_STATE_HOME") or os.path.join(env.get("HOME") or os.path.expanduser("~"),
                                                     ".local", "state")
    return os.path.join(base, "remote-docker", "mounts")


def lock_is_free(path: str) -> bool | None:
    """True when no one holds the lock file, False when someone does, None when it is gone."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def deferred(path: str, now: float) -> bool:
    """A ``<uuid>.defer`` marker younger than RETRY_AFTER: gc tried lately and must wait."""
    try:
        return now - os.stat(path).st_mtime < RETRY_AFTER
    except OSError:
        return False


def stale_hint(env: dict | os._Environ = os.environ) -> bool:
    """Is any recorded mount's keeper dead?  No ssh; microseconds when nothing is recorded."""
    directory = registry_dir(env)
    try:
        names = os.listdir(directory)
    except OSError:
        return False
    now = time.time()
    for name in names:
        if not name.endswith(".json") or name.startswith("."):
            continue
        stem = os.path.join(directory, name[:-5])
        if lock_is_free(stem + ".lock") is not False and not deferred(stem + ".defer", now):
            return True
    return False
