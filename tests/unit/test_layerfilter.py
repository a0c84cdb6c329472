"""The pure parts of image transfer: chain IDs, v1 IDs, the archive filter, inventories."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile

import pytest

from remote_docker import images, layerfilter

DIFF_IDS = ["sha256:" + hashlib.sha256(bytes([n])).hexdigest() for n in range(3)]
# The intermediate layers' json as docker 20.10 writes it (tarexport/save.go).
ZERO_CONFIG = ('{"created":"1970-01-01T00:00:00Z","container_config":{"Hostname":"","Cmd":null,'
               '"Labels":null},"os":"linux"}')


def test_chain_ids_follow_the_layer_store_s_rule() -> None:
    chains = layerfilter.chain_ids(DIFF_IDS)
    assert chains[0] == DIFF_IDS[0]
    step = f"{chains[0]} {DIFF_IDS[1]}".encode()
    assert chains[1] == "sha256:" + hashlib.sha256(step).hexdigest()
    assert len(set(chains)) == 3 and layerfilter.chain_ids([]) == []


def _v1_id(chain: str, parent: str | None) -> str:
    """What image/v1 CreateID computes for an intermediate layer: Go's encoding by hand."""
    text = ('{"container_config":{"Hostname":"","Cmd":null,"Labels":null},'
            '"created":"1970-01-01T00:00:00Z",' f'"layer_id":"{chain}"'
            + (f',"parent":"sha256:{parent}"' if parent else "") + "}")
    return hashlib.sha256(text.encode()).hexdigest()


def legacy_archive(diff_ids: list[str]) -> tuple[bytes, list[str]]:
    """A docker-save archive in the 20.10 layout; the v1 IDs of its layers."""
    chains, ids, parent = layerfilter.chain_ids(diff_ids), [], None
    for index, chain in enumerate(chains):
        ids.append(_v1_id(chain, parent) if index < len(chains) - 1 else "f" * 64)
        parent = ids[-1]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for index, v1 in sorted(enumerate(ids), key=lambda pair: pair[1]):
            fields = json.loads(ZERO_CONFIG)
            fields = {"id": v1, **({"parent": ids[index - 1]} if index else {}), **fields}
            add(f"{v1}/json", json.dumps(fields, separators=(",", ":")).encode())
            add(f"{v1}/layer.tar", bytes([index]) * 1000)
        add("manifest.json", json.dumps([{"Layers": [f"{v}/layer.tar" for v in ids]}]).encode())
    return out.getvalue(), ids


@pytest.mark.parametrize("present, dropped", [(0, []), (1, [0]), (2, [0, 1]), (3, [0, 1, 2])])
def test_only_the_layers_present_are_dropped(present: int, dropped: list[int],
                                             tmp_path) -> None:
    archive, ids = legacy_archive(DIFF_IDS)
    have = set(layerfilter.chain_ids(DIFF_IDS)[:present])
    out, count, _ = _through_files(archive, have, tmp_path)
    assert count == len(dropped)
    names = tarfile.open(fileobj=io.BytesIO(out)).getnames()
    for index, v1 in enumerate(ids):
        assert (f"{v1}/layer.tar" in names) == (index not in dropped)
        assert f"{v1}/json" in names
    assert "manifest.json" in names


def test_an_unrecognised_directory_counts_as_the_top_layer_and_is_kept(tmp_path) -> None:
    """Only the top chain's presence can drop it, and that implies every layer is there."""
    archive, ids = legacy_archive(DIFF_IDS)
    spoiled = archive.replace(b'"Cmd":null', b'"Cmd":[""]')  # no lower v1 ID matches now
    have = set(layerfilter.chain_ids(DIFF_IDS)[:2])
    assert _through_files(spoiled, have, tmp_path)[1:] == (0, len(spoiled))


def test_as_a_script_it_filters_stdin_to_stdout() -> None:
    """How a pull runs it on the docker-machine: `docker save | python3 -c SOURCE SPEC`."""
    import subprocess
    import sys

    archive, ids = legacy_archive(DIFF_IDS)
    have = set(layerfilter.chain_ids(DIFF_IDS)[:1])
    spec = json.dumps({"layers": DIFF_IDS, "present": sorted(have)})
    source = open(layerfilter.__file__).read()
    done = subprocess.run([sys.executable, "-c", source, spec], input=archive,
                          capture_output=True, check=True)
    assert done.stdout == _through_pipes(archive, have)[0]
    names = tarfile.open(fileobj=io.BytesIO(done.stdout)).getnames()
    assert f"{ids[0]}/layer.tar" not in names and f"{ids[1]}/layer.tar" in names


