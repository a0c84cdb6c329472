"""``docker build PATH``: the workstation's directory is the context.

The docker-machine's docker is run as ``docker build … -`` and the context
arrives on its stdin as a tar written on the fly (``tarstream``): nothing is
copied to a temporary file on either side.  What goes into the tar is what
the docker CLI would send (cli/command/image/build.go and build/context.go):
``.dockerignore`` applied with docker's pattern semantics, the Dockerfile and
.dockerignore always sent, owner root, and a Dockerfile from outside the
context (``-f ../x``) or from stdin (``-f -``) added under a random
``.dockerfile.<hex>`` name that .dockerignore then hides from ``COPY``.
A URL context, ``-`` and anything that is not a local directory go to the
remote docker untouched (a missing local path is docker's own error here:
the docker-machine's files are never used by mistake).
"""

import os
import stat
import sys
import time
from typing import BinaryIO

from remote_docker import dockerignore, gofs, tarstream
from remote_docker.dockercli import DockerCommand
from remote_docker.errors import DockerError

STDIN = object()  # `-f -`: the Dockerfile is read from stdin as the stream starts

# Variables a local docker build reads from the workstation's environment.
BUILD_ENV = ("DOCKER_BUILDKIT", "BUILDKIT_PROGRESS", "BUILDX_BUILDER", "DOCKER_DEFAULT_PLATFORM",
             "BUILDKIT_COLORS", "NO_COLOR")


def is_url(text: str) -> bool:
    """docker's urlutil: what the remote docker fetches itself."""
    return text.startswith(("http://", "https://", "git://", "github.com/", "git@"))


