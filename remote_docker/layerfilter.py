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
import io
import json
import sys
import tarfile
from typing import BinaryIO

BUFFER = 1 << 20  # tarfile's default 10 KiB reads cost a syscall per 10 KiB


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


def filter_archive(source: BinaryIO, sink: BinaryIO, diff_ids: list[str],
                   present: set[str]) -> int:
    """Copy the archive from source to sink without the layers present; how many dropped."""
    decide = LayerFilter(diff_ids, present)
    with tarfile.open(fileobj=source, mode="r|", bufsize=BUFFER) as reader, \
            tarfile.open(fileobj=sink, mode="w|", bufsize=BUFFER, format=tarfile.PAX_FORMAT,
                         copybufsize=BUFFER) as writer:
        for member in reader:
            data = reader.extractfile(member) if member.isfile() else None
            parts = member.name.split("/")
            if data is not None and parts[-1] == "json" and len(parts) == 2:
                content = data.read()
                decide.v1_json[parts[0]] = content
                writer.addfile(member, io.BytesIO(content))
            elif decide.keep(member):
                writer.addfile(member, data)
    return decide.dropped


def main(argv: list[str]) -> int:
    """`python3 -c SOURCE '{"layers": [...], "present": [...]}'`: stdin to stdout."""
    spec = json.loads(argv[1])
    filter_archive(sys.stdin.buffer, sys.stdout.buffer, spec["layers"], set(spec["present"]))
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
