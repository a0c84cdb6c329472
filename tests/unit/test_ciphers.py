"""The master's cipher choice: AES-GCM first only on AES hardware, never over the user's."""

from __future__ import annotations

import pytest

from remote_docker.transport import ciphers


def test_cpu_flags(tmp_path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 aes avx2\n")
    assert ciphers.cpu_has_aes(str(info))
    info.write_text("processor\t: 0\nFeatures\t: fp asimd aes pmull sha1\n")
    assert ciphers.cpu_has_aes(str(info))
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 aesni-not avx2\n")
    assert not ciphers.cpu_has_aes(str(info))
    assert not ciphers.cpu_has_aes(str(tmp_path / "absent"))


@pytest.fixture
def fake_ssh(tmp_path, monkeypatch):
    """An `ssh` whose -G answer depends on -F none and on a file the test writes."""
    user = tmp_path / "user-ciphers"
    script = tmp_path / "ssh"
    script.write_text("#!/bin/sh\n"
                      f'if [ "$1" = -F ]; then echo "ciphers chacha,aes-gcm"; exit 0; fi\n'
                      f'if [ -f {user} ]; then cat {user}; exit 0; fi\n'
                      'echo "ciphers chacha,aes-gcm"\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    monkeypatch.setattr(ciphers, "cpu_has_aes", lambda: True)
    return user


def test_default_list_gets_aes_gcm_first(fake_ssh) -> None:
    assert ciphers.cipher_options(["--", "dm@host"]) == [
        "-o", "Ciphers=^aes128-gcm@openssh.com,aes256-gcm@openssh.com"]


def test_the_users_own_list_is_kept(fake_ssh) -> None:
    fake_ssh.write_text("ciphers aes256-ctr\n")
    assert ciphers.cipher_options(["--", "dm@host"]) == []
    fake_ssh.write_text("no ciphers line: ssh -G failed somehow\n")
    assert ciphers.cipher_options(["--", "dm@host"]) == []


def test_no_aes_hardware_no_change(fake_ssh, monkeypatch) -> None:
    monkeypatch.setattr(ciphers, "cpu_has_aes", lambda: False)
    assert ciphers.cipher_options(["--", "dm@host"]) == []


def test_the_answer_is_kept_until_ssh_config_changes(fake_ssh, tmp_path, monkeypatch) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    cache = str(tmp_path / "ciphers-dm")
    assert ciphers.cipher_options(["--", "dm@host"], cache) != []
    fake_ssh.write_text("ciphers aes256-ctr\n")  # ssh would now say otherwise...
    assert ciphers.cipher_options(["--", "dm@host"], cache) != []  # ...but is not asked
    (home / ".ssh" / "config").write_text("Ciphers aes256-ctr\n")  # a config file changed
    assert ciphers.cipher_options(["--", "dm@host"], cache) == []
    assert ciphers.cipher_options(["--", "other@host"], cache) == []
