"""Installing the shims as tiny scripts on PATH, and taking them away again.

Console scripts made by pip or pipx start Python with ``site`` (~5-15 ms per
call, more in a venv) and through ``importlib.metadata``; the ``docker`` shim
is on every docker command's path, so ``install-shims`` writes scripts of the
``bin/`` shape instead: ``#!python -IS`` and an explicit ``sys.path`` holding
this package's parent and the site-packages the installing interpreter uses
(so they work from a pipx venv without ``site``).

What we write is recorded in a manifest *before* it is written, so
``uninstall-shims`` removes exactly that, and only while it is still ours; a
file that is not ours is never overwritten without ``--force``, and then it is
moved aside and put back on uninstall.
"""

import json
import os
import sys
from dataclasses import dataclass, field

from remote_docker import config
from remote_docker.errors import RemoteDockerError, UsageError
from remote_docker.transport.local import is_shim

# Every shim and its entry point: kept equal to pyproject.toml's [project.scripts]
# (a unit test compares them).
SHIMS: dict[str, str] = {
    "docker": "remote_docker.cli.docker:main",
    "docker-run": "remote_docker.cli.docker_run:main",
    "docker-mount": "remote_docker.cli.mounts:docker_mount",
    "docker-umount": "remote_docker.cli.mounts:docker_umount",
    "docker.x11": "remote_docker.cli.docker_x11:main",
    "apt-docker": "remote_docker.cli.apt_docker:main",
    "make_dockerfile": "remote_docker.cli.apt_docker:make_dockerfile",
    "docker-build": "remote_docker.cli.docker_build:docker_build",
    "docker.build.me": "remote_docker.cli.docker_build:docker_build_me",
    "docker-compose": "remote_docker.cli.compose:main",
    "docker-machine": "remote_docker.cli.remote_tools:docker_machine",
    "docker-search": "remote_docker.cli.remote_tools:docker_search",
    "remote-docker": "remote_docker.cli.remote_docker:main",
    "dodo": "remote_docker.cli.dev:dodo",
}

# In the first KiB of every script we write: how uninstall (and --force) tell ours.
# It also names the package, which is how transport/local.py skips a docker shim.
INSTALLED_MARKER = "# remote_docker shim written by `remote-docker install-shims`"
BACKUP_SUFFIX = ".remote-docker-backup"
MAX_SHEBANG = 255  # Linux reads at most 256 bytes of a #! line (127 before 5.1)


def shim_script(name: str, entry: str, python: str, package_parent: str,
                site_dirs: list[str]) -> str:
    """The text of one shim: the ``bin/`` shape with the paths spelled out.

    A checkout goes ahead of everything, as ``bin/`` puts it; site-packages
    go after the standard library, where ``site`` would put them, so that
    nothing installed there can shadow a stdlib module.  A package installed
    into site-packages is found there, in its usual place.
    """
    module, func = entry.split(":")
    front = [] if package_parent in site_dirs else [package_parent]
    return (f"#!{python} -IS\n"
            f"{INSTALLED_MARKER} ({name});\n"
            "# `remote-docker uninstall-shims` removes it.  -IS: no site, no user paths, so\n"
            "# start-up stays at a bare interpreter's cost; sys.path is spelled out instead.\n"
            "import sys\n"
            f"sys.path[:0] = {front!r}\n"
            f"sys.path.extend({site_dirs!r})\n"
            f"from {module} import {func}\n"
            f"sys.exit({func}())\n")


def check_interpreter(python: str) -> None:
    """A ``#!`` line cannot quote: refuse an interpreter path it cannot carry."""
    if not python or not os.path.isabs(python):
        raise UsageError("cannot tell which Python runs remote-docker (sys.executable is empty)")
    if any(c.isspace() for c in python) or len(f"#!{python} -IS") > MAX_SHEBANG:
        raise UsageError(f"the Python path {python!r} cannot go on a #! line (spaces or too "
                         "long): install remote-docker with a Python at a plainer path")


def package_parent() -> str:
    import remote_docker

    return os.path.dirname(os.path.dirname(os.path.abspath(remote_docker.__file__)))


def site_dirs() -> list[str]:
    """The site-packages the running interpreter uses, even when it runs with ``-S``."""
    import site  # with -S, importing site computes paths without altering sys.path

    found = [p for p in sys.path if os.path.basename(p) in ("site-packages", "dist-packages")]
    found += site.getsitepackages()
    if site.ENABLE_USER_SITE:
        found.append(site.getusersitepackages())
    dirs: list[str] = []
    for folder in found:
        folder = os.path.abspath(folder)
        if os.path.isdir(folder) and folder not in dirs:
            dirs.append(folder)
    return dirs


def is_ours(path: str) -> bool:
    """A file install-shims wrote (not a symlink: we never write one)."""
    if os.path.islink(path) or not os.path.isfile(path):
        return False
    try:
        with open(path, "rb") as f:
            return INSTALLED_MARKER.encode() in f.read(1024)
    except OSError:
        return False


# -- the manifest ------------------------------------------------------------------------

@dataclass
class Manifest:
    """What install-shims wrote: shim path -> the foreign file it moved aside (or None)."""

    shims: dict[str, str | None] = field(default_factory=dict)
    created_dirs: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps({"version": 1, "shims": self.shims,
                           "created_dirs": self.created_dirs}, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "Manifest":
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("shims"), dict):
            raise ValueError("not a shims manifest")
        return cls(dict(data["shims"]), list(data.get("created_dirs") or []))

    def under(self, directory: str | None) -> list[str]:
        return [p for p in self.shims if directory is None or os.path.dirname(p) == directory]


