"""Workstation paths in docker run -v/--mount, and docker-run, through the shim as ws.

Each test runs in a fresh directory of ws's and ends by checking that no
reverse mount, rd- volume or keeper is left behind.
"""

import os
import signal
import time

import pytest

from tests.bedtools import run_dm, run_ws


@pytest.fixture
def project(bed):
    """A fresh directory in ws's home, removed afterwards; yields its path."""
    path = f"/home/ws/rd-proj-{os.getpid()}-{time.monotonic_ns()}"
    assert run_ws(["mkdir", "-p", f"{path}/sub"]).returncode == 0
    run_ws(["sh", "-c", f"echo hello > {path}/in.txt && echo 'k: v' > {path}/app.yml"])
    yield path
    run_ws(["rm", "-rf", path])
    assert_nothing_left(path)


def sh(project: str, script: str, **kw):
    return run_ws(["sh", "-c", f"cd {project} && {script}"], **kw)


def assert_nothing_left(project: str, deadline: float = 20.0) -> None:
    """No mount or volume of this test's directory (others may be testing at the same time)."""
    end = time.monotonic() + deadline
    mine = project.encode()
    while True:
        mounts = [line for line in run_ws(["remote-docker", "mounts"]).stdout.splitlines()
                  if mine in line]
        listing = run_dm(["docker", "volume", "ls", "--format",
                          '{{.Name}} {{.Label "remote-docker.dir"}}']).stdout.splitlines()
        volumes = [line for line in listing if line.startswith(b"rd-") and mine in line]
        if not mounts and not volumes:
            return
        assert time.monotonic() < end, f"left behind: {mounts!r} {volumes!r}"
        time.sleep(0.2)


def test_dash_v_serves_the_workstation_directory(project) -> None:
    result = sh(project, 'docker run --rm -v "$PWD":/w busybox sh -c '
                         '"cat /w/in.txt; echo made > /w/out.txt; chmod 640 /w/out.txt"')
    assert (result.returncode, result.stdout) == (0, b"hello\n"), result.stderr
    assert sh(project, "stat -c '%U %a' out.txt").stdout == b"ws 640\n"


def test_relative_source_read_only_and_exit_status(project) -> None:
    result = sh(project, "docker run --rm -v ./sub:/w:ro busybox sh -c "
                         "'touch /w/x 2>/dev/null && echo wrote || echo refused; exit 7'")
    assert (result.returncode, result.stdout) == (7, b"refused\n"), result.stderr
    assert sh(project, "ls sub").stdout == b""


def test_mount_option_and_a_single_file(project) -> None:
    result = sh(project, "docker run --rm --mount type=bind,source=.,target=/w,readonly "
                         "-v ./app.yml:/etc/app.yml busybox sh -c 'cat /w/in.txt /etc/app.yml'")
    assert result.stdout == b"hello\nk: v\n", result.stderr


def test_missing_mount_source_is_dockers_error(project) -> None:
    result = sh(project, "docker run --rm --mount type=bind,source=./nope,target=/w busybox true")
    assert result.returncode == 125 and b"bind source path does not exist" in result.stderr
    assert result.stderr.startswith(b"docker: Error response from daemon: invalid mount config")
    assert result.stderr.endswith(b"/nope\n\nRun 'docker run --help' for more information\n")


def test_machine_paths_and_named_volumes_are_left_alone(project) -> None:
    machine = run_dm(["cat", "/etc/hostname"]).stdout
    result = sh(project, "docker run --rm -v @/etc:/machine-etc:ro -v rd-test-named:/n "
                         "busybox cat /machine-etc/hostname")
    assert result.stdout == machine, result.stderr
    run_dm(["docker", "volume", "rm", "rd-test-named"])


def test_translation_can_be_switched_off(project) -> None:
    result = sh(project, "REMOTE_DOCKER_TRANSLATE=0 docker run --rm -v /etc:/e:ro busybox "
                         "cat /e/hostname")
    assert result.stdout == run_dm(["cat", "/etc/hostname"]).stdout


def test_docker_run_mounts_the_current_directory_where_it_is(project) -> None:
    result = sh(project, "docker-run busybox sh -c 'pwd; cat in.txt; echo x > new.txt; exit 4'")
    assert (result.returncode, result.stdout) == (4, f"{project}\nhello\n".encode())
    assert sh(project, "stat -c %U new.txt").stdout == b"ws\n"


