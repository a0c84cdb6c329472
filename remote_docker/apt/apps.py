"""apt-docker's apps: one image per install, launchers that make its programs feel installed.

An *app* is named after the first package of ``apt-docker install A B…``;
its image is ``<prefix>/<app>:latest`` on the docker-machine (prefix:
``REMOTE_DOCKER_APT_PREFIX`` or ``apt_prefix`` in the config, default
``rd-apt``), its home a docker volume ``<prefix>-home-<app>``, its launchers
go to ``~/.local/bin`` (``REMOTE_DOCKER_APT_BIN`` or ``apt_bin_dir``) and
its desktop entries to ``$XDG_DATA_HOME/applications``.  What an install
wrote is recorded in ``$XDG_STATE_HOME/remote-docker/apt/<app>.json``, so
``remove`` deletes exactly that and never a file it did not write.

Every docker command runs on the docker-machine over the ControlMaster.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
from dataclasses import asdict, dataclass, field

from remote_docker import config
from remote_docker.apt import dockerfile as df
from remote_docker.errors import RemoteDockerError, UsageError
from remote_docker.transport.quoting import join

PACKAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
INDEX_MAX_AGE = 24 * 3600
BIN_DIRS = ("/usr/bin/", "/bin/", "/usr/games/", "/usr/sbin/", "/sbin/")
GUI_LIBRARIES = ("libX11.so", "libxcb.so", "libgtk", "libQt", "libwayland-client")
MARK = "apt-docker launcher"


@dataclass
class App:
    name: str
    packages: list[str]
    image: str
    volume: str
    launchers: list[str] = field(default_factory=list)  # paths on the workstation
    desktop: list[str] = field(default_factory=list)
    graphical: list[str] = field(default_factory=list)  # program names run through docker.x11
    installed: float = field(default_factory=time.time)


def prefix(env: dict | os._Environ) -> str:
    value = env.get("REMOTE_DOCKER_APT_PREFIX") or config.read_settings(env).get("apt_prefix") \
        or "rd-apt"
    if not re.fullmatch(r"[a-z0-9]+([._/-][a-z0-9]+)*", value):
        raise UsageError(f"apt prefix {value!r} is not a docker repository name")
    return value


def bin_dir(env: dict | os._Environ) -> str:
    return os.path.expanduser(env.get("REMOTE_DOCKER_APT_BIN")
                              or config.read_settings(env).get("apt_bin_dir") or "~/.local/bin")


def desktop_dir(env: dict | os._Environ) -> str:
    base = env.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "applications")


def state_dir(env: dict | os._Environ) -> str:
    base = env.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "remote-docker", "apt")


def image_name(env: dict | os._Environ, app: str) -> str:
    return f"{prefix(env)}/{app}:latest"


def check_names(packages: list[str]) -> None:
    if not packages:
        raise UsageError("name at least one Debian package")
    for name in packages:
        if not PACKAGE_NAME.match(name):
            raise UsageError(f"{name!r} is not a Debian package name")


# -- the record ----------------------------------------------------------------------------

def load(name: str, env: dict | os._Environ) -> App | None:
    try:
        with open(os.path.join(state_dir(env), f"{name}.json"), encoding="utf-8") as f:
            return App(**json.load(f))
    except (OSError, ValueError, TypeError):
        return None


def save(app: App, env: dict | os._Environ) -> None:
    directory = state_dir(env)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    path = os.path.join(directory, f"{app.name}.json")
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(asdict(app), f, indent=1)
    os.replace(path + ".tmp", path)


def installed(env: dict | os._Environ) -> list[App]:
    try:
        names = sorted(n[:-5] for n in os.listdir(state_dir(env)) if n.endswith(".json"))
    except OSError:
        return []
    return [app for app in (load(n, env) for n in names) if app is not None]


# -- on the docker-machine -----------------------------------------------------------------

def _capture(master, argv: list[str], stdin: bytes | None = None) -> tuple[int, bytes]:
    return master.capture(join(argv) + " 2>&1", stdin)


def ensure_index(master, env: dict | os._Environ) -> str:
    """An image with Debian's package lists, rebuilt once a day: names are checked against it."""
    tag = f"{prefix(env)}/apt-index:latest"
    status, out = _capture(master, ["docker", "image", "inspect", "-f", "{{.Created}}", tag])
    if status == 0 and _age(out.decode().strip()) < INDEX_MAX_AGE:
        return tag
    day = time.strftime("%Y-%m-%d")
    text = (f"FROM {df.BASE_IMAGE}\nARG DAY\nRUN echo \"lists of $DAY\" && apt-get update\n")
    status, out = _capture(master, ["docker", "build", "-q", "--build-arg", f"DAY={day}",
                                    "-t", tag, "-"], text.encode())
    if status != 0:
        raise RemoteDockerError("cannot read Debian's package lists on the docker-machine: "
                                + _last_line(out))
    return tag


