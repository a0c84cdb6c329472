"""What the mount benchmark makes on the bed, each thing made and removed in one place.

Every resource is named with this run's id, and each context manager removes
what it made in ``finally``, tolerating "already gone": a failed or
interrupted run leaves no mount, container, volume, authorized key, ssh alias
or runtime dir behind. Things run as the bed's users (ws on the workstation
side, dm on the docker-machine side), never as root, except the few writes
into their ssh files that the bed itself also does as root.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, ContextManager, Iterator

from remote_docker.testbed import dm_command, dm_env, ws_command, ws_env
from remote_docker.testbed import layout, users
from remote_docker.testbed.mounts import mounts_under

import measure
from measure import MeasurementFailed

RUN_ID = uuid.uuid4().hex[:8]
PREFIX = f"rd-bench-{RUN_ID}"
IMAGE = "debian:stable-slim"  # GNU date has %N: workloads time themselves in the container
CONTAINER_LIFETIME = 900  # seconds: `sleep` ends a container we failed to remove
MOUNT_TIMEOUT = 30.0
MASTER_PERSIST = "900"  # idle classic rounds must not end it; stopped at the end anyway


def new_name(kind: str) -> str:
    return f"{PREFIX}-{kind}-{uuid.uuid4().hex[:6]}"


def as_dm(label: str, argv: list[str], check: bool = True, timeout: float = 300) -> str:
    return measure.capture(label, dm_command(argv), dm_env(), timeout=timeout, check=check)


# -- the workstation's directory --------------------------------------------------

# Made by ws's own python: 50 directories of 100 files (the walk), a 64 MiB
# random file (the reads, under a fresh hard link per read, so that no mount
# has it in its page cache: FUSE caches per path), and a small tree for docker cp.
_MAKE_TREE = """
import os, sys
root, dirs, per_dir, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
small, small_count = sys.argv[5], int(sys.argv[6])
for d in range(dirs):
    sub = os.path.join(root, "tree", f"d{d:03}")
    os.makedirs(sub)
    for f in range(per_dir):
        with open(os.path.join(sub, f"f{f:04}"), "w") as out:
            out.write(f"{d} {f}\\n")
with open(os.path.join(root, "read.bin"), "wb") as out:
    for _ in range(size >> 20):
        out.write(os.urandom(1 << 20))
os.makedirs(os.path.join(root, small))
for i in range(1, small_count + 1):
    with open(os.path.join(root, small, f"f{i}"), "w") as out:
        out.write(f"{i}\\n")
"""


@dataclass
class SourceTree:
    """The workstation directory every path mounts or copies from."""

    root: Path
    tree_files: int
    read_bytes: int

    def fresh_read_file(self, tag: str) -> str:
        """A name for the 64 MiB file that no mount has read yet (a hard link, as ws)."""
        name = f"read-{tag}.bin"
        measure.capture("link a fresh read file",
                        ws_command(["ln", str(self.root / "read.bin"), str(self.root / name)]),
                        ws_env())
        return name

    def count(self, relative: str) -> int:
        return sum(1 for _ in (self.root / relative).iterdir())

    def size(self, relative: str) -> int:
        return (self.root / relative).stat().st_size


@contextmanager
def workstation_dir(dirs: int, per_dir: int, read_bytes: int, small: str,
                    small_count: int) -> Iterator[SourceTree]:
    """ws's ~/rd-bench-<id>: the tree, the big file, the small tree; removed at the end."""
    root = layout.home(layout.WS_USER) / PREFIX
    try:
        measure.capture("make the workstation's tree", ws_command(
            ["/usr/bin/python3", "-I", "-c", _MAKE_TREE, str(root), str(dirs), str(per_dir),
             str(read_bytes), small, str(small_count)]), ws_env())
        yield SourceTree(root, dirs * per_dir, read_bytes)
    finally:
        shutil.rmtree(root, ignore_errors=True)


# -- ssh access for the duration of the bench --------------------------------------


