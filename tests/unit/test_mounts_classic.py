"""Classic mode's workstation side: the forced-command key line and taking it away again."""

import os

import pytest

from remote_docker.mounts import classic
from remote_docker.mounts.remote import MountError


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def test_the_key_may_only_run_the_forced_command(home) -> None:
    line = classic.authorized_line("ssh-ed25519 AAAA remote-docker-mount-u1", '/w/a "b"', False)
    assert line.startswith('restrict,command="')
    assert line.endswith(" ssh-ed25519 AAAA remote-docker-mount-u1")
    command = line[len('restrict,command="'):line.rindex('" ssh-ed25519')]
    assert '\\"b\\"' in command  # a double quote cannot end the command early


def test_keys_are_added_and_removed_keeping_the_users_own_lines(home) -> None:
    env = {"HOME": str(home), "XDG_STATE_HOME": str(home / "state")}
    ssh = home / ".ssh"
    ssh.mkdir()
    (ssh / "authorized_keys").write_text("ssh-ed25519 MINE me@laptop\n")
    for uuid in ("u1", "u2"):
        classic._edit_authorized_keys(
            lambda lines, u=uuid: [*lines, f'restrict,command="x" ssh-ed25519 K {classic.KEY_MARK}{u}'],
            env)
    classic.forget_keys(lambda uuid: uuid == "u1", env)
    lines = (ssh / "authorized_keys").read_text().splitlines()
    assert lines == ["ssh-ed25519 MINE me@laptop",
                     f'restrict,command="x" ssh-ed25519 K {classic.KEY_MARK}u2']
    assert os.stat(ssh / "authorized_keys").st_mode & 0o777 == 0o600


def test_the_workstation_address_must_be_configured(home) -> None:
    env = {"HOME": str(home), "XDG_CONFIG_HOME": str(home / "cfg")}
    with pytest.raises(MountError, match="workstation_host"):
        classic.workstation(env)
    env["REMOTE_DOCKER_WORKSTATION_HOST"] = "ws@10.0.0.5:2222"
    host = classic.workstation(env)
    assert (host.user, host.host, host.port) == ("ws", "10.0.0.5", 2222)
