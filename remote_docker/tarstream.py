"""Tar archives of workstation files, written on the fly the way docker writes them.

Build contexts and ``docker cp`` sources are streamed into the remote docker's
stdin as they are read: no temporary copy of the whole tree anywhere.  The
entries follow docker's ``archive.TarWithOptions``: lexical walk order, names
relative with a ``/`` after directories, mtimes in whole seconds, hard links
as links, and no record padding after the two closing blocks, so that the
byte count docker reports ("Sending build context to Docker daemon …") is the
one a local docker would report for the same tree.  ``tarfile`` encodes the
headers (ustar, PAX only where ustar cannot say it).
"""

import os
import stat
import tarfile
from collections.abc import Callable, Iterator
from typing import BinaryIO

from remote_docker import gofs

CHUNK = 1 << 20
BLOCK = tarfile.BLOCKSIZE


class TarWriter:
    """Writes entries to ``out`` and counts the bytes, for progress and for tests."""

    def __init__(self, out: BinaryIO, owner: tuple[int, int] | None = None,
                 progress: Callable[[int], None] | None = None) -> None:
        self.out = out
        self.owner = owner  # (uid, gid) for every entry, as docker's ChownOpts; None keeps
        self.progress = progress
        self.sent = 0
        self._links: dict[tuple[int, int], str] = {}

    def _write(self, data: bytes) -> None:
        self.out.write(data)
        self.sent += len(data)
        if self.progress is not None:
            self.progress(self.sent)

    def add(self, path: str, name: str, st: os.stat_result | None = None) -> None:
        """Add the file, directory or symlink at ``path`` (not followed) as ``name``."""
        st = st or os.lstat(path)
        info = tarfile.TarInfo(name + "/" if stat.S_ISDIR(st.st_mode) else name)
        info.mode = stat.S_IMODE(st.st_mode)
        info.mtime = int(st.st_mtime)
        info.uid, info.gid = self.owner if self.owner is not None else (st.st_uid, st.st_gid)
        info.uname = info.gname = ""
        key = (st.st_dev, st.st_ino)
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1 and key in self._links:
            info.type, info.linkname = tarfile.LNKTYPE, self._links[key]
        elif stat.S_ISREG(st.st_mode):
            info.type, info.size = tarfile.REGTYPE, st.st_size
            if st.st_nlink > 1:
                self._links[key] = name
        elif stat.S_ISDIR(st.st_mode):
            info.type = tarfile.DIRTYPE
        elif stat.S_ISLNK(st.st_mode):
            info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
        elif stat.S_ISFIFO(st.st_mode):
            info.type = tarfile.FIFOTYPE
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            info.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        else:
            return  # sockets: docker cannot archive them either, and skips them
        if info.type != tarfile.REGTYPE or not info.size:
            self._write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
            return
        try:  # before its header: a file that cannot be read leaves no half entry
            f = open(path, "rb")
        except OSError as exc:
            raise gofs.path_error("open", path, exc) from None
        with f:
            self._write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
            self._copy(f, info.size)

    def _copy(self, f: BinaryIO, size: int) -> None:
        """Exactly ``size`` bytes: a file that shrank meanwhile is padded, one that grew cut."""
        left = size
        while left:
            chunk = f.read(min(CHUNK, left))
            if not chunk:
                break
            self._write(chunk)
            left -= len(chunk)
        if left:
            self._write(bytes(left))
        if size % BLOCK:
            self._write(bytes(BLOCK - size % BLOCK))

    def close(self) -> None:
        self._write(bytes(2 * BLOCK))
        self.out.flush()

    def abort(self) -> None:
        """End the stream so that its reader fails: a block whose checksum is wrong. A tar
        cut between two entries reads as a whole (shorter) archive: a build would go on
        with part of its context."""
        try:
            self.out.write(b"\xff" * BLOCK)
            self.out.flush()
        except OSError:  # the reader is gone already
            pass


def walk(root: str, decide: Callable[[str, os.stat_result], tuple[bool, bool]],
         relative: str = "") -> Iterator[tuple[str, str, os.stat_result]]:
    """(path, name, lstat) below ``root`` in Go's ``filepath.Walk`` order (names sorted).

    ``decide(name, lstat)`` says whether to yield an entry and whether to
    descend into it (a directory excluded by .dockerignore may still hold an
    exception).  A directory that cannot be listed ends the walk, in Go's words.
    """
    here = os.path.join(root, relative) if relative else root
    try:
        entries = sorted(os.scandir(here), key=lambda e: e.name)
    except OSError as exc:
        raise gofs.path_error("open", here, exc) from None
    for entry in entries:
        name = f"{relative}/{entry.name}" if relative else entry.name
        st = entry.stat(follow_symlinks=False)
        add, descend = decide(name, st)
        if add:
            yield entry.path, name, st
        if descend and stat.S_ISDIR(st.st_mode):
            yield from walk(root, decide, name)
