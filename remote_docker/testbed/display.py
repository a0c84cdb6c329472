"""The workstation's display: an Xvfb run by ws, with a cookie only ws holds.

The cookie is written as a FamilyLocal entry (hostname/unix:N), because
python-xlib, which the X11 features use, ignores FamilyWild entries.
"""

from __future__ import annotations

import os
import socket

from remote_docker.testbed import layout, runas
from remote_docker.testbed.process import (
    TestbedError, alive, log_tail, read_pid, run, spawn_detached, terminate, wait_until,
)

START_TIMEOUT = 20
SCREEN = "1280x1024x24"


def xauthority() -> str:
    return runas.ws_env()["XAUTHORITY"]


def _xauth(*args: str):
    return run(runas.ws_command(["xauth", "-q", "-f", xauthority(), *args]), env=runas.ws_env())


def _ensure_cookie() -> bool:
    """A FamilyLocal cookie for the display in ws's Xauthority; True when added now."""
    entry = f"{socket.gethostname()}/unix:{layout.DISPLAY_NUMBER}"
    listed = _xauth("list").stdout.decode().split()
    if entry in listed:
        return False
    _xauth("add", entry, "MIT-MAGIC-COOKIE-1", os.urandom(16).hex())
    return True


def _pid() -> int | None:
    return read_pid(layout.X11_LOCKFILE)


def answering() -> bool:
    """The Xvfb of the lockfile runs and its socket accepts a connection."""
    if not alive(_pid(), "Xvfb"):
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(2)
            conn.connect(str(layout.X11_SOCKET))
    except OSError:
        return False
    return True


def ensure() -> str:
    layout.X11_SOCKET_DIR.mkdir(mode=0o1777, exist_ok=True)
    layout.X11_SOCKET_DIR.chmod(0o1777)  # mkdir's mode is cut by the umask
    added = _ensure_cookie()
    if answering() and not added:
        return "ok"
    stop()
    if not alive(_pid(), "Xvfb"):  # a stale lock or socket would make Xvfb refuse
        layout.X11_LOCKFILE.unlink(missing_ok=True)
        layout.X11_SOCKET.unlink(missing_ok=True)
    spawn_detached(
        runas.ws_command(["Xvfb", layout.DISPLAY, "-screen", "0", SCREEN, "-nolisten", "tcp",
                          "-auth", xauthority()]),
        layout.XVFB_LOG, env=runas.ws_env(),
    )
    try:
        wait_until(answering, timeout=START_TIMEOUT, what=f"Xvfb {layout.DISPLAY}")
    except TestbedError as error:
        raise TestbedError(f"{error}; {log_tail(layout.XVFB_LOG)}") from None
    return f"started Xvfb {layout.DISPLAY}"


def stop() -> str:
    pid = _pid()
    if not alive(pid, "Xvfb"):
        return ""
    terminate(lambda: [pid] if alive(pid, "Xvfb") else [], what="Xvfb")
    return f"stopped Xvfb {layout.DISPLAY}"
