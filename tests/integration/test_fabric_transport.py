"""The Fabric transport against the real bed: ws runs the shim, dm's docker is the reference.

Every call goes through ``REMOTE_DOCKER_TRANSPORT=fabric``: a fresh paramiko
connection to sshd on the docker-machine, no OpenSSH client involved.  What
Fabric cannot match is listed in ``remote_docker/transport/fabric.py``; the
host-key cases here check that its refusals read as the OpenSSH transport's.
"""

import hashlib
import os
import select
import shutil
import subprocess
import tempfile
import time
import uuid

import pytest

from remote_docker import testbed
from remote_docker.testbed import layout
from tests.bedtools import run_dm, run_ws

FABRIC = {"REMOTE_DOCKER_TRANSPORT": "fabric"}


def shim(argv: list[str], env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    return run_ws(["docker", *argv], env={**FABRIC, **(env or {})}, **kw)


def local(argv: list[str], **kw) -> subprocess.CompletedProcess:
    return run_dm(["docker", *argv], **kw)


def test_docker_version(bed) -> None:
    result = shim(["version"])
    assert result.returncode == 0, result.stderr
    assert b"Server:" in result.stdout


ARGS = ["", " ", "two words", "it's", 'say "hi"', "$HOME", "${PATH}", "`id`", "$(id)", "*",
        ";", "&&", "a\\b", "line1\nline2", "\n", "tab\there", "naïve ☃ 日本", "-e", "--rm",
        "'", '"', "\\", "--", "~"]


def test_arguments_arrive_verbatim(bed) -> None:
    result = shim(["run", "--rm", "busybox", "printf", "%s\\n", *ARGS])
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"".join(a.encode() + b"\n" for a in ARGS)


def test_eight_mib_of_random_stdin_come_back_unchanged(bed) -> None:
    data = os.urandom(8 * 1024 * 1024)
    result = shim(["run", "-i", "--rm", "busybox", "cat"], input=data, timeout=300)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout) == len(data)
    assert hashlib.sha256(result.stdout).hexdigest() == hashlib.sha256(data).hexdigest()


def test_stdout_and_stderr_stay_apart(bed) -> None:
    script = "printf 'out1\\r\\n'; printf 'err1\\n' >&2; printf 'out2\\0\\377'; echo err2 >&2"
    result = shim(["run", "--rm", "busybox", "sh", "-c", script])
    assert (result.returncode, result.stdout, result.stderr) == (
        0, b"out1\r\nout2\0\377", b"err1\nerr2\n")


@pytest.mark.parametrize("argv", [
    ["run", "--rm", "busybox", "sh", "-c", "exit 0"],
    ["run", "--rm", "busybox", "sh", "-c", "exit 3"],
    ["run", "--rm", "busybox", "sh", "-c", "exit 125"],
    ["run", "--rm", "--no-such-flag", "busybox"],  # docker's own usage error: 125
    ["run", "--rm", "busybox", "no-such-command"],  # 127
    ["run", "--rm", "busybox", "sh", "-c", "exit 127"],
], ids=["0", "3", "125-container", "125-docker", "127-docker", "127-container"])
def test_exit_status_and_output_are_local_docker_s(bed, argv: list[str]) -> None:
    ours, theirs = shim(argv), local(argv)
    assert (ours.returncode, ours.stdout, ours.stderr) == (
        theirs.returncode, theirs.stdout, theirs.stderr)


def test_broken_stdout_ends_as_local_docker_does(bed) -> None:
    """The reader of stdout goes away: docker fails with EPIPE (exit 1), it is not killed."""
    script = 'docker run --rm busybox head -c 50000000 /dev/zero | head -c 5 >/dev/null; ' \
             'echo "${PIPESTATUS[0]}"'
    ours = run_ws(["bash", "-c", script], env=FABRIC)
    theirs = run_dm(["bash", "-c", script])
    assert ours.stdout == theirs.stdout == b"1\n"


def read_line(stream, deadline: float = 60.0) -> bytes:
    """One line from a child's pipe, or fail once the deadline has passed."""
    end = time.monotonic() + deadline
    line = b""
    while not line.endswith(b"\n"):
        left = end - time.monotonic()
        assert left > 0, f"no full line in time; got {line!r}"
        ready, _, _ = select.select([stream], [], [], left)
        if ready:
            byte = os.read(stream.fileno(), 1)
            assert byte, f"EOF before a full line; got {line!r}"
            line += byte
    return line