def _age(created: str) -> float:
    from datetime import datetime

    try:
        stamp = datetime.fromisoformat(created[:26].rstrip("Z") + "+00:00")
    except ValueError:
        return float("inf")
    return time.time() - stamp.timestamp()


def _last_line(out: bytes) -> str:
    lines = [line.strip() for line in out.decode(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def unknown_packages(master, env: dict | os._Environ, packages: list[str]) -> list[str]:
    index = ensure_index(master, env)
    script = 'for p; do apt-cache show --no-all-versions "$p" >/dev/null 2>&1 || echo "$p"; done'
    status, out = _capture(master, ["docker", "run", "--rm", index, "sh", "-c", script, "sh",
                                    *packages])
    if status != 0:
        raise RemoteDockerError("cannot check package names: " + _last_line(out))
    return out.decode().split()


def build(master, tag: str, text: str, no_cache: bool, progress) -> None:
    """docker build on the docker-machine, its steps shown by ``progress(line)``."""
    import subprocess

    script = join(["docker", "build", *(["--no-cache"] if no_cache else []), "-t", tag, "-"])
    child = subprocess.Popen(master.session_argv(script + " 2>&1"), stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE)
    child.stdin.write(text.encode())
    child.stdin.close()
    tail: list[str] = []
    for raw in child.stdout:
        line = raw.decode(errors="replace").rstrip()
        if line.strip():
            tail = (tail + [line])[-20:]
            progress(line)
    if child.wait() != 0:
        errors = [l for l in tail if "error" in l.lower() or l.startswith("E:")]
        raise RemoteDockerError(f"building {tag} failed: {(errors or tail or ['?'])[-1].strip()}")


def programs(master, image: str, packages: list[str]) -> tuple[dict[str, str], dict[str, str], set]:
    """(program name -> path, desktop file name -> text, graphical program names) of the image."""
    script = "\n".join([
        'for p; do dpkg -L "$p"; done | sort -u | while read -r f; do',
        '  case "$f" in',
        f'  {"|".join(d + "*" for d in BIN_DIRS)})',
        '    [ -f "$f" ] && [ -x "$f" ] || continue',
        f'    if ldd "$f" 2>/dev/null | grep -q -e {" -e ".join(GUI_LIBRARIES)}; then',
        '      echo "gui $f"; else echo "cli $f"; fi;;',
        '  /usr/share/applications/*.desktop)',
        '    echo "desktop $f $(base64 -w0 < "$f")";;',
        '  esac',
        'done',
    ])
    status, out = _capture(master, ["docker", "run", "--rm", "--entrypoint", "sh", image, "-c",
                                    script, "sh", *packages])
    if status != 0:
        raise RemoteDockerError(f"cannot list the programs of {image}: {_last_line(out)}")
    found: dict[str, str] = {}
    desktop: dict[str, str] = {}
    gui: set[str] = set()
    for line in out.decode(errors="replace").splitlines():
        kind, _, rest = line.partition(" ")
        if kind in ("gui", "cli"):
            name = os.path.basename(rest)
            found.setdefault(name, rest)
            if kind == "gui":
                gui.add(name)
        elif kind == "desktop":
            path, _, data = rest.partition(" ")
            desktop[os.path.basename(path)] = base64.b64decode(data).decode(errors="replace")
    for text in desktop.values():  # a program a menu entry starts is graphical
        gui.update(name for name in _exec_programs(text) if name in found)
    return found, desktop, gui


def _exec_programs(text: str) -> list[str]:
    names = []
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() in ("Exec", "TryExec") and value.split():
            names.append(os.path.basename(value.split()[0]))
    return names


def rewrite_desktop(text: str, launchers: dict[str, str]) -> str:
    """The entry with Exec/TryExec pointing at our launchers."""
    out = []
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        words = value.split(" ", 1)
        if sep and key.strip() in ("Exec", "TryExec") and os.path.basename(words[0]) in launchers:
            words[0] = launchers[os.path.basename(words[0])]
            line = f"{key}={' '.join(words)}"
        out.append(line)
    return "\n".join(out) + "\n"


# -- on the workstation --------------------------------------------------------------------

def is_ours(path: str) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return MARK in f.read(400)
    except OSError:
        return False


def write_files(app: App, found: dict[str, str], desktop: dict[str, str], gui: set[str],
                env: dict | os._Environ, warn) -> None:
    """Launchers and desktop entries; a file that is not ours is never overwritten."""
    bins = bin_dir(env)
    os.makedirs(bins, exist_ok=True)
    written: dict[str, str] = {}
    for name, path in sorted(found.items()):
        target = os.path.join(bins, name)
        if os.path.lexists(target) and not is_ours(target) and target not in app.launchers:
            warn(f"{target} exists and is not an apt-docker launcher: left alone")
            continue
        text = df.launcher(name, path, app.image, app.volume, name in gui)
        _write(target, text, 0o755)
        written[name] = target
    app.launchers = sorted(written.values())
    app.graphical = sorted(n for n in gui if n in written)
    app.desktop = []
    if desktop:
        apps_dir = desktop_dir(env)
        os.makedirs(apps_dir, exist_ok=True)
        for name, text in sorted(desktop.items()):
            target = os.path.join(apps_dir, f"apt-docker-{app.name}-{name}")
            _write(target, rewrite_desktop(text, written), 0o644)
            app.desktop.append(target)


def _write(path: str, text: str, mode: int) -> None:
    temp = f"{path}.apt-docker-{os.getpid()}"
    with open(temp, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(temp, mode)
    os.replace(temp, path)


def check(master, packages: list[str], env: dict | os._Environ) -> None:
    """Every name is a Debian package, before anything is built; one line if not."""
    check_names(packages)
    master.ensure()
    unknown = unknown_packages(master, env, packages)
    if unknown:
        raise UsageError(f"no such Debian package: {' '.join(unknown)}")


def install(master, packages: list[str], env: dict | os._Environ, progress, warn,
            no_cache: bool = False) -> App:
    """Build, list, write launchers (after ``check``); the record is saved only when all went well."""
    name = packages[0]
    previous = load(name, env)
    app = App(name, packages, image_name(env, name), df.home_volume(prefix(env), name),
              launchers=previous.launchers if previous else [])
    build(master, app.image, df.dockerfile(packages, os.getuid(), os.getgid()), no_cache,
          progress)
    found, desktop, gui = programs(master, app.image, packages)
    stale = set(previous.launchers + previous.desktop) if previous else set()
    write_files(app, found, desktop, gui, env, warn)
    for path in stale - set(app.launchers) - set(app.desktop):
        _unlink(path)
    save(app, env)
    return app


def remove(master, name: str, purge: bool, env: dict | os._Environ) -> list[str]:
    """Image, launchers, desktop entries (and with ``purge`` the home volume); what went."""
    app = load(name, env)
    if app is None:
        raise UsageError(f"{name!r} is not installed by apt-docker (see 'apt-docker list')")
    master.ensure()
    gone = []
    status, out = _capture(master, ["docker", "image", "rm", app.image])
    if status == 0 or b"No such image" in out:
        gone.append(app.image)
    else:
        raise RemoteDockerError(f"cannot remove {app.image}: {_last_line(out)}")
    if purge:
        status, out = _capture(master, ["docker", "volume", "rm", app.volume])
        if status != 0 and b"no such volume" not in out.lower():
            raise RemoteDockerError(f"cannot remove volume {app.volume}: {_last_line(out)}")
        gone.append(app.volume)
    for path in app.launchers + app.desktop:
        if is_ours(path) or path in app.desktop:
            _unlink(path)
            gone.append(path)
    os.unlink(os.path.join(state_dir(env), f"{name}.json"))
    return gone


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass

