"""Dev sessions on the bed, as ws: remote-docker dev and dodo, end to end.

A busybox session goes through the whole life cycle (init, overlay, build,
run, exec in a subdirectory, env carried, container FS mounted with sshfs,
export, stop/start with the same host key, a wrong pin refused, rm leaving
nothing); a debian:stable-slim session shows the apt overlay.  Each test
checks only what its own session made (others use the bed at the same time).

Image builds are few: the sshd-installing steps are shared by every session
on the same base through docker's build cache, and a bed tag
(``rd-devtest-cache:…``, kept on purpose) holds those layers for later runs.
"""

import json
import os
import time

import pytest

from remote_docker.testbed import layout
from tests.bedtools import run_dm, run_ws
from tests.integration.test_signals_tty import Terminal

WS_HOME = layout.home(layout.WS_USER)
SESSIONS = WS_HOME / ".local" / "share" / "remote-docker" / "dev"
RUNTIME = layout.runtime_dir(layout.WS_USER) / "remote-docker"
CACHE_TAG = "rd-devtest-cache"


@pytest.fixture
def project(bed):
    """A fresh work dir of ws's with a subdirectory, and a unique session name."""
    name = f"t{os.getpid()}-{time.monotonic_ns() % 10**9}"
    path = f"/home/ws/rd-devproj-{name}"
    assert run_ws(["mkdir", "-p", f"{path}/sub dir"]).returncode == 0
    yield path, name
    run_ws(["remote-docker", "dev", "rm", "-s", name])  # a failed test still cleans up
    run_ws(["rm", "-rf", path])


def sh(path: str, script: str, **kw):
    return run_ws(["sh", "-c", f"cd '{path}' && {script}"], **kw)


def ok(result) -> bytes:
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout


def state(name: str) -> dict:
    return json.loads((SESSIONS / name / "state.json").read_text())


def keep_build_cache(name: str, distro: str) -> None:
    """Tag the session's image so its sshd layers stay cached on the bed for later runs."""
    tag = f"rd-dev-{name}-{state(name)['id']}:session"
    run_dm(["docker", "tag", tag, f"{CACHE_TAG}:{distro}"])


def presented_host_key(port: int) -> str:
    """The key the container's sshd presents, asked from the docker-machine itself."""
    out = run_dm(["ssh-keyscan", "-t", "ed25519", "-p", str(port), "127.0.0.1"]).stdout.decode()
    return next(line.split()[2] for line in out.splitlines() if "ssh-ed25519" in line)


def assert_nothing_left(path: str, name: str, session_id: str, deadline: float = 20.0) -> None:
    tag = f"rd-dev-{name}-{session_id}"
    end = time.monotonic() + deadline
    while True:
        left = {
            "containers": run_dm(["docker", "ps", "-aq", "--filter",
                                  f"label=remote-docker.dev={session_id}"]).stdout.strip(),
            "volumes": run_dm(["docker", "volume", "ls", "-q", "--filter",
                               f"name={tag}"]).stdout.strip(),
            "images": run_dm(["docker", "images", "-q", tag]).stdout.strip(),
            "mounts": b"\n".join(line for line in run_ws(["remote-docker", "mounts"])
                                 .stdout.splitlines() if path.encode() in line),
            "fuse": b"\n".join(line for line in open("/proc/mounts", "rb").read().splitlines()
                               if str(SESSIONS / name).encode() in line),
            "session dir": str((SESSIONS / name).exists()).encode() if (SESSIONS / name).exists()
            else b"",
            "masters": str(list(RUNTIME.glob(f"dev-{session_id}*"))).encode()
            if list(RUNTIME.glob(f"dev-{session_id}*")) else b"",
        }
        left = {k: v for k, v in left.items() if v}
        if not left:
            return
        assert time.monotonic() < end, f"left behind: {left!r}"
        time.sleep(0.2)


