"""``dev gc``: what sessions left on a docker-machine after their directory went away.

A session directory deleted by hand, or a workstation reinstalled, leaves its
container, key volume and image behind.  They carry the session's id and
this workstation user (``lifecycle.labels``), so they are found by label and
removed when no session here has that id; another user's or another
workstation's sessions on the same docker-machine are never touched, and
an image exported from a session (it inherits the labels) is not a session
image: only ``rd-dev-…:session`` images are removed.
"""

from __future__ import annotations

import os

from remote_docker.dev import link, session
from remote_docker.dev.lifecycle import checked, engine, release_work_mounts
from remote_docker.dev.session import LABEL, OWNER_LABEL
from remote_docker.transport.openssh import ControlMaster


def _lines(master: ControlMaster, argv: list[str]) -> list[list[str]]:
    return [line.split() for line in checked(master, argv).decode().splitlines() if line.strip()]


def collect(master: ControlMaster, env: dict | os._Environ = os.environ) -> list[str]:
    """Remove the orphans of this workstation user on ``master``'s machine; what was removed."""
    from remote_docker.mounts.reverse import owner

    known = {session.load(n, env).id for n in session.names(env)}
    mine = f"label={OWNER_LABEL}={owner()}"
    removed = []
    for cid, sid, name in _lines(master, ["docker", "ps", "-a", "--no-trunc", "--filter", mine,
                                          "--format",
                                          f'{{{{.ID}}}} {{{{.Label "{LABEL}"}}}} '
                                          "{{.Names}}"]):
        if sid not in known:
            checked(master, ["docker", "rm", "-f", cid])
            release_work_mounts(master, cid)
            removed.append(f"container {name}")
    for name, sid in _lines(master, ["docker", "volume", "ls", "--filter", mine, "--format",
                                     f'{{{{.Name}}}} {{{{.Label "{LABEL}"}}}}']):
        if sid not in known:
            engine(master, ["docker", "volume", "rm", name], quiet=True)
            removed.append(f"volume {name}")
    for repo, tag in _lines(master, ["docker", "image", "ls", "--filter", mine, "--format",
                                     "{{.Repository}} {{.Tag}}"]):
        sid = repo.rpartition("-")[2]
        if repo.startswith("rd-dev-") and tag == "session" and sid not in known:
            engine(master, ["docker", "image", "rm", f"{repo}:{tag}"], quiet=True)
            removed.append(f"image {repo}:{tag}")
    return removed + link.sweep(known, env)

