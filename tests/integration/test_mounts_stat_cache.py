"""Mounts with the docker-machine side's stat cache (``mount_stat_cache``), on the bed.

On the bed a round trip is short, so ``auto`` leaves it off; these tests turn
it on and check that it never shows the container stale answers to its own
changes, still follows the workstation's, and ends like a plain mount.
"""

import glob
import hashlib
import os

from tests.bedtools import run_ws
from tests.integration.test_mounts import (REMOTE_MOUNTS, killing_fails_reads, make_dir,
                                           nothing_left, processes_mentioning, record_of,
                                           wait_for)

ON = {"REMOTE_DOCKER_MOUNT_STAT_CACHE": "on"}


PROXY = ("python3", "-c", "dir_cache=no")  # with fsname=<volume>: the cache's proxy


def mount_with_cache(directory: str) -> str:
    result = run_ws(["docker-mount", directory], env=ON, timeout=90)
    assert result.returncode == 0, result.stderr.decode()
    volume = result.stdout.decode().strip()
    assert record_of(volume)["stat_cache"] == "on"
    assert processes_mentioning(*PROXY, f"fsname={volume}")
    return volume


def in_mount(volume: str, script: str) -> str:
    """``script`` in a busybox container with the mount at /w; its stdout (it must succeed)."""
    result = run_ws(["docker", "run", "--rm", "-v", f"{volume}:/w", "busybox", "sh", "-c",
                     script], timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def test_the_container_sees_its_own_changes_at_once(bed, ws_dir) -> None:
    served = make_dir(ws_dir)
    run_ws(["sh", "-c", 'mkdir "$1/t" && for i in 1 2 3 4 5; do echo $i > "$1/t/f$i"; done',
            "sh", served])
    volume = mount_with_cache(served)
    try:
        script = ("cd /w && find t -type f | sort | tr '\\n' ' ' && ls -l t >/dev/null && "
                  "echo a > t/f1 && stat -c %s t/f1 && echo bbb >> t/f1 && stat -c %s t/f1 && "
                  "mv t/f2 t/g && stat -c %s t/g && (stat t/f2 2>/dev/null || echo gone) && "
                  "chmod 600 t/f3 && stat -c %a t/f3 && truncate -s 9 t/f4 && stat -c %s t/f4 "
                  "&& rm t/f5 && ls t | tr '\\n' ' '")
        assert in_mount(volume, script).split() == [
            "t/f1", "t/f2", "t/f3", "t/f4", "t/f5", "2", "6", "2", "gone", "600", "9",
            "f1", "f3", "f4", "g"]
        assert os.path.getsize(os.path.join(served, "t", "f4")) == 9
    finally:
        assert run_ws(["docker-umount", volume]).returncode == 0
    nothing_left(volume[3:], served)


def test_writes_over_the_second_lane_land_in_order(bed, ws_dir) -> None:
    """Odd MiB stripes travel on a second session: rewrites across stripe ends, a
    truncate after them and an append after that must land as written."""
    served = make_dir(ws_dir)
    volume = mount_with_cache(served)
    uuid = volume[3:]
    try:
        wait_for(lambda: processes_mentioning(f"{uuid}.lane") and
                 not glob.glob(f"{REMOTE_MOUNTS}/*/{uuid}.lane"), 30,
                 "the write lane to be taken")
        script = ("cd /w && head -c 5000000 /dev/urandom > a && cp a b && "
                  "dd if=/dev/zero of=b bs=4096 seek=255 count=3 conv=notrunc 2>/dev/null && "
                  "dd if=a of=b bs=1000 skip=1050 seek=1050 count=20 conv=notrunc 2>/dev/null "
                  "&& truncate -s 3000000 b && cat a >> b && md5sum a b")
        sums = in_mount(volume, script).split()
        with open(os.path.join(served, "a"), "rb") as f:
            a = f.read()
        expected = bytearray(a)
        expected[255 * 4096:258 * 4096] = bytes(3 * 4096)  # across the first MiB's end
        expected[1050000:1070000] = a[1050000:1070000]  # over part of those zeros
        expected = expected[:3000000] + a
        with open(os.path.join(served, "b"), "rb") as f:
            assert f.read() == bytes(expected)
        assert sums[0::2] == [hashlib.md5(a).hexdigest(), hashlib.md5(expected).hexdigest()]
    finally:
        assert run_ws(["docker-umount", volume]).returncode == 0
    nothing_left(uuid, served)


def test_a_change_on_the_workstation_still_shows(bed, ws_dir) -> None:
    served = make_dir(ws_dir)
    volume = mount_with_cache(served)
    started = run_ws(["docker", "run", "-d", "-v", f"{volume}:/w", "busybox", "sh", "-c",
                      "ls -l /w >/dev/null; stat -c %s /w/f; "
                      "until [ \"$(stat -c %s /w/f)\" = 18 ]; do sleep 0.05; done; echo seen"])
    container = started.stdout.decode().strip()
    try:
        wait_for(lambda: run_ws(["docker", "logs", container]).stdout == b"6\n", 60,
                 "the container to stat the file")
        run_ws(["sh", "-c", 'echo "hello again" >> "$1/f"', "sh", served])  # 6 -> 18 bytes
        status = run_ws(["docker", "wait", container], timeout=60)
        assert status.stdout.decode().strip() == "0"
        assert run_ws(["docker", "logs", container]).stdout == b"6\nseen\n"
    finally:
        run_ws(["docker", "rm", "-f", container])
        run_ws(["docker-umount", volume])
    nothing_left(volume[3:], served)


def test_listings_fetched_ahead_are_right_and_follow_changes(bed, ws_dir) -> None:
    served = make_dir(ws_dir)
    run_ws(["sh", "-c", 'for d in a b c; do mkdir -p "$1/t/$d/deep"; for i in 1 2 3; do '
            'echo $i > "$1/t/$d/f$i"; done; done', "sh", served])
    volume = mount_with_cache(served)
    started = run_ws(["docker", "run", "-d", "-v", f"{volume}:/w", "busybox", "sh", "-c",
                      "cd /w/t && find . | sort > /tmp/1 && find . | sort > /tmp/2 && "
                      "cmp /tmp/1 /tmp/2 && wc -l < /tmp/1 && ls -a b | tr '\n' ' ' && echo && "
                      "touch b/mine && ls b | tr '\n' ' ' && echo && "
                      "until ls c | grep -qx theirs; do sleep 0.05; done && echo seen"])
    container = started.stdout.decode().strip()
    try:
        wait_for(lambda: b"mine" in run_ws(["docker", "logs", container]).stdout, 60,
                 "the container to list")
        run_ws(["sh", "-c", 'echo x > "$1/t/c/theirs"', "sh", served])
        status = run_ws(["docker", "wait", container], timeout=60)
        assert status.stdout.decode().strip() == "0", run_ws(["docker", "logs", container])
        lines = run_ws(["docker", "logs", container]).stdout.decode().splitlines()
        assert lines == ["16", ". .. deep f1 f2 f3 ", "deep f1 f2 f3 mine ", "seen"]
    finally:
        run_ws(["docker", "rm", "-f", container])
        run_ws(["docker-umount", volume])
    nothing_left(volume[3:], served)


def test_a_dead_cache_ends_the_mount_and_gc_cleans_up(bed, ws_dir) -> None:
    served = make_dir(ws_dir)
    volume = mount_with_cache(served)
    killing_fails_reads(volume, served, PROXY + (f"fsname={volume}",))


def test_a_bad_setting_is_one_line_and_mounts_nothing(bed, ws_dir) -> None:
    served = make_dir(ws_dir)
    result = run_ws(["docker-mount", served], env={"REMOTE_DOCKER_MOUNT_STAT_CACHE": "maybe"})
    assert result.returncode != 0 and result.stdout == b""
    message = result.stderr.decode()
    assert message.count("\n") == 1 and "mount_stat_cache" in message
