"""Which engine the local docker client is given: REMOTE_DOCKER_LOCAL_HOST, unless the
user named one."""

from __future__ import annotations

import pytest

from remote_docker.transport.local import local_client_env

ENGINE = "unix:///run/ws-docker.sock"


def test_the_configured_local_engine_becomes_docker_host() -> None:
    env = local_client_env(["ps"], {"REMOTE_DOCKER_LOCAL_HOST": ENGINE, "PATH": "/bin"})
    assert env["DOCKER_HOST"] == ENGINE and env["PATH"] == "/bin"


@pytest.mark.parametrize("argv, env", [
    (["-H", "unix:///other.sock", "ps"], {}),
    (["--context", "other", "ps"], {}),
    (["ps"], {"DOCKER_HOST": "tcp://1.2.3.4:2375"}),
    (["ps"], {"DOCKER_CONTEXT": "other"}),
])
def test_an_endpoint_the_user_names_wins(argv: list[str], env: dict) -> None:
    got = local_client_env(argv, {"REMOTE_DOCKER_LOCAL_HOST": ENGINE, **env})
    assert got.get("DOCKER_HOST") == env.get("DOCKER_HOST")


def test_nothing_configured_leaves_the_default_socket(tmp_path) -> None:
    env = {"REMOTE_DOCKER_CONFIG": str(tmp_path / "none.toml"), "HOME": str(tmp_path)}
    assert "DOCKER_HOST" not in local_client_env(["ps"], env)
    (tmp_path / "c.toml").write_text(f'local_docker_host = "{ENGINE}"\n')
    env["REMOTE_DOCKER_CONFIG"] = str(tmp_path / "c.toml")
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    assert local_client_env(["ps"], env)["DOCKER_HOST"] == ENGINE


@pytest.mark.parametrize("env, config, socket", [
    ({"DOCKER_HOST": ENGINE}, None, "/run/ws-docker.sock"),
    ({"DOCKER_HOST": "tcp://1.2.3.4:2375"}, None, None),
    ({"DOCKER_HOST": "ssh://dm@host"}, None, None),
    ({"DOCKER_CONTEXT": "rootless"}, None, None),
    ({}, None, "/var/run/docker.sock"),
    ({}, '{"currentContext": "default"}', "/var/run/docker.sock"),
    ({}, '{"currentContext": "rootless"}', None),
    ({}, "not json", "/var/run/docker.sock"),
])
def test_a_load_writes_to_the_engine_socket_only_where_it_is_certain(env, config, socket,
                                                                     tmp_path) -> None:
    """A pull writes into the workstation engine's socket itself (no client in the
    stream) only where the client would talk to that very socket; with a context or
    a remote DOCKER_HOST it leaves the load to the client."""
    from remote_docker.transport.local import engine_socket

    if config is not None:
        (tmp_path / "config.json").write_text(config)
    assert engine_socket({"HOME": "/nonexistent", "DOCKER_CONFIG": str(tmp_path), **env}) \
        == socket