def _drop_lines(path: Path, user: str, marker: str) -> None:
    """Remove the lines holding marker (ours), keeping everyone else's; tolerate no file."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return
    kept = [line for line in lines if marker not in line]
    if kept == lines:
        return
    if kept:
        users.write_owned(path, "\n".join(kept) + "\n", user, mode=0o600)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def dm_key_on_ws() -> Iterator[None]:
    """dm's key may log in to ws, for sftp only, while the classic mounts run.

    The bed deliberately does not trust dm's key; the original scripts needed
    ssh from the docker-machine back to the workstation, so the bench allows it
    for this run only, restricted to the sftp server, and always takes it back.
    """
    authorized = layout.home(layout.WS_USER) / ".ssh" / "authorized_keys"
    line = (f'restrict,command="{layout.SFTP_SERVER}" {users.public_key(layout.DM_USER)} '
            f"{PREFIX}")
    try:
        users.ensure_line(authorized, line, layout.WS_USER)
        yield
    finally:
        _drop_lines(authorized, layout.WS_USER, PREFIX)


@contextmanager
def ws_ssh_alias(port: int) -> Iterator[str]:
    """A Host alias in ws's ~/.ssh/config for the docker-machine behind a delay proxy.

    The shim names a machine as ssh does, so an alias is how ws's master goes
    through the proxy while the pinned host key of 127.0.0.2 still applies.
    The block goes first (first match wins in ssh_config) and is removed after.
    """
    alias = f"{PREFIX}-dm"
    config = layout.home(layout.WS_USER) / ".ssh" / "config"
    block = [f"Host {alias}  # {PREFIX}", f"    HostName 127.0.0.1  # {PREFIX}",
             f"    Port {port}  # {PREFIX}", f"    User {layout.DM_USER}  # {PREFIX}",
             f"    HostKeyAlias {layout.DM_ADDRESS}  # {PREFIX}"]
    try:
        old = config.read_text() if config.exists() else ""
        users.write_owned(config, "\n".join(block) + "\n" + old, layout.WS_USER, mode=0o600)
        yield alias
    finally:
        _drop_lines(config, layout.WS_USER, PREFIX)


@contextmanager
def ws_machine(host: str) -> Iterator[dict[str, str]]:
    """ws's environment for the shims with its own runtime dir, hence its own master.

    The bed's usual master (tests may be using it) is left alone, and this
    one is stopped and its directory removed at the end.
    """
    runtime = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-run-", dir="/tmp"))  # mode 0700
    shutil.chown(runtime, layout.WS_USER, layout.WS_USER)
    env = {**ws_env(), "REMOTE_DOCKER_HOST": host, "XDG_RUNTIME_DIR": str(runtime),
           "REMOTE_DOCKER_PERSIST": MASTER_PERSIST}
    try:
        yield env
    finally:
        for path in (runtime / "remote-docker").glob("cm-*"):
            if path.is_socket():
                control = ["ssh", "-S", str(path), "-o", "LogLevel=QUIET"]
                measure.stop_master(ws_command([*control, "-O", "check", host]),
                                    ws_command([*control, "-O", "exit", host]), env)
        shutil.rmtree(runtime, ignore_errors=True)


def master_socket(env: dict[str, str]) -> Path | None:
    """The control socket of the master that env's shims use, once it runs."""
    found = [p for p in (Path(env["XDG_RUNTIME_DIR"]) / "remote-docker").glob("cm-*")
             if p.is_socket()]
    return found[0] if found else None


# -- mounts ----------------------------------------------------------------------


@dataclass
class Mounted:
    """A live mount: what `docker run -v` takes for it, and how long making it took."""

    source: str
    setup_s: float


def _mounted(point: Path) -> bool:
    return point in mounts_under([point], "fuse")


@contextmanager
def _mount_by(point: Path, start: Callable[[IO[bytes]], list[subprocess.Popen]],
              what: str) -> Iterator[Mounted]:
    """Run start(stderr file) (processes ending in the one that serves the mount, all
    our children) until point is in the mount table; then unmount, reap them, remove
    point. Only a mount in the table is handed out: a dead mountpoint is an empty
    directory, which docker would bind without a word."""
    err = tempfile.TemporaryFile()
    children: list[subprocess.Popen] = []
    try:
        as_dm("make the mountpoint", ["mkdir", str(point)])
        started = time.perf_counter()
        children = start(err)
        server = children[-1]
        measure.poll(lambda: _mounted(point) or server.poll() is not None, MOUNT_TIMEOUT,
                     f"{what} at {point}")
        if not _mounted(point):
            err.seek(0)
            raise MeasurementFailed(what, server.args, server.returncode,
                                    err.read().decode(errors="replace"))
        yield Mounted(str(point), time.perf_counter() - started)
    finally:
        if _mounted(point):
            as_dm("unmount", ["fusermount3", "-u", str(point)], check=False)
        if _mounted(point):
            as_dm("unmount lazily", ["fusermount3", "-u", "-z", str(point)], check=False)
        for child in reversed(children):
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        err.close()
        as_dm("remove the mountpoint", ["rmdir", str(point)], check=False)


def classic_mount(source: Path, address: str, port: int,
                  options: tuple[str, ...] = ()) -> ContextManager[Mounted]:
    """The original scripts' way: dm runs sshfs to ws (in the foreground, our child)."""
    point = layout.home(layout.DM_USER) / new_name("mnt")
    argv = ["sshfs", "-f", f"{layout.WS_USER}@{address}:{source}", str(point),
            "-o", "allow_other,BatchMode=yes,StrictHostKeyChecking=yes",
            "-o", f"port={port},HostKeyAlias={layout.WS_ADDRESS}",
            *(["-o", ",".join(options)] if options else [])]

    def start(err: IO[bytes]) -> list[subprocess.Popen]:
        return [subprocess.Popen(dm_command(argv), env=dm_env(), stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=err)]

    return _mount_by(point, start, "classic sshfs mount")


