"""The docker-machine's scripts: valid shell, and every value arrives as one word."""

import subprocess

import pytest

from remote_docker.mounts import remote

HOSTILE = "/tmp/it's a $(dir) `x`;\n"


def sh_syntax_ok(script: str) -> bool:
    return subprocess.run(["sh", "-n", "-c", script]).returncode == 0


@pytest.mark.parametrize("script", [
    remote.prepare("u", "ws@box"),
    remote.passive_sshfs(HOSTILE, "u", HOSTILE, True),
    remote.classic_sshfs(HOSTILE, "u", "ws@127.0.0.3", 22, HOSTILE, HOSTILE, False),
    remote.wait_and_create_volume(HOSTILE, "u", {"remote-docker.dir": HOSTILE}),
    remote.release("u", "ws@box", force=True),
    remote.release_volume("u"),
    remote.release_volume("u", HOSTILE),
    remote.sweep("ws@box"),
    remote.watch_container("abc"),
])
def test_scripts_are_valid_shell(script: str) -> None:
    assert sh_syntax_ok(script)


def test_hostile_paths_reach_sshfs_as_single_words(tmp_path) -> None:
    fake = tmp_path / "sshfs"
    fake.write_text("#!/bin/sh\nprintf '[%s]\\n' \"$@\"\n")
    fake.chmod(0o755)
    script = remote.passive_sshfs(str(tmp_path / "m"), "u", HOSTILE, False)
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True,
                         env={"PATH": f"{tmp_path}:/usr/bin:/bin"}).stdout
    assert f"[:{HOSTILE}]" in out
    assert f"[{tmp_path / 'm'}]" in out


def test_options_keep_links_and_fail_fast() -> None:
    options = remote.sshfs_options("u", True, ("passive",))
    assert options.split(",")[:1] == ["fsname=rd-u"]
    assert "allow_other" in options and "ro" in options.split(",")
    assert "follow_symlinks" not in options and "reconnect" not in options


def test_owner_key_is_a_plain_directory_name() -> None:
    assert remote.owner_key("ws@box.lan") == "ws@box.lan"
    assert remote.owner_key("a/b c") == "a_b_c"


def test_explain_names_the_fix_in_one_line() -> None:
    message = remote.explain(remote.NO_ALLOW_OTHER, "dm@h").message
    assert "user_allow_other" in message and "\n" not in message
    assert isinstance(remote.explain(remote.IN_USE, "dm@h"), remote.MountInUse)
    assert "sshfs said no" in remote.explain(remote.SSHFS_DIED, "dm@h", "sshfs said no").message


FAKE_DOCKER = """#!/bin/sh
case "$1" in
  ps) printf 'c1\\nc2\\nc3\\n' ;;
  inspect) shift; for c in "$@"; do case $c in
      c1) echo "c1full /elsewhere/m /data" ;;
      c2) echo "c2full /m/point/app.yml" ;;
      c3) echo "c3full" ;;
    esac; done ;;
  volume) exit 1 ;;
esac
"""


def test_a_container_binding_a_file_of_the_mount_uses_it(tmp_path) -> None:
    fake = tmp_path / "docker"
    fake.write_text(FAKE_DOCKER)
    fake.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
    used = subprocess.run(["sh", "-c", remote.release_volume("u", "/m/point")],
                          capture_output=True, text=True, env=env)
    assert (used.returncode, used.stdout) == (remote.IN_USE, "c2full\n")
    free = subprocess.run(["sh", "-c", remote.release_volume("u", "/m/poin")],
                          capture_output=True, text=True, env=env)
    assert (free.returncode, free.stdout) == (0, "")  # /m/point is not inside /m/poin
