"""The remote-docker verbs run as a user runs them: real binaries, a temp HOME.

The only stand-in is a fake `docker` later on PATH (a script that prints its
argv): it plays the user's own local docker, which the shims must leave
reachable.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from remote_docker.cli.status import interpret_probe
from remote_docker.errors import ConnectionFailed, RemoteCommandFailed
from remote_docker.shims import SHIMS

CHECKOUT = Path(__file__).resolve().parents[2]
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


@pytest.fixture
def home(tmp_path) -> Path:
    (tmp_path / "home").mkdir()
    (tmp_path / "config").mkdir()
    return tmp_path


def user_env(home: Path, **extra: str) -> dict[str, str]:
    """A clean user environment: nothing of the developer's config leaks in."""
    env = {"HOME": str(home / "home"), "XDG_CONFIG_HOME": str(home / "config"),
           "XDG_CACHE_HOME": str(home / "cache"), "PATH": SYSTEM_PATH,
           "PYTHONPATH": str(CHECKOUT), "LANG": "C.UTF-8", **extra}
    return env


def remote_docker(home: Path, *args: str, input: str | None = None,
                  **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "remote_docker", *args], text=True,
                          input=input, stdin=None if input is not None else subprocess.DEVNULL,
                          capture_output=True, env=user_env(home, **extra), cwd=home,
                          timeout=120)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("remote-docker: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


# -- install-shims / uninstall-shims ---------------------------------------------------------

def test_install_then_uninstall_leaves_nothing(home) -> None:
    bin_dir = home / "bin"
    bin_dir.mkdir()
    installed = remote_docker(home, "install-shims", "--dir", str(bin_dir))
    assert installed.returncode == 0, installed.stderr
    assert f"installed {len(SHIMS)} shims" in installed.stdout
    assert "not on PATH" in installed.stderr
    assert "docker" in os.listdir(bin_dir) and (home / "config/remote-docker/shims.json").exists()
    removed = remote_docker(home, "uninstall-shims")
    assert removed.returncode == 0, removed.stderr
    assert files_under(bin_dir) == [] and files_under(home / "config") == []


def test_the_default_dir_is_home_local_bin_and_goes_away_again(home) -> None:
    assert remote_docker(home, "install-shims").returncode == 0
    assert (home / "home/.local/bin/remote-docker").exists()
    assert remote_docker(home, "uninstall-shims").returncode == 0
    assert files_under(home / "home") == []


def test_a_foreign_file_is_not_overwritten(home) -> None:
    bin_dir = home / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text("#!/bin/sh\necho mine\n")
    result = remote_docker(home, "install-shims", "--dir", str(bin_dir))
    assert "--force" in one_line_error(result)
    assert files_under(bin_dir) == ["docker"] and files_under(home / "config") == []
    assert (bin_dir / "docker").read_text() == "#!/bin/sh\necho mine\n"


def test_installed_shims_run_and_report_the_version(home) -> None:
    bin_dir = home / "bin"
    bin_dir.mkdir()
    assert remote_docker(home, "install-shims", "--dir", str(bin_dir)).returncode == 0
    result = subprocess.run([str(bin_dir / "remote-docker"), "--version"], capture_output=True,
                            text=True, env=user_env(home), timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("remote-docker ")


def fake_local_docker(folder: Path) -> None:
    folder.mkdir()
    (folder / "docker").write_text('#!/bin/sh\necho "local docker: $*"\n')
    (folder / "docker").chmod(0o755)


def test_the_real_local_docker_stays_reachable(home) -> None:
    shim_dir, local_dir = home / "shims", home / "local"
    shim_dir.mkdir()
    fake_local_docker(local_dir)
    assert remote_docker(home, "install-shims", "--dir", str(shim_dir)).returncode == 0
    path = f"{shim_dir}:{local_dir}:{SYSTEM_PATH}"
    env = user_env(home, PATH=path, REMOTE_DOCKER_HOST="local")
    result = subprocess.run(["docker", "ps", "-a"], capture_output=True, text=True, env=env,
                            timeout=60)
    assert (result.returncode, result.stdout) == (0, "local docker: ps -a\n"), result.stderr
    env = user_env(home, PATH=path)
    result = subprocess.run(["remote-docker", "local", "images", "-q"], capture_output=True,
                            text=True, env=env, timeout=60)
    assert (result.returncode, result.stdout) == (0, "local docker: images -q\n"), result.stderr


def test_without_a_local_docker_local_is_one_line(home) -> None:
    result = remote_docker(home, "local", "ps", PATH=str(CHECKOUT / "bin"))
    assert "no local docker" in one_line_error(result)


# -- completion ----------------------------------------------------------------------------

SYNTAX_CHECK = {"bash": ["bash", "-n"], "zsh": ["zsh", "-n"], "fish": ["fish", "--no-execute"]}


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(bed, home, shell: str) -> None:
    """Each script passes its own shell's syntax check (the bed installs zsh and fish)."""
    result = remote_docker(home, "completion", shell)
    assert result.returncode == 0 and result.stderr == ""
    assert "install-shims" in result.stdout and "docker" in result.stdout
    script = home / f"completion.{shell}"
    script.write_text(result.stdout)
    check = subprocess.run([*SYNTAX_CHECK[shell], str(script)], capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0, check.stderr


def test_bash_completion_completes_verbs_and_docker_commands(home) -> None:
    script = remote_docker(home, "completion", "bash").stdout
    probe = (script + 'COMP_WORDS=(remote-docker inst); COMP_CWORD=1; _remote_docker; '
             'echo "${COMPREPLY[*]}"; COMP_WORDS=(docker pu); COMP_CWORD=1; '
             '_remote_docker_docker; echo "${COMPREPLY[*]}"\n')
    result = subprocess.run(["bash", "--norc", "-c", probe], capture_output=True, text=True,
                            timeout=60)
    assert result.stdout.splitlines() == ["install-shims", "pull push"], result.stderr


def test_completion_for_an_unknown_shell_is_one_line(home) -> None:
    assert "bash, zsh or fish" in one_line_error(remote_docker(home, "completion", "tcsh"))


def test_completion_hosts_lists_ssh_contexts_and_aliases(home) -> None:
    meta = home / "home/.docker/contexts/meta/x"
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text('{"Name": "far", "Endpoints": {"docker": '
                                    '{"Host": "ssh://dm@far"}}}')
    (home / "home/.ssh").mkdir()
    (home / "home/.ssh/config").write_text("Host box *.lan\n  HostName 10.0.0.9\n")
    assert remote_docker(home, "completion", "--hosts").stdout.split() == ["box", "far"]


# -- use / status / disconnect without a machine -------------------------------------------

@pytest.mark.parametrize("spec", ["a b", "u@", "h:70000", "-oProxyCommand=x", "u;rm@h"])
def test_use_with_a_malformed_host_is_one_line_and_writes_nothing(home, spec: str) -> None:
    one_line_error(remote_docker(home, "use", spec, "--accept-new"))
    assert files_under(home / "config") == []


def test_use_with_an_unknown_host_is_one_line_and_writes_nothing(home) -> None:
    line = one_line_error(remote_docker(home, "use", "dm@no-such-host.invalid", "--accept-new"))
    assert "no-such-host.invalid" in line
    assert files_under(home / "config") == []


def test_use_needs_one_host_and_known_options(home) -> None:
    one_line_error(remote_docker(home, "use"))
    assert "--bogus" in one_line_error(remote_docker(home, "use", "h", "--bogus"))
    assert remote_docker(home, "use", "--help").stdout.startswith("usage: remote-docker use")


def test_status_without_a_machine_says_how_to_choose_one(home) -> None:
    assert "remote-docker use" in one_line_error(remote_docker(home, "status"))
    assert "remote-docker use" in one_line_error(remote_docker(home, "disconnect"))


def test_status_of_local_needs_no_connection(home) -> None:
    result = remote_docker(home, "status", REMOTE_DOCKER_HOST="local")
    assert result.returncode == 0 and "local" in result.stdout


def test_status_of_an_unreachable_machine_is_one_error_line(home) -> None:
    result = remote_docker(home, "status", REMOTE_DOCKER_HOST="dm@no-such-host.invalid")
    assert "no-such-host.invalid" in one_line_error(result)
    assert "machine:" in result.stdout


# -- what the remote `docker version` means --------------------------------------------------

def test_probe_reads_both_versions() -> None:
    versions = interpret_probe("dm@h", "dm", 0, "28.2.2 20.10.24+dfsg1\n", "")
    assert (versions.client, versions.server) == ("28.2.2", "20.10.24+dfsg1")


@pytest.mark.parametrize("status, stderr, error, words", [
    (127, "sh: 1: docker: not found\n", RemoteCommandFailed, "no docker on dm@h"),
    (1, "permission denied while trying to connect to the Docker daemon socket at "
        "unix:///var/run/docker.sock: …: connect: permission denied\n", RemoteCommandFailed,
     "user dm on dm@h may not use docker (add it to the docker group)"),
    (1, "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker "
        "daemon running?\n", RemoteCommandFailed, "not running"),
    (255, "", ConnectionFailed, "lost the connection"),
    (2, "something odd\n", RemoteCommandFailed, "something odd"),
])
def test_probe_failures_name_the_fix(status, stderr, error, words) -> None:
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        interpret_probe("dm@h", "dm", status, "28.2.2 \n" if status == 1 else "", stderr)