@pytest.mark.parametrize("prefix_ok", [True, False])
def test_as_a_script_it_resumes_after_what_the_workstation_kept(prefix_ok: bool) -> None:
    """A resumed pull: the spec's skip/expect; a kept copy that is not the stream's start
    is exit status MISMATCH_STATUS with nothing written."""
    import subprocess
    import sys

    archive, _ = legacy_archive(DIFF_IDS)
    whole, _, _ = _through_pipes(archive, set())
    kept = whole[:3000] if prefix_ok else b"y" * 3000
    spec = json.dumps({"layers": DIFF_IDS, "present": [], "skip": len(kept),
                       "expect": hashlib.sha256(kept).hexdigest()})
    source = open(layerfilter.__file__).read()
    done = subprocess.run([sys.executable, "-c", source, spec], input=archive,
                          capture_output=True)
    if prefix_ok:
        assert done.returncode == 0 and kept + done.stdout == whole
    else:
        assert done.returncode == layerfilter.MISMATCH_STATUS and done.stdout == b""
        assert b"differs" in done.stderr


def test_pass_fds_copies_a_stream_as_it_is() -> None:
    import os
    import threading

    data = os.urandom(3 << 20)
    src_r, src_w = os.pipe()
    dst_r, dst_w = os.pipe()
    got = bytearray()
    feed = threading.Thread(target=lambda: (os.write(src_w, data) and None, os.close(src_w)))
    drain = threading.Thread(target=lambda: got.extend(os.fdopen(dst_r, "rb").read()))
    feed.start()
    drain.start()
    ticks = []
    assert layerfilter.pass_fds(src_r, dst_w, ticks.append) == len(data)
    os.close(src_r)
    os.close(dst_w)
    feed.join()
    drain.join()
    assert bytes(got) == data and sum(ticks) == len(data)


def test_oci_blobs_are_named_by_diff_id() -> None:
    decide = layerfilter.LayerFilter(DIFF_IDS, set(layerfilter.chain_ids(DIFF_IDS)[:1]))
    assert decide.layer_of("blobs/sha256/" + DIFF_IDS[1][7:]) == 1
    assert decide.layer_of("blobs/sha256/" + "0" * 64) is None
    assert decide.layer_of("manifest.json") is None


def test_inventory_parsing() -> None:
    text = ("python3\n"
            f"sha256:abc 1234 {json.dumps(DIFF_IDS[:2])}\n-\n---\n"
            "sha256:i1\nsha256:i2\n---\n"
            f"sha256:i1 {json.dumps(DIFF_IDS)}\nsha256:i2 {json.dumps(DIFF_IDS[:1])}\n")
    found = images.parse_inventory(["a:1", "b:1"], text)
    assert found.images["b:1"] is None and found.has_python
    assert found.images["a:1"].diff_ids == DIFF_IDS[:2] and found.images["a:1"].size == 1234
    assert found.chains == set(layerfilter.chain_ids(DIFF_IDS))
    with pytest.raises(images.EngineUnreachable, match="Cannot connect"):
        images.parse_inventory(["a:1"], "-\nunreachable\nCannot connect to the Docker daemon\n")
    with pytest.raises(images.TransferFailed):
        images.parse_inventory(["a:1"], "python3\n")


def test_an_engine_failing_on_a_later_name_is_its_error_not_an_odd_answer() -> None:
    text = f"python3\nsha256:abc 1234 {json.dumps(DIFF_IDS)}\nunreachable\nno space left\n"
    with pytest.raises(images.EngineUnreachable, match="no space left"):
        images.parse_inventory(["a:1", "b:1"], text)