def manifest_path(env: dict | os._Environ = os.environ) -> str:
    return os.path.join(config.config_dir(env), "shims.json")


def load_manifest(path: str) -> Manifest:
    try:
        with open(path, encoding="utf-8") as f:
            return Manifest.from_json(f.read())
    except FileNotFoundError:
        return Manifest()
    except (OSError, ValueError) as exc:
        raise RemoteDockerError(f"cannot read the shims manifest {path}: {exc}") from None


def save_manifest(manifest: Manifest, path: str) -> None:
    if not manifest.shims:
        _remove_quietly(path)
        _rmdir_quietly(os.path.dirname(path))
        return
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(manifest.to_json())
    os.replace(tmp, path)


# -- install -------------------------------------------------------------------------------

def default_dir(env: dict | os._Environ = os.environ) -> str:
    home = env.get("HOME") or os.path.expanduser("~")
    return os.path.join(home, ".local", "bin")


@dataclass
class InstallPlan:
    directory: str
    create_dirs: list[str]  # missing folders down to ``directory``, deepest first
    scripts: dict[str, str]  # path -> text
    move_aside: dict[str, str]  # foreign path -> where it goes


def plan_install(directory: str, force: bool, scripts_by_name: dict[str, str],
                 explicit_dir: bool) -> InstallPlan:
    """Look before writing: every reason to refuse is found before anything changes."""
    directory = os.path.abspath(directory)
    exists = os.path.isdir(directory)
    if not exists and (explicit_dir or os.path.lexists(directory)):
        raise UsageError(f"{directory} is not a directory")
    missing, folder = [], directory
    while not os.path.lexists(folder):
        missing.append(folder)
        folder = os.path.dirname(folder)
    if exists and not os.access(directory, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write to {directory}")
    scripts, move_aside, conflicts = {}, {}, []
    for name, text in scripts_by_name.items():
        path = os.path.join(directory, name)
        scripts[path] = text
        if not os.path.lexists(path) or is_ours(path):
            continue
        backup = os.path.join(directory, f".{name}{BACKUP_SUFFIX}")
        if os.path.isdir(path) and not os.path.islink(path):
            raise UsageError(f"{path} is a directory; remove it or choose another --dir")
        if not force:
            conflicts.append(path)
        elif os.path.lexists(backup):
            raise UsageError(f"{path} is not ours and {backup} is taken: move one of them away")
        else:
            move_aside[path] = backup
    if conflicts:
        more = f" (and {len(conflicts) - 1} more)" if len(conflicts) > 1 else ""
        raise UsageError(f"{conflicts[0]}{more} exists and is not a remote-docker shim: "
                         "pass --force to move it aside (uninstall-shims puts it back)")
    return InstallPlan(directory, missing, scripts, move_aside)


def all_scripts(python: str | None = None) -> dict[str, str]:
    python = python or sys.executable
    check_interpreter(python)
    parent, dirs = package_parent(), site_dirs()
    return {name: shim_script(name, entry, python, parent, dirs) for name, entry in SHIMS.items()}


def install(plan: InstallPlan, manifest_file: str) -> None:
    """Record, then write: a crash half-way leaves a manifest that uninstall can follow."""
    manifest = load_manifest(manifest_file)
    for path in plan.scripts:
        manifest.shims[path] = plan.move_aside.get(path) or manifest.shims.get(path)
    manifest.created_dirs += [d for d in plan.create_dirs if d not in manifest.created_dirs]
    save_manifest(manifest, manifest_file)
    os.makedirs(plan.directory, exist_ok=True)
    for path, backup in plan.move_aside.items():
        os.rename(path, backup)
    for path, text in plan.scripts.items():
        tmp = os.path.join(plan.directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o755)
        os.replace(tmp, path)


def path_warnings(directory: str, path_var: str) -> list[str]:
    """Why ``docker`` might still not be the shim after install: one line each."""
    folders = [os.path.realpath(f or ".") for f in path_var.split(os.pathsep)]
    real = os.path.realpath(directory)
    if real not in folders:
        return [f"{directory} is not on PATH: add it first (export PATH=\"{directory}:$PATH\") "
                "so that the shims are found"]
    for folder in folders[:folders.index(real)]:
        candidate = os.path.join(folder, "docker")
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK) and not is_shim(candidate):
            return [f"{candidate} comes before {directory} on PATH, so 'docker' runs it, not the "
                    f"shim: put {directory} first"]
    return []


# -- uninstall ------------------------------------------------------------------------------

@dataclass
class UninstallResult:
    removed: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # no longer ours: left alone


def uninstall(directory: str | None, manifest_file: str) -> UninstallResult:
    """Remove what the manifest lists under ``directory`` (all when None), if still ours."""
    manifest = load_manifest(manifest_file)
    directory = os.path.abspath(directory) if directory else None
    result = UninstallResult()
    for path in manifest.under(directory):
        backup = manifest.shims.pop(path)
        if is_ours(path):
            os.unlink(path)
            result.removed.append(path)
        elif os.path.lexists(path):
            result.kept.append(path)
            continue
        if backup and os.path.lexists(backup) and not os.path.lexists(path):
            os.rename(backup, path)
            result.restored.append(path)
    for folder in manifest.created_dirs:  # deepest first, as recorded
        _rmdir_quietly(folder)
    manifest.created_dirs = [d for d in manifest.created_dirs if os.path.isdir(d)]
    save_manifest(manifest, manifest_file)
    return result


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _rmdir_quietly(path: str) -> None:
    try:
        os.rmdir(path)
    except OSError:
        pass  # not empty, or already gone: either way not ours to force
