"""Published ports on the bed, with ws in its own network namespace (testbed.netns).

There, the docker-machine's published port is not on ws's localhost: a
request to 127.0.0.1:PORT reaches the container only through our forward.
Each test has its own control socket and state dir (so its own master and
watcher, started inside the namespace), its own container names and ports,
and ends by closing that master and checking its watcher is gone.  A
watcher forwards every container on the machine, other engineers' too: the
tests look only at their own ports.
"""

import os
import random
import socket
import time

import pytest

from remote_docker.ports import state
from tests.bedtools import run_dm, run_ws

DEADLINE = 30.0
MACHINE_KEY = "dm@127.0.0.2"


@pytest.fixture
def ports_env(bed, ws_dir):
    """ws's environment for one test: its own runtime and state dirs; yields it."""
    env = {"XDG_RUNTIME_DIR": ws_dir, "XDG_STATE_HOME": os.path.join(ws_dir, "state"),
           "REMOTE_DOCKER_PORTS": "1"}  # the bed's ws_env has them off
    names: list[str] = []
    env_names = {**env, "_names": names}
    yield env_names
    for name in names:
        run_dm(["docker", "rm", "-f", name])
    ws(["remote-docker", "disconnect"], env_names)
    wait_until(lambda: not state.watcher_alive(MACHINE_KEY, env), "the watcher to end")
    assert state.read(MACHINE_KEY, env) == ({}, []), "the watcher left its record"


def ws(argv: list[str], env: dict, extra: dict | None = None):
    """argv as ws inside the workstation's namespace, with this test's dirs (and extra env)."""
    clean = {k: v for k, v in env.items() if not k.startswith("_")}
    return run_ws(argv, env={**clean, **(extra or {})}, netns=True)


def container(env: dict, tag: str) -> str:
    name = f"rdtest-ports-{tag}-{os.getpid()}-{time.monotonic_ns() % 10**9}"
    env["_names"].append(name)
    return name


def free_port() -> int:
    """A port nobody uses on the machine (where docker publishes it)."""
    while True:
        port = random.randint(20000, 40000)
        with socket.socket() as probe:
            try:
                probe.bind(("0.0.0.0", port))
                return port
            except OSError:
                continue


def fetch(port: int, env: dict) -> bytes | None:
    """GET /hostname from ws's localhost:port (httpd -h /etc serves the container's hostname)."""
    get = ("import sys, urllib.request\n"
           "print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())")
    result = ws(["python3", "-c", get, f"http://127.0.0.1:{port}/hostname"], env)
    return result.stdout.strip() if result.returncode == 0 else None


def wait_until(ready, what: str):
    end = time.monotonic() + DEADLINE
    while True:
        value = ready()
        if value:
            return value
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.1)


def httpd(name: str, port_spec: str) -> list[str]:
    return ["docker", "run", "-d", "--name", name, "-p", port_spec, "busybox",
            "httpd", "-f", "-p", "80", "-h", "/etc"]


def listing(env: dict) -> str:
    result = ws(["remote-docker", "ports"], env)
    assert result.returncode == 0, result.stderr
    return result.stdout.decode()


def test_run_dash_p_reaches_the_container_through_our_forward_only(ports_env) -> None:
    port, name = free_port(), container(ports_env, "run")
    assert fetch(port, ports_env) is None  # nothing on ws's localhost yet
    started = ws(httpd(name, f"{port}:80"), ports_env)
    assert started.returncode == 0, started.stderr
    assert started.stderr == b""
    assert f"localhost:{port}" in listing(ports_env)  # run -d returned with the forward made
    cid = started.stdout.strip()[:12]
    assert wait_until(lambda: fetch(port, ports_env), "the container's page") == cid
    assert name in listing(ports_env)
    assert ws(["docker", "rm", "-f", name], ports_env).returncode == 0
    wait_until(lambda: fetch(port, ports_env) is None, "the forward to go with the container")
    wait_until(lambda: name not in listing(ports_env), "the listing to drop it")