def _through_pipes(archive: bytes, have: set[str], framed: bool = False,
                   **resume) -> tuple[bytes, int, int]:
    """filter_fds from a pipe to a pipe (so splice is used), fed and drained by threads;
    ``framed``, to a unix socket, as a push to the engine's socket does."""
    import os
    import socket
    import threading

    src_r, src_w = os.pipe()
    if framed:
        ours, theirs = socket.socketpair()
        dst_r, dst_w = theirs.detach(), ours.detach()
    else:
        dst_r, dst_w = os.pipe()
    out = bytearray()

    def feed() -> None:
        with os.fdopen(src_w, "wb") as f:
            f.write(archive)

    def drain() -> None:
        with os.fdopen(dst_r, "rb") as f:
            out.extend(f.read())

    threads = [threading.Thread(target=feed), threading.Thread(target=drain)]
    for t in threads:
        t.start()
    try:
        dropped, sent = layerfilter.filter_fds(src_r, dst_w, DIFF_IDS, have, framed=framed,
                                               **resume)
    finally:
        os.close(src_r)
        os.close(dst_w)
    for t in threads:
        t.join()
    return bytes(out), dropped, sent


@pytest.mark.parametrize("present", [0, 2])
@pytest.mark.parametrize("kept", [1, 700, 5000, -1])  # inside a header, data, a layer; all
def test_a_resumed_stream_is_the_rest_of_the_same_stream(present: int, kept: int) -> None:
    """What the receiver kept of a cut push, then what this push sends: the whole stream."""
    archive, _ = legacy_archive(DIFF_IDS)
    have = set(layerfilter.chain_ids(DIFF_IDS)[:present])
    whole, _, _ = _through_pipes(archive, have)
    kept = len(whole) if kept == -1 else kept
    prefix = whole[:kept]
    rest, _, sent = _through_pipes(archive, have, skip=kept,
                                   expect=hashlib.sha256(prefix).hexdigest())
    assert prefix + rest == whole and sent == len(rest) == len(whole) - kept


@pytest.mark.parametrize("kept", ["other", "longer"])
def test_a_kept_copy_that_is_not_this_stream_s_start_sends_nothing(kept: str) -> None:
    archive, _ = legacy_archive(DIFF_IDS)
    whole, _, _ = _through_pipes(archive, set())
    prefix = b"x" * 700 if kept == "other" else whole + b"x"
    with pytest.raises(layerfilter.ResumeMismatch):
        _through_pipes(archive, set(), skip=len(prefix),
                       expect=hashlib.sha256(prefix).hexdigest())


