"""The container's whole filesystem on the workstation, with sshfs over the session's link.

So local editors and tools open files in the container.  sshfs uses the
session's ssh config, so it goes through the docker-machine with the pinned
host key like everything else.  Files appear owned by the workstation user
(``idmap=user``: in the container they are root's), and absolute symlinks
are made relative (``transform_symlinks``) so they point into the mount,
not at the workstation's own ``/``.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from remote_docker.dev.session import Session, SessionError
from remote_docker.errors import RemoteDockerError

SSHFS_OPTIONS = "idmap=user,transform_symlinks"


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def is_mounted(path: str) -> bool:
    """A mount (live or stale: its sshfs killed) is at ``path``."""
    if not path:
        return False
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
            points = {_unescape(line.split()[4]) for line in f if len(line.split()) > 4}
    except OSError:
        return False
    return os.path.realpath(path) in points or path in points


def mount(session: Session, mount_point: str | None = None,
          env: dict | os._Environ = os.environ) -> str:
    if session.mount_point and is_mounted(session.mount_point):
        raise SessionError(f"session {session.name!r} is mounted at {session.mount_point} "
                           "already ('remote-docker dev umount' first)")
    if shutil.which("sshfs") is None:
        raise RemoteDockerError("sshfs is not installed on this workstation "
                                "(Debian: apt-get install sshfs)")
    from remote_docker.dev.lifecycle import connect

    connect(session, env)
    path = os.path.abspath(mount_point or session.default_mount_point)
    os.makedirs(path, mode=0o700, exist_ok=True)
    if os.listdir(path):
        raise SessionError(f"{path} is not empty: mount the container on an empty directory")
    argv = ["sshfs", "-F", session.ssh_config, f"{session.host_alias}:/", path,
            "-o", SSHFS_OPTIONS]
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=60)
    if proc.returncode != 0 or not is_mounted(path):
        _remove_if_ours(session, path)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        raise RemoteDockerError(f"sshfs could not mount session {session.name!r}: "
                                f"{lines[-1].strip() if lines else 'failed'}")
    session.mount_point = os.path.realpath(path)
    session.save()
    return session.mount_point


def umount(session: Session) -> None:
    """Unmount (a stale mount too); "not mounted" is fine; a busy one is one line."""
    path = session.mount_point
    if not path:
        return
    if is_mounted(path):
        tool = shutil.which("fusermount3") or shutil.which("fusermount") or "fusermount"
        proc = subprocess.run([tool, "-u", path], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True)
        if proc.returncode != 0 and "busy" in proc.stderr:
            raise SessionError(f"{path} is busy: close what uses it (a shell, an editor), "
                               "then 'remote-docker dev umount'")
        if proc.returncode != 0:  # its sshfs is gone: take the dead mount away lazily
            subprocess.run([tool, "-u", "-z", path], stdin=subprocess.DEVNULL,
                           capture_output=True)
        if is_mounted(path):
            raise SessionError(f"could not unmount {path}: {proc.stderr.strip()}")
    _remove_if_ours(session, path)
    session.mount_point = ""
    session.save()


def _remove_if_ours(session: Session, path: str) -> None:
    if os.path.realpath(path) == os.path.realpath(session.default_mount_point):
        try:
            os.rmdir(path)
        except OSError:
            pass
