"""The session's two keys, made once on the workstation at ``init``.

The client key logs in to the container; the host key is the container
sshd's identity.  Both are made here, never in the image: the host key is
pinned in the session's own known_hosts at once, so the first connection is
already checked (no trust-on-first-use, no ``StrictHostKeyChecking=no``), and
it stays the same for the session's life, across stop/start and re-runs,
because it is copied into the container from here each time.
"""

from __future__ import annotations

import os

from remote_docker.dev.session import Session
from remote_docker.errors import RemoteDockerError


def make(session: Session) -> None:
    """Both keys and the pin; a partial set from an interrupted init is made again."""
    from remote_docker.hostkeys import run_tool

    for path, comment in ((session.client_key, f"remote-docker dev {session.name}"),
                          (session.host_key, f"remote-docker dev {session.name} host")):
        for stale in (path, path + ".pub"):
            if os.path.exists(stale) and not (os.path.exists(path) and
                                              os.path.exists(path + ".pub")):
                os.unlink(stale)
        if os.path.exists(path):
            continue
        proc = run_tool(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment,
                         "-f", path])
        if proc.returncode != 0:
            raise RemoteDockerError(f"ssh-keygen could not make {path}: "
                                    f"{proc.stderr.strip() or 'failed'}")
    pin(session)


def public(path: str) -> str:
    with open(path + ".pub", encoding="ascii") as f:
        return f.read().strip()


def pin(session: Session) -> None:
    """known_hosts: the host key under the session's alias (the port changes per run)."""
    keytype, blob = public(session.host_key).split()[:2]
    with open(session.known_hosts, "w", encoding="ascii") as f:
        f.write(f"{session.host_alias} {keytype} {blob}\n")


def container_files(session: Session) -> bytes:
    """A tar of what the container's sshd needs, root-owned 0600, for ``docker cp -``."""
    import io
    import tarfile

    with open(session.host_key, "rb") as f:
        host_key = f.read()
    authorized = (public(session.client_key) + "\n").encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in (("ssh_host_ed25519_key", host_key),
                           ("authorized_keys", authorized)):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid, info.gid = len(data), 0o600, 0, 0
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()
