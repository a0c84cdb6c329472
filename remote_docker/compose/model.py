"""The project's model, with workstation bind sources turned into reverse-mount volumes.

``compose config`` prints the project fully resolved: interpolated from
``.env`` and the environment, ``env_file`` folded into ``environment``, every
relative path made absolute, ``$`` escaped again as ``$$``.  In it, a bind
mount's source is a path on the workstation, which the engine's host does
not have.  ``rewrite`` replaces each one by a placeholder volume and lists
what must be served; ``name_volumes`` then puts the mounts' ``rd-<uuid>``
volumes in, declared ``external`` so that compose uses them as they are and
never removes them (``down -v`` included): their keepers do, after the last
container using them is gone.

Both shapes compose prints are understood: v1's short ``SRC:DST[:MODE]`` and
v2's long ``{type: bind, source, target, read_only}``.  The volume is written
in the short form, which every file format version accepts, with ``nocopy``:
docker copies image content into an empty volume, never into a bind mount.
A single file is served by a mount of its directory and bound from there by
its path on the docker-machine (the keeper counts such a container as a user
of the mount: ``remote.release_volume``); so are file ``secrets`` (turned into
the read-only binds compose makes of them) and ``configs``' files.
"""

import os

from remote_docker.bind_sources import REMOTE_PREFIX, is_workstation_path

PLACEHOLDER = "rd-compose-mount-"


class BindSource:
    """One workstation directory a service binds, and how."""

    __slots__ = ("local_path", "readonly")

    def __init__(self, local_path: str, readonly: bool) -> None:
        self.local_path = local_path  # absolute
        self.readonly = readonly

    def key(self) -> tuple[str, bool]:
        return self.local_path, self.readonly

    def __repr__(self) -> str:
        return f"BindSource({self.local_path!r}, ro={self.readonly})"


def rewrite(model: dict) -> list[BindSource]:
    """Replace workstation bind sources in ``model`` (in place) by placeholders; list them.

    One placeholder per directory and mode, whatever the number of services
    that bind it.  ``@/path`` (a path on the docker-machine, as with
    ``docker run``) becomes ``/path`` and is left a bind mount.
    """
    sources: list[BindSource] = []
    for service in (model.get("services") or {}).values():
        if not isinstance(service, dict):
            continue
        if service.get("secrets"):
            _secrets_as_binds(service, model.get("secrets") or {}, sources)
        if service.get("volumes"):
            service["volumes"] = [_rewrite_one(v, sources) for v in service["volumes"]]
    for entry in (model.get("configs") or {}).values():  # compose v2 binds these files
        path = entry.get("file") if isinstance(entry, dict) else None
        if isinstance(path, str) and os.path.isfile(path):
            entry["file"] = _file_entry(path, sources)
    return sources


def _secrets_as_binds(service: dict, declared: dict, sources: list[BindSource]) -> None:
    """A secret from a workstation file becomes the read-only bind compose would make of it.

    Compose (without swarm) binds a file secret at ``/run/secrets/<name>``
    (or its relative or absolute ``target``); done here, the file comes from
    a mount, and compose does not look for the docker-machine's path here.
    """
    kept = []
    for ref in service["secrets"]:
        name = ref if isinstance(ref, str) else (ref or {}).get("source")
        path = (declared.get(name) or {}).get("file") if isinstance(name, str) else None
        if not (isinstance(path, str) and os.path.isfile(path)):
            kept.append(ref)
            continue
        target = (ref.get("target") if isinstance(ref, dict) else None) or name
        target = target if target.startswith("/") else f"/run/secrets/{target}"
        service.setdefault("volumes", []).append(f"{path}:{target}:ro")
    if kept:
        service["secrets"] = kept
    else:
        del service["secrets"]


def _file_entry(path: str, sources: list[BindSource]) -> str:
    ref = _placeholder(os.path.dirname(os.path.abspath(path)), True, sources)
    return f"{ref}/{os.path.basename(path)}"


def _rewrite_one(volume, sources: list[BindSource]):
    if isinstance(volume, str):
        return _rewrite_short(volume, sources)
    if isinstance(volume, dict) and volume.get("type") == "bind":
        return _rewrite_long(volume, sources)
    return volume


def _rewrite_short(volume: str, sources: list[BindSource]) -> str:
    fields = volume.split(":")
    if len(fields) < 2:
        return volume  # an anonymous volume: only a container path
    source, target, modes = fields[0], fields[1], fields[2].split(",") if len(fields) > 2 else []
    if source.startswith(REMOTE_PREFIX + "/"):
        return ":".join([source[1:], *fields[1:]])
    if not is_workstation_path(source):
        return volume
    return _entry(source, target, "ro" in modes, sources)


def _rewrite_long(volume: dict, sources: list[BindSource]) -> str | dict:
    source = str(volume.get("source", ""))
    if source.startswith(REMOTE_PREFIX + "/"):
        return {**volume, "source": source[1:]}
    if not is_workstation_path(source):
        return volume
    return _entry(source, str(volume["target"]), bool(volume.get("read_only")), sources)


def _entry(source: str, target: str, readonly: bool, sources: list[BindSource]) -> str:
    """The short-syntax entry, around a placeholder for the mount of ``source``.

    A directory is the mount's volume (``nocopy``); a single file is bound
    from its path inside the mount of its directory on the docker-machine.
    """
    path = os.path.abspath(source)
    mode = "ro" if readonly else "rw"
    if os.path.exists(path) and not os.path.isdir(path):
        ref = _placeholder(os.path.dirname(path), readonly, sources)
        return f"{ref}/{os.path.basename(path)}:{target}:{mode}"
    return f"{_placeholder(path, readonly, sources)}:{target}:{mode},nocopy"


def _placeholder(directory: str, readonly: bool, sources: list[BindSource]) -> str:
    wanted = BindSource(directory, readonly)
    for index, known in enumerate(sources):
        if known.key() == wanted.key():
            return f"{PLACEHOLDER}{index}"
    sources.append(wanted)
    return f"{PLACEHOLDER}{len(sources) - 1}"


def name_volumes(model: dict, volumes: list[str], mountpoints: list[str]) -> None:
    """Put each mount's volume (or, for a file, its path there) where its placeholder is.

    The volumes used are declared external.
    """
    used: set[str] = set()
    for service in (model.get("services") or {}).values():
        if isinstance(service, dict) and service.get("volumes"):
            service["volumes"] = [_substitute(v, volumes, mountpoints, used)
                                  for v in service["volumes"]]
    for entry in (model.get("configs") or {}).values():
        if isinstance(entry, dict) and "file" in entry:
            entry["file"] = _substitute(entry["file"], volumes, mountpoints, used)
    declared = model.get("volumes") or {}
    for name in volumes:
        if name in used:
            declared[name] = {"external": True}
    if declared:
        model["volumes"] = declared


def _substitute(volume, volumes: list[str], mountpoints: list[str], used: set[str]):
    if not (isinstance(volume, str) and volume.startswith(PLACEHOLDER)):
        return volume
    rest = volume[len(PLACEHOLDER):]
    digits = len(rest) - len(rest.lstrip("0123456789"))
    index, rest = int(rest[:digits]), rest[digits:]
    if rest.startswith("/"):  # a file inside the mount
        return mountpoints[index] + rest
    used.add(volumes[index])
    return volumes[index] + rest