def test_busybox_session_life_cycle(project) -> None:
    path, name = project
    ok(sh(path, f"remote-docker dev init {name} --image busybox:latest --env DEV_SECRET"))
    session_id = state(name)["id"]
    assert (SESSIONS / name / "known_hosts").read_text().startswith(f"rd-dev-{name} ssh-ed25519")
    dockerfile = ok(sh(path, "remote-docker dev overlay")).decode().strip()
    assert "COPY --from=rd-dev-sshd /bundle/ /" in open(dockerfile).read()
    ok(sh(path, "remote-docker dev build", timeout=600))
    keep_build_cache(name, "bundle")
    ok(sh(path, "remote-docker dev run", timeout=120))
    port = state(name)["port"]
    published = run_dm(["docker", "port", f"rd-dev-{name}-{session_id}", "22/tcp"]).stdout
    assert published.decode().split() == [f"127.0.0.1:{port}"]  # the loopback only

    # exec in a subdirectory: same path, arguments verbatim, exit status through,
    # the carried variable's value in the container but in no history or state
    result = sh(f"{path}/sub dir", "DEV_SECRET='s3 cr$t' dodo sh -c "
                '\'pwd; printf "%s|" "$@"; echo; echo "$DEV_SECRET" > from-exec.txt; exit 7\' '
                "x 'a b' '$HOME;*' ''")
    assert result.returncode == 7, result.stderr
    assert result.stdout == f"{path}/sub dir\na b|$HOME;*||\n".encode()
    assert ok(sh(path, "cat 'sub dir/from-exec.txt' && stat -c %U 'sub dir/from-exec.txt'")) \
        == b"s3 cr$t\nws\n"
    history = ok(sh(path, "remote-docker dev history"))
    assert b"'$HOME;*'" in history and b"s3 cr" not in history
    assert b"s3 cr" not in (SESSIONS / name / "state.json").read_bytes()

    # the container's filesystem on the workstation sees what exec wrote
    mounted = ok(sh(path, "remote-docker dev mount")).decode().strip()
    assert ok(sh(path, f"cat '{mounted}{path}/sub dir/from-exec.txt'")) == b"s3 cr$t\n"
    ok(sh(path, "dodo sh -c 'echo in-container > /root/made-there'"))
    assert ok(run_ws(["cat", f"{mounted}/root/made-there"])) == b"in-container\n"
    changed = ok(sh(path, "remote-docker dev history --files")).decode().splitlines()
    assert "A /root/made-there" in changed and not [c for c in changed if " /run" in c]
    assert ok(run_ws(["sh", "-c", f"cd {mounted}/root && dodo pwd"])) == b"/root\n"
    ok(run_ws(["sh", "-c", f"echo from-editor > {mounted}/root/edited"]))
    assert ok(sh(path, "dodo sh -c 'cat /root/edited; stat -c %U /root/edited'")) == \
        b"from-editor\nroot\n"

    # a master killed with -9 leaves its socket behind: two dodos at once start one again
    check = ok(sh(path, f"ssh -F {SESSIONS / name / 'ssh_config'} -O check rd-dev-{name} 2>&1"))
    ok(run_ws(["kill", "-9", check.decode().split("pid=")[1].split(")")[0]]))
    both = ok(sh(path, "{ dodo echo one > one.out & dodo echo two > two.out & wait; } && "
                       "cat one.out two.out && rm one.out two.out"))
    assert both == b"one\ntwo\n"

    exported = f"rd-devtest-export-{name}:1"
    ok(sh(path, f"remote-docker dev export --tag {exported}"))
    listing = run_dm(["docker", "run", "--rm", "--entrypoint", "ls", exported, "/etc/rd-dev",
                      "/root"]).stdout
    assert b"made-there" in listing and b"ssh_host" not in listing  # keys are not committed
    run_dm(["docker", "image", "rm", exported])

    # stop/start: same host key, as the pin demands
    key = presented_host_key(port)
    ok(sh(path, "remote-docker dev stop"))
    assert not os.path.ismount(mounted)
    assert sh(path, "dodo true").returncode != 0
    ok(sh(path, "remote-docker dev run", timeout=120))
    assert presented_host_key(state(name)["port"]) == key
    assert ok(sh(path, "dodo cat /root/made-there")) == b"in-container\n"

    # a restart outside remote-docker (another port) is followed by the next dodo
    assert run_dm(["docker", "restart", f"rd-dev-{name}-{session_id}"]).returncode == 0
    assert ok(sh(path, "dodo cat /root/made-there")) == b"in-container\n"

    # a key other than the pinned one is refused, never accepted
    pins = SESSIONS / name / "known_hosts"
    good = pins.read_text()
    other = run_dm(["ssh-keyscan", "-t", "ed25519", "127.0.0.2"]).stdout.decode().split()[2]
    pins.write_text(f"rd-dev-{name} ssh-ed25519 {other}\n")
    sh(path, "remote-docker dev stop")
    refused = sh(path, "remote-docker dev run", timeout=120)
    pins.write_text(good)
    assert refused.returncode != 0 and b"host key" in refused.stderr, refused.stderr
    assert refused.stderr.count(b"\n") == 1

    ok(sh(path, "remote-docker dev run", timeout=120))
    ok(sh(path, "remote-docker dev mount"))
    ok(sh(path, "remote-docker dev rm"))
    assert_nothing_left(path, name, session_id)


