"""Running commands as the bed's users, exactly as a login would.

The environment is built from nothing rather than inherited from root, so a
test sees what a user on a workstation sees, and root's DOCKER_HOST, PATH or
ssh agent cannot leak into what is being tested. setpriv replaces itself with
the command: no process sits in between to alter exit codes, signals or the
terminal.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Sequence
from pathlib import Path

from remote_docker.testbed import layout
from remote_docker.testbed.process import TestbedError


def require_root() -> None:
    """Everything the bed does needs root: users, daemons, and becoming ws or dm."""
    if os.geteuid() != 0:
        raise TestbedError("the test bed must be run as root (it adds users and runs daemons)")


def command(user: str, argv: Sequence[str]) -> list[str]:
    """argv wrapped to run as user, with the user's own groups (dm: docker)."""
    return [layout.SETPRIV, f"--reuid={user}", f"--regid={user}", "--init-groups", "--", *argv]


def _login_env(user: str, path: str) -> dict[str, str]:
    env = {
        "HOME": str(layout.home(user)),
        "USER": user,
        "LOGNAME": user,
        "SHELL": "/bin/bash",
        "PATH": path,
        "LANG": "C.UTF-8",
    }
    if "TERM" in os.environ:
        env["TERM"] = os.environ["TERM"]
    return env


def ws_command(argv: Sequence[str], netns: bool = False) -> list[str]:
    """argv run as the workstation user ws; with netns, in ws's own network
    namespace (testbed.netns), where the docker-machine's ports are not local.

    Off by default here because bench/ measures the machine's own network and
    reaches its delay proxies on 127.0.0.1; the tests' run_ws and `testbed exec`
    use the namespace.
    """
    as_ws = command(layout.WS_USER, argv)
    return [layout.NSENTER, f"--net={layout.WS_NETNS_PATH}", "--", *as_ws] if netns else as_ws


def ws_env(ports: bool = False) -> dict[str, str]:
    """The workstation user's environment: the shims first on PATH, the display,
    the docker-machine named by REMOTE_DOCKER_HOST, and ws's own engine
    (REMOTE_DOCKER_LOCAL_HOST: not DOCKER_HOST, which would send the shim's
    every call to the local engine).

    Published ports are off unless asked for: a ports watcher forwards every
    container's ports on the machine and runs `docker events` there, which
    would reach into other tests (their ports, their leftover checks); the
    port tests turn it on in their own state dirs, and `exec --netns` for a
    person trying it.
    """
    return {
        **_login_env(layout.WS_USER, layout.WS_PATH),
        "REMOTE_DOCKER_HOST": layout.DM_HOST,
        "REMOTE_DOCKER_LOCAL_HOST": layout.WS_DOCKER_HOST,  # ws's own engine, not dm's
        "REMOTE_DOCKER_PORTS": "1" if ports else "0",
        "DISPLAY": layout.DISPLAY,
        "XAUTHORITY": str(layout.home(layout.WS_USER) / ".Xauthority"),
        "XDG_RUNTIME_DIR": str(layout.runtime_dir(layout.WS_USER)),
    }


def dm_command(argv: Sequence[str]) -> list[str]:
    """argv run as the docker-machine user dm: its `docker` is the reference."""
    return command(layout.DM_USER, argv)


def dm_env() -> dict[str, str]:
    """dm's environment, the same as an sshd session gives dm.

    No DOCKER_HOST: the engine is on the default socket, and a DOCKER_HOST
    would change what some docker commands print (context warnings), which
    would spoil comparing the shim's output with this reference.
    """
    return _login_env(layout.DM_USER, layout.SYSTEM_PATH)


def enter_as(user: str, directory: Path) -> bool:
    """chdir into directory with user's permissions; False (and no chdir) if denied.

    The kernel decides, with ACLs and every parent's search bit, by taking
    user's effective ids for the one chdir and then root's back.
    """
    account = pwd.getpwnam(user)
    groups = os.getgrouplist(user, account.pw_gid)
    saved_groups = os.getgroups()
    os.setgroups(groups)
    os.setegid(account.pw_gid)
    os.seteuid(account.pw_uid)
    try:
        os.chdir(directory)
        return True
    except OSError:
        return False
    finally:
        os.seteuid(0)
        os.setegid(0)
        os.setgroups(saved_groups)


def exec_as_ws(argv: Sequence[str], netns: bool = False) -> None:
    """Become argv as ws, in the current directory if ws may enter it, else ws's home."""
    try:
        here = Path(os.getcwd())
    except OSError:  # the current directory was removed
        here = layout.home(layout.WS_USER)
    if not enter_as(layout.WS_USER, here):
        os.chdir(layout.home(layout.WS_USER))
    wrapped = ws_command(argv, netns)
    os.execve(wrapped[0], wrapped, ws_env(ports=netns))
