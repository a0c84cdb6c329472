"""Reverse mounts on the bed, as ws: docker-mount, plain docker run -v, docker-umount, gc.

Real sshfs on the docker-machine (dm), real dockerd, the jailed sftp-server
on the workstation side.  "Nothing left behind" is checked on both sides by
uuid: registry files, the volume, the mountpoint, FUSE mounts, and the
keeper, jail and sshfs processes.
"""

import glob
import hashlib
import os
import signal
import subprocess
import threading
import time

import pytest

from remote_docker import testbed
from remote_docker.testbed import layout
from tests.bedtools import run_dm, run_ws

REGISTRY = layout.home(layout.WS_USER) / ".local" / "state" / "remote-docker" / "mounts"
REMOTE_MOUNTS = layout.home(layout.DM_USER) / ".cache" / "remote-docker" / "mounts"


def wait_for(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def docker_mount(directory: str, *flags: str) -> str:
    result = run_ws(["docker-mount", directory, *flags], timeout=90)
    assert result.returncode == 0, result.stderr.decode()
    volume = result.stdout.decode()
    assert volume.startswith("rd-") and volume.count("\n") == 1, volume
    return volume.strip()


def in_container(volume: str, script: str, ro: bool = False) -> subprocess.CompletedProcess:
    spec = f"{volume}:/w" + (":ro" if ro else "")
    return run_ws(["docker", "run", "--rm", "-v", spec, "busybox", "sh", "-c", script],
                  timeout=120)


def _processes(*needles: str) -> list[tuple[int, str]]:
    """(pid, command line) of every process whose command line holds all ``needles``."""
    found = []
    for path in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            with open(path, "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cmdline and all(n in cmdline for n in needles) and "pytest" not in cmdline:
            found.append((int(path.split("/")[2]), cmdline))
    return found


def processes_mentioning(*needles: str) -> list[str]:
    return [cmdline for _, cmdline in _processes(*needles)]


def pids_mentioning(*needles: str) -> list[int]:
    return [pid for pid, _ in _processes(*needles)]


def leftovers(uuid: str, directory: str | None = None) -> list[str]:
    """Everything of mount ``uuid`` that still exists, on either side."""
    left = [f"record {n}" for n in (os.listdir(REGISTRY) if REGISTRY.exists() else [])
            if uuid in n]
    left += [f"remote {p}" for p in glob.glob(f"{REMOTE_MOUNTS}/*/{uuid}*")]
    volumes = run_dm(["docker", "volume", "ls", "-q", "--filter",
                      f"label=remote-docker.uuid={uuid}"]).stdout.decode().split()
    left += [f"volume {v}" for v in volumes]
    with open("/proc/self/mountinfo") as f:
        left += [f"mount {line.split()[4]}" for line in f if f"rd-{uuid}" in line]
    left += [f"process {p}" for p in processes_mentioning(uuid)]
    if directory:
        left += [f"jail {p}" for p in processes_mentioning("mounts.jail", directory)]
    return left


def nothing_left(uuid: str, directory: str | None = None, timeout: float = 30.0) -> None:
    try:
        wait_for(lambda: not leftovers(uuid, directory), timeout, f"mount {uuid} to be gone")
    except AssertionError:
        raise AssertionError(f"left behind: {leftovers(uuid, directory)}") from None


def make_dir(ws_dir: str, name: str = "w") -> str:
    path = os.path.join(ws_dir, name)
    run_ws(["sh", "-c", 'mkdir -p "$1" && echo hello > "$1/f"', "sh", path])
    return path


def test_files_made_in_the_container_are_the_workstation_users(bed, ws_dir) -> None:
    served = make_dir(ws_dir)
    volume = docker_mount(served)
    try:
        result = in_container(volume, "cat /w/f && echo new > /w/g && chmod 640 /w/g && "
                              "mkdir /w/d && mv /w/g /w/d/g && ln -s ../f /w/d/l && "
                              "echo x > /w/gone && rm /w/gone && cat /w/d/l")
        assert result.returncode == 0, result.stderr.decode()
        assert result.stdout == b"hello\nhello\n"
        made = os.path.join(served, "d", "g")
        with open(made) as f:
            assert f.read() == "new\n"
        info = os.stat(made)
        assert (info.st_uid, info.st_mode & 0o777) == (os.stat(served).st_uid, 0o640)
        assert os.readlink(os.path.join(served, "d", "l")) == "../f"
        assert sorted(os.listdir(served)) == ["d", "f"]
    finally:
        assert run_ws(["docker-umount", volume]).returncode == 0
    nothing_left(volume[3:], served)


def test_a_change_on_the_workstation_is_seen_in_the_container(bed, ws_dir) -> None:
    served = make_dir(ws_dir)
    volume = docker_mount(served)
    try:
        started = run_ws(["docker", "run", "-d", "-v", f"{volume}:/w", "busybox", "sh", "-c",
                          "until [ -f /w/later ]; do sleep 0.1; done; cat /w/later"])
        container = started.stdout.decode().strip()
        run_ws(["sh", "-c", 'echo later > "$1/later"', "sh", served])
        status = run_ws(["docker", "wait", container], timeout=60)
        assert status.stdout.decode().strip() == "0"
        assert run_ws(["docker", "logs", container]).stdout == b"later\n"
        run_ws(["docker", "rm", container])
    finally:
        run_ws(["docker-umount", volume])
    nothing_left(volume[3:], served)


def test_read_only_refuses_writes(bed, ws_dir) -> None:
    served = make_dir(ws_dir)
    volume = docker_mount(served, "--ro")
    try:
        assert in_container(volume, "cat /w/f").stdout == b"hello\n"
        for script in ("echo x > /w/new", "rm /w/f", "chmod 600 /w/f", "mkdir /w/d"):
            result = in_container(volume, script)
            assert result.returncode != 0, script
        assert sorted(os.listdir(served)) == ["f"]
        assert os.stat(os.path.join(served, "f")).st_mode & 0o777 == 0o644
    finally:
        run_ws(["docker-umount", volume])
    nothing_left(volume[3:], served)


def test_escapes_from_the_docker_machine_side_fail(bed, ws_dir) -> None:
    """Links resolve in the container, as with a local bind mount: never on the workstation.

    (Requests the docker-machine's sshfs could forge are test_mounts_jail's.)
    """
    served = make_dir(ws_dir)
    secret = os.path.join(ws_dir, "outside")
    run_ws(["sh", "-c", 'echo secret > "$2" && ln -s "$2" "$1/abs" && ln -s ../outside "$1/rel" '
            '&& ln -s /etc/passwd "$1/passwd"', "sh", served, secret])
    volume = docker_mount(served)
    try:
        result = in_container(volume, "cat /w/abs /w/rel /w/../outside /w/passwd; ls -a /w/..; "
                              "readlink /w/abs; readlink /w/rel; true")
        assert b"secret" not in result.stdout
        assert f"{layout.WS_USER}:x:".encode() not in result.stdout  # the container's passwd
        assert f"{secret}\n../outside\n".encode() in result.stdout  # links read as written
    finally:
        run_ws(["docker-umount", volume])
    nothing_left(volume[3:], served)


@pytest.mark.slow
def test_a_large_binary_file_round_trips(bed, ws_dir) -> None:
    served = make_dir(ws_dir)
    data = os.urandom(64 << 20)
    run_ws(["sh", "-c", 'cat > "$1/in.bin"', "sh", served], input=data, timeout=60)
    volume = docker_mount(served)
    try:
        result = in_container(volume, "sha256sum /w/in.bin && dd if=/dev/urandom of=/w/out.bin "
                              "bs=1M count=64 2>/dev/null && sha256sum /w/out.bin")
        assert result.returncode == 0, result.stderr.decode()
        sums = [line.split()[0] for line in result.stdout.decode().splitlines()]
        assert sums[0] == hashlib.sha256(data).hexdigest()
        with open(os.path.join(served, "out.bin"), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == sums[1]
    finally:
        run_ws(["docker-umount", volume])
    nothing_left(volume[3:], served)


def killing_fails_reads(volume: str, served: str, needles: tuple[str, ...]) -> None:
    """A container reads the mount; the processes whose command lines hold all
    ``needles`` are killed (-9): its reads then fail at once, and gc leaves nothing."""
    started = run_ws(["docker", "run", "-d", "-v", f"{volume}:/w", "busybox", "sleep", "600"])
    container = started.stdout.decode().strip()
    try:
        assert run_ws(["docker", "exec", container, "cat", "/w/f"]).stdout == b"hello\n"
        victims = pids_mentioning(*needles)
        assert victims, f"no process mentions {needles}"
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        reads_fail(container)
    finally:
        run_ws(["docker", "rm", "-f", container])
    run_ws(["remote-docker", "gc"])
    nothing_left(volume[3:], served)


def test_a_dead_relay_fails_reads_in_the_container_at_once(bed, ws_dir) -> None:
    served = make_dir(ws_dir)
    killing_fails_reads(docker_mount(served), served, ("mounts.jail", f" {served} "))


def reads_fail(container: str) -> None:
    """The container's reads of /w/f fail soon, and say why (ENOTCONN), never hang."""
    result = wait_for(lambda: (r := run_ws(["docker", "exec", container, "cat", "/w/f"],
                                            timeout=20)).returncode != 0 and r,
                      what="reads to fail")
    assert b"not connected" in result.stderr or b"No such" in result.stderr, result.stderr


def record_of(volume: str) -> dict:
    import json

    with open(REGISTRY / f"{volume[3:]}.json") as f:
        return json.load(f)


def test_gc_after_kill_9_of_the_keeper_leaves_nothing(bed, ws_dir) -> None:
    served = make_dir(ws_dir)
    volume = docker_mount(served)
    os.kill(record_of(volume)["keeper"], signal.SIGKILL)
    listing = run_ws(["remote-docker", "mounts"]).stdout.decode()
    assert "stale" in listing and volume in listing
    hint = run_ws(["python3", "-c", "from remote_docker.mounts.gc import stale_hint; "
                   "print(stale_hint())"], cwd=layout.SRC_DIR)
    assert hint.stdout == b"True\n"
    gc = run_ws(["remote-docker", "gc"])
    assert gc.returncode == 0, gc.stderr.decode()
    assert volume in gc.stdout.decode()
    nothing_left(volume[3:], served)
    hint = run_ws(["python3", "-c", "from remote_docker.mounts.gc import stale_hint; "
                   "print(stale_hint())"], cwd=layout.SRC_DIR)
    assert hint.stdout == b"False\n"


def newest_uuid(before: set[str]) -> str | None:
    names = set(os.listdir(REGISTRY)) if REGISTRY.exists() else set()
    fresh = [n[:-5] for n in names - before if n.endswith(".json")]
    return fresh[0] if fresh else None


STAGES = {
    "recorded": lambda record: True,
    "keeper running": lambda record: record.get("keeper", 0) > 0,
    "mountpoint made": lambda record: bool(record.get("mountpoint")),
}


@pytest.mark.parametrize("victim, stage", [
    ("docker-mount", "recorded"), ("docker-mount", "keeper running"),
    ("docker-mount", "mountpoint made"), ("keeper", "keeper running"),
    ("keeper", "mountpoint made"),
])
def test_kill_9_while_mounting_then_gc_leaves_nothing(bed, ws_dir, stage: str,
                                                       victim: str) -> None:
    import json

    served = make_dir(ws_dir)
    before = set(os.listdir(REGISTRY)) if REGISTRY.exists() else set()
    proc = subprocess.Popen(testbed.ws_command(["docker-mount", served]), env=testbed.ws_env(),
                            cwd=layout.home(layout.WS_USER), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    uuid = wait_for(lambda: newest_uuid(before), what="a record")

    def at_stage():
        try:
            with open(REGISTRY / f"{uuid}.json") as f:
                record = json.load(f)
        except (OSError, ValueError):
            return None
        return record if STAGES[stage](record) else None

    record = wait_for(at_stage, timeout=30, what=stage)
    os.kill(proc.pid if victim == "docker-mount" else record["keeper"], signal.SIGKILL)
    out, err = proc.communicate(timeout=90)
    assert proc.returncode != 0 and out == b"", (out, err)  # it did not finish first
    if victim == "keeper":
        assert err.startswith(b"docker-mount: ") and err.count(b"\n") == 1, err
    run_ws(["remote-docker", "gc"])
    nothing_left(uuid, served)


def test_concurrent_mounts_of_different_and_same_directories(bed, ws_dir) -> None:
    dirs = [make_dir(ws_dir, name) for name in ("a", "b", "c")]
    targets = dirs + [dirs[0], dirs[0], dirs[1]]
    volumes: list[str] = [""] * len(targets)

    def one(i: int) -> None:
        volumes[i] = docker_mount(targets[i])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(targets))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert all(volumes) and len(set(volumes)) == len(volumes)
        for volume in volumes:
            assert in_container(volume, "cat /w/f").stdout == b"hello\n"
    finally:
        result = run_ws(["docker-umount", *[v for v in volumes if v]])
        assert result.returncode == 0, result.stderr.decode()
    for volume in volumes:
        nothing_left(volume[3:])
    for directory in dirs:
        assert not processes_mentioning("mounts.jail", directory)


BIND = """
import subprocess, sys
from remote_docker import config
from remote_docker.mounts import reverse
from remote_docker.transport.openssh import ControlMaster
master = ControlMaster(config.parse_machine(config.machine_spec()))
m = reverse.mount(master, sys.argv[1])
if sys.argv[2] != "none":
    create = ["docker", "create", *sys.argv[3:], "-v", m.volume + ":/w", "busybox", "cat", "/w/f"]
    cid = subprocess.run(create, capture_output=True, text=True, check=True).stdout.strip()
    reverse.bind(master, m, cid)
    print(m.uuid, cid)
else:
    print(m.uuid)
"""


def api(served: str, *args: str) -> list[str]:
    result = run_ws(["python3", "-c", BIND, served, *args], cwd=layout.SRC_DIR, timeout=90)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode().split()


def test_a_bound_mount_lives_as_long_as_its_container(bed, ws_dir) -> None:
    served = make_dir(ws_dir)
    uuid, container = api(served, "bind")
    assert run_ws(["docker", "start", "-a", container]).stdout == b"hello\n"
    assert any(uuid in line for line in run_ws(["remote-docker", "mounts"]).stdout.decode()
               .splitlines())
    run_ws(["docker", "rm", container])
    nothing_left(uuid, served)


def test_a_bound_mount_ends_with_a_rm_container(bed, ws_dir) -> None:
    served = make_dir(ws_dir)
    uuid, container = api(served, "bind", "--rm")
    assert run_ws(["docker", "start", "-a", container]).stdout == b"hello\n"
    nothing_left(uuid, served)


def test_a_mount_nobody_claimed_ends_with_its_maker(bed, ws_dir) -> None:
    served = make_dir(ws_dir)
    (uuid,) = api(served, "none")
    nothing_left(uuid, served)


def test_docker_mount_says_what_is_wrong_in_one_line(bed, ws_dir) -> None:
    result = run_ws(["docker-mount", os.path.join(ws_dir, "missing")])
    assert result.returncode != 0 and result.stdout == b""
    assert result.stderr.decode().count("\n") == 1
    assert result.stderr.startswith(b"docker-mount: ")
    result = run_ws(["docker-mount", ws_dir], env={"REMOTE_DOCKER_MOUNT_MODE": "bogus"})
    assert result.returncode == 125 and b"mount_mode" in result.stderr


def readahead_kb(volume: str) -> str:
    dev = os.stat(record_of(volume)["mountpoint"]).st_dev
    with open(f"/sys/class/bdi/{os.major(dev)}:{os.minor(dev)}/read_ahead_kb") as f:
        return f.read().strip()


@pytest.mark.parametrize("setting, expected", [(None, "4096"), ("512", "512"), ("0", "128")])
def test_the_mounts_readahead_is_raised_unless_turned_off(bed, ws_dir, setting, expected) -> None:
    served = make_dir(ws_dir)
    env = {} if setting is None else {"REMOTE_DOCKER_READAHEAD_KB": setting}
    volume = run_ws(["docker-mount", served], env=env, timeout=90).stdout.decode().strip()
    assert volume.startswith("rd-")
    try:
        if expected == "128":  # left alone: give a wrongly started helper time to show itself
            time.sleep(2)
        wait_for(lambda: readahead_kb(volume) == expected, 30, f"read_ahead_kb {expected}")
    finally:
        assert run_ws(["docker-umount", volume]).returncode == 0
    nothing_left(volume[3:], served)


def test_a_bad_readahead_setting_is_one_line_and_mounts_nothing(bed, ws_dir) -> None:
    served = make_dir(ws_dir)
    result = run_ws(["docker-mount", served], env={"REMOTE_DOCKER_READAHEAD_KB": "lots"})
    assert result.returncode != 0 and result.stdout == b""
    assert result.stderr.decode().count("\n") == 1 and "readahead_kb" in result.stderr.decode()
