"""Go's filesystem calls as docker's CLI makes them, so that our errors are its errors.

A user compares what the shim prints with what a local docker prints, byte for
byte: the CLI's messages carry Go's ``*PathError`` strings (``lstat /x: no
such file or directory``), which name the call and the path as far as Go got,
not Python's ``[Errno 2] No such file or directory: '/x/y'``.
"""

import os

from remote_docker.errors import DockerError


def reason(exc: OSError) -> str:
    """Go's text for an errno: Python's strerror, lower case (``permission denied``)."""
    return (exc.strerror or str(exc)).lower()


def path_error(call: str, path: str, exc: OSError) -> DockerError:
    """An OSError in Go's words: ``open /x: permission denied``."""
    return DockerError(f"{call} {exc.filename or path}: {reason(exc)}")


def eval_symlinks(path: str) -> str:
    """``filepath.EvalSymlinks``: ``path`` cleaned, with every link resolved; a component
    that is not there is Go's error (a ``DockerError``), naming the path as far as it was
    resolved: ``lstat /missing``, not the whole path asked for."""
    resolved = os.path.realpath(path)
    probe = ""
    for part in resolved.split("/")[1:]:
        probe += "/" + part
        try:
            os.lstat(probe)
        except OSError as exc:
            raise DockerError(f"lstat {probe}: {reason(exc)}") from None
    return resolved
