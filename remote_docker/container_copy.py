"""``docker cp`` between workstation paths and the docker-machine's containers.

The remote docker only ever sees ``docker cp - C:DIR`` (a tar on stdin) or
``docker cp C:PATH -`` (a tar on stdout); the workstation side does what the
docker CLI does locally (cli/command/container/cp.go, pkg/archive/copy.go):
stat the container path (the same ``HEAD …/archive`` API call, through
``docker system dial-stdio``), decide the directory to extract to and rename
the archive's top entry, follow ``-L`` links, and apply the destination
rules (exists, is a directory, trailing ``/``).  Extraction uses tarfile's
``tar_filter`` so no entry can land outside the destination, with modes kept
and nothing chowned, as docker's ``NoLchown``.
"""

import base64
import json
import os
import sys
import tarfile
import urllib.parse

from remote_docker import gofs, tarstream
from remote_docker.build_context import human_size
from remote_docker.dockercli import DockerCommand
from remote_docker.errors import DockerError, UsageError
from remote_docker.forward import Plan

MODE_DIR = 1 << 31      # Go's os.ModeDir
MODE_SYMLINK = 1 << 27  # os.ModeSymlink
MODE_DEVICE = 1 << 26
MODE_IRREGULAR = 1 << 19


def split_arg(arg: str) -> tuple[str, str]:
    """docker's ``splitCpArg``: (container, path); container "" for a local path."""
    if arg.startswith("/"):
        return "", arg
    container, colon, path = arg.partition(":")
    if not colon or container.startswith("."):
        return "", arg
    return container, path


def is_local_copy(cmd: DockerCommand) -> bool:
    """One side is a workstation path (not ``-``): the workstation must read or write it."""
    args = [a for _, a in cmd.positionals]
    if len(args) != 2:
        return False
    (src_c, src), (dst_c, dst) = split_arg(args[0]), split_arg(args[1])
    return bool(src_c) != bool(dst_c) and (src if not src_c else dst) != "-"


# -- paths, as pkg/archive names them ---------------------------------------------


def _trailing(path: str) -> bool:
    return path.endswith("/")


def _current_dir(path: str) -> bool:
    return os.path.basename(path) == "."


def split_dir_entry(path: str) -> tuple[str, str]:
    """``SplitPathDirEntry``: ``a/b/`` is (a, b), ``a/b/.`` is (a/b, .)."""
    cleaned = os.path.normpath(path)
    if _current_dir(path):
        cleaned += "/."
    return os.path.dirname(cleaned) or ".", os.path.basename(cleaned)


def preserve(cleaned: str, original: str) -> str:
    """``PreserveTrailingDotOrSeparator``."""
    if _current_dir(original) and not _current_dir(cleaned):
        cleaned += "/."
    if _trailing(original) and not _trailing(cleaned):
        cleaned += "/"
    return cleaned


def rebase_name(path: str, resolved: str) -> tuple[str, str]:
    """``GetRebaseName``: the resolved path and the name the archive should carry, if any."""
    resolved = preserve(resolved, path)
    base = os.path.basename(os.path.normpath(path)) if not _current_dir(path) else "."
    return resolved, base if base != os.path.basename(os.path.normpath(resolved)) \
        and not (_current_dir(path) and _current_dir(resolved)) else ""


def prepare(src_path: str, src_is_dir: bool, src_rebase: str,
            dst_path: str, dst_exists: bool, dst_is_dir: bool) -> tuple[str, tuple[str, str] | None]:
    """``PrepareArchiveCopy``: the directory to extract to and the (old, new) entry rename."""
    dst_dir, dst_base = split_dir_entry(dst_path)
    _, src_base = split_dir_entry(src_path)
    if src_rebase:
        src_base = src_rebase
    if dst_exists and dst_is_dir:
        return dst_path, None
    if dst_exists and src_is_dir:
        raise DockerError("cannot copy directory")
    if not dst_exists and not src_is_dir and _trailing(dst_path):
        raise DockerError("no such directory")
    return dst_dir, (src_base, dst_base)


def renamed(name: str, rename: tuple[str, str] | None) -> str:
    """``RebaseArchiveEntries``: docker replaces the first occurrence, wherever it is."""
    return name.replace(rename[0], rename[1], 1) if rename else name


# -- the container side --------------------------------------------------------------


