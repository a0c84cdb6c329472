"""A session's life on the docker-machine: build, run, stop, export, rm.

Small engine queries go over the docker-machine's ControlMaster as scripts
(``engine``); the commands that need the shim's own work go through the
``docker`` shim itself (``shim``): ``build -`` streams the session's build
context, and ``create -v WORK:WORK`` reverse-mounts the work dir for as long
as the container exists.  Everything made on the docker-machine carries the
session's id as a label and a name derived from it, so ``rm`` finds it all,
even what a killed command left half made.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from remote_docker.dev import keys, link, overlay
from remote_docker.dev.session import KEY_DIR, LABEL, OWNER_LABEL, Session, SessionError
from remote_docker.errors import RemoteCommandFailed, RemoteDockerError
from remote_docker.transport import quoting
from remote_docker.transport.openssh import ControlMaster


def engine(master: ControlMaster, argv: list[str], stdin: bytes | None = None,
           quiet: bool = False) -> tuple[int, bytes]:
    """One docker command on the docker-machine; ``quiet`` drops its stderr."""
    master.ensure()
    return master.capture(quoting.join(argv) + (" 2>/dev/null" if quiet else ""), stdin)


def checked(master: ControlMaster, argv: list[str], stdin: bytes | None = None) -> bytes:
    status, out = engine(master, argv, stdin)
    if status != 0:
        raise RemoteCommandFailed(f"'{' '.join(argv[:3])}…' failed on {master.machine.spec} "
                                  f"(exit {status})", argv, out, b"", status)
    return out


def shim(session: Session, args: list[str], stdin: bytes | None = None,
         capture: bool = False, env: dict | os._Environ = os.environ) -> tuple[int, bytes]:
    """``docker ARGS`` through our own shim, on the session's docker-machine."""
    from remote_docker.mounts.keeper import python_argv

    child_env = {k: v for k, v in env.items() if k not in ("DOCKER_HOST", "DOCKER_CONTEXT")}
    child_env["REMOTE_DOCKER_HOST"] = session.machine
    proc = subprocess.run(python_argv("remote_docker.cli.docker", args), input=stdin,
                          stdin=None if stdin is not None else subprocess.DEVNULL,
                          stdout=subprocess.PIPE if capture else None, env=child_env)
    return proc.returncode, proc.stdout or b""


def labels(session: Session) -> list[str]:
    """The session's id and this workstation user: what ``dev gc`` finds orphans by."""
    from remote_docker.mounts.reverse import owner

    return ["--label", f"{LABEL}={session.id}", "--label", f"{OWNER_LABEL}={owner()}"]


# -- what exists ----------------------------------------------------------------------

def container_state(master: ControlMaster, session: Session) -> str:
    """``running``, ``exited``, ``created``… or "" when there is no container."""
    status, out = engine(master, ["docker", "container", "inspect", "--format",
                                  "{{.State.Status}}", session.container], quiet=True)
    return out.decode().strip() if status == 0 else ""


def container_id(master: ControlMaster, session: Session) -> str:
    status, out = engine(master, ["docker", "container", "inspect", "--format", "{{.Id}}",
                                  session.container], quiet=True)
    return out.decode().strip() if status == 0 else ""


def image_exists(master: ControlMaster, session: Session) -> bool:
    status, _ = engine(master, ["docker", "image", "inspect", session.image], quiet=True)
    return status == 0


# -- overlay and build ----------------------------------------------------------------

def probe(master: ControlMaster, session: Session) -> str:
    """What kind of overlay the base image needs, asked of the base image itself."""
    status, out = engine(master, ["docker", "run", "--rm", "--entrypoint", "/bin/sh",
                                  session.base_image, "-c", overlay.PROBE_SCRIPT])
    if status == 125:
        raise SessionError(f"cannot run {session.base_image} on {session.machine} to see what "
                           "it is (see docker's message above), or pass --distro")
    return overlay.distro_of(out.decode(errors="replace") if status == 0 else "",
                             session.base_image)


