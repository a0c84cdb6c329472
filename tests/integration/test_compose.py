"""docker compose / docker-compose through the shims, as ws, on examples/compose-demo.

Each test copies the example into a fresh directory of ws's, uses a project
name of its own, and ends by checking that nothing of that project is left:
containers, network, image, reverse mounts and rd- volumes of its directory.
"""

import os
import signal
import subprocess
import time

import pytest

from remote_docker import testbed
from remote_docker.testbed import layout
from tests.bedtools import run_dm, run_ws
from tests.integration.test_bind_translation import assert_nothing_left
from tests.integration.test_signals_tty import Terminal

EXAMPLE = layout.SRC_DIR / "examples" / "compose-demo"
GREETING = b"hello from the workstation's .env | from the workstation's app.env\n"


@pytest.fixture
def demo(bed):
    """(directory, project name) of a fresh copy of the example; all of it removed afterwards."""
    unique = f"{os.getpid()}x{time.monotonic_ns() % 10**9}"
    path, name = f"/home/ws/rd-compose-{unique}", f"rdcompose{unique}"
    assert run_ws(["cp", "-r", str(EXAMPLE), path]).returncode == 0
    yield path, name
    sh(path, f"docker compose -p {name} down --rmi local --timeout 1")
    run_ws(["rm", "-rf", path])
    assert_nothing_left(path)
    assert_project_gone(name)


def sh(path: str, script: str, **kw):
    """``script`` in ``path``: on a line of its own, so that a job it starts with & starts here."""
    return run_ws(["sh", "-c", f"cd {path} || exit 99\n{script}"], **kw)


def assert_project_gone(name: str) -> None:
    label = f"label=com.docker.compose.project={name}"
    assert run_dm(["docker", "ps", "-aq", "--filter", label]).stdout == b""
    assert run_dm(["docker", "network", "ls", "-q", "--filter", f"name={name}_"]).stdout == b""
    assert run_dm(["docker", "images", "-q", f"{name}_app"]).stdout == b""


def down_leaves_nothing(path: str, name: str) -> None:
    """`docker compose down` succeeds, and no mount, container, network or image is left."""
    down = sh(path, f"docker compose -p {name} down --rmi local --timeout 1")
    assert down.returncode == 0, down.stderr
    assert_nothing_left(path)
    assert_project_gone(name)


def wait_for_file(path: str, deadline: float = 60.0) -> bytes:
    end = time.monotonic() + deadline
    while True:
        result = run_ws(["cat", path])
        if result.returncode == 0 and result.stdout:
            return result.stdout
        assert time.monotonic() < end, f"{path} never appeared"
        time.sleep(0.2)


def test_up_exec_logs_run_down_with_the_workstations_files(demo) -> None:
    path, name = demo
    up = sh(path, f"docker-compose -p {name} up -d")
    assert up.returncode == 0, up.stderr
    assert b"Successfully built" in up.stdout + up.stderr  # built from the workstation's app/
    assert b"WARNING" not in up.stderr and b"undefined" not in up.stderr, up.stderr
    assert wait_for_file(f"{path}/data/greeting.txt") == GREETING  # .env and app.env, here
    assert sh(path, "stat -c %U data/greeting.txt").stdout == b"ws\n"

    sh(path, "echo from-the-workstation > data/in.txt")
    exec_ = sh(path, f"docker compose -p {name} exec -T app cat /data/in.txt /etc/motd "
                     "/run/secrets/demo_secret")
    assert (exec_.returncode, exec_.stdout) == (0, b"from-the-workstation\na file of the "
                                                b"workstation, bound alone\na secret kept on "
                                                b"the workstation\n"), exec_.stderr
    term = Terminal(["sh", "-c", f"cd {path} || exit 99\nexec docker compose -p {name} exec app sh"])
    term.expect(b"# ")  # compose's `docker exec -it`, through the docker shim, on a pty
    term.send(b"tty; cat /data/in.txt; exit 5\r")
    term.expect(b"from-the-workstation")
    assert term.wait() == 5 and b"/dev/pts/" in term.seen, term.seen
    logs = sh(path, f"docker compose -p {name} logs --no-color")
    assert logs.returncode == 0 and b"app: wrote /data/greeting.txt" in logs.stdout, logs.stderr

    run = sh(path, f"docker compose -p {name} run --rm -T app sh -c 'echo \"$SECRET\"; "
                   "ls /data; exit 3'")
    assert run.returncode == 3, run.stderr
    assert run.stdout.splitlines()[-3:] == [b"from the workstation's app.env", b"greeting.txt",
                                           b"in.txt"]
    again = sh(path, f"docker-compose -p {name} up -d")
    assert again.returncode == 0 and b"is up-to-date" in again.stderr, again.stderr
    mounts = [l for l in run_ws(["remote-docker", "mounts"]).stdout.splitlines()
              if path.encode() in l]
    assert len(mounts) == 2, mounts  # ./data, and . (ro) for motd.txt; reused, not made again

    down_leaves_nothing(path, name)
    assert sh(path, "cat data/greeting.txt").stdout == GREETING  # the workstation's files stay