def raw_passive_mount(source: Path, env: dict[str, str],
                      options: tuple[str, ...] = ()) -> ContextManager[Mounted]:
    """Passive sshfs with nothing of ours in between: ws's plain sftp-server (no jail:
    for measuring only) wired to `ssh -S <ws's master> sshfs -o passive` on dm.

    Tells what the passive transport itself costs, apart from what our mount adds
    (the jail, the relay); sshfs_options.py uses it, make bench does not.
    """
    point = layout.home(layout.DM_USER) / new_name("mnt")
    control = master_socket(env)
    remote = shlex.join(["sshfs", "-f", f":{source}", str(point),
                         "-o", ",".join(("passive", "allow_other", *options))])

    def start(err: IO[bytes]) -> list[subprocess.Popen]:
        if control is None:
            raise MeasurementFailed("raw passive mount", [], 0, "ws's master is not running")
        ours, theirs = socket.socketpair()
        with ours, theirs:  # the children hold their own copies
            server = subprocess.Popen(ws_command([str(layout.SFTP_SERVER)]), env=ws_env(),
                                      stdin=ours, stdout=ours)
            return [server, subprocess.Popen(
                ws_command(["ssh", "-S", str(control), "-o", "BatchMode=yes", "-T", "x",
                            remote]), env=env, stdin=theirs, stdout=theirs, stderr=err)]

    return _mount_by(point, start, "raw passive sshfs mount")


def set_readahead(mounted: Mounted, kib: int) -> None:
    """Raise the kernel's readahead for this FUSE mount (its bdi), as dm.

    Only root may write read_ahead_kb under /sys, but dm is in group docker,
    so a container with the bdi directory bound in does it (--privileged is not
    needed, and not allowed on every engine): what a passive mount could do.
    """
    dev = os.stat(mounted.source).st_dev
    knob = f"/bdi/{os.major(dev)}:{os.minor(dev)}/read_ahead_kb"
    got = as_dm("raise the readahead", [
        "docker", "run", "--rm", "-v", "/sys/devices/virtual/bdi:/bdi", "busybox",
        "sh", "-c", f"echo {kib} > {knob} && cat {knob}"])
    if got.strip() != str(kib):
        raise MeasurementFailed("raise the readahead", [knob], 0, f"reads back {got!r}")


def passive_available() -> str:
    """'' when our passive mount has landed in this checkout, else why not."""
    from remote_docker.testbed import code

    checkout = code.checkout()
    if not (checkout / "remote_docker" / "mounts" / "reverse.py").is_file():
        return "not available yet (no remote_docker/mounts/reverse.py)"
    shim = (layout.SHIM_DIR / "docker-mount").read_text()
    if "notyet" in shim:
        return "not available yet (docker-mount still says so)"
    return ""


@contextmanager
def passive_mount(source: Path, env: dict[str, str]) -> Iterator[Mounted]:
    """`docker-mount DIR` as ws: yields the volume name it prints; docker-umount after.

    stdout goes to a file, not a pipe: what keeps the mount alive may hold on
    to it, and we wait for docker-mount to exit, not for that.
    """
    with tempfile.NamedTemporaryFile(prefix=f"{PREFIX}-", dir="/tmp") as out:
        elapsed = measure.run_timed("docker-mount", ws_command(
            [str(layout.SHIM_DIR / "docker-mount"), str(source)]), env, stdout=out.name)
        volume = Path(out.name).read_text().strip().splitlines()[-1:]
    if not volume or not volume[0].startswith("rd-"):
        raise MeasurementFailed("docker-mount", [str(source)], 0,
                                f"printed {volume!r}, not a volume name rd-<uuid>")
    try:
        yield Mounted(volume[0], elapsed)
    finally:
        measure.capture("docker-umount", ws_command(
            [str(layout.SHIM_DIR / "docker-umount"), volume[0]]), env, check=False)


# -- containers --------------------------------------------------------------------


@contextmanager
def container(volume: str | None) -> Iterator[str]:
    """A long-lived container (as dm) with the mount at /w; workloads run by docker exec.

    A docker-mount volume goes in with `nocopy`, as its README says to use it
    (docker would copy image content into an empty volume; a bind never does).
    """
    name = new_name("ctr")
    mode = ":nocopy" if volume and not volume.startswith("/") else ""
    mount = ["-v", f"{volume}:/w{mode}"] if volume else []
    try:
        as_dm("start the container", ["docker", "run", "-d", "--rm", "--name", name, *mount,
                                      IMAGE, "sleep", str(CONTAINER_LIFETIME)])
        yield name
    finally:
        as_dm("remove the container", ["docker", "rm", "-f", name], check=False)


def in_container(name: str, label: str, script: str, timeout: float = 300) -> str:
    return as_dm(label, ["docker", "exec", name, "bash", "-c", script], timeout=timeout)

