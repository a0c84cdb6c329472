"""Signals and TTYs through the shim behave as with a local docker.

CI has no terminal, so the TTY cases make one with ``pty``.  Nothing here
waits a fixed time: each step polls for the output it expects, with a deadline.
"""

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import termios
import time

import pytest

from remote_docker import testbed
from tests.bedtools import run_dm, run_ws

WS_HOME = "/home/ws"  # the checkout pytest runs from is not enterable by ws
TRAP = ('trap "echo got INT; exit 3" INT; trap "echo got TERM; exit 4" TERM; echo ready; '
        'while :; do sleep 0.1; done')


def leftovers(name: str) -> tuple[bytes, bytes]:
    """Containers named ``name``, and docker clients still running on the docker-machine."""
    containers = run_dm(["docker", "ps", "-a", "--filter", f"name=^{name}$", "-q"]).stdout
    clients = subprocess.run(["pgrep", "-u", "dm", "-f", f"--name {name}"],
                             capture_output=True).stdout
    return containers, clients


def wait_for_no_leftovers(name: str, deadline: float = 15.0) -> None:
    end = time.monotonic() + deadline
    while leftovers(name) != (b"", b""):
        assert time.monotonic() < end, f"left behind: {leftovers(name)}"
        time.sleep(0.1)


def start_ws(argv: list[str], transport: str, **kw) -> subprocess.Popen:
    env = {**testbed.ws_env(), "REMOTE_DOCKER_TRANSPORT": transport}
    return subprocess.Popen(testbed.ws_command(argv), env=env, cwd=WS_HOME, **kw)


@pytest.mark.parametrize("transport", ["openssh", "fabric"])
@pytest.mark.parametrize("signum, expected", [(signal.SIGINT, b"got INT\n", ),
                                              (signal.SIGTERM, b"got TERM\n")])
def test_signal_reaches_the_container_without_tty(bed, transport, signum, expected) -> None:
    name = f"rd-sig-{transport}-{signum}"
    proc = start_ws(["docker", "run", "--rm", "--name", name, "busybox", "sh", "-c", TRAP],
                    transport, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE)
    assert proc.stdout.readline() == b"ready\n"
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    assert (out, proc.returncode) == (expected, 3 if signum == signal.SIGINT else 4), err
    wait_for_no_leftovers(name)


