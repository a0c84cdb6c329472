"""Drop from a `docker save` stream the layers the receiving engine already has.

`docker load` (tarexport/load.go) looks each layer of the manifest up by its
chain ID first and only opens the layer's file when the chain is missing, so
an archive without the tars of the layers the receiver holds loads exactly as
the whole one would; the image, its config and its tags are the same. That
is how `remote-docker push/pull` sends only what is missing, with no registry
on either side (unregistry's `docker pussh` needs a registry container and a
containerd image store on the docker-machine instead).

Which file is which layer: a docker 25+ archive (OCI layout) names an
uncompressed layer blob by its digest, which is the layer's diff ID. A
20.10-era archive names each layer's directory by a "v1 ID" that
tarexport/save.go derives (image/v1 CreateID) from the layer's chain ID and
its parent's v1 ID: the directory's small `json`, which comes before
`layer.tar` in the stream, lets us recompute it for each candidate layer. Only
the top layer's v1 ID also hashes the full image config, so a directory that
matches no lower layer is taken for the top one: since the top layer's chain
ID covers every layer below it, dropping on that assumption is only done when
every layer is present anyway, so a mistake costs bytes, never a broken image.

Standard library only, and runnable as a script (`python3 -c SOURCE SPEC`,
the archive on stdin): `pull` runs this very file on the docker-machine.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tarfile

BUFFER = 1 << 20  # per read or splice: tarfile's 10 KiB reads had cost a syscall each
# A splice returns as soon as anything is in the pipe, and docker save writes 32 KiB
# at a time: passing 100 MiB took ~3,800 splices, each waking this process and the
# reader behind it, on cores both engines need (a first push ~6% slower than
# save|load; any process in between, even cat, cost as much). After a short one the
# filter waits this long for the pipe to fill: ~190 splices, and no slower than
# save|load. A stream that is really that slow loses nothing by it.
SPLICE_BATCH = 256 << 10
SPLICE_WAIT = 0.002


def chain_ids(diff_ids: list[str]) -> list[str]:
    """The chain ID of each prefix of the layer list (the layer store's keys)."""
    chains: list[str] = []
    for diff_id in diff_ids:
        if not chains:
            chains.append(diff_id)
        else:
            text = f"{chains[-1]} {diff_id}".encode()
            chains.append("sha256:" + hashlib.sha256(text).hexdigest())
    return chains


def _go_json(fields: dict) -> str:
    """json.Marshal of Go's map[string]*json.RawMessage: top-level keys sorted, values
    as they were (Python keeps the nested order it parsed), HTML characters escaped."""
    parts = []
    for key in sorted(fields):
        raw = json.dumps(fields[key], separators=(",", ":"), ensure_ascii=False)
        raw = raw.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        parts.append(json.dumps(key) + ":" + raw)
    return "{" + ",".join(parts) + "}"


def legacy_layer_index(directory: str, v1_json: bytes, chains: list[str]) -> int | None:
    """Which lower layer (not the top) a 20.10-format layer directory holds, or None."""
    try:
        fields = json.loads(v1_json)
    except ValueError:
        return None
    if not isinstance(fields, dict):
        return None
    parent = fields.pop("parent", None)
    for name in ("id", "os"):  # set after the ID was computed (save.go)
        fields.pop(name, None)
    for index, chain in enumerate(chains[:-1]):
        candidate = dict(fields, layer_id=chain)
        if parent:
            candidate["parent"] = "sha256:" + parent
        if hashlib.sha256(_go_json(candidate).encode()).hexdigest() == directory:
            return index
    return None


class LayerFilter:
    """Decides, member by member, what of one image's archive to pass on."""

    def __init__(self, diff_ids: list[str], present: set[str]) -> None:
        self.diff_ids = diff_ids
        self.chains = chain_ids(diff_ids)
        self.present = present
        self.v1_json: dict[str, bytes] = {}
        self.dropped = 0

    def layer_of(self, name: str) -> int | None:
        """The index of the layer a member holds, or None if it is not a layer's data."""
        parts = name.split("/")
        if len(parts) == 3 and parts[:2] == ["blobs", "sha256"]:
            digest = "sha256:" + parts[2]
            return self.diff_ids.index(digest) if digest in self.diff_ids else None
        if len(parts) == 2 and parts[1] == "layer.tar" and self.chains:
            found = legacy_layer_index(parts[0], self.v1_json.get(parts[0], b""), self.chains)
            return len(self.chains) - 1 if found is None else found
        return None

    def keep(self, member: tarfile.TarInfo) -> bool:
        if not member.isfile():
            return True
        index = self.layer_of(member.name)
        if index is None or self.chains[index] not in self.present:
            return True
        self.dropped += 1
        return False


BLOCK = 512


class ResumeMismatch(Exception):
    """The receiver's copy of an earlier, cut transfer is not how this stream begins."""


class _Blocks:
    """Reads a tar stream from a file descriptor: headers into memory, data passed on
    with ``splice`` (no copy through Python) where both ends are pipes.

    ``skip``: the receiver holds that many bytes of this very stream from a transfer
    that was cut (``images.Resume``); they are read and hashed, not sent,
    and must hash to ``expect`` before a byte more goes out.
    """

    def __init__(self, src: int, dst: int, tick, framed: bool = False, skip: int = 0,
                 expect: str = "") -> None:
        import os
        import time

        if skip and framed:
            raise ValueError("a framed (API) load cannot resume")
        self.os, self.src, self.dst, self.tick = os, src, dst, tick
        self.sleep = time.sleep
        self.buf = b""
        self.sent = 0
        self.splice = hasattr(os, "splice")
        self.framed = framed
        self.skip, self.expect = skip, expect
        self.prefix = hashlib.sha256()

    def _skipped(self, data: bytes) -> bytes:
        """What of ``data`` is left once the resumed prefix has been taken from it."""
        head, data = data[:self.skip], data[self.skip:]
        self.prefix.update(head)
        self.skip -= len(head)
        if not self.skip and self.prefix.hexdigest() != self.expect:
            raise ResumeMismatch("the receiver's kept copy differs from this stream")
        return data

    def finish(self) -> None:
        if self.skip:  # the stream ended inside what the receiver already had
            raise ResumeMismatch("the receiver's kept copy is longer than this stream")

    def read(self, size: int) -> bytes:
        """Exactly ``size`` bytes (header blocks, small members); EOFError if cut short."""
        while len(self.buf) < size:
            chunk = self.os.read(self.src, max(BUFFER, size - len(self.buf)))
            if not chunk:
                raise EOFError("the archive ended in the middle of a member")
            self.buf += chunk
        data, self.buf = self.buf[:size], self.buf[size:]
        return data

    def _put(self, data: bytes) -> None:
        if self.skip:
            data = self._skipped(data)
        view = memoryview(data)
        while view:
            view = view[self.os.write(self.dst, view):]
        self.sent += len(data)

    def write(self, data: bytes) -> None:
        """Pass on bytes read into memory; framed, as one chunk (an empty one would end
        the body)."""
        if data:
            self._put(b"%x\r\n%b\r\n" % (len(data), data) if self.framed else data)
            self.tick(len(data))

    def move(self, size: int, keep: bool) -> None:
        """Pass (or with ``keep`` false, skip) the next ``size`` bytes of the stream."""
        if self.buf:
            head, self.buf = self.buf[:size], self.buf[size:]
            size -= len(head)
            if keep:
                self.write(head)
        if keep and self.framed and size:  # one chunk, announced before it is spliced
            self._put(b"%x\r\n" % size)
            self._pass(size, keep)
            self._put(b"\r\n")
        else:
            self._pass(size, keep)

    def _pass(self, size: int, keep: bool) -> None:
        while size:
            if keep and self.splice and not self.skip:
                try:
                    done = self.os.splice(self.src, self.dst, min(size, BUFFER))
                except OSError:  # not pipes at both ends: copy instead
                    self.splice = False
                    continue
                if not done:
                    raise EOFError("the archive ended in the middle of a member")
                self.sent += done
                self.tick(done)
                size -= done
                if size and done < SPLICE_BATCH:
                    self.sleep(SPLICE_WAIT)
                continue
            chunk = self.os.read(self.src, min(size, BUFFER))
            if not chunk:
                raise EOFError("the archive ended in the middle of a member")
            size -= len(chunk)
            if keep:
                self._put(chunk)
                self.tick(len(chunk))

    def rest(self) -> None:
        """After the end-of-archive blocks: whatever follows, as it is."""
        self.write(self.buf)
        self.buf = b""
        while chunk := self.os.read(self.src, BUFFER):
            self.write(chunk)


def _header_size(header: bytes) -> int:
    field = header[124:136]
    if field[0] & 0x80:  # base-256, for members of 8 GiB and more
        return int.from_bytes(field[1:], "big")
    return int(field.rstrip(b"\0 ").strip() or b"0", 8)


def _header_name(header: bytes) -> str:
    name = header[0:100].split(b"\0", 1)[0]
    if header[257:262] == b"ustar":
        prefix = header[345:500].split(b"\0", 1)[0]
        if prefix:
            name = prefix + b"/" + name
    return name.decode("utf-8", "surrogateescape")


def _pax_path(data: bytes) -> str | None:
    """The ``path`` record of a PAX extended header, if it has one."""
    pos = 0
    while pos < len(data):
        space = data.index(b" ", pos)
        length = int(data[pos:space])
        key, _, value = data[space + 1:pos + length - 1].partition(b"=")
        if key == b"path":
            return value.decode("utf-8", "surrogateescape")
        pos += length
    return None


def filter_fds(src: int, dst: int, diff_ids: list[str], present: set[str],
               tick=lambda n: None, framed: bool = False, skip: int = 0,
               expect: str = "") -> tuple[int, int]:
    """Copy the archive from ``src`` to ``dst`` without the layers present: (layers
    dropped, bytes written).

    Headers are passed on as they came (byte for byte) and a kept layer's data is
    spliced from pipe to pipe, so the hundreds of MiB of a first push never pass
    through Python; tarfile re-encoded every header and copied every byte twice.
    ``framed``: ``dst`` is an HTTP request's body (``transport.engine_load``), so
    what is written goes in chunks; the last, empty one is the caller's to send.
    ``skip``/``expect``: resume after the first ``skip`` bytes of the output, which the
    receiver holds already and which must hash (sha256) to ``expect``; ResumeMismatch
    if they do not, before anything past them is written.
    """
    decide = LayerFilter(diff_ids, present)
    stream = _Blocks(src, dst, tick, framed, skip, expect)
    pending = b""  # PAX / GNU long-name headers that belong to the next member
    override: str | None = None
    while True:
        header = stream.read(BLOCK)
        if header == bytes(BLOCK):
            stream.write(pending + header)
            stream.rest()
            stream.finish()
            return decide.dropped, stream.sent
        size = _header_size(header)
        padded = -size % BLOCK + size
        kind = header[156:157]
        if kind in (b"x", b"L"):  # applies to the next member: kept or dropped with it
            data = stream.read(padded)
            if kind == b"x":
                override = _pax_path(data[:size]) or override
            else:
                override = data[:size].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            pending += header + data
            continue
        name = override or _header_name(header)
        override = None
        parts = name.split("/")
        regular = kind in (b"0", b"\0", b"7")
        if regular and parts[-1] == "json" and len(parts) == 2 and size <= BUFFER:
            data = stream.read(padded)
            decide.v1_json[parts[0]] = data[:size]
            stream.write(pending + header + data)
        else:
            member = tarfile.TarInfo(name)
            member.type = tarfile.REGTYPE if regular else tarfile.DIRTYPE
            keep = decide.keep(member)
            if keep:
                stream.write(pending + header)
            stream.move(padded, keep)
        pending = b""


def pass_fds(src: int, dst: int, tick=lambda n: None) -> int:
    """Copy ``src`` to ``dst`` until it ends; the bytes written. For a stream that needs no
    filter here and could not be parsed (a resumed pull starts inside the archive)."""
    stream = _Blocks(src, dst, tick)
    stream.rest()
    return stream.sent


MISMATCH_STATUS = 3  # main's exit status when the receiver's kept copy is not the stream's start


def main(argv: list[str]) -> int:
    """`python3 -c SOURCE '{"layers": [...], "present": [...]}'`: stdin to stdout, both
    pipes in a pull (`docker save | python3 -c …` in an ssh session), so spliced. With
    "skip" and "expect", a resumed pull: the workstation kept that much already."""
    import fcntl

    spec = json.loads(argv[1])
    for fd in (0, 1):  # 1 MiB, as a push's: from sshd's 64 KiB every splice would be short
        try:
            fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
        except OSError:
            pass
    try:
        filter_fds(0, 1, spec["layers"], set(spec["present"]), skip=spec.get("skip", 0),
                   expect=spec.get("expect", ""))
    except ResumeMismatch as exc:
        sys.stderr.write(f"{exc}\n")
        return MISMATCH_STATUS
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
