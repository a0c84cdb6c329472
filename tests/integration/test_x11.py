"""docker.x11 on the bed: windows of a container on ws's Xvfb, without --net=host.

Each test names its container ``rdx11-…`` and checks afterwards that it left
no session record on the workstation and no session directory (socket,
Xauthority) on the docker-machine.
"""

import os
import signal
import subprocess
import time
import uuid

import pytest

from remote_docker import testbed
from tests import xtools
from tests.bedtools import run_dm, run_ws

pytestmark = pytest.mark.x11


@pytest.fixture(scope="module")
def image(bed):
    return xtools.ensure_x11_image()


def sessions_left() -> list[str]:
    records = run_ws(["sh", "-c", "ls ~/.local/state/remote-docker/x11/ 2>/dev/null"]).stdout
    dirs = run_dm(["sh", "-c", "ls /tmp/rd-x11-$(id -u)/ 2>/dev/null"]).stdout
    return records.decode().split() + dirs.decode().split()


def assert_nothing_left(name: str, before: list[str], deadline: float = 20.0) -> None:
    end = time.monotonic() + deadline
    while True:
        containers = run_dm(["docker", "ps", "-aq", "--filter", f"name={name}"]).stdout.split()
        left = [s for s in sessions_left() if s not in before]
        if not containers and not left:
            return
        assert time.monotonic() < end, f"left behind: {containers!r} {left!r}"
        time.sleep(0.2)


def start(argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen(testbed.ws_command(argv), env=testbed.ws_env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd="/tmp")


def test_window_appears_on_the_workstation_display(image) -> None:
    before = sessions_left()
    name = f"rdx11-{uuid.uuid4().hex[:10]}"
    app = start(["docker.x11", "--name", name, image, "xmessage", "-name", name,
                 "-center", "hello from a container"])
    try:
        assert xtools.wait_for_window(name), app.stderr.read1().decode() if app.poll() else ""
        shot = xtools.screenshot(f"docker-x11-{name}")
        pixels = shot.read_bytes().split(b"\n", 1)[1]
        assert pixels.count(0) < len(pixels), "the screenshot is all black"
        mode = run_dm(["docker", "inspect", "-f", "{{.HostConfig.NetworkMode}}", name])
        assert mode.returncode == 0 and mode.stdout.strip() not in (b"host", b""), mode
    finally:
        run_dm(["docker", "kill", name])
        app.wait(timeout=60)
    assert_nothing_left(name, before)
    assert not xtools.wait_for_window(name, timeout=0.5)


def test_sigterm_ends_the_app_and_leaves_nothing(image) -> None:
    before = sessions_left()
    name = f"rdx11-{uuid.uuid4().hex[:10]}"
    app = start(["docker.x11", "--name", name, image, "xeyes", "-name", name])
    try:
        assert xtools.wait_for_window(name)
        app.terminate()
        app.wait(timeout=30)
    finally:
        run_dm(["docker", "kill", name])
    assert_nothing_left(name, before)


def test_x_clients_connect_and_exit_status_passes(image) -> None:
    before = sessions_left()
    name = f"rdx11-{uuid.uuid4().hex[:10]}"
    result = run_ws(["docker.x11", "--name", name, "--user", "1234:1234", image, "sh", "-c",
                     'xdpyinfo | grep -c "^screen #"; echo "$DISPLAY"; exit 7'], cwd="/tmp")
    assert (result.returncode, result.stdout) == (7, b"1\n:0\n"), result.stderr
    assert_nothing_left(name, before)


@pytest.mark.parametrize("display, words", [("", b"no X display"),
                                            (":77", b"cannot open the X display :77")])
def test_no_display_is_one_line(bed, display, words) -> None:
    result = run_ws(["docker.x11", "busybox", "true"], env={"DISPLAY": display}, cwd="/tmp")
    assert result.returncode != 0
    assert result.stderr.startswith(b"docker.x11: ") and words in result.stderr, result.stderr
    assert result.stderr.count(b"\n") == 1, result.stderr


def test_kill_9_leaves_a_session_that_gc_removes(image) -> None:
    before = sessions_left()
    name = f"rdx11-{uuid.uuid4().hex[:10]}"
    app = start(["docker.x11", "--name", name, image, "xmessage", "-name", name, "killed"])
    try:
        assert xtools.wait_for_window(name)
        os.kill(app.pid, signal.SIGKILL)
        app.wait(timeout=10)
    finally:
        run_dm(["docker", "kill", name])
    outputs = b""
    end = time.monotonic() + 30
    while [s for s in sessions_left() if s not in before]:  # once the container's shim is gone
        assert time.monotonic() < end, outputs
        gc = run_ws(["remote-docker", "gc"], cwd="/tmp")
        assert gc.returncode == 0, gc.stderr
        outputs += gc.stdout
        time.sleep(0.2)
    assert b"X11 session" in outputs
    assert_nothing_left(name, before)