def test_down_releases_the_mounts_of_a_killed_compose(demo) -> None:
    path, name = demo
    script = (f"docker-compose -p {name} up >/dev/null 2>&1 & pid=$!; "
              "for i in $(seq 1 600); do [ -s data/greeting.txt ] && break; sleep 0.1; done; "
              "kill -9 $pid; wait $pid; echo killed $?")
    assert sh(path, script).stdout == b"killed 137\n"
    # compose is gone, its container runs on as after a local kill -9: so does its mount,
    # which its keeper now ties to that container
    end = time.monotonic() + 20
    while not any(path.encode() in l and b" container " in l
                  for l in run_ws(["remote-docker", "mounts"]).stdout.splitlines()):
        assert time.monotonic() < end, "the mount was not handed to the container"
        time.sleep(0.2)
    sh(path, "echo after-the-kill > data/late.txt")
    late = sh(path, f"docker compose -p {name} exec -T app cat /data/late.txt")
    assert late.stdout == b"after-the-kill\n", late.stderr
    down_leaves_nothing(path, name)


def test_ctrl_c_stops_the_project_and_start_brings_it_back_with_its_mount(demo) -> None:
    path, name = demo
    up = subprocess.Popen(
        testbed.ws_command(["sh", "-c", f"cd {path} || exit 99\nexec docker-compose -p {name} up"]),
        env=testbed.ws_env(), cwd=layout.home(layout.WS_USER), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for_file(f"{path}/data/greeting.txt")
        up.send_signal(signal.SIGINT)
        out, _ = up.communicate(timeout=60)
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
    assert b"Gracefully stopping" in out and b"Traceback" not in out, out  # compose's own
    sh(path, "rm data/greeting.txt")
    start = sh(path, f"docker compose -p {name} start")
    assert start.returncode == 0, start.stderr
    assert wait_for_file(f"{path}/data/greeting.txt") == GREETING  # the same mount, still live


def test_a_run_alone_releases_its_mount_when_the_container_goes(demo) -> None:
    path, name = demo
    run = sh(path, f"docker-compose -p {name} run --rm -T app sh -c 'echo ran > /data/ran.txt'")
    assert run.returncode == 0, run.stderr
    assert sh(path, "cat data/ran.txt").stdout == b"ran\n"
    assert_nothing_left(path)
    kept = sh(path, f"docker-compose -p {name} run -T app sh -c 'echo kept > /data/kept.txt'")
    assert kept.returncode == 0, kept.stderr  # no --rm: the stopped container keeps its mount
    assert any(path.encode() in l for l in run_ws(["remote-docker", "mounts"]).stdout.splitlines())
    down_leaves_nothing(path, name)


def test_compose_errors_are_composes_own(demo) -> None:
    path, name = demo
    missing = sh(path, f"docker compose -p {name} -f nope.yml up -d")
    local = run_dm(["sh", "-c", f"cd /tmp && docker-compose -p {name} -f nope.yml up -d"])
    assert missing.returncode == local.returncode != 0
    assert b"Traceback" not in missing.stderr and b"nope.yml" in missing.stderr
    unset = sh(path, f"env -u GREETING sh -c 'rm .env; docker-compose -p {name} up -d'")
    assert unset.returncode != 0 and b"set GREETING in .env" in unset.stderr, unset.stderr
    assert_nothing_left(path)


def test_without_compose_on_the_workstation_one_line_says_how_to_get_it(bed) -> None:
    for argv, prog in ((["docker", "compose", "up"], b"docker"),
                       (["docker-compose", "up"], b"docker-compose")):
        result = run_ws(argv, env={"PATH": str(layout.SHIM_DIR)})
        assert result.returncode == 127 and result.stderr.count(b"\n") == 1, result.stderr
        assert result.stderr.startswith(prog + b": compose is not installed on this workstation")


def test_what_needs_no_engine_needs_no_docker_machine(bed) -> None:
    unreachable = {"REMOTE_DOCKER_HOST": "dm@no-such-host.invalid"}
    version = run_ws(["docker", "compose", "version"], env=unreachable)
    assert version.returncode == 0 and b"version" in version.stdout, version.stderr
    ps = run_ws(["docker-compose", "ps"], env=unreachable)
    assert ps.returncode == 255 and b"no-such-host.invalid" in ps.stderr, ps.stderr
