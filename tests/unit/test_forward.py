"""Planning: what of a docker command is local to the workstation."""

import pytest

from remote_docker import forward
from remote_docker.errors import DockerError, UsageError
from remote_docker.forward import Terminal

PIPES = Terminal(False, False, False)
TERMINAL = Terminal(True, True, True)


def test_plain_command_is_forwarded_verbatim() -> None:
    p = forward.plan(["ps", "-a"], {}, PIPES)
    assert p.argv == ["docker", "ps", "-a"] and p.stdin == "null" and not p.tty


@pytest.mark.parametrize("argv, term, tty", [
    (["run", "-it", "img"], TERMINAL, True),
    (["run", "-it", "img"], Terminal(True, False, False), True),   # | cat keeps -it working
    (["run", "-t", "img"], Terminal(True, False, True), False),    # raw bytes to the pipe
    (["run", "-it", "img"], PIPES, False),                         # docker itself refuses
    (["run", "img"], TERMINAL, True),                              # interactive use
    (["ps"], Terminal(True, True, False), False),                  # stderr redirected
    (["save", "img"], TERMINAL, False),
])
def test_tty_decision(argv: list[str], term: Terminal, tty: bool) -> None:
    assert forward.plan(argv, {}, term).tty is tty


def test_env_from_workstation_is_sent_out_of_band() -> None:
    p = forward.plan(["run", "-e", "TOKEN", "-e", "UNSET", "-e", "X=1", "img", "-e", "TOKEN"],
                     {"TOKEN": "s3cret"}, PIPES)
    assert p.env == {"TOKEN": "s3cret"}
    assert p.argv == ["docker", "run", "-e", "TOKEN", "-e", "X=1", "img", "-e", "TOKEN"]
    assert "s3cret" not in " ".join(p.argv)


def test_env_file_is_read_locally(tmp_path) -> None:
    f = tmp_path / "env"
    f.write_text("# comment\n\nA=1 2\n  B='q'\nFROM_ENV\nMISSING\n")
    p = forward.plan(["run", "--env-file", str(f), "img"], {"FROM_ENV": "x"}, PIPES)
    assert p.env == {"A": "1 2", "B": "'q'", "FROM_ENV": "x"}
    assert p.argv == ["docker", "run", "-e", "A", "-e", "B", "-e", "FROM_ENV", "img"]


def test_missing_env_file_is_one_line_error(tmp_path) -> None:
    with pytest.raises(UsageError) as err:
        forward.plan(["run", "--env-file", str(tmp_path / "nope"), "img"], {}, PIPES)
    assert "no such file" in err.value.message and err.value.status == 125


@pytest.mark.parametrize("content, said", [
    (b"BAD NAME=1\n", "variable 'BAD NAME' contains whitespaces"),
    (b"=1\n", "no variable name on line '=1'"),
    (b"\xef\xbb\xbfA=1\r\nB=\xff\n", "invalid utf8 bytes at line 2: [66 61 255]"),
])
def test_a_bad_env_file_is_docker_s_flag_error(tmp_path, content: bytes, said: str) -> None:
    """kvfile's words inside cobra's frame, for the command as docker names it."""
    (tmp_path / "e").write_bytes(content)
    with pytest.raises(DockerError) as err:
        forward.plan(["container", "run", "--env-file", str(tmp_path / "e"), "img"], {}, PIPES)
    assert err.value.message == (f"docker: invalid env file ({tmp_path / 'e'}): {said}\n\n"
                                 "Run 'docker run --help' for more information")
    assert err.value.status == 125


def test_an_env_file_s_bom_and_crlf_are_go_s(tmp_path) -> None:
    (tmp_path / "e").write_bytes(b"\xef\xbb\xbfA=1\r\nB=2 \r\n")
    p = forward.plan(["run", "--env-file", str(tmp_path / "e"), "img"], {}, PIPES)
    assert p.env == {"A": "1", "B": "2 "}


def test_label_file_becomes_labels(tmp_path) -> None:
    (tmp_path / "l").write_text("a=1\n#x\nb=two words\n")
    p = forward.plan(["create", "--label-file", str(tmp_path / "l"), "img"], {}, PIPES)
    assert p.argv == ["docker", "create", "--label", "a=1", "--label", "b=two words", "img"]


def test_save_output_is_local(tmp_path) -> None:
    target = tmp_path / "img.tar"
    p = forward.plan(["save", "-o", str(target), "busybox"], {}, PIPES)
    assert p.argv == ["docker", "save", "busybox"] and p.stdout_path == str(target)


