"""Pure logic of builds and cp: .dockerignore matching, tag naming, docker cp's path rules."""

import io
import os
import tarfile

import pytest

from remote_docker import build_context, container_copy, dockerignore, tarstream
from remote_docker.cli.docker_build import build_argv, tag_for_directory
from remote_docker.errors import DockerError, UsageError


def matcher(*patterns: str) -> dockerignore.PatternMatcher:
    return dockerignore.PatternMatcher(dockerignore.parse("\n".join(patterns)))


@pytest.mark.parametrize("patterns,path,excluded", [
    (["*.log"], "a.log", True),
    (["*.log"], "dir/a.log", False),           # '*' does not cross directories
    (["**/*.log"], "dir/sub/a.log", True),
    (["**/*.log"], "a.log", True),
    (["big"], "big/blob", True),               # a parent directory matches
    (["big", "!big/keep"], "big/keep", False),
    (["big", "!big/keep"], "big/other", True),
    (["/abs"], "abs", True),                   # a leading / is the context root
    (["a?c"], "abc", True),
    (["a?c"], "a/c", False),
    (["*", "!Dockerfile"], "Dockerfile", False),
    (["# comment", "x"], "# comment", False),
    (["docs/**"], "docs/a/b", True),
    (["[ab].txt"], "b.txt", True),
])
def test_patterns_match_as_docker_does(patterns: list[str], path: str, excluded: bool) -> None:
    assert matcher(*patterns).matches(path) is excluded


def test_dockerfile_and_dockerignore_are_always_sent() -> None:
    kept = dockerignore.keep_build_files(["*"], "Dockerfile")
    m = dockerignore.PatternMatcher(kept)
    assert not m.matches("Dockerfile") and not m.matches(".dockerignore") and m.matches("x")


def test_excluded_directory_is_walked_only_for_an_exception() -> None:
    assert matcher("big", "!big/keep").may_include_below("big")
    assert not matcher("big", "!other/keep").may_include_below("big")