def test_debian_session_apt_overlay_run_options_signals_stdin_and_tty(project) -> None:
    path, name = project
    ok(sh(path, f"remote-docker dev init {name} --image debian:stable-slim"))
    session_id = state(name)["id"]
    ok(sh(path, "remote-docker dev build", timeout=600))  # overlay made on the way
    assert "apt-get install" in (SESSIONS / name / "overlay" / "Dockerfile").read_text()
    keep_build_cache(name, "apt")
    ok(sh(path, "remote-docker dev run -- --label rd-devtest.extra=yes", timeout=120))
    labels = run_dm(["docker", "inspect", "--format",
                     '{{index .Config.Labels "rd-devtest.extra"}}',
                     f"rd-dev-{name}-{session_id}"]).stdout
    assert labels == b"yes\n"  # docker run options pass through
    result = sh(f"{path}/sub dir", "dodo bash -c 'echo \"$PWD\" $0 $#; kill -TERM $$' a b")
    assert (result.returncode, result.stdout) == (128 + 15, f"{path}/sub dir a 1\n".encode())
    assert ok(sh(path, "echo 'echo piped' | dodo sh")) == b"piped\n"

    refused = sh(path, "remote-docker dev run -- --label rd-devtest.extra=two")
    assert refused.returncode != 0 and b"--recreate" in refused.stderr
    ok(sh(path, "remote-docker dev run --recreate -- --label rd-devtest.extra=two", timeout=120))
    labels = run_dm(["docker", "inspect", "--format",
                     '{{index .Config.Labels "rd-devtest.extra"}}',
                     f"rd-dev-{name}-{session_id}"]).stdout
    assert labels == b"two\n"
    assert ok(sh(f"{path}/sub dir", "dodo pwd")) == f"{path}/sub dir\n".encode()

    terminal = Terminal(["sh", "-c", f"cd '{path}' && dodo sh -c 'tty; stty size; read x; "
                                     "echo got $x; exit 4'"])
    terminal.expect(b"40 100")
    assert b"/dev/pts/" in terminal.seen
    terminal.send(b"hello\r")
    terminal.expect(b"got hello")
    assert terminal.wait() == 4
    interrupted = Terminal(["sh", "-c", f"cd '{path}' && dodo sh -c 'echo ready; sleep 100'"])
    interrupted.expect(b"ready")
    interrupted.send(b"\x03")  # Ctrl-C at the terminal reaches the command in the container
    assert interrupted.wait() == 130
    ok(sh(path, "remote-docker dev rm --keep-image"))
    image = f"rd-dev-{name}-{session_id}:session"
    assert run_dm(["docker", "image", "rm", image]).returncode == 0  # it was kept
    assert_nothing_left(path, name, session_id)


def test_mistakes_are_one_line(project) -> None:
    path, name = project
    ok(sh(path, f"remote-docker dev init {name} --image busybox:latest"))
    checks = [
        (f"remote-docker dev init {name} --image busybox:latest", b"exists already"),
        ("remote-docker dev run", b"no image yet"),
        ("remote-docker dev push", b"dev build' builds the session image"),
        ("dodo true", b"is not running"),
        (f"cd / && dodo -s {name} true", b"neither under"),
        ("remote-docker dev init Bad/Name --image x", b"session name"),
        ("remote-docker dev frobnicate", b"invalid choice"),
        ("dodo -s no-such-session true", b"no dev session"),
    ]
    for script, words in checks:
        result = sh(path, script)
        assert result.returncode != 0 and words in result.stderr, (script, result.stderr)
        assert result.stderr.count(b"\n") == 1 and b"Traceback" not in result.stderr, script
    ok(sh(path, "remote-docker dev rm"))
    assert not (SESSIONS / name).exists()


def test_gc_removes_what_a_deleted_session_left(project) -> None:
    path, name = project
    ok(sh(path, f"remote-docker dev init {name} --image busybox:latest"))
    session_id = state(name)["id"]
    ok(sh(path, "remote-docker dev build", timeout=600))
    ok(sh(path, "remote-docker dev run", timeout=120))
    ok(run_ws(["rm", "-rf", str(SESSIONS / name)]))
    removed = ok(sh(path, "remote-docker dev gc")).decode()
    tag = f"rd-dev-{name}-{session_id}"
    assert f"removed container {tag}\n" in removed and f"removed volume {tag}-keys\n" in removed
    assert f"removed image {tag}:session\n" in removed
    assert_nothing_left(path, name, session_id)
    assert tag not in ok(sh(path, "remote-docker dev gc")).decode()


def test_dev_push_sends_a_session_image_built_here(project) -> None:
    """An image of the session made by the workstation's engine goes by the layer-only push."""
    path, name = project
    ok(sh(path, f"remote-docker dev init {name} --image busybox:latest"))
    image = f"rd-dev-{name}-{state(name)['id']}:session"
    ok(run_ws(["remote-docker", "local", "tag", "busybox:latest", image]))
    try:
        pushed = sh(path, "remote-docker dev push")
        assert pushed.returncode == 0 and b"pushed to the docker-machine" in pushed.stderr, pushed
        assert run_dm(["docker", "image", "inspect", image]).returncode == 0
        again = ok(sh(path, "remote-docker dev push"))
        assert again == b""  # prose on stderr only; nothing sent twice
    finally:
        run_ws(["remote-docker", "local", "rmi", image])
        run_dm(["docker", "rmi", image])
