"""remote-docker push/pull between ws's own engine and the docker-machine's, on the bed.

Images are built on the workstation's engine (the bed's second dockerd) from
busybox, with unique names, and removed from both engines afterwards. The
bytes a transfer sent are read from its summary line, which counts what
really went into (or came out of) the ssh connection.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from remote_docker.testbed import layout, wsdocker
from tests.bedtools import run_dm, run_ws

MiB = 1 << 20
CHANGED = 1 * MiB  # the child image's one new layer: a file of this many random bytes


def sent_bytes(line: bytes) -> int:
    found = re.search(rb"(\d+) bytes", line)
    assert found, line
    return int(found.group(1))


def build_ws(directory: Path, tag: str, dockerfile: str) -> None:
    (directory / "Dockerfile").write_text(dockerfile)
    done = run_ws(["remote-docker", "local", "build", "-q", "-t", tag, str(directory)])
    assert done.returncode == 0, done.stderr


def image_id(runner, tag: str) -> str:
    done = runner(["docker", "image", "inspect", "--format", "{{.Id}}", tag])
    return done.stdout.decode().strip() if done.returncode == 0 else ""


def ws_image_id(tag: str) -> str:
    return image_id(lambda argv: run_ws(["remote-docker", "local", *argv[1:]]), tag)


@pytest.fixture
def names(bed):
    """A unique image name; every tag of it is removed from both engines afterwards."""
    base = f"rdimgtest-{uuid.uuid4().hex[:8]}"
    yield base
    for client in (lambda *a: wsdocker.ws_docker(*a, check=False),
                   lambda *a: run_dm(["docker", *a])):
        listed = client("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", base)
        tags = listed.stdout.decode().split()
        if tags:
            client("image", "rm", *tags)


@pytest.fixture
def family(names, ws_dir):
    """parent (busybox + 2 MB) and child (parent + one 1 MiB layer), on ws's engine."""
    parent, child = f"{names}:parent", f"{names}:child"
    build_ws(Path(ws_dir), parent, "FROM busybox:latest\n"
             "RUN head -c 2000000 /dev/urandom > /parent.bin\n")
    build_ws(Path(ws_dir), child, f"FROM {parent}\n"
             f"RUN head -c {CHANGED} /dev/urandom > /child.bin\n")
    return parent, child


def test_push_sends_only_the_changed_layer_then_pull_brings_it_back(family) -> None:
    parent, child = family
    first = run_ws(["remote-docker", "push", parent])
    assert first.returncode == 0, first.stderr
    assert b"1 of 2 layers sent" in first.stdout  # busybox is on the docker-machine already
    assert 2_000_000 <= sent_bytes(first.stdout) < 2_000_000 + 64 * 1024
    assert image_id(run_dm, parent) == ws_image_id(parent)

    second = run_ws(["remote-docker", "push", child])
    assert second.returncode == 0, second.stderr
    assert b"1 of 3 layers sent" in second.stdout
    assert sent_bytes(second.stdout) <= 1.05 * CHANGED
    assert image_id(run_dm, child) == ws_image_id(child)
    checksum = ["sha256sum", "/child.bin", "/parent.bin"]
    there = run_ws(["docker", "run", "--rm", child, *checksum])
    assert there.returncode == 0, there.stderr

    gone = run_ws(["remote-docker", "local", "image", "rm", child])
    assert gone.returncode == 0, gone.stderr
    back = run_ws(["remote-docker", "pull", child])
    assert back.returncode == 0, back.stderr
    assert sent_bytes(back.stdout) <= 1.05 * CHANGED
    here = run_ws(["remote-docker", "local", "run", "--rm", child, *checksum])
    assert (here.returncode, here.stdout) == (0, there.stdout), here.stderr


def test_an_image_already_there_is_a_no_op_and_tags_are_kept(family) -> None:
    parent, _ = family
    assert run_ws(["remote-docker", "push", parent]).returncode == 0
    again = run_ws(["remote-docker", "push", parent, parent])
    assert again.returncode == 0, again.stderr
    assert again.stdout.count(b"\n") == 1  # the same image named twice is sent once
    assert b"already on the docker-machine" in again.stdout and sent_bytes(again.stdout) == 0
    retag = f"{parent.split(':')[0]}:other-tag"
    assert run_ws(["remote-docker", "local", "tag", parent, retag]).returncode == 0
    tagged = run_ws(["remote-docker", "push", retag])
    assert tagged.returncode == 0, tagged.stderr
    assert b"0 of 2 layers sent" in tagged.stdout and sent_bytes(tagged.stdout) < 64 * 1024
    assert image_id(run_dm, retag) == ws_image_id(parent)