def test_env_value_arrives_and_is_never_on_a_command_line(bed) -> None:
    secret = f"rd-secret-{uuid.uuid4().hex}"
    argv = ["docker", "run", "-i", "--rm", "-e", "RD_SECRET", "busybox", "sh", "-c",
            'echo "[$RD_SECRET]"; cat >/dev/null']
    proc = subprocess.Popen(testbed.ws_command(argv),
                            env={**testbed.ws_env(), **FABRIC, "RD_SECRET": secret},
                            cwd=layout.home(layout.WS_USER), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert read_line(proc.stdout) == f"[{secret}]\n".encode()
        # the call is in flight (the container waits on stdin): every process is there
        everything = run_dm(["ps", "-ef"])
        assert everything.returncode == 0 and b"RD_SECRET" in everything.stdout
        assert secret.encode() not in everything.stdout
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    scratch = run_dm(["sh", "-c", 'grep -rl "$0" "${XDG_RUNTIME_DIR:-$HOME/.cache}/remote-docker" '
                      "2>/dev/null; true", secret])
    assert scratch.stdout == b"", "the env file must be gone once docker has read it"


# -- connecting: pinned host keys only, failures worded as for OpenSSH ------------------


@pytest.fixture
def bare_home(bed):
    """A home and config dir for ws with no known_hosts and no keys at all."""
    path = tempfile.mkdtemp(prefix="rd-fabric-home-")
    os.makedirs(os.path.join(path, "config", "remote-docker"))
    shutil.chown(path, layout.WS_USER, layout.WS_USER)
    for folder in ("config", "config/remote-docker"):
        shutil.chown(os.path.join(path, folder), layout.WS_USER, layout.WS_USER)
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def bare_env(home: str) -> dict[str, str]:
    return {"HOME": home, "XDG_CONFIG_HOME": os.path.join(home, "config")}


def test_an_unpinned_host_is_refused_not_added(bare_home: str) -> None:
    result = shim(["version"], env=bare_env(bare_home))
    assert result.returncode == 255
    assert result.stderr == (f"docker: the host key of {layout.DM_HOST} is not pinned: check "
                             f"and pin it with 'remote-docker use {layout.DM_HOST}'\n").encode()
    assert not any(files for _, _, files in os.walk(bare_home)), "nothing may be written"


def test_a_changed_host_key_is_refused(bare_home: str) -> None:
    fake = os.path.join(bare_home, "fake")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", fake], check=True)
    with open(fake + ".pub") as f:
        key = " ".join(f.read().split()[:2])
    pinned = os.path.join(bare_home, "config", "remote-docker", "known_hosts")
    with open(pinned, "w") as f:
        f.write(f"{layout.DM_ADDRESS} {key}\n")
    os.chmod(pinned, 0o644)
    result = shim(["version"], env=bare_env(bare_home))
    assert result.returncode == 255
    assert result.stderr.startswith(
        f"docker: the host key of {layout.DM_HOST} has changed: ".encode()), result.stderr
    assert result.stdout == b""


def test_no_usable_key_is_a_refused_login(bare_home: str) -> None:
    pinned = os.path.join(bare_home, "config", "remote-docker", "known_hosts")
    shutil.copy(layout.home(layout.WS_USER) / ".ssh" / "known_hosts", pinned)
    os.chmod(pinned, 0o644)
    result = shim(["version"], env=bare_env(bare_home))
    assert (result.returncode, result.stdout, result.stderr) == (
        255, b"", f"docker: {layout.DM_HOST} refused our login: check that 'ssh {layout.DM_HOST}' "
                  "works without a password (ssh-copy-id)\n".encode())


def test_a_refused_connection_reads_as_with_openssh(bed) -> None:
    machine = {"REMOTE_DOCKER_HOST": f"{layout.DM_HOST}:1"}
    ours = shim(["ps"], env=machine)
    theirs = run_ws(["docker", "ps"], env={**machine, "REMOTE_DOCKER_TRANSPORT": "openssh"})
    assert (ours.returncode, ours.stderr) == (theirs.returncode, theirs.stderr) == (
        255, f"docker: cannot reach {layout.DM_HOST}:1: connection refused "
             "(is sshd running?)\n".encode())
