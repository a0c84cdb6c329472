"""Published ports: argv specs, docker inspect bindings, the record, and the mux forward request."""

import socket
import threading

import pytest

from remote_docker.ports import bindings, publish, state
from remote_docker.ports.state import TAKEN, Forward
from remote_docker.transport import mux
from tests.unit.test_mux import fake_master, hello_client


@pytest.mark.parametrize("spec, expected", [
    ("8080:80", ([8080], "tcp")),
    ("127.0.0.1:8080:80", ([8080], "tcp")),
    ("[::1]:8080:80/tcp", ([8080], "tcp")),
    ("127.0.0.1::80", ([], "tcp")),
    ("80", ([], "tcp")),
    ("8000-8002:80-82", ([8000, 8001, 8002], "tcp")),
    ("5353:53/udp", ([5353], "udp")),
    ("published=8081,target=80", ([8081], "tcp")),
    ("published=53,target=53,protocol=udp,mode=host", ([53], "udp")),
    ("x:y", ([], "tcp")),
    ("70000:80", ([], "tcp")),
])
def test_spec_ports(spec, expected) -> None:
    assert publish.spec_ports(spec) == expected


def test_warnings_name_the_taken_port_and_udp() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        lines, tcp = publish.warnings([f"{port}:80", "5353:53/udp"], ours=set())
        assert tcp == []
        assert lines == [f"port {port} is already in use on this workstation: "
                         f"localhost:{port} will not reach the container",
                         "port 5353/udp is published on the docker-machine only: "
                         "ssh forwards carry TCP"]
        assert publish.warnings([f"{port}:80"], ours={port}) == ([], [port])  # ours: no warning
    finally:
        taken.close()


def test_run_without_published_ports_needs_no_watcher(tmp_path, monkeypatch) -> None:
    from remote_docker.cli.docker import published_ports
    from remote_docker.config import parse_machine
    from remote_docker.dockercli import parse

    env = {"XDG_STATE_HOME": str(tmp_path), "REMOTE_DOCKER_PORTS": "1"}
    spawned = []
    monkeypatch.setattr(publish, "spawn_watcher", lambda spec, key, env: spawned.append(spec))
    machine = parse_machine("dm@example")
    for argv in (["run", "busybox", "-p", "80"], ["create", "--name", "x", "busybox"]):
        assert published_ports(parse(argv), machine, env) == []
    assert spawned == []  # "-p" after the image is the container's own argument
    assert published_ports(parse(["run", "-P", "busybox"]), machine, env) == []
    assert published_ports(parse(["start", "x"]), machine, env) == []
    assert spawned == ["dm@example"] * 2


def test_only_commands_that_start_containers_look_at_ports() -> None:
    from remote_docker.cli.docker import published_ports
    from remote_docker.dockercli import parse

    for argv in (["ps"], ["logs", "x"], ["exec", "x", "sh"], ["port", "x"]):
        assert published_ports(parse(argv), None, {}) == []  # returns before touching anything


INSPECT = {
    "Id": "0123456789abcdef0123", "Name": "/web",
    "NetworkSettings": {"Ports": {
        "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "::", "HostPort": "8080"}],
        "81/tcp": [{"HostIp": "127.0.0.2", "HostPort": "9000"}],
        "82/tcp": [{"HostIp": "::", "HostPort": "9001"}],
        "53/udp": [{"HostIp": "0.0.0.0", "HostPort": "5353"}],
        "443/tcp": None,
    }},
}


def test_bindings_one_forward_per_host_port() -> None:
    forwards, skipped = bindings.of_container(INSPECT)
    assert [f.line() for f in forwards] == [
        "8080 127.0.0.1 8080 0123456789ab web live",
        "9000 127.0.0.2 9000 0123456789ab web live",
        "9001 ::1 9001 0123456789ab web live",
    ]
    assert skipped == ["5353/udp"]


def test_bindings_of_a_container_without_ports() -> None:
    assert bindings.of_container({"Id": "x", "NetworkSettings": {"Ports": {}}}) == ([], [])
    assert bindings.of_container({"Id": "x"}) == ([], [])


def test_record_round_trip(tmp_path) -> None:
    env = {"XDG_STATE_HOME": str(tmp_path)}
    assert state.read("m", env) == ({}, [])
    forwards = [Forward(8080, "127.0.0.1", 8080, "abc", "web"),
                Forward(9000, "::1", 9000, "def", "db", TAKEN)]
    state.write("m", {"pid": "42", "synced": "3"}, forwards, env)
    assert state.read("m", env) == ({"pid": "42", "synced": "3"}, forwards)
    state.remove("m", env)
    assert state.read("m", env) == ({}, [])


def test_off_switch(tmp_path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("ports = false\n")
    base = {"REMOTE_DOCKER_CONFIG": str(config), "XDG_CACHE_HOME": str(tmp_path)}
    assert not state.enabled(base)
    assert not state.enabled({**base, "REMOTE_DOCKER_PORTS": ""})  # empty: the config decides
    assert state.enabled({**base, "REMOTE_DOCKER_PORTS": "1"})
    assert not state.enabled({"REMOTE_DOCKER_PORTS": "0"})
    assert state.enabled({"REMOTE_DOCKER_CONFIG": str(tmp_path / "none.toml")})


def test_watcher_liveness_is_its_lock(tmp_path) -> None:
    import fcntl
    import os

    env = {"XDG_STATE_HOME": str(tmp_path)}
    assert not state.watcher_alive("m", env)
    os.makedirs(os.path.dirname(state.path("m", "lock", env)))
    with open(state.path("m", "lock", env), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        assert state.watcher_alive("m", env)
    assert not state.watcher_alive("m", env)


@pytest.mark.parametrize("close, kind", [(False, mux.MUX_C_OPEN_FWD), (True, mux.MUX_C_CLOSE_FWD)])
def test_forward_request_layout(close, kind) -> None:
    ours, theirs = socket.socketpair()

    def forward(packet, send):
        req = packet()
        assert req.u32() == kind
        rid = req.u32()
        assert req.u32() == mux.MUX_FWD_LOCAL
        assert (req.string(), req.u32(), req.string(), req.u32()) == (
            b"localhost", 8080, b"127.0.0.1", 80)
        send(mux.u32(mux.MUX_S_OK) + mux.u32(rid))

    def refuse(packet, send):
        rid = (req := packet()).u32() and req.u32()
        send(mux.u32(mux.MUX_S_FAILURE) + mux.u32(rid) + mux.string(b"Port forwarding failed"))

    master = threading.Thread(target=fake_master, args=(theirs, [forward, refuse]))
    master.start()
    client = hello_client(ours)
    client.forward(("localhost", 8080), ("127.0.0.1", 80), close)
    with pytest.raises(mux.MuxError, match="Port forwarding failed"):
        client.forward(("localhost", 8080), ("127.0.0.1", 80), close)
    master.join()
    client.close()