def test_without_the_engine_s_socket_a_push_loads_through_a_docker_load_session(family) -> None:
    """The push writes into dm's engine socket, forwarded by the master; where that socket
    is not there (here: said to be elsewhere) it takes `docker load` in a session instead.
    Same image either way; only the socket's request frames its body, so it sends more."""
    parent, _ = family
    framed = run_ws(["remote-docker", "push", parent])
    assert framed.returncode == 0, framed.stderr
    assert run_dm(["docker", "image", "rm", parent]).returncode == 0
    elsewhere = {"REMOTE_DOCKER_REMOTE_SOCKET": "/nonexistent/docker.sock"}
    plain = run_ws(["remote-docker", "push", parent], env=elsewhere)
    assert plain.returncode == 0 and plain.stderr == b"", plain.stderr
    assert b"1 of 2 layers sent" in plain.stdout
    assert 2_000_000 <= sent_bytes(plain.stdout) < sent_bytes(framed.stdout)
    assert image_id(run_dm, parent) == ws_image_id(parent)


@pytest.fixture
def dm_context(bed):
    """dm's docker client switched to a context of its own, on the socket path it yields
    (which the test makes); ws's master restarted before and after, so the forward is made
    afresh and asks dm's client again, and everything of it undone afterwards."""
    name = f"rdctx-{uuid.uuid4().hex[:8]}"
    link = f"/tmp/{name}.sock"
    assert run_dm(["docker", "context", "create", name, "--docker",
                   f"host=unix://{link}"]).returncode == 0
    assert run_dm(["docker", "context", "use", name]).returncode == 0
    run_ws(["remote-docker", "disconnect"])
    try:
        yield link
    finally:
        run_dm(["docker", "context", "use", "default"])
        run_dm(["docker", "context", "rm", "-f", name])
        run_dm(["rm", "-f", link])
        run_ws(["remote-docker", "disconnect"])


def test_a_push_goes_to_the_engine_dm_s_own_client_uses(family, dm_context) -> None:
    """dm's docker talks to the socket its current context names (a rootless engine's, say):
    the push writes there too, and `status` says so; not to /var/run/docker.sock."""
    parent, _ = family
    assert run_dm(["ln", "-s", "/var/run/docker.sock", dm_context]).returncode == 0
    pushed = run_ws(["remote-docker", "push", parent])
    assert pushed.returncode == 0, pushed.stderr
    assert b"1 of 2 layers sent" in pushed.stdout
    assert image_id(run_dm, parent) == ws_image_id(parent)
    status = run_ws(["remote-docker", "status"])
    assert f"engine:     {dm_context} on ".encode() in status.stdout, status.stdout


def test_a_push_to_an_engine_that_is_not_there_fails_and_loads_nothing(family,
                                                                         dm_context) -> None:
    """dm's context names a socket no engine listens on: one line, and nothing goes into
    the engine at the default path, where dm's `docker images` could never show it."""
    parent, _ = family
    pushed = run_ws(["remote-docker", "push", parent])
    assert pushed.returncode != 0 and pushed.stdout == b""
    assert len(pushed.stderr.decode().strip().splitlines()) == 1, pushed.stderr
    assert b"Traceback" not in pushed.stderr
    assert run_dm(["docker", "context", "use", "default"]).returncode == 0
    assert image_id(run_dm, parent) == ""


def test_a_pull_through_a_docker_context_loads_with_the_client(family, ws_dir) -> None:
    """A pull writes into the workstation engine's socket when the client's environment
    names it; where a docker context does, only the client knows, so `docker load` gets
    the stream. Same image either way; only the socket's request frames its body."""
    _, child = family
    assert run_ws(["remote-docker", "push", child]).returncode == 0
    assert run_ws(["remote-docker", "local", "image", "rm", child]).returncode == 0
    framed = run_ws(["remote-docker", "pull", child])
    assert framed.returncode == 0, framed.stderr
    assert run_ws(["remote-docker", "local", "image", "rm", child]).returncode == 0
    contexts = {"DOCKER_CONFIG": str(Path(ws_dir) / "docker-config")}
    made = run_ws(["remote-docker", "local", "context", "create", "ws-engine", "--docker",
                   f"host={layout.WS_DOCKER_HOST}"], env=contexts)
    assert made.returncode == 0, made.stderr
    plain = run_ws(["remote-docker", "pull", child],
                   env={**contexts, "DOCKER_CONTEXT": "ws-engine", "REMOTE_DOCKER_LOCAL_HOST": ""})
    assert plain.returncode == 0 and plain.stderr == b"", plain.stderr
    assert b"1 of 3 layers sent" in plain.stdout
    assert CHANGED <= sent_bytes(plain.stdout) < sent_bytes(framed.stdout) <= 1.05 * CHANGED
    assert ws_image_id(child) == image_id(run_dm, child)