def test_command_killed_by_sigint_kills_the_shim_by_sigint(bed) -> None:
    # a filter of its own, so no other docker events on the machine (mount keepers,
    # port watchers) is mistaken for this one
    marker = f"label=rd-sigint-{os.getpid()}-{time.monotonic_ns()}"
    proc = start_ws(["docker", "events", "--filter", marker], "openssh",
                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    end = time.monotonic() + 20
    while not subprocess.run(["pgrep", "-u", "dm", "-f", marker], capture_output=True).stdout:
        assert time.monotonic() < end
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGINT
    end = time.monotonic() + 10
    while subprocess.run(["pgrep", "-u", "dm", "-f", marker], capture_output=True).stdout:
        assert time.monotonic() < end
        time.sleep(0.05)


class Terminal:
    """A child process on a pseudo-terminal of a given size, read with deadlines."""

    def __init__(self, argv: list[str], rows: int = 40, cols: int = 100,
                 transport: str = "openssh") -> None:
        self.master, slave = pty.openpty()
        self.resize(rows, cols)
        env = {**testbed.ws_env(), "REMOTE_DOCKER_TRANSPORT": transport, "TERM": "xterm"}
        self.proc = subprocess.Popen(testbed.ws_command(argv), env=env, stdin=slave, cwd=WS_HOME,
                                     stdout=slave, stderr=slave, start_new_session=True,
                                     preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
        os.close(slave)
        self.seen = b""

    def resize(self, rows: int, cols: int) -> None:
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def expect(self, needle: bytes, deadline: float = 20.0) -> bytes:
        end = time.monotonic() + deadline
        while needle not in self.seen:
            left = end - time.monotonic()
            assert left > 0, f"never saw {needle!r}; saw {self.seen!r}"
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:
                    chunk = b""
                assert chunk, f"EOF before {needle!r}; saw {self.seen!r}"
                self.seen += chunk
        return self.seen

    def until(self, needle: bytes, command: bytes, deadline: float = 20.0) -> None:
        """Send ``command`` every 0.2 s until ``needle`` shows up."""
        end = time.monotonic() + deadline
        while needle not in self.seen:
            assert time.monotonic() < end, f"never saw {needle!r}; saw {self.seen!r}"
            self.send(command)
            try:
                self.expect(needle, deadline=0.2)
            except AssertionError:
                pass

    def wait(self, timeout: float = 30.0) -> int:
        end = time.monotonic() + timeout
        while self.proc.poll() is None:
            assert time.monotonic() < end
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                try:
                    self.seen += os.read(self.master, 4096)
                except OSError:
                    pass
        os.close(self.master)
        return self.proc.returncode


@pytest.mark.parametrize("transport", ["openssh", "fabric"])
def test_tty_is_allocated_with_the_window_size_and_resizes(bed, transport: str) -> None:
    term = Terminal(["docker", "run", "-it", "--rm", "debian:stable-slim", "sh"], 33, 101,
                    transport)
    term.expect(b"# ")
    term.send(b"test -t 0 && echo IS-A-TTY\r")
    term.expect(b"IS-A-TTY")
    # docker sets the container's size just after start, as locally: ask until it has
    term.until(b"33 101", b"stty size\r")
    term.resize(20, 60)
    os.killpg(term.proc.pid, signal.SIGWINCH)  # what the kernel sends a real terminal's group
    term.until(b"20 60", b"stty size\r")
    term.send(b"exit 5\r")
    assert term.wait() == 5


@pytest.mark.parametrize("transport", ["openssh", "fabric"])
def test_ctrl_c_in_a_tty_reaches_the_container(bed, transport: str) -> None:
    term = Terminal(["docker", "run", "-it", "--rm", "--name", f"rd-ctrlc-{transport}",
                     "busybox", "sh", "-c", TRAP], transport=transport)
    term.expect(b"ready")
    term.send(b"\x03")
    term.expect(b"got INT")
    assert term.wait() == 3
    wait_for_no_leftovers(f"rd-ctrlc-{transport}")


def test_no_tty_without_dash_t(bed) -> None:
    term = Terminal(["sh", "-c", "docker run -i --rm busybox sh -c 'test -t 0 && echo TTY || "
                     "echo NOTTY' > /tmp/rd-notty.out; echo done"])
    term.expect(b"done")
    term.wait()
    assert run_ws(["cat", "/tmp/rd-notty.out"]).stdout == b"NOTTY\n"


def test_dash_t_without_terminal_fails_like_local(bed) -> None:
    argv = ["run", "-it", "--rm", "busybox", "true"]
    ours = run_ws(["docker", *argv])
    theirs = run_dm(["docker", *argv])
    assert (ours.returncode, ours.stderr) == (theirs.returncode, theirs.stderr)
    assert b"not a TTY" in ours.stderr


def test_interactive_stdin_from_a_terminal_without_tty(bed) -> None:
    """``docker run -i`` (no -t) reading a terminal: input relayed, Ctrl-C still forwarded."""
    out = "/tmp/rd-relay.out"
    run_ws(["rm", "-f", out])
    script = 'read x; echo "got:$x"; ' + TRAP
    term = Terminal(["sh", "-c", f"exec docker run -i --rm --name rd-relay busybox sh -c "
                     f"'{script}' > {out}"])

    def written() -> bytes:
        return run_ws(["cat", out]).stdout

    term.send(b"hello\n")
    poll(lambda: b"ready" in written())
    assert written().startswith(b"got:hello\n")
    term.send(b"\x03")
    poll(lambda: b"got INT" in written())
    assert term.wait() == 3
    wait_for_no_leftovers("rd-relay")


def poll(condition, deadline: float = 20.0) -> None:
    end = time.monotonic() + deadline
    while not condition():
        assert time.monotonic() < end, "condition never held"
        time.sleep(0.1)


def test_interactive_output_keeps_the_terminals_line_endings(bed) -> None:
    """At a terminal, even ``docker ps`` runs on a pty: it must get the terminal's modes."""
    term = Terminal(["docker", "run", "--rm", "busybox", "sh", "-c", "echo one; echo two"])
    term.expect(b"two")
    assert term.wait() == 0
    assert b"one\r\ntwo\r\n" in term.seen


def test_a_background_job_is_not_stopped(bed) -> None:
    """``docker … &`` in an interactive shell must not touch the terminal (no SIGTTOU)."""
    term = Terminal(["bash", "--norc", "-i"])
    term.send(b"docker run --rm busybox echo from-background & wait $!; echo exit=$?\n")
    term.expect(b"exit=0")
    assert b"Stopped" not in term.seen and b"from-background" in term.seen
    term.send(b"exit\n")
    term.wait()


def test_cp_on_a_terminal_reports_what_it_copied_as_a_local_docker_does(bed) -> None:
    """docker cp prints 'Successfully copied SIZE to DEST' when stderr is a terminal, SIZE
    with three significant digits (a build context's size has four)."""
    name = f"rd-cp-tty-{os.getpid()}"
    lines = []
    for docker in (["docker"], ["remote-docker", "local"]):
        assert run_ws([*docker, "create", "--name", name, "busybox"]).returncode == 0
        dest = f"/tmp/{name}-{len(lines)}"
        try:
            term = Terminal([*docker, "cp", f"{name}:/bin/busybox", dest])
            assert term.wait() == 0, term.seen
            lines.append(term.seen.replace(dest.encode(), b"DEST"))
        finally:
            run_ws([*docker, "rm", name])
            run_ws(["rm", "-f", dest])
    assert lines[0] == lines[1]
    assert re.fullmatch(rb"Successfully copied \d\.\d\dMB to DEST\r\n", lines[0]), lines[0]
