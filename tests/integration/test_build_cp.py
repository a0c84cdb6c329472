"""docker build with workstation contexts and docker cp with workstation paths, on the bed.

The shim (as ws) is compared with the docker-machine's own docker (as dm) on the
same engine.  Everything made here is named ``rdbuild-…`` and removed.
"""

import os
import pwd
import re
import shutil
import uuid

import pytest

from tests.bedtools import run_dm, run_ws

PREFIX = "rdbuild-t-"


def own(path: str) -> None:
    user = pwd.getpwnam("ws")
    for root, dirs, files in os.walk(path):
        for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
            os.lchown(name, user.pw_uid, user.pw_gid)
    os.chmod(path, 0o755)


def sent_line(output: bytes) -> bytes:
    found = re.search(rb"Sending build context to Docker daemon\s+\S+", output)
    assert found, output
    return found.group(0)


@pytest.fixture
def names(bed):
    made: list[str] = []
    yield lambda: made.append(PREFIX + uuid.uuid4().hex[:8]) or made[-1]
    for name in made:
        run_dm(["docker", "rm", "-f", name])
        run_dm(["docker", "rmi", "-f", name])


def make_context(root: str) -> str:
    ctx = os.path.join(root, "ctx")
    os.makedirs(os.path.join(ctx, "big"))
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write("FROM busybox\nARG GREETING=none\nCOPY . /ctx\n"
                "RUN echo \"greeting=$GREETING\" && cd /ctx && find . | sort\n")
    with open(os.path.join(ctx, "big", "ignored.bin"), "wb") as f:
        f.truncate(100 * 1024 * 1024)  # 100 MiB that must not travel
    with open(os.path.join(ctx, "big", "keep"), "w") as f:
        f.write("keep\n")
    with open(os.path.join(ctx, ".dockerignore"), "w") as f:
        f.write("big\n!big/keep\n*.log\n")
    with open(os.path.join(ctx, "x.log"), "w") as f:
        f.write("log\n")
    own(root)
    return ctx


def test_ignored_file_is_not_sent_and_context_matches_local(ws_dir, names) -> None:
    ctx = make_context(ws_dir)
    ours = run_ws(["env", "REMOTE_DOCKER_REPORT_BYTES=1", "docker", "build", "--build-arg",
                   "GREETING=hi there", "-t", names(), "."], cwd=ctx, timeout=300)
    theirs = run_dm(["docker", "build", "--build-arg", "GREETING=hi there", "-t", names(), ctx],
                    timeout=300)
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    sent = int(re.search(rb"build context: (\d+) bytes sent", ours.stderr).group(1))
    assert sent < 64 * 1024  # the 100 MiB file stayed home
    assert sent_line(ours.stdout) == sent_line(theirs.stdout)  # the daemon got what local sends
    assert b"greeting=hi there" in ours.stdout
    listing = [line for line in ours.stdout.splitlines() if line.startswith(b"./")]
    assert b"./big/keep" in listing and b"./x.log" not in listing
    assert b"./big/ignored.bin" not in listing
    # the same context makes the same image: dm's local build hits the cache ours filled
    built = [re.search(rb"Successfully built (\w+)", r.stdout).group(1) for r in (ours, theirs)]
    assert built[0] == built[1]


def test_dockerfile_outside_the_context(ws_dir, names) -> None:
    ctx = make_context(ws_dir)
    with open(os.path.join(ws_dir, "Other.Dockerfile"), "w") as f:
        f.write("FROM busybox\nCOPY . /c\nRUN ls -a /c\n")
    own(ws_dir)
    ours = run_ws(["docker", "build", "-f", "../Other.Dockerfile", "."], cwd=ctx, timeout=300)
    assert ours.returncode == 0, ours.stderr
    assert b".dockerfile." not in ours.stdout  # hidden from COPY by .dockerignore, as docker does
    assert b"Dockerfile" in ours.stdout  # the context's own files are there


@pytest.mark.parametrize("buildkit", ["0", "1"])
def test_builder_choice_and_errors_match_local(ws_dir, buildkit: str) -> None:
    ctx = os.path.join(ws_dir, "c")
    os.makedirs(ctx)
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write("FROM busybox\nRUN exit 3\n")
    own(ws_dir)
    env = {"DOCKER_BUILDKIT": buildkit}
    ours = run_ws(["docker", "build", "-q", "."], cwd=ctx, env=env, timeout=300)
    theirs = run_dm(["docker", "build", "-q", ctx], env=env, timeout=300)
    assert ours.returncode == theirs.returncode != 0
    first = theirs.stderr.splitlines()[:2]
    assert ours.stderr.splitlines()[:2] == first


def test_missing_context_is_never_the_docker_machines(ws_dir) -> None:
    missing = run_ws(["docker", "build", "/nonexistent-rdbuild"], cwd=ws_dir)
    assert missing.returncode == 1
    assert missing.stderr.strip().endswith(b'path "/nonexistent-rdbuild" not found')