def test_publish_all_forwards_the_port_docker_chose(ports_env) -> None:
    name = container(ports_env, "all")
    started = ws(["docker", "run", "-d", "--name", name, "--expose", "80", "-P", "busybox",
                  "httpd", "-f", "-p", "80", "-h", "/etc"], ports_env)
    assert started.returncode == 0, started.stderr
    chosen = ws(["docker", "port", name, "80/tcp"], ports_env).stdout.decode().split()[0]
    port = int(chosen.rpartition(":")[2])
    page = wait_until(lambda: fetch(port, ports_env), f"localhost:{port}")
    assert page == started.stdout.strip()[:12]


def test_taken_port_is_a_warning_and_the_container_runs(ports_env) -> None:
    port, udp, name = free_port(), free_port(), container(ports_env, "taken")
    script = ("import socket, subprocess, sys\n"
              "s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen()\n"
              "sys.exit(subprocess.run(sys.argv[2:]).returncode)\n")
    result = ws(["python3", "-c", script, str(port), "docker", "run", "-d", "--name", name,
                 "-p", f"{port}:80", "-p", f"{udp}:53/udp", "busybox", "sleep", "300"],
                ports_env)
    assert result.returncode == 0, result.stderr
    assert result.stderr.decode().splitlines() == [
        f"docker: port {port} is already in use on this workstation: "
        f"localhost:{port} will not reach the container",
        f"docker: port {udp}/udp is published on the docker-machine only: ssh forwards carry TCP",
    ]
    running = run_dm(["docker", "inspect", "-f", "{{.State.Running}}", name])
    assert running.stdout == b"true\n"


def test_sync_picks_up_a_container_started_on_the_machine(ports_env) -> None:
    port, name = free_port(), container(ports_env, "sync")
    started = run_dm(httpd(name, f"127.0.0.1:{port}:80"))
    assert started.returncode == 0, started.stderr
    cid = started.stdout.strip()[:12]
    assert fetch(port, ports_env) is None  # published on the machine, not on ws's localhost
    synced = ws(["remote-docker", "ports", "--sync"], ports_env)
    assert synced.returncode == 0, synced.stderr
    assert f"localhost:{port}" in synced.stdout.decode() and name in synced.stdout.decode()
    assert wait_until(lambda: fetch(port, ports_env), "the container's page") == cid
    run_dm(["docker", "rm", "-f", name])  # stopped by someone else: the watcher sees it
    wait_until(lambda: fetch(port, ports_env) is None, "the forward to go")


def test_a_killed_watcher_is_cleaned_up_by_the_next_sync(ports_env) -> None:
    port, name = free_port(), container(ports_env, "kill")
    assert ws(httpd(name, f"{port}:80"), ports_env).returncode == 0
    header, forwards = state.read(MACHINE_KEY, ports_env)
    assert port in [f.port for f in forwards]  # (others' containers on the machine too)
    os.kill(int(header["pid"]), 9)
    wait_until(lambda: not state.watcher_alive(MACHINE_KEY, ports_env), "the watcher to die")
    stale = ws(["remote-docker", "ports"], ports_env)
    assert b"stale" in stale.stderr and f"localhost:{port}".encode() in stale.stdout
    run_dm(["docker", "rm", "-f", name])
    synced = ws(["remote-docker", "ports", "--sync"], ports_env)
    assert (synced.returncode, synced.stderr) == (0, b"")
    assert f"localhost:{port}".encode() not in synced.stdout
    assert fetch(port, ports_env) is None


@pytest.mark.parametrize("switch", ["env", "config"])
def test_off_switch_makes_no_forward(ports_env, ws_dir, switch) -> None:
    port, name = free_port(), container(ports_env, "off")
    off = {"REMOTE_DOCKER_PORTS": "0"}
    if switch == "config":
        config = os.path.join(ws_dir, "config.toml")
        run_ws(["sh", "-c", f"printf 'ports = false\\n' > {config}"])
        off = {"REMOTE_DOCKER_PORTS": "", "REMOTE_DOCKER_CONFIG": config}
    assert ws(httpd(name, f"{port}:80"), ports_env, off).returncode == 0
    assert not state.watcher_alive(MACHINE_KEY, ports_env)
    assert state.read(MACHINE_KEY, ports_env) == ({}, [])
    assert fetch(port, ports_env) is None
    refused = ws(["remote-docker", "ports", "--sync"], ports_env, off)
    assert refused.returncode != 0
    assert refused.stderr.decode().splitlines() == [
        "remote-docker: published ports are turned off (ports = false in the config, "
        "or REMOTE_DOCKER_PORTS=0)"]