def _through_files(archive: bytes, have: set[str], tmp_path,
                   framed: bool = False) -> tuple[bytes, int, int]:
    """filter_fds between regular files: splice refuses them, so it copies."""
    import os

    (tmp_path / "in").write_bytes(archive)
    src = os.open(tmp_path / "in", os.O_RDONLY)
    dst = os.open(tmp_path / "out", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        dropped, sent = layerfilter.filter_fds(src, dst, DIFF_IDS, have, framed=framed)
    finally:
        os.close(src)
        os.close(dst)
    return (tmp_path / "out").read_bytes(), dropped, sent


@pytest.mark.parametrize("through", ["pipes", "files"])
@pytest.mark.parametrize("present", [0, 1, 2, 3])
def test_the_fd_filter_keeps_headers_and_data_byte_for_byte(through, present, tmp_path) -> None:
    """What it keeps is the original bytes, unchanged, whether spliced or copied."""
    archive, ids = legacy_archive(DIFF_IDS)
    have = set(layerfilter.chain_ids(DIFF_IDS)[:present])
    out, dropped, sent = (_through_pipes(archive, have) if through == "pipes"
                          else _through_files(archive, have, tmp_path))
    assert dropped == present and sent == len(out)
    original = tarfile.open(fileobj=io.BytesIO(archive))
    kept = tarfile.open(fileobj=io.BytesIO(out))
    expected = [m.name for m in original.getmembers()
                if not (m.name.endswith("/layer.tar") and ids.index(m.name[:64]) < present)]
    assert kept.getnames() == expected
    for name in expected:
        assert kept.extractfile(name).read() == original.extractfile(name).read()
    if present == 0:
        assert out == archive  # nothing to drop: the very same stream


def _chunks(body: bytes) -> list[bytes]:
    """An HTTP/1.1 chunked body, strictly: each chunk's size line, data and CRLF."""
    chunks, pos = [], 0
    while pos < len(body):
        end = body.index(b"\r\n", pos)
        size = int(body[pos:end], 16)
        assert body[end + 2 + size:end + 4 + size] == b"\r\n"
        chunks.append(body[end + 2:end + 2 + size])
        pos = end + 4 + size
    return chunks


@pytest.mark.parametrize("through", ["pipes", "files"])
@pytest.mark.parametrize("present", [0, 2])
def test_a_framed_filter_sends_the_same_bytes_in_chunks(through, present, tmp_path) -> None:
    """For the engine's socket the archive goes as an HTTP body: chunks that hold exactly
    what the unframed filter writes, none of them empty (that would end the body), and
    the caller's last chunk still to come; ``sent`` counts the framing too."""
    archive, _ = legacy_archive(DIFF_IDS)
    have = set(layerfilter.chain_ids(DIFF_IDS)[:present])
    plain, _, _ = _through_files(archive, have, tmp_path)
    framed, dropped, sent = (_through_pipes(archive, have, framed=True) if through == "pipes"
                             else _through_files(archive, have, tmp_path, framed=True))
    chunks = _chunks(framed)
    assert dropped == present and sent == len(framed)
    assert all(chunks) and b"".join(chunks) == plain


def test_the_fd_filter_follows_long_names_and_refuses_a_cut_archive(tmp_path) -> None:
    """PAX path records name the member they precede; a stream cut short is an error."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("d" * 120 + "/layer.tar")  # longer than a header's 100 bytes
        info.size = 3000
        tar.addfile(info, io.BytesIO(b"x" * 3000))
    archive = out.getvalue()
    got, dropped, _ = _through_files(archive, set(), tmp_path)
    assert got == archive and dropped == 0
    assert tarfile.open(fileobj=io.BytesIO(got)).getnames() == ["d" * 120 + "/layer.tar"]
    with pytest.raises(EOFError):
        _through_files(archive[:1500], set(), tmp_path)


def test_inventory_uses_what_is_known_and_forgets_removed_images() -> None:
    known = {"sha256:gone": DIFF_IDS, "sha256:i1": DIFF_IDS[:1]}
    text = "-\n-\n---\nsha256:i1\nsha256:i2\n---\n" f"sha256:i2 {json.dumps(DIFF_IDS[:2])}\n"
    found = images.parse_inventory(["a:1"], text, known)
    assert found.layers == {"sha256:i1": DIFF_IDS[:1], "sha256:i2": DIFF_IDS[:2]}
    # the removed image's top layer is not counted as present any more
    assert found.chains == set(layerfilter.chain_ids(DIFF_IDS[:2]))
    assert not found.has_python


def test_inventory_script_asks_only_for_unknown_ids(tmp_path) -> None:
    """Run the real script against a stand-in docker that logs what it is asked."""
    import subprocess

    log = tmp_path / "asked"
    fake = tmp_path / "docker"
    fake.write_text(
        "#!/bin/sh\n"
        f"echo \"$@\" >> {log}\n"
        "case \"$1 $2\" in\n"
        "  'image ls') printf 'sha256:b\\nsha256:a\\nsha256:b\\n' ;;\n"
        "  'image inspect') case \"$4\" in *Size*|x) echo No such image >&2; exit 1 ;; esac; shift 4; for i in \"$@\"; do echo \"$i [\\\"sha256:l-$i\\\"]\"; done ;;\n"
        "esac\n")
    fake.chmod(0o755)
    script = images.inventory_script(str(fake), ["x:1"])
    done = subprocess.run(["sh", "-c", script], input=images.known_ids({"sha256:a": []}),
                          capture_output=True, check=True)
    found = images.parse_inventory(["x:1"], done.stdout.decode(), {"sha256:a": []})
    assert found.images["x:1"] is None
    assert found.layers == {"sha256:a": [], "sha256:b": ["sha256:l-sha256:b"]}
    asked = log.read_text().splitlines()
    assert asked[-1].endswith(" sha256:b"), asked  # one inspect, of the one unknown ID


def _engine(tmp_path, answer: str):
    """A stand-in docker: logs its arguments; `answer` is sh for `image inspect`."""
    log, fake = tmp_path / "asked", tmp_path / "docker"
    fake.write_text("#!/bin/sh\n"
                    f"echo \"$@\" >> {log}\n"
                    "case \"$1 $2\" in\n"
                    "  'image ls') printf 'sha256:a\\n' ;;\n"
                    f"  'image inspect') {answer} ;;\n"
                    "esac\n")
    fake.chmod(0o755)
    return fake, log


def test_a_sender_inventory_asks_only_for_its_images(tmp_path) -> None:
    import subprocess

    fake, log = _engine(tmp_path, "echo 'sha256:x 5 [\"sha256:l\"]'")
    done = subprocess.run(["sh", "-c", images.inventory_script(str(fake), ["x:1"], layers=False)],
                          input=b"", capture_output=True, check=True)
    found = images.parse_inventory(["x:1"], done.stdout.decode())
    assert found.images["x:1"].diff_ids == ["sha256:l"] and found.chains == set()
    assert len(log.read_text().splitlines()) == 1


def test_inventory_tells_a_missing_image_from_a_dead_engine(tmp_path) -> None:
    import subprocess

    for message, missing in (("Error: No such image: x:1", True),
                             ("Cannot connect to the Docker daemon at unix:///x", False)):
        fake, _ = _engine(tmp_path, f"echo '{message}' >&2; exit 1")
        for layers in (False, True):
            script = images.inventory_script(str(fake), ["x:1"], layers)
            done = subprocess.run(["sh", "-c", script], input=b"", capture_output=True)
            if missing:
                assert images.parse_inventory(["x:1"], done.stdout.decode()).images["x:1"] is None
            else:
                with pytest.raises(images.EngineUnreachable, match="Cannot connect"):
                    images.parse_inventory(["x:1"], done.stdout.decode())


def test_inventories_run_below_the_save_in_priority(tmp_path) -> None:
    """They overlap `docker save` writing the image out, which must not wait for them."""
    import subprocess

    fake, log = _engine(tmp_path, "awk '{print \"nice \" $19}' /proc/$$/stat >> " +
                        str(tmp_path / "asked"))
    subprocess.run(["sh", "-c", images.inventory_script(str(fake), ["x:1"], layers=False)],
                   input=b"", capture_output=True, check=True)
    own = os.getpriority(os.PRIO_PROCESS, 0)
    assert f"nice {min(own + 10, 19)}" in log.read_text().splitlines()


def test_a_short_splice_waits_for_the_pipe_to_fill() -> None:
    """docker save writes 32 KiB at a time: a splice per write would wake the filter and
    ssh thousands of times per image. A short one waits a little; a full one, or the
    member's last, does not."""
    waits: list[float] = []

    class Pipes:
        def __init__(self, sizes: list[int]) -> None:
            self.sizes = sizes

        def splice(self, _src: int, _dst: int, count: int) -> int:
            return min(count, self.sizes.pop(0))

    blocks = layerfilter._Blocks(0, 1, lambda _n: None)
    blocks.sleep = waits.append
    blocks.os = Pipes([32768, 32768, 32768, 32768])
    blocks.move(100_000, keep=True)
    assert waits == [layerfilter.SPLICE_WAIT] * 3 and blocks.sent == 100_000
    waits.clear()
    blocks.os = Pipes([1 << 20, 1 << 20])
    blocks.move(2 << 20, keep=True)
    assert waits == []


def test_which_pushes_keep_a_copy_to_resume_from() -> None:
    auto = images.Resume(100)
    assert not auto.asks(99) and auto.asks(100)
    assert not auto.keeps(0, 0.002)  # a fast link: sending again is cheaper than the copy
    assert auto.keeps(0, images.FAR_SECONDS)  # a far one: the copy hides behind the link
    assert auto.keeps(1, 0.002)  # a cut push left a copy: go on from it
    assert images.Resume(100, always=True).keeps(0, 0.0)
    assert not images.Resume(0).asks(1 << 40)


def test_the_resume_setting(monkeypatch, tmp_path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    assert images.resume_setting(env) == images.Resume(images.RESUME_BYTES)
    assert images.resume_setting({**env, "REMOTE_DOCKER_RESUME_BYTES": "1"}) == \
        images.Resume(1, always=True)
    assert not images.resume_setting({**env, "REMOTE_DOCKER_RESUME_BYTES": "0"}).asks(1 << 40)
    with pytest.raises(images.UsageError, match="resume_bytes must be a number"):
        images.resume_setting({**env, "REMOTE_DOCKER_RESUME_BYTES": "lots"})


def test_a_kept_copy_is_named_by_the_image_and_the_layers_it_leaves_out() -> None:
    image = images.Image("a:1", "sha256:" + "ab" * 32, 10, DIFF_IDS)
    chains = layerfilter.chain_ids(DIFF_IDS)
    key = images.spool_key(image, set())
    assert key.startswith("abababababababab-") and key == images.spool_key(image, {"sha256:x"})
    assert images.spool_key(image, {chains[0]}) != key  # another stream
