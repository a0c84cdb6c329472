"""``remote-docker install-shims [--dir DIR] [--force]`` and ``uninstall-shims [--dir DIR]``.

Thin: the logic and its reasons are in ``remote_docker/shims.py``.
"""

import os
import sys

from remote_docker import shims
from remote_docker.errors import ExitStatus, UsageError

USAGE = """usage: remote-docker install-shims [--dir DIR] [--force]
       remote-docker uninstall-shims [--dir DIR]

install-shims writes docker and the other shims into DIR (default ~/.local/bin);
--force moves aside files there that are not remote-docker's (uninstall puts them
back).  uninstall-shims removes what install-shims wrote (in DIR only, with --dir).
The workstation's own docker stays reachable: REMOTE_DOCKER_HOST=local docker …
or remote-docker local …
"""


def parse_args(verb: str, args: list[str], allow_force: bool) -> tuple[str | None, bool] | None:
    """(DIR or None, force), or None for --help."""
    directory, force = None, False
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if arg in ("-h", "--help"):
            return None
        if arg == "--force" and allow_force:
            force = True
        elif arg == "--dir" and rest:
            directory = rest.pop(0)
        elif arg.startswith("--dir="):
            directory = arg[len("--dir="):]
        else:
            raise UsageError(f"{verb}: unexpected argument {arg!r} (see 'remote-docker {verb} "
                             "--help')")
    if directory is not None and not directory:
        raise UsageError(f"{verb}: --dir needs a directory")
    return (os.path.abspath(os.path.expanduser(directory)) if directory else None), force


def show_usage() -> int:
    sys.stdout.write(USAGE)
    return ExitStatus.OK


def main_install_shims(args: list[str]) -> int:
    parsed = parse_args("install-shims", args, allow_force=True)
    if parsed is None:
        return show_usage()
    directory, force = parsed
    env = os.environ
    plan = shims.plan_install(directory or shims.default_dir(env), force, shims.all_scripts(),
                              explicit_dir=directory is not None)
    shims.install(plan, shims.manifest_path(env))
    for path, backup in plan.move_aside.items():
        sys.stdout.write(f"moved {path} aside to {backup}\n")
    names = ", ".join(os.path.basename(p) for p in plan.scripts)
    sys.stdout.write(f"installed {len(plan.scripts)} shims in {plan.directory}: {names}\n")
    for warning in shims.path_warnings(plan.directory, env.get("PATH", os.defpath)):
        sys.stderr.write(f"remote-docker: warning: {warning}\n")
    return ExitStatus.OK


def main_uninstall_shims(args: list[str]) -> int:
    parsed = parse_args("uninstall-shims", args, allow_force=False)
    if parsed is None:
        return show_usage()
    directory, _ = parsed
    result = shims.uninstall(directory, shims.manifest_path(os.environ))
    for path in result.kept:
        sys.stderr.write(f"remote-docker: warning: left {path}: it is no longer a "
                         "remote-docker shim\n")
    for path in result.restored:
        sys.stdout.write(f"put back {path}\n")
    if result.removed:
        where = sorted({os.path.dirname(p) for p in result.removed})
        sys.stdout.write(f"removed {len(result.removed)} shims from {', '.join(where)}\n")
    elif not result.kept:
        sys.stdout.write("no shims to remove" + (f" in {directory}" if directory else "") + "\n")
    return ExitStatus.OK
