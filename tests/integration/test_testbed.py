"""The test bed itself: each part works the way the rest of the suite relies on.

Run as root (the bed is root's to bring up); commands run as the bed's users
through tests.bedtools. No sleeps and no timings: waits poll with deadlines
inside the bed, and speed is bench/'s business.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from remote_docker.cli.testbed import main
from remote_docker.testbed import layout
from remote_docker.testbed.mounts import mounts_under
from remote_docker.testbed.process import processes_of
from tests.bedtools import run_dm, run_ws

CHECKOUT = Path(__file__).resolve().parents[2]
PINNED_SSH = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"]


def run_testbed_cli(*words: str, input: bytes | None = None,
                    cwd: str = "/") -> subprocess.CompletedProcess:
    """`python -m remote_docker testbed …` as root, the way a developer types it."""
    return subprocess.run(
        [sys.executable, "-m", "remote_docker", "testbed", *words],
        input=input, capture_output=True, timeout=120, cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(CHECKOUT)},
    )


def test_status_says_every_part_is_ok(bed, capsys) -> None:
    assert [name for name, ok in bed.status() if not ok] == []
    assert main(["status"]) == 0
    assert "missing" not in capsys.readouterr().out


def test_ws_reaches_the_docker_machine_with_its_key_and_a_pinned_host_key(bed) -> None:
    result = run_ws([*PINNED_SSH, layout.DM_HOST, "docker", "version", "--format",
                     "{{.Server.Version}}"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_an_unpinned_host_is_refused(bed) -> None:
    """It is the pin in ~ws/.ssh/known_hosts that lets the previous test in."""
    result = run_ws([*PINNED_SSH, "-o", "UserKnownHostsFile=/dev/null", layout.DM_HOST, "true"])
    assert result.returncode == 255
    assert b"Host key verification failed" in result.stderr


@pytest.mark.parametrize("image,shell", [("busybox:latest", "sh"), ("debian:stable-slim", "bash")])
def test_the_local_images_run_as_dm(bed, image: str, shell: str) -> None:
    result = run_dm(["docker", "run", "--rm", image, shell, "-c", "echo ran"])
    assert (result.returncode, result.stdout) == (0, b"ran\n"), result.stderr


def test_ws_mounts_dm_home_with_sshfs_and_root_sees_it(bed) -> None:
    """allow_other (user_allow_other, /dev/fuse 0666) is what lets dockerd see a ws mount."""
    name = f"testbed-sshfs-{uuid.uuid4().hex[:8]}"
    mountpoint = layout.home(layout.WS_USER) / name
    written = layout.home(layout.DM_USER) / f"{name}.txt"
    assert run_ws(["mkdir", str(mountpoint)]).returncode == 0
    try:
        result = run_ws(["sshfs", "-o", "BatchMode=yes,allow_other",
                         f"{layout.DM_HOST}:{layout.home(layout.DM_USER)}", str(mountpoint)])
        assert result.returncode == 0, result.stderr
        result = run_ws(["tee", str(mountpoint / written.name)], input=b"through fuse\n")
        assert result.returncode == 0, result.stderr
        assert written.read_bytes() == b"through fuse\n"
        # root reads it too: only allow_other lets anyone but ws (dockerd) in
        assert (mountpoint / written.name).read_bytes() == b"through fuse\n"
    finally:
        run_ws(["fusermount3", "-u", str(mountpoint)])
        run_ws(["rmdir", str(mountpoint)])
        written.unlink(missing_ok=True)
    assert mounts_under([mountpoint]) == []


def test_the_display_answers_ws_with_its_cookie_only(bed) -> None:
    result = run_ws(["xdpyinfo"])
    assert result.returncode == 0, result.stderr
    assert b"dimensions:" in result.stdout
    refused = run_ws(["xdpyinfo"], env={"XAUTHORITY": "/dev/null"})
    assert refused.returncode != 0


def test_exec_passes_the_exit_status_through(bed) -> None:
    assert run_testbed_cli("exec", "--", "sh", "-c", "exit 7").returncode == 7


def test_exec_passes_stdin_bytes_through(bed) -> None:
    data = bytes(range(256)) * 64
    result = run_testbed_cli("exec", "--", "cat", input=data)
    assert (result.returncode, result.stdout) == (0, data)


def test_exec_runs_as_ws_with_the_shims_first(bed) -> None:
    result = run_testbed_cli("exec", "--", "sh", "-c", 'id -un; echo "$PATH"; pwd', cwd="/")
    user, path, cwd = result.stdout.decode().splitlines()
    assert (user, cwd) == (layout.WS_USER, "/")
    assert path.split(":")[0] == str(layout.SHIM_DIR)


def test_exec_falls_back_to_home_where_ws_cannot_enter(bed) -> None:
    result = run_testbed_cli("exec", "--", "pwd", cwd="/root")
    assert result.stdout.decode().strip() == str(layout.home(layout.WS_USER))


@pytest.mark.parametrize("argv", [[], ["exec"], ["exec", "--"], ["sideways"], ["up", "now"]])
def test_bad_input_is_one_line_and_a_failure(argv: list[str], capsys) -> None:
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


@pytest.mark.slow
def test_containers_reach_the_debian_mirror(bed) -> None:
    """apt inside images needs dockerd's bridge and NAT to work on this machine."""
    result = run_dm(["docker", "run", "--rm", "debian:stable-slim", "apt-get", "update"],
                    timeout=300)
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_down_leaves_nothing_behind_and_up_comes_back(bed) -> None:
    """Holds the bed while it looks, so another session's `up` cannot come between."""
    with bed.exclusive():
        try:
            _down_with_something_running(bed)
            bed.down()  # idempotent
        finally:
            bed.up()
    assert [name for name, ok in bed.status() if not ok] == []
    assert run_dm(["docker", "ps", "-aq"]).stdout == b""
    assert b"testbed-down" not in run_dm(["docker", "volume", "ls", "-q"]).stdout


def _down_with_something_running(bed) -> None:
    mountpoint = layout.home(layout.WS_USER) / f"testbed-down-{uuid.uuid4().hex[:8]}"
    assert run_ws(["mkdir", str(mountpoint)]).returncode == 0
    assert run_ws(["sshfs", f"{layout.DM_HOST}:/", str(mountpoint)]).returncode == 0
    assert run_dm(["docker", "run", "-d", "-v", "testbed-down:/data", "busybox:latest",
                   "sleep", "600"]).returncode == 0
    sleeper = subprocess.Popen(bed.ws_command(["sleep", "600"]), env=bed.ws_env(), cwd="/")
    bed.down()
    downed = _ticks_since_boot()
    assert sleeper.wait(timeout=10) != 0
    for user in (layout.WS_USER, layout.DM_USER):
        left = [pid for pid in processes_of(pwd.getpwnam(user).pw_uid)
                if _started_at(pid) <= downed]  # not one another session started since
        assert left == [], user
    assert mounts_under([layout.home(layout.WS_USER), layout.RUNTIME_ROOT]) == []
    mountpoint.rmdir()
    assert not bed.is_up()
    refused = run_testbed_cli("exec", "--", "true")
    assert refused.returncode != 0 and b"testbed up" in refused.stderr


def _ticks_since_boot() -> int:
    """Now, in the clock ticks /proc/PID/stat gives a process's start in."""
    return int(float(Path("/proc/uptime").read_text().split()[0]) * os.sysconf("SC_CLK_TCK"))


def _started_at(pid: int) -> int:
    """When pid started (0 if it is gone); field 22 of stat, counted after the command name."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rpartition(")")[2].split()[19])