def test_context_tar_has_docker_layout(tmp_path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a").write_bytes(b"x" * 700)
    (tmp_path / "skip.log").write_text("no")
    (tmp_path / ".dockerignore").write_text("*.log\n")
    context = build_context.BuildContext(str(tmp_path), "Dockerfile", None, "", False)
    out = io.BytesIO()
    context.write(out)
    data = out.getvalue()
    assert len(data) == context.sent == 512 * (2 + 2 + 1 + 3) + 1024  # no record padding
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
        assert names == [".dockerignore", "Dockerfile", "sub", "sub/a"]
        assert {m.uid for m in tar.getmembers()} == {0}


def test_outside_dockerfile_goes_in_under_a_random_name(tmp_path) -> None:
    (tmp_path / "ctx").mkdir()
    (tmp_path / "elsewhere.Dockerfile").write_text("FROM busybox\n")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        from remote_docker import dockercli

        cmd = dockercli.parse(["build", "-f", "elsewhere.Dockerfile", "-t", "x", "ctx"])
        args, context = build_context.localise(cmd, {}, False)
    finally:
        os.chdir(cwd)
    name = args[1]
    assert args[0] == "-f" and name.startswith(".dockerfile.") and args[-1] == "-"
    out = io.BytesIO()
    context.write(out)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        assert tar.extractfile(name).read() == b"FROM busybox\n"
        assert name.encode() in tar.extractfile(".dockerignore").read()


def test_missing_context_is_docker_error_not_the_remote_path() -> None:
    from remote_docker import dockercli

    with pytest.raises(UsageError, match='path "no-such-dir-xyz" not found'):
        build_context.localise(dockercli.parse(["build", "no-such-dir-xyz"]), {}, False)


@pytest.mark.parametrize("name,tag", [
    ("My App!", "my-app"), ("proj_v2.0", "proj_v2.0"), ("__x__", "x"), ("a..b", "a.b"),
    ("ÜBER cool", "uber-cool"), ("a__b", "a__b"), ("x" * 200, "x" * 128),
])
def test_build_me_tag_is_a_valid_repository_name(name: str, tag: str) -> None:
    assert tag_for_directory(name) == tag


def test_build_me_refuses_a_name_with_nothing_usable() -> None:
    with pytest.raises(UsageError):
        tag_for_directory("日本")


def test_docker_build_defaults_to_the_current_directory() -> None:
    assert build_argv(["-t", "x"]) == ["build", "-t", "x", "."]
    assert build_argv(["-t", "x", "sub"]) == ["build", "-t", "x", "sub"]


@pytest.mark.parametrize("arg,split", [
    ("c:/x", ("c", "/x")), ("/abs:x", ("", "/abs:x")), ("./f:n", ("", "./f:n")), ("f", ("", "f")),
])
def test_cp_argument_split(arg: str, split: tuple[str, str]) -> None:
    assert container_copy.split_arg(arg) == split


@pytest.mark.parametrize("dst,exists,is_dir,src_dir,expect", [
    ("/d", True, True, False, ("/d", None)),
    ("/d/new", False, False, True, ("/d", ("src", "new"))),
    ("/d/file", True, False, False, ("/d", ("src", "file"))),
])
def test_cp_destination_rules(dst, exists, is_dir, src_dir, expect) -> None:
    assert container_copy.prepare("/w/src", src_dir, "", dst, exists, is_dir) == expect


@pytest.mark.parametrize("dst,exists,is_dir,src_dir,message", [
    ("/d/file", True, False, True, "cannot copy directory"),
    ("/d/new/", False, False, False, "no such directory"),
])
def test_cp_destination_errors(dst, exists, is_dir, src_dir, message) -> None:
    with pytest.raises(UsageError, match=message):
        container_copy.prepare("/w/src", src_dir, "", dst, exists, is_dir)


def test_extraction_refuses_entries_outside_the_destination(tmp_path) -> None:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for name in ("d/", "d/../../evil"):
            info = tarfile.TarInfo(name.rstrip("/"))
            info.type = tarfile.DIRTYPE if name.endswith("/") else tarfile.REGTYPE
            tar.addfile(info, io.BytesIO(b""))
    data.seek(0)
    (tmp_path / "dest").mkdir()
    extraction = container_copy.Extraction("/d", "", str(tmp_path / "dest"))
    with pytest.raises(UsageError, match="outside"):
        extraction.read(data)
    assert not (tmp_path / "evil").exists()


def test_stat_response_is_parsed() -> None:
    import base64
    import json

    stat = base64.b64encode(json.dumps({"mode": 2147484141, "linkTarget": ""}).encode())
    reply = b"HTTP/1.1 200 OK\r\nX-Docker-Container-Path-Stat: " + stat + b"\r\n\r\n"
    assert container_copy.parse_stat(reply).is_dir
    assert not container_copy.parse_stat(b"HTTP/1.1 404 Not Found\r\n\r\n").exists


@pytest.mark.parametrize("path, follow, said", [
    ("/rd-nonexistent", False, "lstat //rd-nonexistent: no such file or directory"),
    ("/rd-nonexistent", True, "lstat /rd-nonexistent: no such file or directory"),
    ("/rd-nonexistent/", False, "lstat /rd-nonexistent: no such file or directory"),
    ("/tmp/rd-nonexistent/.", False, "lstat /tmp/rd-nonexistent: no such file or directory"),
    ("/etc/hostname/", False, "lstat /etc/hostname/: not a directory"),
])
def test_cp_source_errors_name_the_path_as_docker_does(path: str, follow: bool,
                                                       said: str) -> None:
    """docker appends the last element to its resolved parent with a '/' of its own."""
    with pytest.raises(DockerError) as raised:
        container_copy.source_info(path, follow)
    assert raised.value.message == said and raised.value.status == 1


def test_a_file_that_cannot_be_opened_adds_no_half_entry(tmp_path) -> None:
    path = tmp_path / "gone"
    path.write_bytes(b"x" * 10)
    st = os.lstat(path)
    path.unlink()  # between the walk's stat and the read, as a race would have it
    out = io.BytesIO()
    writer = tarstream.TarWriter(out)
    with pytest.raises(DockerError, match=f"open {path}: no such file or directory"):
        writer.add(str(path), "gone", st)
    assert out.getvalue() == b"" and writer.sent == 0


def test_an_aborted_stream_fails_its_reader_instead_of_ending_early(tmp_path) -> None:
    (tmp_path / "a").write_bytes(b"a")
    out = io.BytesIO()
    writer = tarstream.TarWriter(out)
    writer.add(str(tmp_path / "a"), "a")
    cut = out.getvalue()
    writer.abort()
    with tarfile.open(fileobj=io.BytesIO(cut)) as whole:  # what a cut stream looks like
        assert whole.getnames() == ["a"]
    # Go's archive/tar (the engine's reader) ends at a zero block and fails at a bad one;
    # on the bed, `docker build -` built from the cut archive and refused the aborted one
    last = out.getvalue()[len(cut):]
    assert len(last) == tarfile.BLOCKSIZE
    with pytest.raises(tarfile.InvalidHeaderError):
        tarfile.TarInfo.frombuf(last, "utf-8", "surrogateescape")


def test_validate_stops_at_what_docker_stops_at(tmp_path, monkeypatch) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox\n")
    (tmp_path / "fifo.d").mkdir()
    os.mkfifo(tmp_path / "fifo.d" / "pipe")  # never opened: it would hang
    (tmp_path / "link").symlink_to("/nonexistent")  # never followed
    build = build_context.BuildContext(str(tmp_path), "Dockerfile", None, "", False)
    build.validate()
    refused = str(tmp_path / "fifo.d" / "z")
    (tmp_path / "fifo.d" / "z").write_text("z")
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda p, *a: (_ for _ in ()).throw(PermissionError(13, "x"))
                        if p == refused else real_open(p, *a))
    with pytest.raises(DockerError) as raised:
        build.validate()
    assert raised.value.message == f"error checking context: no permission to read from '{refused}'"
    (tmp_path / ".dockerignore").write_text("fifo.d\n")
    build.validate()  # an ignored directory is listed, but what is in it is not opened


