"""process.widen_pipe: bulk streams get 1 MiB pipes; anything else is left as it is."""

import fcntl
import os
import socket

from remote_docker.transport.process import widen_pipe

F_GETPIPE_SZ = 1032


def test_a_pipe_grows_to_a_mebibyte() -> None:
    read_end, write_end = os.pipe()
    try:
        assert fcntl.fcntl(write_end, F_GETPIPE_SZ) == 64 * 1024
        widen_pipe(write_end)
        assert fcntl.fcntl(read_end, F_GETPIPE_SZ) == 1 << 20  # one pipe, both ends
    finally:
        os.close(read_end)
        os.close(write_end)


def test_a_socket_is_left_alone() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        widen_pipe(ours.fileno())  # EBADF from fcntl: only speed was at stake
        ours.sendall(b"x")
        assert theirs.recv(1) == b"x"


def test_piped_runs_a_child_as_popen_would() -> None:
    from remote_docker.transport.process import Piped

    child = Piped(["/bin/sh", "-c", "cat; echo out; echo err >&2; exit 3"], {"PATH": "/bin"})
    assert child.stdin is None and child.poll() in (None, 3)
    assert child.stdout.read() == b"out\n"  # stdin is /dev/null: cat ends at once
    assert child.stderr.read() == b"err\n"
    assert child.wait() == 3 and child.poll() == 3


def test_piped_kill_is_a_sigkill() -> None:
    from remote_docker.transport.process import Piped

    child = Piped(["/bin/sleep", "30"], {})
    child.kill()
    assert child.wait() == -9
    child.kill()  # reaped: nothing to kill, no error
    for stream in (child.stdout, child.stderr):
        stream.close()
