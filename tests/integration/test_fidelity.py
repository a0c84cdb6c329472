"""The shim is exact: the same bytes, stderr and status as a local docker.

Every case runs the same docker argv twice against the same engine: through
the shim as the workstation user ``ws`` (over ssh to the docker-machine), and
with the docker-machine's own docker as ``dm`` (the "local docker"), and
compares.  Cases run for both transports; where Fabric cannot match, the
test says so by name.
"""

import hashlib
import re
import shutil
import os
import subprocess
import time

import pytest

from tests.bedtools import run_dm, run_ws

TRANSPORTS = ["openssh", "fabric"]


def shim(argv: list[str], transport: str = "openssh", **kw) -> subprocess.CompletedProcess:
    return run_ws(["env", f"REMOTE_DOCKER_TRANSPORT={transport}", "docker", *argv], **kw)


def local(argv: list[str], **kw) -> subprocess.CompletedProcess:
    return run_dm(["docker", *argv], **kw)


def assert_same(argv: list[str], transport: str, **kw) -> subprocess.CompletedProcess:
    ours, theirs = shim(argv, transport, **kw), local(argv, **kw)
    assert (ours.returncode, ours.stdout, ours.stderr) == \
        (theirs.returncode, theirs.stdout, theirs.stderr), argv
    return ours


