"""Remote quoting must equal shlex's, and must survive a real POSIX shell."""

import shlex
import subprocess

import pytest

from remote_docker.transport import quoting

NASTY = ["", " ", "a b", "it's", 'say "hi"', "$HOME", "`id`", "$(id)", "*", "?", ";", "&&",
         "a\\b", "line1\nline2", "tab\there", "naïve ☃", "-", "--", "'", '"', "\\", "~",
         "x=1", "a'b\"c$d`e\\f", "\x01\x7f"]


@pytest.mark.parametrize("word", NASTY + ["plain", "a/b.c:d@e%f+g=h,i-j_k"])
def test_quote_matches_shlex(word: str) -> None:
    assert quoting.quote(word) == shlex.quote(word)


def test_join_round_trips_through_sh() -> None:
    out = subprocess.run(["sh", "-c", "printf '%s\\0' " + quoting.join(NASTY)],
                         capture_output=True, check=True).stdout
    assert out.split(b"\0")[:-1] == [w.encode() for w in NASTY]


def test_docker_script_tags_the_call_and_keeps_args_verbatim() -> None:
    script = quoting.docker_script(["docker", "run", "a b"], "abc123", "dm@h")
    assert "REMOTE_DOCKER_CALL=abc123 docker run 'a b'" in script
    assert script.rstrip().endswith("exit $?")


def test_env_values_never_reach_the_script() -> None:
    script = quoting.docker_script(["docker", "run", "-e", "SECRET", "img"], "t", "h",
                                   env_file=True)
    assert "hunter2" not in script
    body = quoting.env_script({"SECRET": "hunter2 'q'\nline"}).decode()
    out = subprocess.run(["sh", "-c", body + 'printf %s "$SECRET"'], capture_output=True,
                         check=True, text=True).stdout
    assert out == "hunter2 'q'\nline"


def test_output_placeholder_becomes_scratch_path() -> None:
    from remote_docker.forward import OUTPUT_PLACEHOLDER

    script = quoting.docker_script(["docker", "run", "--cidfile=" + OUTPUT_PLACEHOLDER + "cid0"],
                                   "t1", "h", needs_dir=True)
    assert "--cidfile=\"$d\"/out-t1-cid0" in script


def test_kill_script_is_valid_sh() -> None:
    subprocess.run(["sh", "-n", "-c", quoting.kill_script("abc", "INT")], check=True)


def test_missing_docker_is_one_line_naming_the_machine(tmp_path) -> None:
    script = quoting.docker_script(["docker", "ps"], "t", "dm@example")
    result = subprocess.run(["/bin/sh", "-c", script], env={"PATH": str(tmp_path)},
                            capture_output=True, text=True)
    assert result.returncode == 127
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("docker: docker is not installed on dm@example")


def test_script_passes_docker_status_and_tag(tmp_path) -> None:
    fake = tmp_path / "docker"
    fake.write_text('#!/bin/sh\nprintf "%s|" "$REMOTE_DOCKER_CALL" "$@"; exit 42\n')
    fake.chmod(0o755)
    script = quoting.docker_script(["docker", "run", "a b", ""], "tag1", "m")
    result = subprocess.run(["/bin/sh", "-c", script],
                            env={"PATH": f"{tmp_path}:/usr/bin:/bin", "DOCKER_HOST": "x"},
                            capture_output=True, text=True)
    assert (result.returncode, result.stdout) == (42, "tag1|run|a b||")


def test_remote_signal_death_becomes_128_plus_n(tmp_path) -> None:
    fake = tmp_path / "docker"
    fake.write_text("#!/bin/sh\nkill -INT $$\nsleep 5\n")
    fake.chmod(0o755)
    script = quoting.docker_script(["docker", "ps"], "t", "m")
    result = subprocess.run(["/bin/sh", "-c", script],
                            env={"PATH": f"{tmp_path}:/usr/bin:/bin", "DOCKER_HOST": "x"})
    assert result.returncode == 130
