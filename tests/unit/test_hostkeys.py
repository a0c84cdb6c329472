"""Host-key pinning and naming for `remote-docker use`: parsing, judging, deciding.

The OpenSSH text formats are fed as text; the few round trips through the
real `ssh-keygen` use keys made here (local, no network).
"""

import json
import os
import shutil
import subprocess

import pytest

from remote_docker import hostkeys
from remote_docker.errors import ConfigError, UsageError
from remote_docker.hostkeys import Action, HostKey, PinState

ED = "AAAAC3NzaC1lZDI1NTE5AAAAIF6FvGamxdFTvDmwOgg+Tkv393Q3LpjvFtvaO+CNA5Ad"
OTHER = "AAAAC3NzaC1lZDI1NTE5AAAAIMTl8cQWs2wpnjw4hSiqNWhZWtomL1TEtQ0UqDhhIvKe"

SSH_G = """user dm
hostname 10.0.0.7
port 2222
proxyjump none
userknownhostsfile /cfg/remote-docker/known_hosts /home/u/.ssh/known_hosts
globalknownhostsfile /etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2
"""


def test_ssh_g_output_names_host_port_user_and_files() -> None:
    target = hostkeys.parse_ssh_config(SSH_G)
    assert (target.hostname, target.port, target.user) == ("10.0.0.7", 2222, "dm")
    assert target.key_name == "[10.0.0.7]:2222"
    assert target.known_hosts_files[0] == "/cfg/remote-docker/known_hosts"
    assert "/etc/ssh/ssh_known_hosts" in target.known_hosts_files
    assert not target.proxied


def test_host_key_alias_and_proxies_from_ssh_g() -> None:
    target = hostkeys.parse_ssh_config("hostname h\nport 22\nhostkeyalias box\n"
                                       "proxyjump bastion\n")
    assert target.key_name == "box" and target.proxied


def test_keyscan_and_keygen_f_output_parse_to_keys() -> None:
    text = ("# 127.0.0.2:22 SSH-2.0-OpenSSH_9.2p1\n"
            f"127.0.0.2 ssh-ed25519 {ED}\n"
            "# Host 127.0.0.2 found: line 3\n"
            f"|1|abc=|def= ssh-rsa AAAAB3Nza\n"
            f"@revoked * ssh-ed25519 {OTHER}\n\n")
    keys = hostkeys.parse_key_lines(text, source="/f")
    assert keys == [HostKey("ssh-ed25519", ED), HostKey("ssh-rsa", "AAAAB3Nza"),
                    HostKey("ssh-ed25519", OTHER, "@revoked")]
    assert keys[0].source == "/f"
    assert keys[0].line("[h]:2") == f"[h]:2 ssh-ed25519 {ED}"


def test_fingerprint_lines_parse() -> None:
    prints = hostkeys.parse_fingerprints(
        "256 SHA256:ldUbWFT2l406VcUkJSAg8aao6HZvpAoss3wberyXWHA 127.0.0.2 (ED25519)\n"
        "3072 SHA256:abc no comment (RSA)\nnot a fingerprint\n")
    assert [str(p) for p in prints] == [
        "SHA256:ldUbWFT2l406VcUkJSAg8aao6HZvpAoss3wberyXWHA (ED25519, 256 bits)",
        "SHA256:abc (RSA, 3072 bits)"]


@pytest.mark.parametrize("presented, pinned, state", [
    ([HostKey("ssh-ed25519", ED)], [], PinState.NEW),
    ([HostKey("ssh-ed25519", ED)], [HostKey("ssh-ed25519", ED)], PinState.PINNED),
    ([HostKey("ssh-rsa", "R"), HostKey("ssh-ed25519", ED)], [HostKey("ssh-ed25519", ED)],
     PinState.PINNED),
    ([HostKey("ssh-ed25519", ED)], [HostKey("ssh-ed25519", OTHER)], PinState.CHANGED),
    ([HostKey("ssh-ed25519", ED)], [HostKey("ssh-rsa", "R")], PinState.CHANGED),
    ([HostKey("ssh-ed25519", ED)], [HostKey("ssh-ed25519", ED, "@revoked")], PinState.REVOKED),
    ([HostKey("ssh-ed25519", ED)], [HostKey("ssh-ed25519", OTHER, "@cert-authority")],
     PinState.PINNED),
])
def test_compare_judges_as_ssh_would(presented, pinned, state) -> None:
    assert hostkeys.compare(presented, pinned) == state


@pytest.mark.parametrize("state, accept_new, repin, tty, action", [
    (PinState.PINNED, False, False, False, Action.PROCEED),
    (PinState.PINNED, True, True, True, Action.PROCEED),
    (PinState.NEW, False, False, True, Action.ASK),
    (PinState.NEW, False, False, False, Action.REFUSE_NO_TERMINAL),
    (PinState.NEW, True, False, False, Action.PIN),
    (PinState.CHANGED, True, False, True, Action.REFUSE_CHANGED),
    (PinState.CHANGED, False, True, True, Action.ASK),
    (PinState.CHANGED, False, True, False, Action.REFUSE_NO_TERMINAL),
    (PinState.CHANGED, True, True, False, Action.PIN),
    (PinState.REVOKED, True, True, True, Action.REFUSE_REVOKED),
])
def test_decide(state, accept_new, repin, tty, action) -> None:
    assert hostkeys.decide(state, accept_new, repin, tty) == action


