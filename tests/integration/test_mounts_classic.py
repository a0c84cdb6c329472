"""Classic mounts on the bed: sshfs on dm logs in to ws's sshd on 127.0.0.3 with a per-mount key.

The key may do nothing but run the jailed sftp-server for the one directory,
and it is gone, from both sides, when the mount is.
"""

import glob
import os
import signal

from remote_docker.testbed import layout
from tests.bedtools import run_dm, run_ws
from tests.integration.test_mounts import (REMOTE_MOUNTS, docker_mount, in_container, make_dir,
                                           nothing_left, record_of)

CLASSIC = {"REMOTE_DOCKER_MOUNT_MODE": "classic",
           "REMOTE_DOCKER_WORKSTATION_HOST": f"{layout.WS_USER}@{layout.WS_ADDRESS}"}
AUTHORIZED = layout.home(layout.WS_USER) / ".ssh" / "authorized_keys"


def classic_mount(directory: str) -> str:
    result = run_ws(["docker-mount", directory], env=CLASSIC, timeout=90)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode().strip()


def key_lines(uuid: str) -> list[str]:
    if not AUTHORIZED.exists():
        return []
    return [line for line in AUTHORIZED.read_text().splitlines() if uuid in line]


def test_classic_mount_round_trip_and_nothing_left(bed, ws_dir) -> None:
    served = make_dir(ws_dir)
    volume = classic_mount(served)
    uuid = volume[3:]
    assert [line.startswith("restrict,command=") for line in key_lines(uuid)] == [True]
    result = in_container(volume, "cat /w/f && echo c > /w/g && chmod 600 /w/g")
    assert result.returncode == 0, result.stderr.decode()
    info = os.stat(os.path.join(served, "g"))
    assert (info.st_uid, info.st_mode & 0o777) == (os.stat(served).st_uid, 0o600)
    assert run_ws(["docker-umount", volume]).returncode == 0
    nothing_left(uuid, served)
    assert key_lines(uuid) == []


def test_the_mount_key_reaches_nothing_but_the_directory(bed, ws_dir) -> None:
    served = make_dir(ws_dir)
    volume = classic_mount(served)
    key = glob.glob(f"{REMOTE_MOUNTS}/*/{volume[3:]}.key")[0]
    ssh = ["-i", key, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"]
    try:
        shell = run_dm(["ssh", *ssh, "-T", f"{layout.WS_USER}@{layout.WS_ADDRESS}", "id"],
                       timeout=30)
        assert b"uid=" not in shell.stdout
        for attempt in ("get /etc/passwd /dev/null", "ls /", "get ../outside /dev/null"):
            escape = run_dm(["sftp", *ssh, "-b", "-", f"{layout.WS_USER}@{layout.WS_ADDRESS}"],
                            input=(attempt + "\n").encode(), timeout=30)
            assert escape.returncode != 0 or b"denied" in escape.stdout + escape.stderr, attempt
        inside = run_dm(["sftp", *ssh, "-b", "-", f"{layout.WS_USER}@{layout.WS_ADDRESS}"],
                        input=f"get {served}/f /dev/null\n".encode(), timeout=30)
        assert inside.returncode == 0, inside.stderr.decode()
    finally:
        run_ws(["docker-umount", volume])
    nothing_left(volume[3:], served)


def test_gc_after_kill_9_of_a_classic_keeper_takes_the_key_away(bed, ws_dir) -> None:
    served = make_dir(ws_dir)
    volume = classic_mount(served)
    os.kill(record_of(volume)["keeper"], signal.SIGKILL)
    assert run_ws(["remote-docker", "gc"]).returncode == 0
    nothing_left(volume[3:], served)
    assert key_lines(volume[3:]) == []


def test_classic_mode_needs_to_know_the_workstation(bed, ws_dir) -> None:
    result = run_ws(["docker-mount", ws_dir], env={"REMOTE_DOCKER_MOUNT_MODE": "classic"})
    assert result.returncode != 0 and b"workstation_host" in result.stderr
    assert result.stderr.count(b"\n") == 1


def test_passive_and_classic_mounts_coexist(bed, ws_dir) -> None:
    served = make_dir(ws_dir)
    volumes = [docker_mount(served), classic_mount(served)]
    try:
        for volume in volumes:
            assert in_container(volume, "cat /w/f").stdout == b"hello\n"
    finally:
        assert run_ws(["docker-umount", *volumes]).returncode == 0
    for volume in volumes:
        nothing_left(volume[3:], served)