def test_a_detached_container_keeps_its_mount_until_removed(project) -> None:
    started = sh(project, 'docker run -d -v "$PWD":/w busybox sh -c '
                          '"while [ ! -f /w/go ]; do sleep 0.1; done; echo seen > /w/done; '
                          'sleep 300"')
    cid = started.stdout.strip().decode()
    assert started.returncode == 0 and len(cid) == 64, started.stderr
    assert cid[:12].encode() in run_ws(["remote-docker", "mounts"]).stdout
    sh(project, "touch go")
    end = time.monotonic() + 20
    while sh(project, "cat done 2>/dev/null").stdout != b"seen\n":
        assert time.monotonic() < end
        time.sleep(0.1)
    assert run_ws(["docker", "rm", "-f", cid]).returncode == 0
    assert_nothing_left(project)


def test_a_failed_run_releases_its_mounts(project) -> None:
    result = sh(project, 'docker run -d -v "$PWD":/w no-such-image:nope true')
    assert result.returncode != 0
    assert_nothing_left(project)


KILLED_RUN = ("cd {project}; docker run --rm -v \"$PWD\":/w busybox sh -c "
              "'touch /w/started; sleep {sleep}; cat /w/in.txt > /w/seen' >/dev/null 2>&1 & "
              "pid=$!; for i in $(seq 1 300); do [ -e started ] && break; sleep 0.1; done; "
              "kill -9 $pid; remote-docker mounts")


def wait_for(predicate, what: str, deadline: float = 60.0) -> None:
    end = time.monotonic() + deadline
    while not predicate():
        assert time.monotonic() < end, what
        time.sleep(0.2)


@pytest.mark.slow
def test_a_killed_shim_leaves_its_running_container_a_working_mount(project) -> None:
    """kill -9 of the client leaves the container running, as local docker does: it is served."""
    listing = run_ws(["sh", "-c", KILLED_RUN.format(project=project, sleep=2)]).stdout
    assert b"rd-" in listing
    wait_for(lambda: sh(project, "cat seen 2>/dev/null").stdout == b"hello\n",
             "the container lost its mount when its docker client was killed")
    assert_nothing_left(project, deadline=60)  # with no further call: the keeper saw the container end


def records_of(project: str) -> list[dict]:
    """The registry records (as ws keeps them) of mounts of this project's directory."""
    import glob
    import json

    records = []
    for path in glob.glob("/home/ws/.local/state/remote-docker/mounts/*.json"):
        with open(path) as f:
            record = json.load(f)
        if record["local_dir"].startswith(project):
            records.append(record)
    return records


@pytest.mark.slow
def test_after_kill_9_of_shim_and_keeper_the_next_docker_call_cleans_up(project) -> None:
    """Nothing of ours alive: any later docker call starts a quiet gc."""
    listing = run_ws(["sh", "-c", KILLED_RUN.format(project=project, sleep=3)]).stdout
    assert b"rd-" in listing
    (record,) = records_of(project)
    os.kill(record["keeper"], signal.SIGKILL)
    volume = f"volume=rd-{record['uuid']}"
    wait_for(lambda: not run_dm(["docker", "ps", "-aq", "--filter", volume]).stdout,
             "the container did not end")
    assert b"stale" in run_ws(["remote-docker", "mounts"]).stdout
    assert run_ws(["docker", "ps"]).returncode == 0  # the one next call
    assert_nothing_left(project, deadline=60)


@pytest.mark.slow
def test_twenty_concurrent_docker_runs_all_work_and_all_clean(project) -> None:
    script = (f"cd {project} && for i in $(seq 1 20); do mkdir -p d$i; "
              "(cd d$i && docker-run busybox sh -c \"echo $i > out\" > ../log$i 2>&1; "
              "echo $? > ../rc$i) & done; wait; cat rc*")
    result = run_ws(["sh", "-c", script], timeout=300)
    assert result.stdout.split() == [b"0"] * 20, sh(project, "cat log*").stdout
    outs = sh(project, "for i in $(seq 1 20); do cat d$i/out; done").stdout.split()
    assert outs == [str(i).encode() for i in range(1, 21)]
    assert_nothing_left(project, deadline=60)
