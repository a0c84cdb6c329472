"""The bed as a whole: `up`, `down` and `status`, each a list of small steps.

The bed is meant for a disposable machine (a CI runner, a throw-away VM): it
adds users, runs daemons as root, opens /dev/fuse to everyone, and `down`
removes every container and volume on the machine's engine, not only the
bed's. Do not bring it up on a machine whose engine holds anything you keep.
"""

from __future__ import annotations

import fcntl
import os
import pwd
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from remote_docker.testbed import code, display, dockerd, fuse, images, layout, mounts
from remote_docker.testbed import netns, packages, sshd, users, wsdocker
from remote_docker.testbed.process import processes_of, terminate
from remote_docker.testbed.runas import require_root

Say = Callable[[str], None]

UP_STEPS: tuple[tuple[str, Callable[[], str]], ...] = (
    ("packages", packages.ensure),
    ("dockerd", dockerd.ensure),
    ("users", users.ensure_accounts),
    ("keys", users.ensure_keys),
    ("sshd dm", lambda: sshd.start(sshd.DOCKER_MACHINE)),
    ("sshd ws", lambda: sshd.start(sshd.WORKSTATION)),
    ("netns ws", netns.ensure),
    ("host keys", sshd.pin_host_keys),
    ("fuse", fuse.ensure),
    ("images", images.ensure),
    ("ws docker", wsdocker.ensure),
    ("display", display.ensure),
    ("code", code.ensure),
    ("ws config", users.ensure_runtime_and_config),
)

LOCKFILE = layout.STATE_DIR / "lock"
_lock_depth = 0  # flock is per open file: a nested `exclusive` must not lock again


def _quiet(_line: str) -> None:
    pass


@contextmanager
def exclusive() -> Iterator[None]:
    """Hold the bed for one process at a time: `up`, `down`, and a test that needs
    the bed to stay as it left it while it looks.

    Two test sessions on one machine each bring the bed up; without this, one
    session's `down` could interleave with the other's `up` and leave, say,
    dockerd started twice. Re-entrant within a process.
    """
    global _lock_depth
    if _lock_depth:
        _lock_depth += 1
        try:
            yield
        finally:
            _lock_depth -= 1
        return
    layout.STATE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(LOCKFILE, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _lock_depth = 1
        try:
            yield
        finally:
            _lock_depth = 0
            fcntl.flock(lock, fcntl.LOCK_UN)


def up(say: Say = _quiet) -> None:
    """Bring every part up, skipping what is already fine; one line per step to `say`."""
    require_root()
    os.umask(0o022)  # what the bed writes for ws and dm must be readable by them
    with exclusive():
        for name, step in UP_STEPS:
            started = time.monotonic()
            outcome = step()
            seconds = time.monotonic() - started
            say(f"{name}: {outcome}" + (f" ({seconds:.1f} s)" if seconds >= 1 else ""))


def _kill_user(user: str) -> str:
    if not users.exists(user):
        return ""
    uid = pwd.getpwnam(user).pw_uid
    count = terminate(lambda: processes_of(uid), what=f"processes of {user}")
    return f"ended {count} processes of {user}" if count else ""


def down(say: Say = _quiet) -> None:
    """Stop what `up` started and remove what the users left; keep images, users and keys.

    Containers go before the users' processes, since a container may hold a
    user's sshfs mount; FUSE mounts are detached before and after the kill,
    so a dead sshfs blocks nothing. Says only what it did: a bed that is
    down stays quiet.
    """
    require_root()
    steps: list[Callable[[], str | list[str]]] = [
        lambda: sshd.stop(sshd.DOCKER_MACHINE),
        lambda: sshd.stop(sshd.WORKSTATION),
        display.stop,
        dockerd.remove_containers_and_volumes,
        _unmounted,
        lambda: _kill_user(layout.WS_USER),
        lambda: _kill_user(layout.DM_USER),
        lambda: _kill_user(layout.OUTSIDER_USER),
        lambda: _kill_user(layout.NO_DOCKER_USER),
        _unmounted,
        netns.stop,
        dockerd.remove_containers_and_volumes,
        wsdocker.stop,
        dockerd.stop,
    ]
    with exclusive():
        for step in steps:
            outcome = step()
            for line in [outcome] if isinstance(outcome, str) else outcome:
                if line:
                    say(line)


def _unmounted() -> str:
    """Where the users mount: their homes, and runtime dirs (the shims' mountpoints)."""
    roots: list[Path] = [
        layout.home(layout.WS_USER), layout.home(layout.DM_USER), layout.RUNTIME_ROOT,
    ]
    count = mounts.unmount_lazily(roots, "fuse")
    return f"unmounted {count} FUSE mounts" if count else ""


def status() -> list[tuple[str, bool]]:
    """Each part and whether it is up, in the order `up` makes them."""
    require_root()  # the shadow file and other users' pidfiles are root's
    return [
        ("packages", not packages.missing()),
        ("dockerd", dockerd.answering()),
        ("users", users.accounts_ok()),
        ("sshd dm", sshd.running(sshd.DOCKER_MACHINE)),
        ("sshd ws", sshd.running(sshd.WORKSTATION)),
        ("netns ws", netns.ok()),
        ("fuse", fuse.ok()),
        ("images", dockerd.answering() and images.ok()),
        ("ws docker", wsdocker.running()),
        ("display", display.answering()),
        ("code", code.ok()),
    ]
