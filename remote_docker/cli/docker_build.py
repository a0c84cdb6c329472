"""``docker-build`` and ``docker.build.me``: the original scripts' build shortcuts.

``docker-build [docker build options] [PATH]`` is ``docker build``, with the
current directory as the context when none is given (the seed tarred the
current directory).  ``docker.build.me [options]`` builds the current
directory tagged with the directory's name, made a valid docker repository
name.  Both go through the shim's ``docker build``, so the context streams
from the workstation with .dockerignore applied.
"""

import os
import re
import sys

from remote_docker import dockercli
from remote_docker.cli import guarded
from remote_docker.cli.docker import forward
from remote_docker.errors import UsageError

def tag_for_directory(name: str) -> str:
    """A valid docker repository name from a directory name (``My App!`` -> ``my-app``).

    docker's grammar: lowercase alphanumerics joined by one ``.``, one ``_``,
    ``__`` or dashes; so runs of other characters become one ``-``, runs of
    separators one separator, and none may start or end the name.
    """
    import unicodedata

    tag = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    tag = re.sub(r"[^a-z0-9._-]+", "-", tag)
    tag = re.sub(r"([._-])[._-]+", lambda m: "__" if m.group(0) == "__" else m.group(1), tag)
    tag = tag.strip("._-")[:128].rstrip("._-")
    if not tag:
        raise UsageError(f"cannot make an image name from the directory name {name!r}: "
                         "use docker build -t NAME .")
    return tag


def build_argv(args: list[str]) -> list[str]:
    """``docker build ARGS``, with ``.`` as the context unless ARGS name one."""
    parsed = dockercli.parse(["build", *args])
    return ["build", *args] if parsed.positionals else ["build", *args, "."]


def _cwd() -> str:
    try:
        return os.getcwd()
    except OSError:
        raise UsageError("the current directory no longer exists") from None


def docker_build(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    return guarded("docker-build", lambda: forward(build_argv(args), os.environ))


def docker_build_me(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv

    def run() -> int:
        tag = tag_for_directory(os.path.basename(_cwd()))
        return forward(["build", "-t", tag, *args, "."], os.environ)

    return guarded("docker.build.me", run)
