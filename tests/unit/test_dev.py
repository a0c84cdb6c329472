"""Dev sessions' pure logic: names, which session, cwd mapping, the overlay, the exec script."""

import io
import os
import subprocess
import tarfile

import pytest

from remote_docker.cli.dev import parse_exec
from remote_docker.dev import execute, keys, link, overlay, session
from remote_docker.dev.session import Session, SessionError
from remote_docker.errors import UsageError
from remote_docker.transport.openssh import ControlMaster
from remote_docker import config


@pytest.fixture
def env(tmp_path):
    return {"XDG_DATA_HOME": str(tmp_path / "data"), "XDG_RUNTIME_DIR": str(tmp_path / "run"),
            "XDG_CONFIG_HOME": str(tmp_path / "config"), "HOME": str(tmp_path)}


def make(env, name: str, work_dir: str) -> Session:
    os.makedirs(work_dir, exist_ok=True)
    return session.create(name, "dm@example", "busybox", os.path.realpath(work_dir), [], env)


def test_names() -> None:
    assert session.default_name("/home/me/My Project!") == "my-project-"
    assert session.default_name("/") == "dev"
    for bad in ("", "Upper", "-x", "a/b", "x" * 41):
        with pytest.raises(UsageError):
            session.check_name(bad)


def test_create_refuses_an_existing_session_and_load_reads_it_back(env, tmp_path) -> None:
    made = make(env, "proj", str(tmp_path / "w"))
    assert oct(os.stat(made.directory).st_mode & 0o777) == "0o700"
    assert session.load("proj", env) == made
    with pytest.raises(UsageError, match="exists already"):
        make(env, "proj", str(tmp_path / "w"))
    with pytest.raises(SessionError, match="no dev session"):
        session.load("other", env)


def test_which_session_a_command_means(env, tmp_path) -> None:
    outer = make(env, "outer", str(tmp_path / "w"))
    inner = make(env, "inner", str(tmp_path / "w" / "sub"))
    assert session.find(None, str(tmp_path / "w" / "sub" / ".."), env).name == "outer"
    assert session.find(None, str(tmp_path / "w" / "sub"), env).name == "inner"
    assert session.find("inner", str(tmp_path), env) == inner
    assert session.find(None, str(tmp_path), {**env, session.ENV_VAR: "outer"}) == outer
    with pytest.raises(SessionError, match="which dev session"):
        session.find(None, str(tmp_path), env)


def test_container_path_mirrors_the_work_dir_and_the_container_mount(env, tmp_path) -> None:
    s = make(env, "proj", str(tmp_path / "w"))
    s.mount_point = str(tmp_path / "mnt")
    work = s.work_dir
    assert session.container_path(s, work + "/a b") == work + "/a b"
    assert session.container_path(s, s.mount_point) == "/"
    assert session.container_path(s, s.mount_point + "/.config/x") == "/.config/x"
    assert session.container_path(s, str(tmp_path / "w-not")) is None
    with pytest.raises(SessionError, match="neither under"):
        execute.where(s, str(tmp_path), None)
    assert execute.where(s, str(tmp_path), "/opt") == "/opt"


@pytest.mark.parametrize("printed, distro", [("apt-get\n", "apt"), ("apk", "apk"),
                                            ("dnf", "dnf"), ("none\n", "bundle")])
def test_distro_from_the_probe(printed, distro) -> None:
    assert overlay.distro_of(printed, "img") == distro


def test_a_base_with_its_own_libc_and_no_package_manager_is_explained() -> None:
    with pytest.raises(UsageError, match="--distro bundle"):
        overlay.distro_of("libc\n", "distroless")
    with pytest.raises(UsageError, match="needs /bin/sh"):
        overlay.distro_of("", "scratchy")


def test_the_dockerfile_shares_the_slow_steps_and_ends_with_the_session() -> None:
    one = overlay.dockerfile("debian:stable-slim", "apt", "aaaa").splitlines()
    two = overlay.dockerfile("debian:stable-slim", "apt", "bbbb").splitlines()
    assert one[:-1] == two[:-1] and one[-1] == "LABEL remote-docker.dev=aaaa"
    bundle = overlay.dockerfile("busybox", "bundle", "aaaa")
    assert bundle.index("AS rd-dev-sshd") < bundle.index("FROM busybox")
    assert "apk add" in overlay.dockerfile("alpine", "apk", "x")
    assert "StrictModes no" not in overlay.SSHD_CONFIG and "PasswordAuthentication no" in \
        overlay.SSHD_CONFIG
    with pytest.raises(UsageError):
        overlay.dockerfile("x", "pacman", "x")


def test_context_tar_is_root_owned_and_not_pax(env, tmp_path) -> None:
    s = make(env, "proj", str(tmp_path / "w"))
    overlay.write_context(s, "apt")
    data = overlay.context_tar(s.context_dir)
    assert b"PaxHeader" not in data[:1024]  # docker build - would read it as a Dockerfile
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert set(members) == {"Dockerfile", "sshd_config", "start"}
    assert all(m.uid == 0 for m in members.values()) and members["start"].mode & 0o111


