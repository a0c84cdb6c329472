"""Where the test bed keeps things, in one place.

The bed is a set of real daemons and accounts on one machine; every other
module and the tests name these paths and addresses instead of spelling them
again, so that moving one thing (a display number, a state directory) is a
one-line change.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path

# Root-owned state: host keys, sshd configs, pidfiles, logs. Kept across
# `down` so that the next `up` reuses the keys and is fast.
STATE_DIR = Path("/var/lib/remote-docker-testbed")

# World-readable copy of the checkout: the real checkout is usually root-only
# (drwx------), and the bed's users must be able to run its code.
# REMOTE_DOCKER_TESTBED_COPY=NAME keeps a second checkout's copy apart (src-NAME),
# so that two checkouts (git worktrees) can test against one bed at once.
OPT_DIR = Path("/opt/remote-docker-testbed")
COPY_NAME = os.environ.get("REMOTE_DOCKER_TESTBED_COPY", "")
SRC_DIR = OPT_DIR / (f"src-{COPY_NAME}" if COPY_NAME else "src")
VENV_DIR = SRC_DIR / ".venv"
SHIM_DIR = SRC_DIR / "bin"

# The docker-machine's engine is the machine's default one, so that the dm
# user's plain `docker` (what the tests compare the shim against) reaches it
# with no DOCKER_HOST at all.
DOCKER_SOCKET = Path("/var/run/docker.sock")
DOCKERD_PIDFILE = STATE_DIR / "dockerd.pid"  # exists only if the bed started it
DOCKERD_LOG = STATE_DIR / "dockerd.log"

DM_USER = "dm"  # the docker-machine's user, in group docker
WS_USER = "ws"  # the workstation's user: the one who runs the shims
DM_ADDRESS = "127.0.0.2"  # loopback aliases need no configuration on Linux
WS_ADDRESS = "127.0.0.3"
# The workstation user's own network namespace (testbed.netns): a loopback
# 127.0.0.1 of its own, every other 127.x routed over a veth pair to the
# machine's, so dm's sshd (and ws's, for classic mounts) answer as before
# while a port published on the docker-machine is not on ws's localhost.
# 198.18.0.0/15 is reserved for benchmarking networks (RFC 2544): no LAN,
# docker network or VPN of the machine should be using it.
WS_NETNS = "rdtb-ws"
WS_NETNS_PATH = Path("/run/netns") / WS_NETNS
WS_VETH_HOST, WS_VETH_NS = "rdtb-ws0", "rdtb-ws1"
WS_VETH_HOST_ADDRESS, WS_VETH_NS_ADDRESS = "198.18.87.1", "198.18.87.2"
WS_VETH_PREFIX = 30
NSENTER = "/usr/bin/nsenter"
DM_HOST = f"{DM_USER}@{DM_ADDRESS}"
# Two more accounts on the docker-machine, so the shim's failure lines for a
# machine where docker cannot be used are tested for real: OUTSIDER is not in
# group docker; NO_DOCKER's sessions get a PATH without any docker client.
OUTSIDER_USER = "outsider"
NO_DOCKER_USER = "nodocker"
NO_DOCKER_PATH = "/usr/sbin:/sbin"

SSHD_BINARY = Path("/usr/sbin/sshd")
SSHD_PRIVSEP_DIR = Path("/run/sshd")
SFTP_SERVER = Path("/usr/lib/openssh/sftp-server")

DISPLAY_NUMBER = 42
DISPLAY = f":{DISPLAY_NUMBER}"
X11_SOCKET_DIR = Path("/tmp/.X11-unix")
X11_SOCKET = X11_SOCKET_DIR / f"X{DISPLAY_NUMBER}"
X11_LOCKFILE = Path(f"/tmp/.X{DISPLAY_NUMBER}-lock")  # Xvfb writes its pid here
XVFB_LOG = STATE_DIR / "xvfb.log"

RUNTIME_ROOT = Path("/run/user")

SETPRIV = "/usr/bin/setpriv"

# What the bed's users get on PATH. The same for dm as sshd gives a session
# (without /usr/games), so dm's local docker and `ssh dm@… docker` are the
# same client binary.
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
WS_PATH = f"{SHIM_DIR}:{SYSTEM_PATH}"
DAEMON_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def runtime_dir(user: str) -> Path:
    """XDG_RUNTIME_DIR: where the shims keep control sockets (the user must exist)."""
    return RUNTIME_ROOT / str(pwd.getpwnam(user).pw_uid)


def home(user: str) -> Path:
    """A bed user's home: the account's own once it exists, else where useradd puts it."""
    try:
        return Path(pwd.getpwnam(user).pw_dir)
    except KeyError:
        return Path("/home") / user

# The workstation's own engine (image push/pull between engines): a second
# dockerd with its own socket, data, exec root and pidfile, no bridge and no
# iptables, so it never touches the docker-machine's engine or its networks.
WS_DOCKER_RUN_DIR = Path("/run/remote-docker-testbed")
WS_DOCKER_SOCKET = WS_DOCKER_RUN_DIR / "ws-docker.sock"
WS_DOCKER_HOST = f"unix://{WS_DOCKER_SOCKET}"
WS_DOCKERD_PIDFILE = WS_DOCKER_RUN_DIR / "ws-docker.pid"
WS_DOCKER_EXEC_ROOT = WS_DOCKER_RUN_DIR / "ws-docker-exec"
WS_DOCKER_DATA_ROOT = STATE_DIR / "ws-docker"
WS_DOCKERD_CONFIG = STATE_DIR / "ws-docker.json"
WS_DOCKERD_LOG = STATE_DIR / "ws-dockerd.log"
