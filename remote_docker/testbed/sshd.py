"""Two sshds of the bed's own: the docker-machine (127.0.0.2) and the workstation (127.0.0.3).

Each has its own config, host key, pidfile and log under the state dir, so
neither touches the machine's /etc/ssh nor a system sshd. No PAM and no
passwords: keys only. MaxSessions/MaxStartups are raised because the shims
multiplex many sessions over one ControlMaster and tests open many at once.
"""

from __future__ import annotations

import socket
from pathlib import Path

from remote_docker.testbed import layout, users
from remote_docker.testbed.process import (
    TestbedError, alive, log_tail, read_pid, run, terminate, wait_until,
)

START_TIMEOUT = 20


class Sshd:
    """One of the bed's sshds: who may log in, where it listens, where its files are."""

    def __init__(self, name: str, user: str, address: str, port: int = 22,
                 extra_users: tuple[str, ...] = (), tail: tuple[str, ...] = ()) -> None:
        self.name, self.user, self.address, self.port = name, user, address, port
        self.extra_users = extra_users  # may log in too
        self.tail = tail  # Match blocks: they must end the config
        self.directory = layout.STATE_DIR / f"sshd-{name}"
        self.config = self.directory / "sshd_config"
        self.host_key = self.directory / "ssh_host_ed25519_key"
        self.pidfile = self.directory / "sshd.pid"
        self.log = self.directory / "sshd.log"


DOCKER_MACHINE = Sshd("dm", layout.DM_USER, layout.DM_ADDRESS,
                      extra_users=(layout.OUTSIDER_USER, layout.NO_DOCKER_USER),
                      tail=(f"Match User {layout.NO_DOCKER_USER}",
                            f"    SetEnv PATH={layout.NO_DOCKER_PATH} LANG=C.UTF-8"))
WORKSTATION = Sshd("ws", layout.WS_USER, layout.WS_ADDRESS)
ALL = (DOCKER_MACHINE, WORKSTATION)


def config_text(sshd: Sshd) -> str:
    """The sshd_config: a session gets LANG like the bed's `exec`, so output matches."""
    return "\n".join([
        f"ListenAddress {sshd.address}:{sshd.port}",
        f"HostKey {sshd.host_key}",
        f"PidFile {sshd.pidfile}",
        "AllowUsers " + " ".join((sshd.user, *sshd.extra_users)),
        "UsePAM no",
        "PermitRootLogin no",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes",
        "AuthorizedKeysFile .ssh/authorized_keys",
        "StrictModes yes",
        "AllowTcpForwarding yes",
        "AllowStreamLocalForwarding yes",
        "StreamLocalBindUnlink yes",
        "X11Forwarding yes",
        "PrintMotd no",
        "PrintLastLog no",
        "SetEnv LANG=C.UTF-8",
        "MaxSessions 100",
        "MaxStartups 100:30:200",
        f"Subsystem sftp {layout.SFTP_SERVER}",
        *sshd.tail,
        "",
    ])


def _ensure_host_key(sshd: Sshd) -> bool:
    if sshd.host_key.exists() and sshd.host_key.with_suffix(".pub").exists():
        return False
    sshd.host_key.unlink(missing_ok=True)
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"remote-docker-testbed-{sshd.name}",
         "-f", str(sshd.host_key)])
    return True


def host_key_line(sshd: Sshd) -> str:
    """The known_hosts line that pins this sshd's host key."""
    kind, key = sshd.host_key.with_suffix(".pub").read_text().split()[:2]
    host = sshd.address if sshd.port == 22 else f"[{sshd.address}]:{sshd.port}"
    return f"{host} {kind} {key}"


def _accepts(sshd: Sshd) -> bool:
    try:
        socket.create_connection((sshd.address, sshd.port), timeout=2).close()
    except OSError:
        return False
    return True


def running(sshd: Sshd) -> bool:
    """Its pid runs and its address accepts connections."""
    return alive(read_pid(sshd.pidfile), "sshd") and _accepts(sshd)


def start(sshd: Sshd) -> str:
    """Write config and host key, then start sshd (it daemonizes itself) unless it runs."""
    sshd.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    layout.SSHD_PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    made_key = _ensure_host_key(sshd)
    changed = not sshd.config.exists() or sshd.config.read_text() != config_text(sshd)
    if changed:
        sshd.config.write_text(config_text(sshd))
    if running(sshd) and not (changed or made_key):
        return "ok"
    stop(sshd)
    if _accepts(sshd):
        raise TestbedError(f"{sshd.address}:{sshd.port} is taken by another process (a system "
                           f"sshd listening on 0.0.0.0:{sshd.port}? let it listen elsewhere)")
    run([str(layout.SSHD_BINARY), "-t", "-f", str(sshd.config)])
    run([str(layout.SSHD_BINARY), "-f", str(sshd.config), "-E", str(sshd.log)])
    try:
        wait_until(lambda: running(sshd), timeout=START_TIMEOUT, what=f"sshd {sshd.name}")
    except TestbedError as error:
        raise TestbedError(f"{error}; {log_tail(sshd.log)}") from None
    return f"started on {sshd.address}:{sshd.port}"


def stop(sshd: Sshd) -> str:
    """Stop the listening sshd; sessions it forked are ended with their users' processes."""
    pid = read_pid(sshd.pidfile)
    if not alive(pid, "sshd"):
        return ""
    terminate(lambda: [pid] if alive(pid, "sshd") else [], what=f"sshd {sshd.name}")
    sshd.pidfile.unlink(missing_ok=True)
    return f"stopped sshd {sshd.name}"


def pin_host_keys() -> str:
    """known_hosts: ws trusts both sshds, dm trusts the workstation's (classic mounts)."""
    pins = {
        layout.WS_USER: (DOCKER_MACHINE, WORKSTATION),
        layout.DM_USER: (WORKSTATION,),
    }
    added = []
    for user, servers in pins.items():
        known_hosts = layout.home(user) / ".ssh" / "known_hosts"
        for server in servers:
            if _pin(known_hosts, host_key_line(server), user):
                added.append(f"{user} trusts {server.address}")
    return ", ".join(added) or "ok"


def _pin(known_hosts: Path, line: str, user: str) -> bool:
    """Have exactly this key for the host: an old key (a remade bed) is dropped."""
    host = line.split()[0]
    old = known_hosts.read_text().splitlines() if known_hosts.exists() else []
    if line in old:
        return False
    kept = [entry for entry in old if entry.split()[:1] != [host]]
    return users.write_owned(known_hosts, "\n".join([*kept, line]) + "\n", user)