def test_save_to_a_missing_directory_is_docker_s_error() -> None:
    with pytest.raises(DockerError) as err:
        forward.plan(["save", "-o", "rd-no-such-dir/x.tar", "busybox"], {}, PIPES)
    assert err.value.message == ("failed to save image: invalid output path: stat "
                                 "rd-no-such-dir: no such file or directory")
    with pytest.raises(DockerError, match="^failed to export container: "):
        forward.plan(["export", "--output=/rd-no-such-dir/x.tar", "c"], {}, PIPES)


@pytest.mark.parametrize("source", ["-", "https://example.com/rootfs.tar"])
def test_import_of_stdin_or_a_url_is_forwarded_as_it_is(source: str) -> None:
    p = forward.plan(["import", source, "img:1"], {}, PIPES)
    assert p.argv == ["docker", "import", source, "img:1"] and p.stdin_path is None


def test_import_of_a_file_reads_the_workstation_s_file(tmp_path) -> None:
    (tmp_path / "rootfs.tar").write_bytes(b"x")
    p = forward.plan(["image", "import", "-m", "msg", str(tmp_path / "rootfs.tar"), "img:1"],
                     {}, PIPES)
    assert p.argv == ["docker", "image", "import", "-m", "msg", "-", "img:1"]
    assert p.stdin == "file" and p.stdin_path == str(tmp_path / "rootfs.tar")
    with pytest.raises(DockerError, match=f"^open {tmp_path}/none: no such file or directory$"):
        forward.plan(["import", str(tmp_path / "none")], {}, PIPES)


def test_load_input_is_local(tmp_path) -> None:
    (tmp_path / "i.tar").write_bytes(b"x")
    p = forward.plan(["load", "--input", str(tmp_path / "i.tar")], {}, PIPES)
    assert p.argv == ["docker", "load"] and p.stdin == "file"
    with pytest.raises(UsageError, match="no such file"):
        forward.plan(["load", "-i", str(tmp_path / "none")], {}, PIPES)


def test_cidfile_is_fetched_and_existing_one_refused(tmp_path) -> None:
    cid = tmp_path / "cid"
    p = forward.plan(["run", "--cidfile", str(cid), "img"], {}, PIPES)
    assert p.outputs == [("cid0", str(cid))]
    assert p.argv[2] == "--cidfile" and p.argv[3].startswith(forward.OUTPUT_PLACEHOLDER)
    cid.write_text("x")
    with pytest.raises(DockerError, match="container ID file found"):
        forward.plan(["run", "--cidfile", str(cid), "img"], {}, PIPES)


@pytest.mark.parametrize("command, status, framed", [("run", 127, True), ("create", 1, False)])
def test_a_cidfile_that_cannot_be_made_is_framed_as_each_command_frames_it(
        tmp_path, command: str, status: int, framed: bool) -> None:
    """run passes the error through toStatusError (127: it says "no such file"); create
    prints it as it is."""
    path = tmp_path / "missing" / "cid"
    said = f"failed to create the container ID file: open {path}: no such file or directory"
    with pytest.raises(DockerError) as err:
        forward.plan([command, "--cidfile", str(path), "img"], {}, PIPES)
    assert err.value.status == status
    assert err.value.message == (f"docker: {said}\n\nRun 'docker run --help' for more "
                                 "information" if framed else said)


def test_a_mistyped_bind_mode_is_refused_before_any_mount(tmp_path) -> None:
    with pytest.raises(DockerError) as err:
        forward.plan(["run", "-v", f"{tmp_path}:/x:ro,rw", "img"], {}, PIPES, cwd=str(tmp_path))
    assert err.value.message.startswith("docker: Error response from daemon: invalid mode: ro,rw")
    assert err.value.status == 125
    with pytest.raises(DockerError, match="^docker: invalid spec: ./a:/x:: empty section"):
        forward.plan(["create", "-v", "./a:/x:", "img"], {}, PIPES, cwd=str(tmp_path))


def test_global_options_stay_in_front() -> None:
    p = forward.plan(["--log-level", "error", "run", "-e", "V", "img"], {"V": "1"}, PIPES)
    assert p.argv == ["docker", "--log-level", "error", "run", "-e", "V", "img"]


def test_a_pty_session_always_takes_the_terminal_as_stdin() -> None:
    p = forward.plan(["ps"], {}, TERMINAL)
    assert p.tty and p.stdin == "inherit"
