"""`remote-docker use`, `status` and `disconnect` as ws, against the bed's real sshd.

ws's own ~/.ssh/known_hosts already pins 127.0.0.2 (the bed does that), so
the tests that need a host seen for the first time name the same sshd as
``[::ffff:127.0.0.2]``, an address ssh looks up under its own name.  Each test
gets a fresh XDG_CONFIG_HOME and XDG_RUNTIME_DIR (its own ControlMaster), and
no REMOTE_DOCKER_HOST, so the config file is what chooses the machine.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from remote_docker.testbed import layout
from tests.bedtools import run_dm

FRESH = "dm@[::ffff:127.0.0.2]"
FRESH_KEY_NAME = "::ffff:127.0.0.2"
ANOTHER_KEY = "AAAAC3NzaC1lZDI1NTE5AAAAIMTl8cQWs2wpnjw4hSiqNWhZWtomL1TEtQ0UqDhhIvKe"


class Workstation:
    """ws with a config and runtime dir of its own, and no REMOTE_DOCKER_HOST."""

    def __init__(self, bed) -> None:
        self.bed = bed
        account = pwd.getpwnam(layout.WS_USER)
        self.root = Path(tempfile.mkdtemp(prefix="rd-use-"))  # 0700, root's: give it to ws
        (self.root / "config").mkdir(0o700)
        (self.root / "run").mkdir(0o700)
        for folder in (self.root, self.root / "config", self.root / "run"):
            os.chown(folder, account.pw_uid, account.pw_gid)
        self.config = self.root / "config" / "remote-docker"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in self.bed.ws_env().items() if k != "REMOTE_DOCKER_HOST"}
        return {**env, "XDG_CONFIG_HOME": str(self.root / "config"),
                "XDG_RUNTIME_DIR": str(self.root / "run")}

    def run(self, *args: str, stdin: int | None = None,
            **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(self.bed.ws_command(["remote-docker", *args]),
                              env={**self.env(), **extra},
                              stdin=subprocess.DEVNULL if stdin is None else stdin,
                              capture_output=True, text=True, timeout=120,
                              cwd=layout.home(layout.WS_USER))

    def host_setting(self) -> str | None:
        path = self.config / "config.toml"
        return path.read_text() if path.exists() else None

    def close(self) -> None:
        """Close every master a test may have started, not only the configured one's."""
        for machine in (layout.DM_HOST, FRESH):
            self.run("disconnect", REMOTE_DOCKER_HOST=machine)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def ws(bed):
    bed.sync_code()
    station = Workstation(bed)
    yield station
    station.close()


def server_version() -> str:
    result = run_dm(["docker", "version", "--format", "{{.Server.Version}}"])
    assert result.returncode == 0, result.stderr
    return result.stdout.decode().strip()


def test_use_the_beds_machine_writes_the_config(ws) -> None:
    result = ws.run("use", layout.DM_HOST, "--accept-new")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (f"now using {layout.DM_HOST}: docker {server_version()} "
                             f"(recorded in {ws.config / 'config.toml'})\n")
    assert ws.host_setting() == f'host = "{layout.DM_HOST}"\n'
    assert "is pinned" in result.stderr or "pinned in" in result.stderr


def test_first_contact_pins_the_key_then_status_is_warm(ws) -> None:
    result = ws.run("use", FRESH, "--accept-new")
    assert result.returncode == 0, result.stderr
    assert "first contact" in result.stderr and "SHA256:" in result.stderr
    pins = (ws.config / "known_hosts").read_text().splitlines()
    assert len(pins) == 1 and pins[0].startswith(f"{FRESH_KEY_NAME} ssh-ed25519 ")
    assert ws.host_setting() == f'host = "{FRESH}"\n'

    status = ws.run("status")
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert lines[0].startswith(f"machine:    {FRESH} (from {ws.config / 'config.toml'}")
    assert "connection: warm" in status.stdout
    assert f"docker:     server {server_version()}, client " in status.stdout
    assert "mounts:     none" in status.stdout

    again = ws.run("use", FRESH)  # pinned now: nothing to ask, no terminal needed
    assert again.returncode == 0 and "is pinned" in again.stderr


def test_no_terminal_and_no_accept_new_refuses_and_writes_nothing(ws) -> None:
    result = ws.run("use", FRESH)
    assert result.returncode != 0
    *shown, error = result.stderr.splitlines()
    assert any("SHA256:" in line for line in shown)
    assert error.startswith("remote-docker: ") and "--accept-new" in error
    assert not ws.config.exists()


@pytest.mark.parametrize("answer, pinned", [("n\n", False), ("y\n", True)])
def test_the_question_is_asked_on_the_terminal(ws, answer: str, pinned: bool) -> None:
    controller, terminal = os.openpty()
    try:
        os.write(controller, answer.encode())
        result = ws.run("use", FRESH, stdin=terminal)
    finally:
        os.close(terminal)
        os.close(controller)
    assert "Pin this host key? [y/N]" in result.stderr
    assert (result.returncode == 0) == pinned, result.stderr
    assert (ws.config / "known_hosts").exists() == pinned
    assert (ws.host_setting() is not None) == pinned


def test_a_changed_key_is_refused_with_the_repin_hint(ws) -> None:
    assert ws.run("use", FRESH, "--accept-new").returncode == 0
    assert ws.run("disconnect").returncode == 0
    pin_file = ws.config / "known_hosts"
    pin_file.write_text(f"{FRESH_KEY_NAME} ssh-ed25519 {ANOTHER_KEY}\n")
    ws.run("use", layout.DM_HOST, "--accept-new")  # the config now names another machine
    before = ws.host_setting()

    refused = ws.run("use", FRESH, "--accept-new")
    assert refused.returncode != 0
    assert refused.stderr.splitlines() == [
        f"remote-docker: the host key of {FRESH} differs from the one pinned in {pin_file}: "
        f"if the machine was reinstalled, re-pin it with 'remote-docker use --repin {FRESH}'"]
    assert ws.host_setting() == before
    assert pin_file.read_text() == f"{FRESH_KEY_NAME} ssh-ed25519 {ANOTHER_KEY}\n"

    repinned = ws.run("use", "--repin", "--accept-new", FRESH)
    assert repinned.returncode == 0, repinned.stderr
    assert "has changed" in repinned.stderr
    assert ANOTHER_KEY not in pin_file.read_text()
    assert ws.host_setting() == f'host = "{FRESH}"\n'
    # nothing but the choice, the pin, and the machine remembered for `remote-docker machines`
    assert sorted(os.listdir(ws.config)) == ["config.toml", "known_hosts", "machines.toml"]


def test_status_and_disconnect(ws) -> None:
    assert ws.run("use", layout.DM_HOST, "--accept-new").returncode == 0
    closed = ws.run("disconnect")
    assert closed.stdout == f"closed the connection to {layout.DM_HOST}\n"
    assert ws.run("disconnect").stdout == f"no open connection to {layout.DM_HOST}\n"
    status = ws.run("status")
    assert status.returncode == 0, status.stderr
    assert "connection: was cold, started now" in status.stdout
    assert "connection: warm" in ws.run("status").stdout