NASTY_ARGS = ["", " ", "two words", "it's", 'say "hi"', "$HOME", "`id`", "$(id)", "*", ";",
              "a\\b", "line1\nline2", "tab\there", "naïve ☃ 日本", "-t", "--rm", "'", "\\"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_arguments_arrive_verbatim(bed, transport: str) -> None:
    result = assert_same(["run", "--rm", "busybox", "printf", "[%s]\\n", *NASTY_ARGS], transport)
    assert result.stdout == b"".join(b"[" + a.encode() + b"]\n" for a in NASTY_ARGS)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("argv", [
    ["run", "--rm", "busybox", "sh", "-c", "exit 0"],
    ["run", "--rm", "busybox", "sh", "-c", "exit 1"],
    ["run", "--rm", "busybox", "sh", "-c", "exit 3"],
    ["run", "--rm", "busybox", "sh", "-c", "kill -9 $$; sleep 5"],
    ["run", "--rm", "busybox", "no-such-command"],
    ["run", "--rm", "busybox", "/etc/passwd"],
    ["run", "--no-such-flag", "busybox"],
    ["inspect", "no-such-container-xyz"],
    ["run", "--rm", "busybox", "sh", "-c", "printf 'a\\r\\nb\\n\\0\\377'; echo err >&2"],
    ["no-such-subcommand"],
])
def test_status_stdout_stderr_match_local(bed, transport: str, argv: list[str]) -> None:
    assert_same(argv, transport)


@pytest.mark.parametrize("argv", [[], ["--help"], ["version", "--format", "{{.Server.Version}}"],
                                  ["ps", "--help"], ["images", "busybox"]])
def test_help_and_informational_commands_match(bed, argv: list[str]) -> None:
    assert_same(argv, "openssh")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_stdin_is_binary_safe(bed, transport: str) -> None:
    data = os.urandom(64 * 1024 * 1024)
    result = shim(["run", "-i", "--rm", "busybox", "cat"], transport, input=data, timeout=300)
    assert result.returncode == 0, result.stderr
    assert hashlib.sha256(result.stdout).hexdigest() == hashlib.sha256(data).hexdigest()


def test_commands_that_do_not_read_stdin_leave_it_alone(bed) -> None:
    script = "printf 'a\\nb\\n' | while read x; do docker ps >/dev/null; echo \"$x\"; done"
    assert run_ws(["sh", "-c", script]).stdout == b"a\nb\n"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_env_values_come_from_the_workstation_and_stay_off_command_lines(
        bed, transport: str, ws_dir: str) -> None:
    secret = f"hunter2-{os.getpid()}-{transport}"
    env_file = os.path.join(ws_dir, "env")
    with open(env_file, "w") as f:
        f.write(f"FROM_FILE={secret}-file\n")
    argv = ["env", f"REMOTE_DOCKER_TRANSPORT={transport}", f"SECRET={secret}", "docker", "run",
            "--rm", "-e", "SECRET", "--env-file", str(env_file), "busybox", "sh", "-c",
            'echo "$SECRET $FROM_FILE"; sleep 3']
    from remote_docker import testbed

    proc = subprocess.Popen(testbed.ws_command(argv), env=testbed.ws_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        first = proc.stdout.readline()
        assert first == f"{secret} {secret}-file\n".encode()
        command_lines = subprocess.run(["ps", "-eo", "args"], capture_output=True).stdout
        assert secret.encode() not in command_lines
    finally:
        proc.wait(timeout=30)


def test_unset_env_var_does_not_leak_the_machines_value(bed) -> None:
    result = run_ws(["env", "-u", "HOME", "docker", "run", "--rm", "-e", "HOME", "busybox",
                     "sh", "-c", 'echo "[${HOME-unset}]"'])
    assert result.stdout == local(["run", "--rm", "busybox", "sh", "-c",
                                   'echo "[${HOME-unset}]"']).stdout


def test_missing_env_file_is_docker_s_own_error(bed) -> None:
    argv = ["run", "--rm", "--env-file", "/nonexistent/env", "busybox", "true"]
    result = shim(argv)
    reference = run_dm(["docker", *argv])  # the docker-machine's docker, reading its own disk
    assert (result.returncode, result.stderr) == (reference.returncode, reference.stderr) \
        == (125, b"docker: open /nonexistent/env: no such file or directory\n\n"
                 b"Run 'docker run --help' for more information\n")


def test_save_and_load_use_workstation_files(bed) -> None:
    path = "/tmp/rd-test-save.tar"
    run_ws(["rm", "-f", path])
    saved = shim(["save", "-o", path, "busybox"])
    assert saved.returncode == 0, saved.stderr
    assert run_ws(["stat", "-c", "%U", path]).stdout.strip() == b"ws"
    assert run_ws(["tar", "-tf", path]).returncode == 0
    shim(["tag", "busybox", "rd-load-test:1"])
    shim(["rmi", "rd-load-test:1"])
    loaded = shim(["load", "-i", path])
    assert loaded.returncode == 0 and b"Loaded image" in loaded.stdout
    run_ws(["rm", "-f", path])


def test_save_to_missing_directory_fails_without_writing(bed) -> None:
    result = shim(["save", "-o", "/nonexistent-dir/x.tar", "busybox"])
    assert result.returncode != 0 and b"Traceback" not in result.stderr


def test_export_writes_workstation_file(bed) -> None:
    name = f"rd-export-{os.getpid()}"
    assert shim(["create", "--name", name, "busybox"]).returncode == 0
    try:
        assert shim(["export", "-o", "/tmp/rd-export.tar", name]).returncode == 0
        listing = run_ws(["tar", "-tf", "/tmp/rd-export.tar"]).stdout
        assert b"bin/busybox" in listing
    finally:
        shim(["rm", "-f", name])
        run_ws(["rm", "-f", "/tmp/rd-export.tar"])


def test_cidfile_lands_on_the_workstation(bed) -> None:
    path = f"/tmp/rd-cid-{os.getpid()}"
    run_ws(["rm", "-f", path])
    result = shim(["run", "-d", "--cidfile", path, "busybox", "sleep", "30"])
    try:
        assert result.returncode == 0, result.stderr
        cid = run_ws(["cat", path]).stdout
        assert cid == result.stdout.strip()
        again = shim(["run", "-d", "--cidfile", path, "busybox", "true"])
        assert again.returncode == 125 and b"container ID file found" in again.stderr
    finally:
        shim(["rm", "-f", result.stdout.decode().strip()])
        run_ws(["rm", "-f", path])


def test_explicit_endpoint_goes_to_the_local_docker(bed) -> None:
    argv = ["-H", "unix:///nonexistent.sock", "ps"]
    ours = shim(argv)
    theirs = run_ws(["/usr/local/bin/docker" if os.path.exists("/usr/local/bin/docker")
                     else "/usr/bin/docker", *argv])
    assert (ours.returncode, ours.stderr) == (theirs.returncode, theirs.stderr)
    assert ours.returncode != 0


@pytest.mark.parametrize("spec, words", [
    ("dm@127.0.0.9", [b"127.0.0.9", b"refused"]),
    ("nobody@127.0.0.2", [b"nobody@127.0.0.2", b"refused our login"]),
    ("dm@no-such-host.invalid", [b"unknown host"]),
    ("outsider@127.0.0.2", [b"user outsider may not use docker", b"docker group"]),
    ("nodocker@127.0.0.2", [b"docker is not installed on nodocker@127.0.0.2"]),
    ("bad host", [b"not a valid host name"]),
])
def test_connection_failures_are_one_line(bed, spec: str, words: list[bytes]) -> None:
    result = run_ws(["env", f"REMOTE_DOCKER_HOST={spec}", "docker", "ps"], timeout=60)
    assert result.returncode != 0
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("docker: ")
    for word in words:
        assert word in result.stderr


@pytest.fixture
def stranger_sshd(tmp_path):
    """A real sshd on 127.0.0.4 for dm, with a host key nobody has pinned."""
    import socket

    key = tmp_path / "host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    conf = tmp_path / "sshd_config"
    conf.write_text(f"ListenAddress 127.0.0.4:22\nHostKey {key}\nPidFile {tmp_path}/pid\n"
                    "UsePAM no\nPasswordAuthentication no\nAllowUsers dm\n")
    proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-f", str(conf), "-E", str(tmp_path / "log")])
    end = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.4", 22), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < end and proc.poll() is None, "sshd did not start"
            time.sleep(0.05)
    yield key.with_suffix(".pub").read_text().split()[:2]
    proc.terminate()
    proc.wait(timeout=10)


def test_unpinned_host_key_is_refused(bed, stranger_sshd) -> None:
    result = run_ws(["env", "REMOTE_DOCKER_HOST=dm@127.0.0.4", "docker", "ps"], timeout=60)
    assert result.returncode == 255
    assert result.stderr.startswith(b"docker: the host key of dm@127.0.0.4 is not pinned")
    assert result.stderr.count(b"\n") == 1


def test_changed_host_key_is_refused_with_repin_hint(bed, stranger_sshd, ws_dir) -> None:
    with open("/var/lib/remote-docker-testbed/sshd-ws/ssh_host_ed25519_key.pub", "rb") as f:
        other = f.read().split()[:2]  # a real key, but not the stranger's
    pins = os.path.join(ws_dir, "cfg", "remote-docker")
    run_ws(["mkdir", "-p", pins])
    run_ws(["sh", "-c", f"cat > {pins}/known_hosts"],
           input=b"127.0.0.4 " + b" ".join(other) + b"\n")
    result = run_ws(["env", "REMOTE_DOCKER_HOST=dm@127.0.0.4",
                     f"XDG_CONFIG_HOME={ws_dir}/cfg", "docker", "ps"], timeout=60)
    assert result.returncode == 255
    assert b"has changed" in result.stderr and b"remote-docker use --repin" in result.stderr
    assert result.stderr.count(b"\n") == 1


@pytest.mark.parametrize("content, mode, phrase", [
    (b'host = "dm@127.0.0.2"\n', 0o000, b"cannot read config file"),
    (b"host = \n", 0o644, b"is not valid TOML"),
    (b'host = "dm@127.0.0.2:99999"\n', 0o644, b"port '99999' is not 1-65535"),
])
def test_bad_config_is_one_line_and_changes_nothing(bed, ws_dir, content, mode, phrase) -> None:
    cfg = os.path.join(ws_dir, "cfg", "remote-docker")
    run_ws(["mkdir", "-p", cfg])
    run_ws(["sh", "-c", f"cat > {cfg}/config.toml && chmod {mode:o} {cfg}/config.toml"],
           input=content)
    before = run_ws(["ls", "-laR", ws_dir]).stdout
    result = run_ws(["env", "-u", "REMOTE_DOCKER_HOST", f"XDG_CONFIG_HOME={ws_dir}/cfg",
                     "docker", "ps"])
    assert result.returncode == 125 and phrase in result.stderr, result.stderr
    assert result.stderr.count(b"\n") == 1 and b"Traceback" not in result.stderr
    assert run_ws(["ls", "-laR", ws_dir]).stdout == before


LOCAL_FILE_ERRORS = [
    ["run", "--rm", "--env-file", "missing.env", "busybox", "true"],
    ["container", "run", "--rm", "--env-file", "bad.env", "busybox", "true"],
    ["create", "--label-file", "missing.labels", "busybox"],
    ["run", "--rm", "--cidfile", "exists.txt", "busybox", "true"],
    ["run", "--rm", "--cidfile", "/nonexistent-rd/cid", "busybox", "true"],
    ["create", "--cidfile", "/nonexistent-rd/cid", "busybox"],
    ["run", "--rm", "-v", "./d:/x:ro,rw", "busybox", "true"],
    ["create", "-v", "./d:/x:badopt", "busybox"],
    ["run", "--rm", "-v", "./d:/x:", "busybox", "true"],
    ["run", "--rm", "-v", "./d:/x:ro:extra", "busybox", "true"],
    ["run", "--rm", "--mount", "type=bind,src=/nonexistent-rd,dst=/x", "busybox", "true"],
    ["save", "-o", "nodir/x.tar", "busybox"],
    ["export", "-o", "/nonexistent-rd/x.tar", "c"],
    ["load", "-i", "missing.tar"],
    ["import", "missing.tar"],
    ["cp", "/nonexistent-rd", "c:/"],
    ["cp", "exists.txt", "rd-no-such-container:/x"],
    ["build", "-q", "-f", "/nonexistent-rd/Dockerfile", "."],
    ["build", "-q", "."],  # no Dockerfile here
]


@pytest.mark.parametrize("argv", LOCAL_FILE_ERRORS, ids=lambda a: " ".join(a))
def test_errors_about_workstation_files_are_a_local_docker_s(ws_dir, argv: list[str]) -> None:
    """The same command with ws's own docker on ws's own engine: the same stderr, byte for
    byte, and the same status (a build's legacy-builder banner, which the docker-machine's
    client prints when it runs, aside: these fail before it runs)."""
    for name, text in (("bad.env", "A B=1\n"), ("exists.txt", "x\n")):
        with open(os.path.join(ws_dir, name), "w") as f:
            f.write(text)
        shutil.chown(os.path.join(ws_dir, name), "ws", "ws")
    ours = run_ws(["docker", *argv], cwd=ws_dir)
    local = run_ws(["remote-docker", "local", *argv], cwd=ws_dir)
    banner = re.compile(rb"^DEPRECATED: The legacy builder.*?\n\n", re.S)
    # docker's own racy log lines ("Can't add file … to tar: io: read/write on closed
    # pipe", as its tar writer loses to the failed request) come and go from run to run
    noise = re.compile(rb'^time="[^"]*" level=\w+ msg=.*\n', re.M)
    expected = noise.sub(b"", banner.sub(b"", local.stderr))
    assert (ours.returncode, ours.stderr) == (local.returncode, expected)
    assert ours.returncode != 0 and ours.stdout == local.stdout == b""