class ContainerStat:
    __slots__ = ("exists", "mode", "link_target", "refused")

    def __init__(self, exists: bool, mode: int = 0, link_target: str = "",
                 refused: str = "") -> None:
        self.exists, self.mode, self.link_target = exists, mode, link_target
        self.refused = refused  # the engine's error for the container itself, if any

    @property
    def is_dir(self) -> bool:
        return bool(self.mode & MODE_DIR)

    @property
    def is_symlink(self) -> bool:
        return bool(self.mode & MODE_SYMLINK)


def stat_request(container: str, path: str) -> bytes:
    """The path's stat, then (same connection, no extra round trip) the container itself:
    the stat's 404 does not tell a missing path from a missing container, which docker
    reports as the engine's own error."""
    query = urllib.parse.urlencode({"path": path})
    name = urllib.parse.quote(container, safe="")
    return (f"HEAD /containers/{name}/archive?{query} HTTP/1.1\r\nHost: docker\r\n\r\n"
            f"GET /containers/{name}/json HTTP/1.1\r\nHost: docker\r\n"
            "Connection: close\r\n\r\n").encode()


def parse_stat(response: bytes) -> ContainerStat:
    """The ``X-Docker-Container-Path-Stat`` header of the engine's answer; for a container
    that is not there, the engine's error as docker prints it (``refused``), which docker
    reports only once the source has been looked at."""
    first, _, rest = response.partition(b"\r\n\r\n")  # a HEAD answer has no body
    head = first.decode("latin-1").split("\r\n")
    if not head or " 200 " not in head[0] + " ":
        if rest.split(b" ", 2)[1:2] == [b"404"]:
            body = rest[rest.find(b"{"):rest.rfind(b"}") + 1]
            try:
                said = json.loads(body)["message"]
            except (ValueError, KeyError, TypeError):
                said = "No such container"
            return ContainerStat(False, refused=f"Error response from daemon: {said}")
        return ContainerStat(False)
    for line in head[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "x-docker-container-path-stat":
            info = json.loads(base64.b64decode(value.strip()))
            return ContainerStat(True, int(info.get("mode", 0)), info.get("linkTarget", ""))
    return ContainerStat(False)


def stat_container_path(master, container: str, path: str) -> ContainerStat:
    """Stat a path in a container as the docker CLI does (errors mean "does not exist")."""
    from remote_docker.transport import quoting

    status, out = master.capture(quoting.join(["docker", "system", "dial-stdio"]) +
                                 " 2>/dev/null",  # its log lines on a closed connection
                                 stat_request(container, path))
    return parse_stat(out) if status == 0 else ContainerStat(False)


def _follow(master, container: str, path: str, st: ContainerStat) -> tuple[str, ContainerStat]:
    target = st.link_target
    if not target.startswith("/"):
        target = os.path.join(split_dir_entry(path)[0], target)
    return target, stat_container_path(master, container, target)


# -- workstation -> container ----------------------------------------------------------


def resolve_local(path: str) -> str:
    """``resolveLocalPath``: absolute, keeping a trailing ``/`` or ``/.``."""
    return preserve(os.path.abspath(path), path)


def source_info(path: str, follow: bool) -> tuple[str, bool, str]:
    """``CopyInfoSourcePath``: (resolved path, is a directory, rebase name).

    Without ``-L``, docker resolves the parent's links and appends the last
    element with a ``/`` of its own (``ResolveHostSourcePath``), so what its
    error names for ``/x`` is ``//x``: the same string here.
    """
    if follow:
        resolved, rebase = rebase_name(path, gofs.eval_symlinks(path))
        shown = resolved
    else:
        parent, base = path[:path.rfind("/") + 1], path[path.rfind("/") + 1:]
        real_parent = gofs.eval_symlinks(parent or ".")
        shown = real_parent + "/" + base
        resolved = os.path.join(real_parent, base)
        rebase = os.path.basename(os.path.normpath(path)) \
            if _trailing(path) and os.path.basename(os.path.normpath(path)) != \
            os.path.basename(os.path.normpath(resolved)) else ""
    try:
        st = os.lstat(resolved)
    except OSError as exc:
        raise DockerError(f"lstat {shown}: {gofs.reason(exc)}") from None
    return resolved, os.path.isdir(resolved) if follow else _is_dir(st), rebase


def _is_dir(st: os.stat_result) -> bool:
    import stat

    return stat.S_ISDIR(st.st_mode)


class SourceArchive:
    """``TarResourceRebase`` + ``RebaseArchiveEntries``, written straight to the remote stdin."""

    def __init__(self, resolved: str, rebase: str, rename: tuple[str, str] | None) -> None:
        self.source_dir, self.base = split_dir_entry(resolved)
        self.rebase = rebase
        self.rename = rename
        self.sent = 0

    def _name(self, relative: str) -> str:
        name = relative
        if self.rebase:
            name = self.rebase + name[len(self.base):]
        return renamed(name, self.rename)

    def write(self, out) -> None:
        writer = tarstream.TarWriter(out)
        root = os.path.join(self.source_dir, self.base)
        top = self.base
        writer.add(root if self.base != "." else self.source_dir, self._name(top))
        if _is_dir(os.lstat(root)):
            for path, name, st in tarstream.walk(root, lambda n, s: (True, True)):
                writer.add(path, self._name(f"{top}/{name}"), st)
        writer.close()
        self.sent = writer.sent


# -- container -> workstation ----------------------------------------------------------


def destination_info(path: str) -> tuple[str, bool, bool]:
    """``CopyInfoDestinationPath``: (path, exists, is a directory), links followed."""
    for _ in range(12):
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            parent = split_dir_entry(path)[0]
            if not os.path.exists(parent):
                raise DockerError(f"stat {parent}: no such file or directory") from None
            if not os.path.isdir(parent):
                raise DockerError("not a directory") from None
            return path, False, False
        import stat

        if not stat.S_ISLNK(st.st_mode):
            return path, True, stat.S_ISDIR(st.st_mode)
        target = os.readlink(path)
        path = target if target.startswith("/") else os.path.join(split_dir_entry(path)[0], target)
    raise DockerError(f"too many symlinks in {path}")


class Extraction:
    """Extracts the remote ``docker cp C:PATH -`` stream into the workstation destination."""

    def __init__(self, src_path: str, src_rebase: str, dst_path: str) -> None:
        self.src_path = src_path
        self.src_rebase = src_rebase
        self.dst_path = dst_path
        self.received = 0

    def read(self, source) -> None:
        counted = _Counted(source, self)
        try:
            tar = _NoChownTar.open(fileobj=counted, mode="r|")
        except tarfile.ReadError:
            return  # nothing arrived: the remote docker's error says why
        with tar:
            first = tar.next()  # the copied path itself: is it a directory?
            if first is None:
                return
            dst, exists, is_dir = destination_info(self.dst_path)
            target_dir, rename = prepare(self.src_path, first.isdir(), self.src_rebase, dst,
                                         exists, is_dir)
            pre = (split_dir_entry(self.src_path)[1], self.src_rebase) if self.src_rebase else None
            extract_all(tar, first, target_dir, pre, rename)


class _NoChownTar(tarfile.TarFile):
    """docker's ``NoLchown``: files are the user's own, even when the shim runs as root."""

    def chown(self, tarinfo, targetpath, numeric_owner):
        pass


class _Counted:
    def __init__(self, raw, owner: Extraction) -> None:
        self.raw, self.owner = raw, owner

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.owner.received += len(data)
        return data


def extract_all(tar: tarfile.TarFile, first: tarfile.TarInfo, dest: str,
                pre: tuple[str, str] | None, rename: tuple[str, str] | None) -> None:
    """docker's ``Untar`` (NoLchown, NoOverwriteDirNonDir), refusing to leave ``dest``.

    Hand-made rather than tarfile's extraction filters, which this Python
    (3.11 before .4) may lack: names are renamed, stripped of leading ``/``,
    and must resolve (symlinks followed, as already extracted) inside
    ``dest``; hard links must point inside too.  Directory times and modes
    are set last, as docker and tarfile do.
    """
    real_dest = os.path.realpath(dest)
    directories = []
    member = first
    while member is not None:
        member.name = _inside(real_dest, renamed(renamed(member.name, pre), rename))
        if member.islnk():
            member.linkname = _inside(real_dest, renamed(renamed(member.linkname, pre), rename))
        path = os.path.join(real_dest, member.name)
        if member.name not in ("", "."):
            _make_room(path, member.isdir())
        if member.isdir():
            directories.append(member)
        if member.name not in ("", ".") or not member.isdir():
            try:
                tar.extract(member, real_dest, set_attrs=not member.isdir())
            except OSError as exc:
                raise gofs.path_error(_creating(member), path, exc) from None
        member = tar.next()
    for directory in reversed(directories):
        path = os.path.join(real_dest, directory.name)
        try:
            tar.utime(directory, path)
            tar.chmod(directory, path)
        except OSError as exc:
            raise gofs.path_error("chmod", path, exc) from None


def _creating(member: tarfile.TarInfo) -> str:
    """The call docker's ``createTarFile`` makes for such an entry: its error's first word."""
    if member.isdir():
        return "mkdir"
    if member.issym():
        return "symlink"
    if member.islnk():
        return "link"
    return "open" if member.isreg() else "mknod"


def _inside(real_dest: str, name: str) -> str:
    """``name`` relative to ``dest``; an entry that would land outside is refused."""
    name = os.path.normpath(name.lstrip("/")) if name.strip("/") else "."
    target = os.path.realpath(os.path.join(real_dest, name))
    if os.path.commonpath([target, real_dest]) != real_dest:
        raise UsageError(f"refusing to extract {name!r}: it is outside of {real_dest!r}", 1)
    return name


def _make_room(path: str, is_dir: bool) -> None:
    """docker's Untar with NoOverwriteDirNonDir: replace files, never a dir by a non-dir."""
    import stat

    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    existing_dir = stat.S_ISDIR(st.st_mode)
    if existing_dir and not is_dir:
        raise DockerError(f"cannot overwrite directory {path!r} with non-directory")
    if not existing_dir and is_dir:
        raise DockerError(f"cannot overwrite non-directory {path!r} with directory")
    if not existing_dir:
        try:
            os.unlink(path)
        except OSError as exc:
            raise gofs.path_error("remove", path, exc) from None


# -- the plan ----------------------------------------------------------------------------


def copy(machine, cmd: DockerCommand, env, transport: str) -> int:
    """Run a ``docker cp`` with one workstation side; the status a local docker gives."""
    from remote_docker.transport import run_plan
    from remote_docker.transport.openssh import ControlMaster

    follow = cmd.flag("-L", "--follow-link")
    quiet = cmd.flag("-q", "--quiet")
    archive = cmd.flag("-a", "--archive")
    (src_c, src), (dst_c, dst) = (split_arg(a) for _, a in cmd.positionals[:2])
    master = ControlMaster(machine, env)
    master.ensure()
    show = os.isatty(2) and not quiet
    if dst_c:
        plan, part, shown = _to_container(master, dst_c, dst, src, follow, archive)
    else:
        plan, part, shown = _from_container(master, src_c, src, dst, follow)
    status = run_plan(machine, plan, transport, env)
    if status == 0 and show:
        size = getattr(part, "sent", 0) or getattr(part, "received", 0)
        sys.stderr.write(f"Successfully copied {human_size(size, 3)} to {shown}\n")
    return status


def _to_container(master, container: str, dst: str, src: str, follow: bool, archive: bool):
    src_abs = resolve_local(src)
    dst_path = dst
    st = stat_container_path(master, container, dst)
    if st.exists and st.is_symlink:
        dst_path, st = _follow(master, container, dst, st)
    if st.exists and st.mode & (MODE_DEVICE | MODE_IRREGULAR):
        raise DockerError(f'destination "{container}:{dst}" must be a directory or a regular file')
    resolved, is_dir, rebase = source_info(src_abs, follow)
    target_dir, rename = prepare(resolved, is_dir, rebase, dst_path, st.exists,
                                 st.exists and st.is_dir)
    if st.refused:  # where docker meets it: its copy is the first call to need the container
        raise DockerError(st.refused)
    source = SourceArchive(resolved, rebase, rename)
    plan = Plan(["docker", "cp", *(["-a"] if archive else []), "-",
                 f"{container}:{target_dir}"])
    plan.command = "cp"
    plan.stdin, plan.stdin_writer = "stream", source.write
    return plan, source, f"{container}:{dst}"


def _from_container(master, container: str, src: str, dst: str, follow: bool):
    dst_abs = resolve_local(dst)
    parent = os.path.dirname(os.path.normpath(dst_abs))
    if not os.path.exists(parent):
        raise DockerError(f'invalid output path: directory "{parent}" does not exist')
    rebase = ""
    if follow:
        st = stat_container_path(master, container, src)
        if st.exists and st.is_symlink:
            target, _ = _follow(master, container, src, st)
            target, rebase = rebase_name(src, target)
            src = target
    extraction = Extraction(src, rebase, dst_abs)
    plan = Plan(["docker", "cp", f"{container}:{src}", "-"])
    plan.command = "cp"
    plan.stdout_reader = extraction.read
    return plan, extraction, dst_abs