def test_keys_pin_and_container_files(env, tmp_path) -> None:
    s = make(env, "proj", str(tmp_path / "w"))
    keys.make(s)
    host_pub = keys.public(s.host_key).split()
    assert open(s.known_hosts).read() == f"rd-dev-proj {host_pub[0]} {host_pub[1]}\n"
    before = open(s.host_key).read()
    keys.make(s)  # made once: a second call keeps it
    assert open(s.host_key).read() == before
    with tarfile.open(fileobj=io.BytesIO(keys.container_files(s))) as tar:
        files = {m.name: (m.mode, m.uid, tar.extractfile(m).read()) for m in tar.getmembers()}
    assert files["ssh_host_ed25519_key"] == (0o600, 0, before.encode())
    assert files["authorized_keys"][2].decode().strip() == keys.public(s.client_key)


def test_ssh_config_pins_and_jumps_through_the_machines_master(env, tmp_path) -> None:
    s = make(env, "proj", str(tmp_path / "w"))
    s.port = 32768
    master = ControlMaster(config.parse_machine("dm@example:2222"), env)
    text = link.config_text(s, master, env)
    assert "StrictHostKeyChecking yes" in text and "=no" not in text.replace(
        "ControlMaster=no", "")
    assert f"HostKeyAlias {s.host_alias}" in text and "Port 32768" in text
    proxy = next(line for line in text.splitlines() if "ProxyCommand" in line)
    assert f"-S {master.path}" in proxy and proxy.endswith("-W 127.0.0.1:%p -p 2222 -- "
                                                           "dm@example")


def sh(script: str) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", script], capture_output=True, cwd="/")


def test_the_command_script_keeps_arguments_and_status(tmp_path) -> None:
    weird = ["sh", "-c", 'printf "%s|" "$@"; exit 9', "x", "a b", "$HOME;*", "", "'\"", "\n"]
    result = sh(execute.command_script(weird, str(tmp_path)))
    assert (result.returncode, result.stdout) == (9, b"a b|$HOME;*||'\"|\n|")
    killed = sh(execute.command_script(["sh", "-c", "kill -TERM $$"], str(tmp_path)))
    assert killed.returncode == 128 + 15
    missing = sh(execute.command_script(["true"], str(tmp_path / "nope")))
    assert missing.returncode == 125


def test_env_values_only_the_listed_and_set(env, tmp_path) -> None:
    s = make(env, "proj", str(tmp_path / "w"))
    s.env_names = ["A", "UNSET"]
    assert execute.env_values(s, {"A": "v4lue", "B": "2"}) == {"A": "v4lue"}
    script = execute.command_script(["true"], "/", env_tag="t1")
    assert "rm -f /run/rd-dev/env-t1" in script and "v4lue" not in script


def test_history_records_argv_never_the_environment(env, tmp_path) -> None:
    s = make(env, "proj", str(tmp_path / "w"))
    execute.append_history(s, ["make", "a b"], "/w")
    with open(s.history_file, "a") as f:
        f.write('{"cut short\n')
    assert [e["argv"] for e in execute.read_history(s)] == [["make", "a b"]]
    assert oct(os.stat(s.history_file).st_mode & 0o777) == "0o600"


def test_dodo_options_end_at_the_command() -> None:
    assert parse_exec(["-s", "p", "ls", "-la", "-s"]) == ("p", None, ["ls", "-la", "-s"])
    assert parse_exec(["-w", "/x", "--", "-weird"]) == (None, "/x", ["-weird"])
    assert parse_exec([]) == (None, None, [])
    with pytest.raises(UsageError):
        parse_exec(["--bogus", "ls"])
    with pytest.raises(UsageError):
        parse_exec(["-s"])


class FakeMaster:
    """A docker-machine that knows a few docker commands and fails loudly on any other."""

    def __init__(self, answers: dict[str, tuple[int, bytes]]) -> None:
        self.answers = answers
        self.machine = config.parse_machine("dm@example")
        self.env: dict = {}

    def ensure(self) -> bool:
        return False

    def capture(self, script: str, stdin: bytes | None = None) -> tuple[int, bytes]:
        for needle, answer in self.answers.items():
            if needle in script:
                return answer
        raise AssertionError(f"unexpected command on the docker-machine: {script!r}")


@pytest.fixture
def fake_machine(monkeypatch):
    def install(answers):
        master = FakeMaster(answers)
        monkeypatch.setattr(link, "machine_master", lambda session, env=None: master)
        return master
    return install


def test_changed_files_leave_out_the_sshds_run_dir(env, tmp_path, fake_machine) -> None:
    from remote_docker.dev import lifecycle

    s = make(env, "proj", str(tmp_path / "w"))
    fake_machine({"State.Status": (0, b"running\n"),
                  "docker diff": (0, b"C /etc\nA /etc/x\nC /run\nA /run/sshd\nA /runner\n")})
    assert lifecycle.changed_files(s, env) == ["C /etc", "A /etc/x", "A /runner"]


def test_run_will_not_drop_new_options_for_an_existing_container(env, tmp_path,
                                                                fake_machine) -> None:
    from remote_docker.dev import lifecycle

    s = make(env, "proj", str(tmp_path / "w"))
    fake_machine({"State.Status": (0, b"exited\n")})
    with pytest.raises(SessionError, match="--recreate"):
        lifecycle.run(s, ["--memory", "1g"], None, env)


def test_published_port_is_the_loopback_one(env, tmp_path) -> None:
    from remote_docker.dev import lifecycle

    s = make(env, "proj", str(tmp_path / "w"))
    master = FakeMaster({"docker port": (0, b"0.0.0.0:1234\n127.0.0.1:32768\n")})
    assert lifecycle.published_port(master, s) == 32768
    with pytest.raises(SessionError, match="loopback"):
        lifecycle.published_port(FakeMaster({"docker port": (0, b"0.0.0.0:1\n")}), s)
