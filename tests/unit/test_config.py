"""Choosing the docker-machine: parsing, config file, cache, errors."""

import os

import pytest

from remote_docker import config
from remote_docker.errors import ConfigError


@pytest.mark.parametrize("spec, user, host, port, dest", [
    ("dm@127.0.0.2", "dm", "127.0.0.2", None, "dm@127.0.0.2"),
    ("host", None, "host", None, "host"),
    ("u@h:2222", "u", "h", 2222, "u@h"),
    ("ssh://u@h:22/", "u", "h", 22, "u@h"),
    ("[::1]:22", None, "::1", 22, "[::1]"),
    ("me@[fe80::1%eth0]", "me", "fe80::1%eth0", None, "me@[fe80::1%eth0]"),
])
def test_parse_machine(spec, user, host, port, dest) -> None:
    m = config.parse_machine(spec)
    assert (m.user, m.host, m.port, m.destination) == (user, host, port, dest)


@pytest.mark.parametrize("spec", ["", "a b", "u@", "@h", "h:0", "h:70000", "h:x", "-oProxy=x",
                                  "a:b:c", "[::1", "u;rm@h"])
def test_bad_machines_are_config_errors(spec: str) -> None:
    with pytest.raises(ConfigError):
        config.parse_machine(spec)


def test_key_is_short_and_safe() -> None:
    key = config.parse_machine("someone@" + "a" * 80 + ".example:2222").key()
    assert len(key) <= 40 and "/" not in key


def env_for(tmp_path, **extra) -> dict:
    return {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
            "XDG_RUNTIME_DIR": str(tmp_path / "run"), **extra}


def test_env_var_wins_then_config_file(tmp_path) -> None:
    (tmp_path / "run").mkdir()
    env = env_for(tmp_path)
    with pytest.raises(ConfigError, match="remote-docker use"):
        config.machine_spec(env)
    config.write_settings({"host": "dm@h"}, env)
    assert config.machine_spec(env) == "dm@h"
    assert config.machine_spec({**env, "REMOTE_DOCKER_HOST": "x@y"}) == "x@y"


def test_cache_follows_edits(tmp_path) -> None:
    (tmp_path / "run").mkdir()
    env = env_for(tmp_path)
    path = config.write_settings({"host": "one"}, env)
    assert config.machine_spec(env) == "one"
    with open(path, "a") as f:
        f.write('transport = "fabric"\n')
    assert config.transport_name(env) == "fabric"


def test_write_settings_keeps_comments_and_tables(tmp_path) -> None:
    (tmp_path / "run").mkdir()
    env = env_for(tmp_path)
    path = config.config_path(env)
    os.makedirs(os.path.dirname(path))
    with open(path, "w") as f:
        f.write('# mine\nhost = "old"\n[machines.x]\nhost = "keep"\n')
    config.write_settings({"host": "new"}, env)
    text = open(path).read()
    assert "# mine" in text and 'host = "new"' in text and 'host = "keep"' in text
    assert config.machine_spec(env) == "new"


def test_broken_toml_is_one_line_error(tmp_path) -> None:
    (tmp_path / "run").mkdir()
    env = env_for(tmp_path)
    os.makedirs(tmp_path / "cfg" / "remote-docker")
    (tmp_path / "cfg" / "remote-docker" / "config.toml").write_text("host = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.machine_spec(env)


def test_unreadable_config_is_one_line_error(tmp_path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads everything")
    (tmp_path / "run").mkdir()
    env = env_for(tmp_path)
    path = config.write_settings({"host": "x"}, env)
    os.chmod(path, 0)
    with pytest.raises(ConfigError, match="cannot read"):
        config.machine_spec(env)
