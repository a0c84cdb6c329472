"""Whether the bed is up, asked before every `exec`, so it must cost milliseconds.

Only pidfiles, sockets and the password database: no child process, and only
the modules a command as ws relies on are imported.
"""

from __future__ import annotations

from remote_docker.testbed import display, dockerd, layout, sshd, users


def is_up() -> bool:
    """The parts a command as ws relies on: users, engine, docker-machine's sshd,
    display and code."""
    return (
        users.exists(layout.WS_USER) and users.exists(layout.DM_USER)
        and dockerd.answering()
        and sshd.running(sshd.DOCKER_MACHINE)
        and display.answering()
        and (layout.SRC_DIR / "remote_docker").is_dir()
    )