def build(session: Session, env: dict | os._Environ = os.environ) -> None:
    tar = overlay.context_tar(session.context_dir)
    status, _ = shim(session, ["build", "-t", session.image, *labels(session), "-"], stdin=tar,
                     env=env)
    if status != 0:
        raise RemoteDockerError(f"building {session.image} failed (exit {status}); the "
                                f"overlay is in {session.context_dir}", status)


# -- run, stop --------------------------------------------------------------------------

def run(session: Session, docker_args: list[str], port: int | None,
        env: dict | os._Environ = os.environ, recreate: bool = False) -> None:
    """Create the container if there is none, give it the keys, start it, link to it.

    Each step tolerates what an interrupted earlier ``run`` left: an existing
    container is started again, with the same host key.  Its docker run
    options were fixed when it was made: new ones need ``recreate``, which
    removes it first (what it changed outside the work dir goes with it).
    """
    master = link.machine_master(session, env)
    state = container_state(master, session)
    if state and recreate:
        remove_container(session, env)
        state = ""
    elif state and (docker_args or port):
        raise SessionError(f"the container of session {session.name!r} exists already, with "
                           "the options it was made with: 'dev run --recreate …' makes a new "
                           "one (after 'dev export' if you want to keep what it holds)")
    if not state:
        if not image_exists(master, session):
            raise SessionError(f"session {session.name!r} has no image yet: "
                               "'remote-docker dev build' makes it")
        checked(master, ["docker", "volume", "create", *labels(session), session.volume])
        publish = f"127.0.0.1:{port}:22" if port else "127.0.0.1::22"
        status, _ = shim(session, [
            "create", "--name", session.container, *labels(session),
            "--hostname", session.name, "-p", publish,
            "-v", f"{session.work_dir}:{session.work_dir}",
            "-v", f"{session.volume}:{KEY_DIR}", *docker_args, session.image],
            capture=True, env=env)
        if status != 0:
            raise RemoteDockerError(f"could not create the container of session "
                                    f"{session.name!r} (exit {status})", status)
    checked(master, ["docker", "cp", "-", f"{session.container}:{KEY_DIR}"],
            stdin=keys.container_files(session))
    if state != "running":
        checked(master, ["docker", "start", session.container])
    session.port = published_port(master, session)
    session.save()
    link.write_config(session, env)
    try:
        link.ensure(session, env, timeout=link.START_TIMEOUT)
    except RemoteDockerError as exc:
        raise SessionError(f"{exc.message} (see 'docker logs {session.container}')") from None


def connect(session: Session, env: dict | os._Environ = os.environ) -> None:
    """The link is up: after a restart the sshd may have another port, asked for here."""
    if link.is_warm(session, env):
        return
    master = link.machine_master(session, env)
    if container_state(master, session) != "running":
        raise SessionError(f"the container of session {session.name!r} is not running: "
                           "'remote-docker dev run' starts it")
    port = published_port(master, session)
    if port != session.port or not os.path.exists(session.ssh_config):
        session.port = port
        session.save()
        link.write_config(session, env)
    link.ensure(session, env, timeout=10)


def published_port(master: ControlMaster, session: Session) -> int:
    out = checked(master, ["docker", "port", session.container, "22/tcp"]).decode()
    for line in out.splitlines():
        address, _, port = line.strip().rpartition(":")
        if address == "127.0.0.1" and port.isdigit():
            return int(port)
    raise SessionError(f"the container of session {session.name!r} publishes no sshd port "
                       "on the docker-machine's loopback")


def stop(session: Session, env: dict | os._Environ = os.environ) -> None:
    """Unmount, close the link, stop the container: it and its host key stay."""
    from remote_docker.dev import fsmount

    fsmount.umount(session)
    link.close(session, env)
    master = link.machine_master(session, env)
    if container_state(master, session) in ("running", "restarting", "paused"):
        checked(master, ["docker", "stop", session.container])
    session.port = 0
    session.save()


