"""The jailed sftp-server holds, driven by a real sftp client, as the workstation user.

The client plays the docker-machine: it may ask anything SFTP can say.  The
jail runs as ws on a ws-owned directory, next to a ws-owned file outside it
that nothing may read, change or chmod, and with an absolute symlink to
/etc/passwd planted inside.  Each test runs both ways the jail keeps SETSTAT
beneath the root: the seccomp guard (the default) and the relay (``--relay``).
"""

import os
import pwd

import pytest

from remote_docker.testbed import layout
from tests.bedtools import run_ws

SFTP_SERVER = "/usr/lib/openssh/sftp-server"


@pytest.fixture(params=["guard", "relay"])
def jailed(bed, ws_dir, request):
    """(served dir, outside file, the jail's flags): both ws's, the served one with a
    planted symlink; the flags choose the guard or the relay."""
    run_ws(["sh", "-c", 'mkdir "$1/served" && echo secret > "$1/outside" && chmod 600 '
            '"$1/outside" && echo hello > "$1/served/f" && ln -s /etc/passwd "$1/served/abs" '
            '&& ln -s ../outside "$1/served/rel"', "sh", ws_dir], timeout=30)
    return (os.path.join(ws_dir, "served"), os.path.join(ws_dir, "outside"),
            "--relay " if request.param == "relay" else "")


def sftp(served: str, commands: str, readonly: bool = False, flags: str = "") -> tuple[int, str]:
    """One sftp batch against the jail as ws; (status, output). -b stops at the first error."""
    jail = f"python3 -m remote_docker.mounts.jail {flags}{'--ro ' if readonly else ''}{served} " \
           f"-- {SFTP_SERVER}"
    result = run_ws(["sftp", "-b", "-", "-D", jail], input=commands.encode(), timeout=60,
                    cwd=layout.SRC_DIR)
    return result.returncode, (result.stdout + result.stderr).decode(errors="replace")


def test_the_served_directory_works(jailed) -> None:
    served, _, flags = jailed
    status, out = sftp(served, "ls -l\nget f " + served + "/copy\nmkdir d\nrename copy d/c\n"
                       "chmod 600 d/c\nsymlink f d/link\nrm f\n", flags=flags)
    assert status == 0, out
    assert sorted(os.listdir(served)) == ["abs", "d", "rel"]
    assert os.stat(os.path.join(served, "d", "c")).st_mode & 0o777 == 0o600
    owner = pwd.getpwuid(os.stat(os.path.join(served, "d", "c")).st_uid).pw_name
    assert owner == layout.WS_USER


@pytest.mark.parametrize("commands", [
    "get /etc/passwd /dev/null",  # a direct request for an absolute path
    "ls /",  # a request for /
    "ls ..",
    "get ../outside /dev/null",  # .. beyond the root
    "cd ..\nls",
    "get abs /dev/null",  # an absolute symlink planted in the directory
    "get rel /dev/null",  # a relative one leading out
    "chmod 644 ../outside",  # Landlock cannot stop chmod: the relay must
    "chmod 644 rel",
    "chmod 644 {outside}",
    "put /etc/hostname ../new",
    "rename f ../moved",
    "ln {outside} hard",  # a hard link pulling an outside file in
    "symlink {outside} s\nget s /dev/null",
])
def test_escapes_fail(jailed, commands: str) -> None:
    served, outside, flags = jailed
    status, out = sftp(served, commands.format(outside=outside) + "\n",
                       flags=flags)
    refused = ("Permission denied", "No such file", "not found", "Failure")
    assert status != 0 or any(word in out for word in refused), out  # `ls` exits 0 anyway
    assert "secret" not in out and "root:" not in out
    assert os.stat(outside).st_mode & 0o777 == 0o600
    assert sorted(os.listdir(os.path.dirname(served))) == ["outside", "served"]
    assert os.path.exists(os.path.join(served, "f"))


@pytest.mark.parametrize("commands", ["put /etc/hostname new", "rm f", "mkdir d", "chmod 600 f",
                                      "rename f g"])
def test_read_only_refuses_writes(jailed, commands: str) -> None:
    served, _, flags = jailed
    assert sftp(served, "get f /dev/null\n", readonly=True, flags=flags)[0] == 0
    status, out = sftp(served, commands + "\n", readonly=True, flags=flags)
    assert status != 0, out
    assert sorted(os.listdir(served)) == ["abs", "f", "rel"]
    assert os.stat(os.path.join(served, "f")).st_mode & 0o777 == 0o644