@pytest.mark.parametrize("verb, where", [("push", b"the workstation"),
                                         ("pull", b"dm@127.0.0.2")])
def test_unknown_image_is_one_line(bed, verb: str, where: bytes) -> None:
    name = f"rdimgtest-{uuid.uuid4().hex[:8]}:nope"
    done = run_ws(["remote-docker", verb, name])
    assert done.returncode != 0 and done.stdout == b""
    assert done.stderr.count(b"\n") == 1
    assert done.stderr.startswith(b"remote-docker: no such image on " + where), done.stderr


@pytest.mark.parametrize("verb", ["push", "pull"])
def test_a_malformed_name_is_one_line_that_says_so(bed, verb: str) -> None:
    done = run_ws(["remote-docker", verb, "busybox:latest", "bad name!"])
    assert done.returncode != 0 and done.stdout == b""
    assert done.stderr == (b"remote-docker: 'bad name!' is not an image name: "
                           b"invalid reference format\n"), done.stderr


def test_unreachable_local_engine_is_one_line(bed) -> None:
    done = run_ws(["remote-docker", "push", "busybox:latest"],
                  env={"REMOTE_DOCKER_LOCAL_HOST": "unix:///nonexistent/docker.sock"})
    assert done.returncode != 0 and done.stderr.count(b"\n") == 1
    assert b"workstation's docker engine (unix:///nonexistent/docker.sock) does not answer" \
        in done.stderr


def test_no_local_docker_client_is_one_line(bed) -> None:
    done = run_ws(["remote-docker", "pull", "busybox:latest"], env={"PATH": str(layout.SHIM_DIR)})
    assert done.returncode != 0 and done.stderr.count(b"\n") == 1
    assert b"no local docker client on PATH" in done.stderr


def _load_running(user: str, data_root: str) -> bool:
    """The receiving engine (data root) unpacks a load into its tmp, or a `docker load`
    client of the receiving user's runs (where a transfer falls back on one)."""
    unpacking = f"{data_root}/tmp/docker-import-".encode()
    for entry in os.listdir("/proc"):
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            owner = os.stat(f"/proc/{entry}").st_uid
        except OSError:
            continue
        if argv[:2] == [b"docker", b"load"] and owner == _uid(user):
            return True
        if argv[0] == b"docker-untar" and any(a.startswith(unpacking) for a in argv[1:]):
            return True
    return False