@pytest.mark.parametrize("unreadable, ignore", [("sub/secret", ""), ("cache", "cache\n")])
def test_an_unreadable_context_entry_is_docker_s_error_and_nothing_is_built(
        ws_dir, names, unreadable: str, ignore: str) -> None:
    """A file ws cannot read, or a directory it cannot list (even an ignored one: docker
    lists before it matches), stops the build before anything is sent, in docker's words."""
    ctx = os.path.join(ws_dir, "ctx")
    os.makedirs(os.path.join(ctx, "sub"))
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write("FROM busybox\nCOPY . /ctx\n")
    with open(os.path.join(ctx, ".dockerignore"), "w") as f:
        f.write(ignore)
    path = os.path.join(ctx, unreadable)
    if ignore:
        os.makedirs(path)
    else:
        with open(path, "w") as f:
            f.write("secret\n")
    own(ws_dir)
    os.chmod(path, 0)
    tag = names()
    ours = run_ws(["docker", "build", "-t", tag, "."], cwd=ctx, timeout=300)
    local = run_ws(["remote-docker", "local", "build", "-t", tag, "."], cwd=ctx, timeout=300)
    assert ours.returncode == local.returncode == 1, (ours.stderr, local.stderr)
    assert ours.stderr.splitlines() == local.stderr.splitlines()[-1:], ours.stderr
    assert ours.stdout == b""  # the remote build never started: nothing was sent
    assert run_dm(["docker", "image", "inspect", tag]).returncode != 0


def test_build_me_tags_with_the_directory_name(ws_dir) -> None:
    tag = f"{PREFIX}me-{uuid.uuid4().hex[:6]}"
    project = os.path.join(ws_dir, tag.upper() + " !")
    os.makedirs(project)
    with open(os.path.join(project, "Dockerfile"), "w") as f:
        f.write("FROM busybox\n")
    own(ws_dir)
    try:
        result = run_ws(["docker.build.me", "-q"], cwd=project, timeout=300)
        assert result.returncode == 0, result.stderr
        assert run_dm(["docker", "image", "inspect", tag]).returncode == 0
    finally:
        run_dm(["docker", "rmi", "-f", tag])


NAMES = ["plain", "two words", "it's \"q\"", "line\nbreak", "naïve ☃"]


def test_cp_round_trip_with_odd_names_and_modes(ws_dir, names) -> None:
    container = names()
    assert run_dm(["docker", "run", "-d", "--name", container, "busybox",
                   "sleep", "600"]).returncode == 0
    src = os.path.join(ws_dir, "src dir")
    os.makedirs(os.path.join(src, "sub"))
    for i, name in enumerate(NAMES):
        path = os.path.join(src, "sub" if i % 2 else "", name)
        with open(path, "wb") as f:
            f.write(os.urandom(1000 + i) + b"\0\xff")
        os.chmod(path, 0o600 + i)
    os.chmod(os.path.join(src, "sub"), 0o751)
    os.symlink("plain", os.path.join(src, "link"))
    own(ws_dir)
    up = run_ws(["docker", "cp", "src dir", f"{container}:/tmp/"], cwd=ws_dir)
    assert up.returncode == 0, up.stderr
    down = run_ws(["docker", "cp", f"{container}:/tmp/src dir", "back"], cwd=ws_dir)
    assert down.returncode == 0, down.stderr
    assert tree(src) == tree(os.path.join(ws_dir, "back"))
    # in the container too the modes are the workstation's (symlinks aside)
    remote = run_dm(["docker", "exec", container, "find", "/tmp/src dir", "-mindepth", "1",
                     "!", "-type", "l", "-exec", "stat", "-c", "%a", "{}", "+"])
    local = [oct(st[1])[-3:] for st in (("", int(m, 8)) for _, m, _ in tree(src))
             if not oct(st[1]).startswith("0o12")]
    assert sorted(remote.stdout.split()) == sorted(x.encode().lstrip(b"0") for x in local)


def test_cp_into_existing_file_dir_rules_and_stdout_tar(ws_dir, names) -> None:
    container = names()
    run_dm(["docker", "run", "-d", "--name", container, "busybox", "sleep", "600"])
    with open(os.path.join(ws_dir, "f"), "w") as f:
        f.write("one\n")
    own(ws_dir)
    assert run_ws(["docker", "cp", "f", f"{container}:/tmp/renamed"], cwd=ws_dir).returncode == 0
    cat = run_dm(["docker", "exec", container, "cat", "/tmp/renamed"])
    assert cat.stdout == b"one\n"
    to_missing_dir = run_ws(["docker", "cp", f"{container}:/tmp/renamed", "nodir/"], cwd=ws_dir)
    assert to_missing_dir.returncode != 0
    tar = run_ws(["docker", "cp", f"{container}:/tmp/renamed", "-"], cwd=ws_dir)
    assert tar.stdout == run_dm(["docker", "cp", f"{container}:/tmp/renamed", "-"]).stdout
    missing = run_ws(["docker", "cp", f"{container}:/nope", "x"], cwd=ws_dir)
    theirs = run_dm(["docker", "cp", f"{container}:/nope", "/tmp/x-rdbuild"])
    assert (missing.returncode, missing.stderr) == (theirs.returncode, theirs.stderr)
    assert not os.path.exists(os.path.join(ws_dir, "x"))