def changed_files(session: Session, env: dict | os._Environ = os.environ) -> list[str]:
    """What the container changed in its image (``docker diff``: A added, C changed,
    D deleted), whoever changed it, for the Dockerfile you are writing; the
    sshd's own files in /run are left out."""
    master = link.machine_master(session, env)
    if not container_state(master, session):
        raise SessionError(f"session {session.name!r} has no container")
    lines = checked(master, ["docker", "diff", session.container]).decode().splitlines()
    return [line for line in lines if line[2:] and line[2:] != "/run" and
            not line[2:].startswith("/run/")]


# -- export, rm -------------------------------------------------------------------------

def export(session: Session, tag: str, push: bool, env: dict | os._Environ = os.environ) -> str:
    """Commit the container to ``tag`` (its keys live in a volume: not committed)."""
    master = link.machine_master(session, env)
    if not container_state(master, session):
        raise SessionError(f"session {session.name!r} has no container to export: "
                           "'remote-docker dev run' first")
    image_id = checked(master, ["docker", "commit", session.container, tag]).decode().strip()
    if push:
        checked(master, ["docker", "push", tag])
    return image_id


def remove_container(session: Session, env: dict | os._Environ = os.environ) -> ControlMaster:
    """Unmount, disconnect, remove the container and release its work-dir mount."""
    from remote_docker.dev import fsmount

    fsmount.umount(session)
    link.close(session, env)
    master = link.machine_master(session, env)
    cid = container_id(master, session)
    if cid:
        checked(master, ["docker", "rm", "-f", cid])
        release_work_mounts(master, cid)
    session.port = 0
    session.save()
    return master


def remove(session: Session, keep_image: bool, env: dict | os._Environ = os.environ) -> None:
    """Everything of the session, here and on the docker-machine; the directory last,
    so a failure leaves the session to ``rm`` again."""
    master = remove_container(session, env)
    status, _ = engine(master, ["docker", "volume", "inspect", session.volume], quiet=True)
    if status == 0:
        checked(master, ["docker", "volume", "rm", session.volume])
    if not keep_image and image_exists(master, session):
        checked(master, ["docker", "image", "rm", session.image])
    shutil.rmtree(session.directory)


def release_work_mounts(master: ControlMaster, cid: str, timeout: float = 20.0) -> None:
    """The reverse mounts bound to the removed container are gone when ``rm`` returns.

    Their keepers see the container's end and release them; releasing from
    here at the same time would race them for the volume, so this waits, and
    only what a keeper did not finish in time is released from here.
    """
    import time

    from remote_docker.mounts import registry, reverse

    def bound() -> list[str]:
        return [u for u in registry.uuids(master.env)
                if (r := registry.load(u, master.env)) is not None and r.container == cid]

    deadline = time.monotonic() + timeout
    while bound() and time.monotonic() < deadline:
        time.sleep(0.1)
    for uuid in bound():
        reverse.unmount(master, uuid)


def status(session: Session, env: dict | os._Environ = os.environ) -> dict[str, str]:
    from remote_docker.dev import fsmount

    master = link.machine_master(session, env)
    state = container_state(master, session)
    return {
        "session": session.name,
        "directory": session.directory,
        "docker-machine": session.machine,
        "base image": session.base_image,
        "image": session.image + ("" if image_exists(master, session) else " (not built)"),
        "container": f"{session.container} ({state or 'none'})",
        "ssh": (f"ssh -F {session.ssh_config} {session.host_alias}" +
                ("" if link.is_warm(session, env) else " (not connected)"))
        if state == "running" and session.port else "-",
        "work dir": session.work_dir,
        "mount": session.mount_point if fsmount.is_mounted(session.mount_point) else "-",
        "env": " ".join(session.env_names) or "-",
    }