def _uid(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_uid


@pytest.mark.parametrize("verb", ["push", "pull"])
def test_ctrl_c_during_a_transfer_loads_nothing_and_leaves_nothing(verb, names, ws_dir) -> None:
    big = f"{names}:big"
    build_ws(Path(ws_dir), big, "FROM busybox:latest\n"
             "RUN head -c 100000000 /dev/urandom > /big.bin\n")
    from remote_docker import testbed

    if verb == "pull":
        assert run_ws(["remote-docker", "push", big]).returncode == 0
        assert run_ws(["remote-docker", "local", "image", "rm", big]).returncode == 0
        receiver, sender = layout.WS_USER, layout.DM_USER
        data_root = str(layout.WS_DOCKER_DATA_ROOT)
        received = ws_image_id
    else:
        receiver, sender = layout.DM_USER, layout.WS_USER
        data_root = "/var/lib/docker"
        received = lambda tag: image_id(run_dm, tag)  # noqa: E731
    transfer = subprocess.Popen(testbed.ws_command(["remote-docker", verb, big]),
                                env=testbed.ws_env(), cwd=layout.home(layout.WS_USER),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not _load_running(receiver, data_root) and transfer.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.005)
    transfer.send_signal(signal.SIGINT)
    out, err = transfer.communicate(timeout=60)
    assert transfer.returncode == 130, (out, err)
    assert out == b""
    assert received(big) == ""
    deadline = time.monotonic() + 30
    while True:  # the sender's `docker save` ends once its reader is gone
        leftovers = subprocess.run(["pgrep", "-u", sender, "-f", f"save {big}"],
                                   capture_output=True)
        if leftovers.stdout == b"" or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert leftovers.stdout == b""


def test_a_terminal_gets_a_progress_bar_and_a_pipe_does_not(family) -> None:
    parent, _ = family
    on_tty = run_ws(["script", "-qec", f"remote-docker push {parent}", "/dev/null"])
    assert on_tty.returncode == 0, on_tty.stdout
    assert b"\x1b[" in on_tty.stdout and b"pushed to the docker-machine" in on_tty.stdout
    run_dm(["docker", "image", "rm", parent])
    piped = run_ws(["remote-docker", "push", parent])
    assert piped.returncode == 0 and piped.stderr == b"" and b"\x1b[" not in piped.stdout


SPOOL = layout.home(layout.DM_USER) / ".cache" / "remote-docker" / "pushes"
PULL_SPOOL = layout.home(layout.WS_USER) / ".cache" / "remote-docker" / "pulls"
RESUMABLE = {"REMOTE_DOCKER_RESUME_BYTES": "1"}


def _cut(verb: str, tag: str, spool: Path, at_least: int) -> int:
    """Start a resumable push or pull, Ctrl-C it once the receiver has kept ``at_least``
    bytes of it; what it kept."""
    from remote_docker import testbed

    moving = subprocess.Popen(testbed.ws_command(["remote-docker", verb, tag]),
                              env={**testbed.ws_env(), **RESUMABLE},
                              cwd=layout.home(layout.WS_USER), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while moving.poll() is None and time.monotonic() < deadline:
        parts = list(spool.glob("*.part")) if spool.is_dir() else []
        if parts and parts[0].stat().st_size >= at_least:
            break
        time.sleep(0.002)
    moving.send_signal(signal.SIGINT)
    out, err = moving.communicate(timeout=60)
    assert moving.returncode == 130, (out, err)  # cut, not finished before the signal
    time.sleep(0.3)  # the receiver's tee writes what was in flight, then ends
    parts = list(spool.glob("*.part"))
    assert len(parts) == 1, parts
    return parts[0].stat().st_size


def _flip_a_byte(spool: Path) -> None:
    part = next(spool.glob("*.part"))
    with open(part, "r+b") as f:  # not how the stream begins any more
        f.seek(10 * MiB)
        byte = f.read(1)
        f.seek(10 * MiB)
        f.write(bytes([byte[0] ^ 0xFF]))


@pytest.fixture
def resumable_image(names, ws_dir):
    """A ~60 MB image on ws's engine; kept copies on either side are removed afterwards."""
    big = f"{names}:resume"
    build_ws(Path(ws_dir), big, "FROM busybox:latest\n"
             "RUN head -c 60000000 /dev/urandom > /big.bin && md5sum /big.bin > /big.md5\n")
    yield big
    for spool in (SPOOL, PULL_SPOOL):
        for part in spool.glob("*.part") if spool.is_dir() else []:
            part.unlink()


@pytest.mark.parametrize("verb", ["push", "pull"])
def test_a_cut_transfer_goes_on_from_what_the_receiver_kept(resumable_image, verb) -> None:
    """Resumable: the second transfer sends only the rest; a kept copy that does not match
    the stream's start (here: changed) is dropped and the image sent whole, never loaded
    wrong."""
    big = resumable_image
    if verb == "push":
        spool, received, forget = SPOOL, (lambda: image_id(run_dm, big)), \
            (lambda: run_dm(["docker", "image", "rm", big]))
        check = ["docker", "run", "--rm", big, "md5sum", "-c", "/big.md5"]
        run_check = run_dm
    else:
        assert run_ws(["remote-docker", "push", big]).returncode == 0
        spool, received = PULL_SPOOL, (lambda: ws_image_id(big))
        forget = lambda: run_ws(["remote-docker", "local", "image", "rm", big])  # noqa: E731
        check = ["remote-docker", "local", "run", "--rm", big, "md5sum", "-c", "/big.md5"]
        run_check = run_ws
        forget()
    expected = image_id(run_dm, big) if verb == "pull" else ws_image_id(big)

    kept = _cut(verb, big, spool, 20 * MiB)
    assert received() == ""  # a cut load loads nothing
    again = run_ws(["remote-docker", verb, big], env=RESUMABLE)
    assert again.returncode == 0, again.stderr
    assert f"resumed after the {kept} bytes".encode() in again.stdout, again.stdout
    assert received() == expected
    checked = run_check(check)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert list(spool.glob("*.part")) == []  # loaded: the copy is gone
    whole = sent_bytes(again.stdout) + kept

    forget()
    _cut(verb, big, spool, 20 * MiB)
    _flip_a_byte(spool)
    fresh = run_ws(["remote-docker", verb, big], env=RESUMABLE)
    assert fresh.returncode == 0, fresh.stderr
    assert b"resumed" not in fresh.stdout and sent_bytes(fresh.stdout) == whole
    assert received() == expected
    assert list(spool.glob("*.part")) == []