def write_context(home, name: str, host: str, folder: str = "abc") -> None:
    meta = home / ".docker" / "contexts" / "meta" / folder
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(json.dumps(
        {"Name": name, "Metadata": {}, "Endpoints": {"docker": {"Host": host,
                                                                "SkipTLSVerify": False}}}))


def test_docker_contexts_are_read_from_meta_files(tmp_path) -> None:
    write_context(tmp_path, "far", "ssh://dm@far.example:2222", "a")
    write_context(tmp_path, "sock", "unix:///var/run/docker.sock", "b")
    (tmp_path / ".docker" / "contexts" / "meta" / "c").mkdir()
    (tmp_path / ".docker" / "contexts" / "meta" / "c" / "meta.json").write_text("{broken")
    env = {"HOME": str(tmp_path)}
    assert hostkeys.docker_contexts(env) == {"far": "ssh://dm@far.example:2222",
                                             "sock": "unix:///var/run/docker.sock"}
    assert hostkeys.docker_contexts({"HOME": "/nowhere", "DOCKER_CONFIG": str(
        tmp_path / ".docker")}) == hostkeys.docker_contexts(env)


def test_resolve_spec_prefers_a_context_of_that_name(tmp_path) -> None:
    write_context(tmp_path, "far", "ssh://dm@far.example:2222")
    env = {"HOME": str(tmp_path)}
    machine, via = hostkeys.resolve_spec("far", env)
    assert (machine.user, machine.host, machine.port) == ("dm", "far.example", 2222)
    assert "far" in via
    machine, via = hostkeys.resolve_spec("ssh://far", env)
    assert (machine.host, via) == ("far", "")


def test_resolve_spec_refuses_non_ssh_contexts_local_and_bad_names(tmp_path) -> None:
    write_context(tmp_path, "sock", "unix:///var/run/docker.sock")
    env = {"HOME": str(tmp_path)}
    with pytest.raises(UsageError, match="not at an ssh://"):
        hostkeys.resolve_spec("sock", env)
    with pytest.raises(UsageError, match="REMOTE_DOCKER_HOST=local"):
        hostkeys.resolve_spec("local", env)
    with pytest.raises(ConfigError):
        hostkeys.resolve_spec("u@h:99999", env)


@pytest.mark.parametrize("spec, canonical", [
    ("ssh://dm@h:22/", "dm@h:22"), ("h", "h"), ("u@[::1]:2", "u@[::1]:2")])
def test_canonical_spec(spec, canonical) -> None:
    assert hostkeys.canonical_spec(hostkeys.resolve_spec(spec, {"HOME": "/nowhere"})[0]) \
        == canonical


needs_keygen = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="no ssh-keygen")


def make_key(tmp_path, name: str) -> HostKey:
    path = tmp_path / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return hostkeys.parse_key_lines("h " + (tmp_path / f"{name}.pub").read_text())[0]


@needs_keygen
def test_pin_lookup_fingerprint_and_unpin_round_trip(tmp_path) -> None:
    old, new = make_key(tmp_path, "old"), make_key(tmp_path, "new")
    ours = str(tmp_path / "cfg" / "known_hosts")
    target = hostkeys.SshTarget("10.1.2.3", 2200, "dm", known_hosts_files=(ours, "/nonexistent"))
    hostkeys.pin([old], target, ours)
    assert open(ours).read() == f"[10.1.2.3]:2200 {old.keytype} {old.blob}\n"
    assert oct(os.stat(ours).st_mode & 0o777) == "0o600"
    assert hostkeys.compare([new], hostkeys.pinned_keys(target)) == PinState.CHANGED
    assert [k.source for k in hostkeys.pinned_keys(target)] == [ours]
    assert hostkeys.fingerprints([old])[0].digest.startswith("SHA256:")
    hostkeys.unpin(target, ours)
    hostkeys.pin([new], target, ours)
    assert hostkeys.compare([new], hostkeys.pinned_keys(target)) == PinState.PINNED
    assert sorted(os.listdir(tmp_path / "cfg")) == ["known_hosts"]  # no ssh-keygen .old left


def test_an_ipv6_machine_goes_to_ssh_without_brackets() -> None:
    """``user@[::1]`` is our notation; ssh would look up ``[::1]`` as a host name."""
    machine = hostkeys.resolve_spec("dm@[::ffff:127.0.0.2]:2222", {"HOME": "/nowhere"})[0]
    assert machine.ssh_args() == ["-p", "2222", "--", "dm@::ffff:127.0.0.2"]
    assert hostkeys.canonical_spec(machine) == "dm@[::ffff:127.0.0.2]:2222"


def test_a_proxied_host_is_scanned_only_when_nothing_else_will_do() -> None:
    direct = hostkeys.SshTarget("h", 22, "u")
    proxied = hostkeys.SshTarget("h", 22, "u", proxied=True)
    pin = [HostKey("ssh-ed25519", ED)]
    assert hostkeys.scan_needed(direct, pin, repin=False)
    assert not hostkeys.scan_needed(proxied, pin, repin=False)  # ssh verifies the pin itself
    assert hostkeys.scan_needed(proxied, [], repin=False)  # -> the one-line ProxyJump advice
    assert hostkeys.scan_needed(proxied, pin, repin=True)
    check = hostkeys.KeyCheck(proxied, [], pin, "/ours", left_to_ssh=True)
    assert hostkeys.decide(check.state, False, False, False) == Action.PROCEED