class BuildContext:
    """A local context directory and how to stream it: the plan's stdin writer."""

    def __init__(self, context_dir: str, dockerfile: str, extra_dockerfile: bytes | object,
                 extra_name: str, show_progress: bool, report: bool = False) -> None:
        self.context_dir = context_dir
        self.dockerfile = dockerfile            # relative name inside the context, or ""
        self.extra_dockerfile = extra_dockerfile  # content from outside, STDIN, or None
        self.extra_name = extra_name            # its random name in the tar
        self.show_progress = show_progress
        self.report = report  # REMOTE_DOCKER_REPORT_BYTES: the byte count on stderr, for tests
        self.sent = 0

    def patterns(self) -> list[str]:
        patterns = dockerignore.read(self.context_dir)
        return dockerignore.keep_build_files(patterns, self.dockerfile)

    def entries(self):
        """(path, name, lstat) of what is sent, as docker's TarWithOptions walks."""
        matcher = dockerignore.PatternMatcher(self.patterns())

        def decide(name: str, st: os.stat_result) -> tuple[bool, bool]:
            if not matcher.matches(name):
                return True, True
            if not stat.S_ISDIR(st.st_mode):
                return False, False
            return False, matcher.has_exclusions and matcher.may_include_below(name)

        return tarstream.walk(self.context_dir, decide)

    def validate(self) -> None:
        """docker's ``ValidateContextDirectory``, before anything is sent, as the docker CLI
        does it: a directory that cannot be listed (even an ignored one: Go lists it before
        asking) or a file that cannot be opened is docker's error, and the remote build never
        starts, instead of failing halfway or building with part of its context."""
        matcher = dockerignore.PatternMatcher(dockerignore.read(self.context_dir))

        def check(path: str, name: str) -> None:
            try:
                entries = sorted(os.scandir(path), key=lambda e: e.name)
            except FileNotFoundError:
                raise DockerError(f"error checking context: file ('{path}') not found or "
                                  "excluded by .dockerignore") from None
            except OSError:
                raise DockerError(f"error checking context: can't stat '{path}'") from None
            if matcher.matches(name):  # the root is "." (a pattern "*" skips it all)
                return
            for entry in entries:
                below = f"{name}/{entry.name}" if name != "." else entry.name
                if entry.is_dir(follow_symlinks=False):
                    check(entry.path, below)
                elif entry.is_symlink() or matcher.matches(below):
                    continue
                elif not stat.S_ISFIFO(entry.stat(follow_symlinks=False).st_mode):
                    try:
                        os.close(os.open(entry.path, os.O_RDONLY | os.O_NONBLOCK))
                    except PermissionError:
                        raise DockerError("error checking context: no permission to read "
                                          f"from '{entry.path}'") from None
                    except OSError:
                        pass

        check(self.context_dir, ".")

    def write(self, out: BinaryIO) -> None:
        """Stream the context as a tar into ``out`` (the remote docker's stdin)."""
        if self.extra_dockerfile is STDIN:
            self.extra_dockerfile = sys.stdin.buffer.read()
        progress = Progress(sys.stderr) if self.show_progress else None
        writer = tarstream.TarWriter(out, owner=(0, 0),
                                     progress=progress.update if progress else None)
        ignore_seen = False
        try:
            for path, name, st in self.entries():
                if name == ".dockerignore" and self.extra_dockerfile is not None:
                    ignore_seen = True
                    self._add_bytes(writer, ".dockerignore", self._ignore_with_extra(path), st)
                    continue
                writer.add(path, name, st)
            if self.extra_dockerfile is not None:
                if not ignore_seen:
                    self._add_bytes(writer, ".dockerignore",
                                    b".dockerignore\n" + self._extra_line(), None)
                self._add_bytes(writer, self.extra_name, self.extra_dockerfile, None)
            writer.close()
        except BaseException:  # changed since validate(): the build must fail, not go on
            writer.abort()
            raise
        finally:
            self.sent = writer.sent
            if progress:
                progress.done()
            if self.report:
                sys.stderr.write(f"remote-docker: build context: {self.sent} bytes sent\n")

    def _extra_line(self) -> bytes:
        return b"\n" + self.extra_name.encode() + b"\n"

    def _ignore_with_extra(self, path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read() + self._extra_line()

    @staticmethod
    def _add_bytes(writer: tarstream.TarWriter, name: str, data: bytes,
                   st: os.stat_result | None) -> None:
        """An entry whose content we make: docker's ``AddDockerfileToBuildContext``."""
        import tarfile

        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = stat.S_IMODE(st.st_mode) if st else 0o600
        info.mtime = int(st.st_mtime if st else time.time())
        writer._write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
        writer._write(data + bytes(-len(data) % tarfile.BLOCKSIZE))


class Progress:
    """One self-erasing line on a terminal while the context uploads."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.last = 0.0
        self.shown = False

    def update(self, sent: int) -> None:
        now = time.monotonic()
        if now - self.last < 0.1:
            return
        self.last = now
        self.shown = True
        self.stream.write(f"\r\x1b[KUploading build context  {human_size(sent)}")
        self.stream.flush()

    def done(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def human_size(size: float, digits: int = 4) -> str:
    """go-units ``HumanSizeWithPrecision``: decimal units, ``digits`` significant digits;
    4 is ``HumanSize`` (a build context's size), 3 what ``docker cp`` and ``docker
    images`` print."""
    units = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
    i = 0
    while size >= 1000 and i < len(units) - 1:
        size /= 1000.0
        i += 1
    return f"{size:.{digits}g}{units[i]}"


def _random_name() -> str:
    return ".dockerfile." + os.urandom(10).hex()


def _context_position(cmd: DockerCommand) -> tuple[int, str] | None:
    """The one positional argument; None lets the remote docker complain about the count."""
    return cmd.positionals[0] if len(cmd.positionals) == 1 else None


def localise(cmd: DockerCommand, env, show_progress: bool):
    """(new build args, BuildContext) for a local directory context, else None."""
    found = _context_position(cmd)
    if found is None:
        return None
    index, context = found
    if context == "-" or is_url(context):
        return None
    if not os.path.exists(context):
        raise DockerError(f'unable to prepare context: path "{context}" not found')
    context_dir = os.path.realpath(context)
    if not os.path.isdir(context_dir):
        raise DockerError(f"unable to prepare context: context must be a directory: "
                          f"{os.path.abspath(context)}")
    files = [o for o in cmd.options if o.name in ("-f", "--file") and o.value is not None]
    given = files[-1].value if files else ""
    relative, extra, extra_name = _dockerfile(context_dir, given)
    build = BuildContext(context_dir, relative, extra, extra_name, show_progress,
                         report=env.get("REMOTE_DOCKER_REPORT_BYTES", "") not in ("", "0"))
    build.validate()
    name_in_tar = extra_name or relative
    args = list(cmd.args)
    args[index] = "-"
    for opt in reversed(files):
        del args[opt.start:opt.end]
    if name_in_tar != "Dockerfile":
        args = ["-f", name_in_tar, *args]  # pflag takes options anywhere
    return args, build


def _dockerfile(context_dir: str, given: str) -> tuple[str, bytes | object | None, str]:
    """(name relative to the context, content if it must be added, random name or "").

    docker's ``getDockerfileRelPath``: ``-f`` is relative to the current
    directory; without it ``Dockerfile`` in the context (or ``dockerfile`` if
    only that exists); links resolved, so a missing one is docker's error.
    """
    if given == "-":
        return "", STDIN, _random_name()
    if given:
        absolute = os.path.abspath(given)
    else:
        absolute = os.path.join(context_dir, "Dockerfile")
        lower = os.path.join(context_dir, "dockerfile")
        if not os.path.lexists(absolute) and os.path.lexists(lower):
            absolute = lower
    try:
        resolved = gofs.eval_symlinks(absolute)
    except DockerError as exc:
        raise DockerError("unable to prepare context: unable to evaluate symlinks in "
                          f"Dockerfile path: {exc.message}") from None
    relative = os.path.relpath(resolved, context_dir)
    if relative != ".." and not relative.startswith("../"):
        return relative, None, ""
    try:
        with open(given, "rb") as f:
            content = f.read()
    except OSError as exc:
        raise DockerError(f"unable to open Dockerfile: {gofs.reason(exc)}") from None
    return "", content, _random_name()
