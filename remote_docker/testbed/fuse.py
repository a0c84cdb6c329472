"""FUSE for the bed's non-root users.

/dev/fuse may be 0600 on these machines and `-o allow_other` needs
`user_allow_other` in /etc/fuse.conf: without it dockerd (root) cannot see
a user's sshfs mount, and a bind mount of it into a container is empty.
"""

from __future__ import annotations

import os
from pathlib import Path

from remote_docker.testbed.process import TestbedError

DEVICE = Path("/dev/fuse")
CONF = Path("/etc/fuse.conf")
OPTION = "user_allow_other"


def _option_set() -> bool:
    try:
        lines = CONF.read_text().splitlines()
    except FileNotFoundError:
        return False
    return any(line.strip() == OPTION for line in lines)


def ok() -> bool:
    return DEVICE.exists() and DEVICE.stat().st_mode & 0o666 == 0o666 and _option_set()


def ensure() -> str:
    done = []
    if not DEVICE.exists():
        raise TestbedError(f"{DEVICE} is missing: this kernel has no FUSE for sshfs")
    if DEVICE.stat().st_mode & 0o666 != 0o666:
        os.chmod(DEVICE, 0o666)
        done.append(f"chmod 0666 {DEVICE}")
    if not _option_set():
        old = CONF.read_text() if CONF.exists() else ""
        CONF.write_text(old + ("" if not old or old.endswith("\n") else "\n") + OPTION + "\n")
        done.append(f"{OPTION} in {CONF}")
    return ", ".join(done) or "ok"
