"""``dodo CMD…``: CMD in the session's container, where the current directory is.

The arguments reach the container exactly as given (one ``quoting.join``);
the directory is the one that mirrors the workstation's (``container_path``);
the exit status is ssh's, which is the command's: the remote shell turns a
death by signal into 128+n, as ssh would otherwise report 255 like a lost
connection.  The environment variables the session carries are sent as a
0600 file that the remote shell sources and deletes before CMD starts, so no
value is ever on a command line, in a process list or in the history.
"""

from __future__ import annotations

import json
import os
import time

from remote_docker.dev import link
from remote_docker.dev.session import KEY_DIR, Session, SessionError, container_path
from remote_docker.transport import quoting

ENV_DIR = "/run/rd-dev"


def env_values(session: Session, env: dict | os._Environ) -> dict[str, str]:
    """The listed variables that are set here; unset ones stay unset there, as docker -e."""
    return {name: env[name] for name in session.env_names if name in env}


def upload_env_script(tag: str) -> str:
    return (f"umask 077; mkdir -p {ENV_DIR} && cat > {ENV_DIR}/{quoting.quote('env-' + tag)}")


def command_script(argv: list[str], directory: str, env_tag: str = "") -> str:
    """The container-side shell script for one ``dodo``.

    The image's own environment (PATH, LANG…, saved by the start script) comes
    first; an empty argv is an interactive login shell.
    """
    lines = [f"[ -r {KEY_DIR}/environment ] && . {KEY_DIR}/environment"]
    if env_tag:
        envf = f"{ENV_DIR}/{quoting.quote('env-' + env_tag)}"
        lines.append(f". {envf} || exit 125; rm -f {envf}")
    lines.append(f"cd {quoting.quote(directory)} || exit 125")
    if not argv:
        lines.append('exec "${SHELL:-/bin/sh}" -l')
        return "\n".join(lines)
    lines += ["trap : INT QUIT", quoting.join(argv), "exit $?"]
    return "\n".join(lines)


def append_history(session: Session, argv: list[str], directory: str) -> None:
    """One JSON line per command: when, where, the argv; never the environment."""
    entry = json.dumps({"time": round(time.time(), 3), "dir": directory, "argv": argv})
    fd = os.open(session.history_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        f.write(entry + "\n")


def read_history(session: Session) -> list[dict]:
    try:
        with open(session.history_file, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return []
    entries = []
    for line in lines:
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue  # a line cut short by a full disk: skip it, keep the rest
    return entries


def where(session: Session, cwd: str, workdir: str | None) -> str:
    if workdir:
        return workdir
    directory = container_path(session, cwd)
    if directory is None:
        raise SessionError(f"{cwd} is neither under session {session.name!r}'s work dir "
                           f"({session.work_dir}) nor under its container mount: cd there, "
                           "or give the directory with -w DIR")
    return directory


def prepare(session: Session, argv: list[str], cwd: str, workdir: str | None, tty: bool,
            env: dict | os._Environ = os.environ) -> list[str]:
    """Everything before the command itself; returns the ssh argv to exec."""
    directory = where(session, cwd, workdir)
    if not link.is_warm(session, env):
        from remote_docker.dev.lifecycle import connect

        connect(session, env)
    tag = ""
    values = env_values(session, env)
    if values:
        import subprocess

        tag = os.urandom(8).hex()
        proc = subprocess.run([*link.ssh_base(session), "-T", session.host_alias,
                               upload_env_script(tag)], input=quoting.env_script(values))
        if proc.returncode != 0:
            raise SessionError(f"could not pass the environment to session {session.name!r}")
    if argv:
        append_history(session, argv, directory)
    return [*link.ssh_base(session), "-t" if tty else "-T", session.host_alias,
            command_script(argv, directory, tag)]
