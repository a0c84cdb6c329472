"""Which ``-v``/``--mount`` sources are workstation paths, and the argv that replaces them.

With a local docker, ``docker run -v ./src:/src`` binds the directory of the
machine you typed it on.  Through the shim that machine is the workstation,
so such a source becomes a reverse mount: this module finds them and rewrites
the option around a placeholder, which the caller replaces, once the mount is
live, by the mount's docker volume (a directory) or by its path on the
docker-machine (a single file).  Pure logic: no mount is made here.

Rules, as documented in the README:

* a source is a workstation path when it is absolute or starts with ``.``
  (docker itself reads a bare word as a named volume, which stays untouched);
* ``@/path`` names a path on the docker-machine itself, passed on as ``/path``;
* ``-v`` with a missing source creates the directory, as docker does on its
  own host; ``--mount type=bind`` with a missing source is docker's error;
* the volume is mounted ``nocopy``: docker copies image content into an
  empty *volume* (chowning its root, which the jailed server refuses), never
  into a *bind* mount, which is what the user asked for.
"""

import os

from remote_docker.dockercli import Option
from remote_docker.errors import CreateRefused, UsageError

PLACEHOLDER = "\x00rd-mount:"
REMOTE_PREFIX = "@"
_VOLUME_MODES = ("ro", "rw", "nocopy", "z", "Z")


class MountRequest:
    """One workstation path to serve to the docker-machine."""

    __slots__ = ("local_path", "readonly", "is_file", "create")

    def __init__(self, local_path: str, readonly: bool, is_file: bool, create: bool) -> None:
        self.local_path = local_path  # absolute, symlinks resolved
        self.readonly = readonly
        self.is_file = is_file
        self.create = create          # the directory does not exist yet: make it first

    def __repr__(self) -> str:
        return f"MountRequest({self.local_path!r}, ro={self.readonly}, file={self.is_file})"


def is_workstation_path(source: str) -> bool:
    return source.startswith("/") or source.startswith(".")


def placeholder(index: int) -> str:
    return f"{PLACEHOLDER}{index}"


def substitute(argv: list[str], targets: list[str]) -> list[str]:
    """argv with each placeholder replaced by its request's volume name or remote path."""
    out = []
    for word in argv:
        while PLACEHOLDER in word:
            before, _, rest = word.partition(PLACEHOLDER)
            digits = len(rest) - len(rest.lstrip("0123456789"))
            word = before + targets[int(rest[:digits])] + rest[digits:]
        out.append(word)
    return out


def _request(source: str, cwd: str, readonly: bool, create_missing: bool,
             requests: list[MountRequest]) -> str:
    path = os.path.realpath(os.path.join(cwd, source))
    exists = os.path.exists(path)
    if not exists and not create_missing:
        raise CreateRefused("Error response from daemon: invalid mount config for type "
                            f"\"bind\": bind source path does not exist: {path}")
    requests.append(MountRequest(path, readonly, exists and not os.path.isdir(path), not exists))
    return placeholder(len(requests) - 1)


def volume_spec_problem(spec: str) -> str | None:
    """The CLI's own check of a ``-v`` value (compose-go's ``ParseVolume``, without Windows
    drives), made before it sends anything: its words, or None."""
    if not spec:
        return "invalid empty volume spec"
    if len(spec) <= 2:
        return None
    fields = spec.split(":")
    for index, field in enumerate(fields):
        if not field:
            return f"invalid spec: {spec}: empty section between colons"
        if index == 2 and index < len(fields) - 1:
            return f"invalid spec: {spec}: too many colons"
    return None


_MODE_CLASSES = ({"rw", "ro"}, {"z", "Z"},
                 {"shared", "rshared", "slave", "rslave", "private", "rprivate"},
                 {"nocopy"}, {"consistent", "delegated", "cached"})


def valid_bind_mode(mode: str) -> bool:
    """The engine's ``linuxValidMountMode``: known words, at most one of each kind. Checked
    here because the modes a volume cannot take are dropped from the rewritten ``-v``, and
    with them the engine's chance to refuse a typing mistake."""
    if not mode:
        return True
    counts = [0] * len(_MODE_CLASSES)
    for word in mode.split(","):
        kinds = [i for i, kind in enumerate(_MODE_CLASSES) if word in kind]
        if not kinds:
            return False
        counts[kinds[0]] += 1
    return max(counts) <= 1


def translate_volume(opt: Option, cwd: str, requests: list[MountRequest]) -> list[str] | None:
    """``-v SRC:DST[:MODES]``: the replacement words, or None to leave it alone."""
    problem = volume_spec_problem(opt.value or "")
    if problem:
        raise UsageError(problem)
    fields = opt.value.split(":") if opt.value else []
    if len(fields) < 2:
        return None
    source, rest = fields[0], fields[1:]
    if source.startswith(REMOTE_PREFIX + "/"):
        return [opt.name, ":".join([source[1:], *rest])]
    if not is_workstation_path(source):
        return None
    modes = rest[1].split(",") if len(rest) > 1 else []
    if len(rest) > 1 and not valid_bind_mode(rest[1]):  # before a mount is made for it
        raise CreateRefused(f"Error response from daemon: invalid mode: {rest[1]}")
    readonly = "ro" in modes
    ref = _request(source, cwd, readonly, True, requests)
    if requests[-1].is_file:
        kept = modes  # a file is bound from its path inside the mount: any bind mode applies
    else:  # a bind mount never copies image content in; a volume must be told (nocopy)
        kept = [m for m in modes if m in _VOLUME_MODES and m != "nocopy"] + ["nocopy"]
    return [opt.name, ":".join([ref, rest[0], *([",".join(kept)] if kept else [])])]


def translate_mount(opt: Option, cwd: str, requests: list[MountRequest]) -> list[str] | None:
    """``--mount type=bind,source=…,target=…``: the replacement words, or None."""
    import csv  # docker reads --mount as one CSV record; only paid when --mount is used

    fields = next(csv.reader([opt.value or ""]))
    pairs = [f.split("=", 1) if "=" in f else [f, ""] for f in fields]
    keys = {k.lower(): v for k, v in pairs}
    source = keys.get("source", keys.get("src", ""))
    if keys.get("type", "volume") != "bind" or not source:
        return None
    if source.startswith(REMOTE_PREFIX + "/"):
        rewritten = [f"{k}={source[1:]}" if k.lower() in ("source", "src") else
                     (f"{k}={v}" if "=" in f else k) for (k, v), f in zip(pairs, fields)]
        return [opt.name, _csv_join(rewritten)]
    if not is_workstation_path(source):
        return None
    readonly = keys.get("readonly", keys.get("ro", "false")) in ("", "true", "1")
    ref = _request(source, cwd, readonly, False, requests)
    target = keys.get("target", keys.get("destination", keys.get("dst", "")))
    if requests[-1].is_file:
        spec = ["type=bind", f"source={ref}", f"target={target}"]
    else:
        spec = ["type=volume", f"source={ref}", f"target={target}", "volume-nocopy"]
    return [opt.name, _csv_join(spec + (["readonly"] if readonly else []))]


def _csv_join(fields: list[str]) -> str:
    return ",".join('"' + f.replace('"', '""') + '"' if "," in f or '"' in f else f
                    for f in fields)