@pytest.mark.parametrize("src, dst", [("/etc", "ro/x"), ("/etc/passwd", "ro/"),
                                      ("/etc/passwd", "/proc/rdbuild-nope")])
def test_cp_errors_on_the_workstation_side_are_a_local_docker_s(ws_dir, names, src: str,
                                                                 dst: str) -> None:
    """What cannot be written here (a read-only directory, /proc) is docker's one line."""
    container = names()
    os.makedirs(os.path.join(ws_dir, "ro"))
    own(ws_dir)
    os.chmod(os.path.join(ws_dir, "ro"), 0o555)
    assert run_ws(["docker", "create", "--name", container, "busybox"]).returncode == 0
    made = run_ws(["remote-docker", "local", "create", "--name", container, "busybox"])
    assert made.returncode == 0, made.stderr
    try:
        ours = run_ws(["docker", "cp", f"{container}:{src}", dst], cwd=ws_dir)
        local = run_ws(["remote-docker", "local", "cp", f"{container}:{src}", dst], cwd=ws_dir)
    finally:
        run_ws(["remote-docker", "local", "rm", container])
    assert (ours.returncode, ours.stderr) == (local.returncode, local.stderr) != (0, b"")
    assert ours.stderr.count(b"\n") == 1 and ours.stderr.startswith((b"mkdir ", b"open "))


def tree(root: str) -> list[tuple]:
    out = []
    for base, dirs, files in sorted(os.walk(root)):
        for name in sorted(dirs + files):
            path = os.path.join(base, name)
            st = os.lstat(path)
            content = os.readlink(path) if os.path.islink(path) else \
                open(path, "rb").read() if os.path.isfile(path) else None
            out.append((os.path.relpath(path, root), oct(st.st_mode), content))
    return out


def test_docker_machine_missing_and_search_forwarded(bed) -> None:
    machine = run_ws(["docker-machine", "ls"])
    assert machine.returncode == 127
    assert machine.stderr.strip().endswith(b"docker-machine is not installed on dm@127.0.0.2 "
                                           b"(or not on its PATH)")
    ours = run_ws(["docker-search", "busybox"], timeout=120)
    theirs = run_dm(["docker", "search", "--no-trunc", "busybox"], timeout=120)
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout)
    assert ours.returncode != 0 and b"index.docker.io" in ours.stderr


def test_machines_lists_the_current_one_and_imports_ssh_contexts(ws_dir) -> None:
    home = os.path.join(ws_dir, "home")
    os.makedirs(os.path.join(home, ".docker", "contexts", "meta", "abc"))
    with open(os.path.join(home, ".docker", "contexts", "meta", "abc", "meta.json"), "w") as f:
        f.write('{"Name": "rdbuild-ctx", "Endpoints": {"docker": '
                '{"Host": "ssh://dm@127.0.0.2"}}}')
    own(ws_dir)
    env = {"DOCKER_CONFIG": os.path.join(home, ".docker"),
           "XDG_CONFIG_HOME": os.path.join(home, ".config"),
           "REMOTE_DOCKER_HOST": "dm@127.0.0.2"}
    listed = run_ws(["remote-docker", "machines"], env=env)
    assert listed.stdout == b"* dm@127.0.0.2  dm@127.0.0.2\n", listed.stderr
    imported = run_ws(["remote-docker", "machines", "--import-contexts"], env=env)
    assert imported.returncode == 0
    assert re.search(rb"\n  rdbuild-ctx +ssh://dm@127.0.0.2\n", imported.stdout)
    shutil.rmtree(home, ignore_errors=True)


def test_export_and_import_use_workstation_files(ws_dir, names) -> None:
    """`export -o FILE` writes here and `import FILE` reads here: a round trip of a
    container's filesystem through a workstation file, as with a local docker."""
    container, image = names(), names()
    assert run_ws(["docker", "run", "--name", container, "busybox", "sh", "-c",
                   "echo here > /marker"]).returncode == 0
    exported = run_ws(["docker", "export", "-o", "fs.tar", container], cwd=ws_dir)
    assert exported.returncode == 0, exported.stderr
    assert os.path.getsize(os.path.join(ws_dir, "fs.tar")) > 100_000
    imported = run_ws(["docker", "import", "-m", "from ws", "fs.tar", image], cwd=ws_dir)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.startswith(b"sha256:")
    ran = run_ws(["docker", "run", "--rm", image, "cat", "/marker"])
    assert ran.stdout == b"here\n", ran.stderr
    missing = run_ws(["docker", "import", "nope.tar"], cwd=ws_dir)
    assert (missing.returncode, missing.stderr) == (
        1, b"open nope.tar: no such file or directory\n")