def test_docker_s_own_errors_are_printed_bare_and_ours_with_the_prefix(capsys) -> None:
    from remote_docker.cli import guarded

    def fail(exc):
        def run():
            raise exc
        return run

    assert guarded("docker", fail(DockerError("cannot copy directory"))) == 1
    assert guarded("docker", fail(UsageError("no docker-machine configured"))) == 125
    assert capsys.readouterr().err == ("cannot copy directory\n"
                                       "docker: no docker-machine configured\n")


def test_an_unforeseen_os_error_is_one_line_naming_the_file(capsys, monkeypatch) -> None:
    from remote_docker.cli import guarded

    def fail():
        raise PermissionError(13, "Permission denied", "/home/ws/.config/remote-docker/x")

    monkeypatch.delenv("REMOTE_DOCKER_TRACEBACK", raising=False)
    assert guarded("docker", fail) == 1
    assert capsys.readouterr().err == ("docker: /home/ws/.config/remote-docker/x: "
                                       "permission denied\n")
    monkeypatch.setenv("REMOTE_DOCKER_TRACEBACK", "1")
    with pytest.raises(PermissionError):
        guarded("docker", fail)


def test_a_stat_of_a_missing_container_is_the_engine_s_error() -> None:
    """The stat's HEAD says 404 for a missing path and a missing container alike; the
    container's own answer, pipelined after it, tells them apart."""
    missing_path = (b"HTTP/1.1 404 Not Found\r\nContent-Length: 40\r\n\r\n"
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
    assert not container_copy.parse_stat(missing_path).exists
    missing_container = (b"HTTP/1.1 404 Not Found\r\nContent-Length: 40\r\n\r\n"
                         b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n\r\n"
                         b'{"message":"No such container: nope"}\n')
    found = container_copy.parse_stat(missing_container)
    assert not found.exists
    assert found.refused == "Error response from daemon: No such container: nope"
    request = container_copy.stat_request("c 1", "/x y")
    assert request.startswith(b"HEAD /containers/c%201/archive?path=%2Fx+y HTTP/1.1\r\n")
    assert request.endswith(b"GET /containers/c%201/json HTTP/1.1\r\nHost: docker\r\n"
                            b"Connection: close\r\n\r\n")


def test_a_fetched_output_lands_whole_or_is_docker_s_error(tmp_path) -> None:
    from remote_docker.transport import write_output

    write_output(str(tmp_path / "iid"), b"sha256:abc")
    assert (tmp_path / "iid").read_bytes() == b"sha256:abc"
    with pytest.raises(DockerError) as raised:
        write_output(str(tmp_path / "missing" / "iid"), b"x")
    assert raised.value.message == f"open {tmp_path}/missing/iid: no such file or directory"
    (tmp_path / "dir").mkdir()
    with pytest.raises(DockerError, match="is a directory"):
        write_output(str(tmp_path / "dir"), b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir", "iid"]  # no temporary left
