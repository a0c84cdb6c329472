"""``apt-docker`` and ``make_dockerfile``: Debian packages as apps that run on the docker-machine.

Thin: the logic is in ``remote_docker.apt``.  The build's progress is shown
with rich on a terminal, and as plain step lines otherwise.
"""

from __future__ import annotations

import os
import sys

from remote_docker.cli import guarded
from remote_docker.errors import ExitStatus, UsageError

USAGE = """usage: apt-docker install PACKAGE…     (or: apt-docker PACKAGE…)
       apt-docker list
       apt-docker remove NAME [--purge]
       apt-docker upgrade [NAME]

Builds an image with Debian PACKAGEs on debian:stable-slim on the
docker-machine and writes a launcher for each of its programs into
~/.local/bin (and its menu entries), so they run as if installed here:
graphical ones through docker.x11, in the current directory, as you,
with a home volume of their own.  remove --purge also drops that volume.
"""
MAKE_USAGE = """usage: make_dockerfile PACKAGE… [--x11] [-o DIR]

Prints the Dockerfile apt-docker would build for PACKAGEs, and the launcher
it would write for the first one's program (--x11: a graphical one).  -o DIR
writes DIR/Dockerfile and DIR/<program> instead.
"""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    return guarded("apt-docker", lambda: _run(args))


def make_dockerfile(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    return guarded("make_dockerfile", lambda: _make(args))


def _master(env):
    from remote_docker import config
    from remote_docker.transport.openssh import ControlMaster

    spec = config.machine_spec(env)
    if spec == config.LOCAL:
        raise UsageError("apt-docker needs a docker-machine (remote-docker use HOST)")
    return ControlMaster(config.parse_machine(spec), env)


def _run(args: list[str]) -> int:
    if not args or args[0] in ("-h", "--help", "help"):
        sys.stdout.write(USAGE)
        return ExitStatus.OK if args else ExitStatus.USAGE
    verb, rest = args[0], args[1:]
    if verb == "list":
        return _list(rest)
    if verb == "remove":
        return _remove(rest)
    if verb == "upgrade":
        return _upgrade(rest)
    if verb == "install":
        return _install(rest)
    if verb.startswith("-"):
        raise UsageError(f"unknown option {verb!r}; see 'apt-docker --help'")
    return _install(args)  # the seed's short form: apt-docker PACKAGE…


def _install(packages: list[str], no_cache: bool = False) -> int:
    from remote_docker.apt import apps

    if any(p.startswith("-") for p in packages):
        raise UsageError("usage: apt-docker install PACKAGE…")
    env = os.environ
    master = _master(env)
    apps.check(master, packages, env)
    with BuildProgress(f"building {apps.image_name(env, packages[0])}") as progress:
        app = apps.install(master, packages, env, progress, _warn, no_cache)
    for path in app.launchers:
        mode = " (X11)" if os.path.basename(path) in app.graphical else ""
        sys.stdout.write(f"{path}{mode}\n")
    for path in app.desktop:
        sys.stdout.write(f"{path}\n")
    return ExitStatus.OK


def _warn(line: str) -> None:
    sys.stderr.write(f"apt-docker: {line}\n")


def _list(args: list[str]) -> int:
    from remote_docker.apt import apps

    if args:
        raise UsageError("usage: apt-docker list")
    for app in apps.installed(os.environ):
        programs = " ".join(os.path.basename(p) for p in app.launchers) or "(no programs)"
        sys.stdout.write(f"{app.name}\t{' '.join(app.packages)}\t{app.image}\t{programs}\n")
    return ExitStatus.OK


def _remove(args: list[str]) -> int:
    from remote_docker.apt import apps

    purge = "--purge" in args
    names = [a for a in args if a != "--purge"]
    if not names or any(n.startswith("-") for n in names):
        raise UsageError("usage: apt-docker remove NAME… [--purge]")
    env = os.environ
    master = _master(env)
    for name in names:
        for item in apps.remove(master, name, purge, env):
            sys.stdout.write(f"removed {item}\n")
    return ExitStatus.OK


def _upgrade(args: list[str]) -> int:
    from remote_docker.apt import apps

    env = os.environ
    if any(a.startswith("-") for a in args):
        raise UsageError("usage: apt-docker upgrade [NAME…]")
    chosen = [apps.load(n, env) for n in args] if args else apps.installed(env)
    for name, app in zip(args, chosen):
        if app is None:
            raise UsageError(f"{name!r} is not installed by apt-docker (see 'apt-docker list')")
    for app in chosen:
        _install(app.packages, no_cache=True)
    return ExitStatus.OK


class BuildProgress:
    """A spinner with the build's current step (rich) on a terminal; step lines otherwise."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.live = None
        self.status = None

    def __enter__(self):
        if sys.stderr.isatty():
            from remote_docker.deps import ensure_site_packages

            ensure_site_packages()
            from rich.console import Console

            self.status = Console(stderr=True).status(self.title)
            self.status.__enter__()
        else:
            sys.stderr.write(f"apt-docker: {self.title}\n")
        return self

    def __call__(self, line: str) -> None:
        step = line.startswith("Step ") or line.startswith("#") and "[" in line
        if self.status is not None:
            self.status.update(f"{self.title}: {line[:100]}")
        elif step:
            sys.stderr.write(f"apt-docker: {line[:160]}\n")

    def __exit__(self, *exc) -> None:
        if self.status is not None:
            self.status.__exit__(*exc)


def _make(args: list[str]) -> int:
    from remote_docker.apt import apps, dockerfile as df

    if not args or "-h" in args or "--help" in args:
        sys.stdout.write(MAKE_USAGE)
        return ExitStatus.OK if args else ExitStatus.USAGE
    out_dir = None
    if "-o" in args:
        at = args.index("-o")
        if at + 1 >= len(args):
            raise UsageError("-o needs a directory")
        out_dir = args[at + 1]
        args = args[:at] + args[at + 2:]
    graphical = "--x11" in args
    packages = [a for a in args if a != "--x11"]
    if any(p.startswith("-") for p in packages):
        raise UsageError("usage: make_dockerfile PACKAGE… [--x11] [-o DIR]")
    apps.check_names(packages)
    env = os.environ
    name = packages[0]
    text = df.dockerfile(packages, os.getuid(), os.getgid())
    launcher = df.launcher(name, f"/usr/bin/{name}", apps.image_name(env, name),
                           df.home_volume(apps.prefix(env), name), graphical)
    if out_dir is None:
        sys.stdout.write(f"{text}\n# launcher: {apps.bin_dir(env)}/{name}\n{launcher}")
        return ExitStatus.OK
    os.makedirs(out_dir, exist_ok=True)
    for file_name, content, mode in (("Dockerfile", text, 0o644), (name, launcher, 0o755)):
        path = os.path.join(out_dir, file_name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(content)
        os.chmod(path, mode)
        sys.stdout.write(f"{path}\n")
    return ExitStatus.OK
