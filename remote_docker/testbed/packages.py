"""Debian packages the bed needs, installed only when missing.

Installed without recommends, so a bare machine gets exactly this list (and
not, say, systemd via openssh-server's recommends); what a recommend used to
bring and the bed really needs is named here instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from remote_docker.testbed.process import TestbedError, run

PACKAGES: tuple[str, ...] = (
    "docker.io",  # the docker-machine's engine (20.10 on Debian 12)
    "ca-certificates",  # docker.io recommends it; apt over https inside images
    "openssh-server",  # two sshds: docker-machine and workstation
    "openssh-client",
    "sshfs",  # reverse mounts
    "fuse3",
    "libnss-wrapper",  # the sftp jail: sftp-server's getpwuid without /etc/passwd
    "xvfb",  # the workstation's display
    "xfonts-base",  # Xvfb will not start without the `fixed` font
    "xauth",
    "x11-apps",
    "x11-utils",  # xdpyinfo: the tests ask the display whether it answers
    "debootstrap",  # debian:stable-slim, built locally
    "debian-archive-keyring",  # debootstrap checks the mirror's signatures
    "busybox-static",  # busybox:latest, built locally
    "uuid-runtime",
    "iproute2",
    "procps",
    "psmisc",
    "python3-venv",  # the venv the bed's users run the code from
    "zsh", "fish",  # to check the completion scripts remote-docker prints for them
    "util-linux",  # setpriv, setsid
    "iptables",  # dockerd's bridge NAT, so containers reach the mirror
    "docker-compose",  # compose 1.29 (bookworm has no v2 package): the workstation's compose
)


def missing(packages: tuple[str, ...] = PACKAGES) -> list[str]:
    """The packages dpkg does not list as installed."""
    result = run(
        ["dpkg-query", "-W", "-f=${Package} ${db:Status-Abbrev}\\n", *packages], check=False,
    )
    installed = {
        fields[0].split(":")[0]
        for fields in (line.split() for line in result.stdout.decode().splitlines())
        if len(fields) >= 2 and fields[1] == "ii"
    }
    return [name for name in packages if name not in installed]


POLICY_RC_D = Path("/usr/sbin/policy-rc.d")
DENY_SERVICE_STARTS = "#!/bin/sh\n# remote-docker testbed: no service starts during install\nexit 101\n"


@contextmanager
def _no_service_starts() -> Iterator[None]:
    """Keep maintainer scripts from starting services (invoke-rc.d honours policy-rc.d).

    Without systemd, installing openssh-server would start a system sshd on
    0.0.0.0:22, where the bed's own sshds on 127.0.0.2/.3:22 could then not
    listen; docker.io would start a dockerd the bed did not record.
    """
    if POLICY_RC_D.exists():
        yield
        return
    POLICY_RC_D.write_text(DENY_SERVICE_STARTS)
    POLICY_RC_D.chmod(0o755)
    try:
        yield
    finally:
        POLICY_RC_D.unlink(missing_ok=True)


def ensure() -> str:
    """Install what is missing; refresh the package lists first, and only then."""
    needed = missing()
    if not needed:
        return "ok"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update"], env=env, timeout=900)
    with _no_service_starts():
        run(["apt-get", "install", "-y", "--no-install-recommends", *needed], env=env,
            timeout=1800)
    still = missing()
    if still:
        raise TestbedError(f"apt-get did not install: {' '.join(still)}")
    return f"installed {' '.join(needed)}"
