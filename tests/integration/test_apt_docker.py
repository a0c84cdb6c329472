"""apt-docker on the bed: real apt builds in containers (minutes of CI: -m apt runs them alone).

Images go under a prefix of this test run's own (REMOTE_DOCKER_APT_PREFIX),
launchers into a scratch bin dir, records and desktop entries into scratch
XDG dirs, so nothing of other engineers' or the user's is touched, and the
check that remove leaves nothing looks only at what these tests made.
"""

import uuid

import pytest

from tests import xtools
from tests.bedtools import run_dm, run_ws


@pytest.fixture
def apt_env(bed, ws_dir):
    prefix = f"rd-apt-test-{uuid.uuid4().hex[:8]}"
    env = {"REMOTE_DOCKER_APT_PREFIX": prefix, "REMOTE_DOCKER_APT_BIN": f"{ws_dir}/bin",
           "XDG_STATE_HOME": f"{ws_dir}/state", "XDG_DATA_HOME": f"{ws_dir}/share"}
    yield env
    images = run_dm(["docker", "images", "-q", f"{prefix}/*"]).stdout.split()
    if images:
        run_dm(["docker", "image", "rm", "-f", *[i.decode() for i in images]])
    run_dm(["sh", "-c", f"docker volume ls -q | grep '^{prefix}' | xargs -r docker volume rm"])


def ws(apt_env, script, cwd, **kw):
    return run_ws(["sh", "-c", script], env=apt_env, cwd=cwd, timeout=600, **kw)


def assert_removed(apt_env, ws_dir, prefix, purged: bool = True) -> None:
    listing = run_dm(["docker", "images", "--format", "{{.Repository}}", f"{prefix}/*"])
    assert [r for r in listing.stdout.split() if b"apt-index" not in r] == []
    volumes = run_dm(["docker", "volume", "ls", "-q"]).stdout.split()
    mine = [v for v in volumes if v.startswith(prefix.encode())]
    assert mine == ([] if purged else [f"{prefix}-home-x11-apps".encode()])
    left = run_ws(["sh", "-c", f"cd {ws_dir} && find bin share state -type f 2>/dev/null"])
    assert left.stdout == b"", left.stdout


@pytest.mark.apt
def test_cli_package_install_run_remove(apt_env, ws_dir) -> None:
    unknown = ws(apt_env, "apt-docker install jq no-such-package-zz", ws_dir)
    assert unknown.returncode != 0
    assert unknown.stderr == b"apt-docker: no such Debian package: no-such-package-zz\n"

    installed = ws(apt_env, "apt-docker jq", ws_dir)
    assert installed.returncode == 0, installed.stderr
    assert f"{ws_dir}/bin/jq\n".encode() in installed.stdout
    assert b"jq\tjq\t" in ws(apt_env, "apt-docker list", ws_dir).stdout

    ws(apt_env, "mkdir -p proj && echo '{\"a\": [1, 2]}' > proj/data.json", ws_dir)
    project = f"{ws_dir}/proj"
    ran = ws(apt_env, f"{ws_dir}/bin/jq -c --arg who 'a b' '{{who: $who, n: .a[1]}}' data.json",
             project)
    assert (ran.returncode, ran.stdout) == (0, b'{"who":"a b","n":2}\n'), ran.stderr
    failed = ws(apt_env, f"{ws_dir}/bin/jq -e .missing data.json", project)
    assert (failed.returncode, failed.stdout) == (1, b"null\n"), failed.stderr
    wrote = ws(apt_env, f"{ws_dir}/bin/jq -n '1' > out.json && stat -c %U out.json", project)
    assert wrote.stdout == b"ws\n", wrote.stderr
    home = ws(apt_env, f"{ws_dir}/bin/jq -n 'env.HOME'", project)
    assert home.stdout == b'"/home/app"\n', home.stderr

    removed = ws(apt_env, "apt-docker remove jq --purge", ws_dir)
    assert removed.returncode == 0, removed.stderr
    assert ws(apt_env, "apt-docker list", ws_dir).stdout == b""
    assert_removed(apt_env, ws_dir, apt_env["REMOTE_DOCKER_APT_PREFIX"])


@pytest.mark.apt
def test_graphical_package_gets_x11_launchers(apt_env, ws_dir) -> None:
    xtools.ensure_x11_image()  # the same package layer: this build is a cache hit
    installed = ws(apt_env, "apt-docker install x11-apps x11-utils", ws_dir)
    assert installed.returncode == 0, installed.stderr
    assert f"{ws_dir}/bin/xeyes (X11)\n".encode() in installed.stdout
    assert f"{ws_dir}/bin/xdpyinfo (X11)\n".encode() in installed.stdout
    assert b"docker.x11" in ws(apt_env, f"cat {ws_dir}/bin/xmessage", ws_dir).stdout
    ran = ws(apt_env, f"{ws_dir}/bin/xdpyinfo -display :0 | grep -c '^screen #'", ws_dir)
    assert (ran.returncode, ran.stdout) == (0, b"1\n"), ran.stderr
    status = ws(apt_env, f"{ws_dir}/bin/xdpyinfo -no-such-option", ws_dir)
    assert status.returncode == 1, status.stderr
    removed = ws(apt_env, "apt-docker remove x11-apps", ws_dir)  # the home volume stays
    assert removed.returncode == 0, removed.stderr
    assert_removed(apt_env, ws_dir, apt_env["REMOTE_DOCKER_APT_PREFIX"], purged=False)


def test_make_dockerfile_prints_and_writes(bed, ws_dir) -> None:
    printed = run_ws(["make_dockerfile", "jq"], cwd=ws_dir)
    assert printed.returncode == 0, printed.stderr
    assert b"FROM debian:stable-slim\n" in printed.stdout and b"exec docker-run" in printed.stdout
    wrote = run_ws(["make_dockerfile", "xeyes", "--x11", "-o", "out"], cwd=ws_dir)
    assert wrote.returncode == 0, wrote.stderr
    launcher = run_ws(["cat", f"{ws_dir}/out/xeyes"]).stdout
    assert launcher.startswith(b"#!/bin/sh") and b"exec docker.x11" in launcher
    bad = run_ws(["make_dockerfile", "Not_A_Package"], cwd=ws_dir)
    assert (bad.returncode, bad.stderr.count(b"\n")) == (125, 1), bad.stderr
