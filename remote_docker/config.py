"""Which docker-machine to use, and where our own state lives.

Order: ``REMOTE_DOCKER_HOST``, else ``host`` in the config file that
``remote-docker use HOST`` writes (``$XDG_CONFIG_HOME/remote-docker/config.toml``).

The shim reads this on every call, so the module avoids heavy imports: no
``re`` (~10 ms), and ``tomllib`` (~35 ms cold) only when the config file changed
since we last parsed it; the parsed scalars are kept in a small cache file keyed
by the config file's mtime and size.
"""

import os

from remote_docker.errors import ConfigError

LOCAL = "local"
# Our compose sets DOCKER_HOST to the forwarded socket and this to the same value, so the
# docker shim, run by compose (`docker exec`, `docker start -a`), knows that one is ours.
COMPOSE_DOCKER_HOST = "REMOTE_DOCKER_COMPOSE_DOCKER_HOST"
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_")
_USER_CHARS = _HOST_CHARS | frozenset("$")
_V6_CHARS = frozenset("0123456789abcdefABCDEF:.")


class Machine:
    """A docker-machine as ssh names it: ``[user@]host[:port]`` or an ssh config alias.

    ``spec`` is what the user wrote, kept for messages; ``destination`` and
    ``port`` are what ssh is given, so that the user's ``~/.ssh/config`` (User,
    Port, ProxyJump, IdentityFile) still applies to an alias.
    """

    __slots__ = ("spec", "user", "host", "port")

    def __init__(self, spec: str, user: str | None, host: str, port: int | None) -> None:
        self.spec = spec
        self.user = user
        self.host = host
        self.port = port

    @property
    def destination(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.user}@{host}" if self.user else host

    def ssh_args(self) -> list[str]:
        """The ssh arguments that name this machine (port first, destination last).

        An IPv6 address goes to ssh bare: ``user@[::1]`` is only our notation,
        and ssh would look up ``[::1]`` as a host name.
        """
        login = f"{self.user}@{self.host}" if self.user else self.host
        return (["-p", str(self.port)] if self.port else []) + ["--", login]

    def key(self) -> str:
        """A short file-name-safe identity, used for the control socket's name."""
        raw = self.destination + (f"-{self.port}" if self.port else "")
        safe = "".join(c if c in _HOST_CHARS or c == "@" else "_" for c in raw)
        if len(safe) > 40:
            import zlib  # builtin module: cheap, and only for very long names

            safe = f"{safe[:31]}-{zlib.crc32(raw.encode()):08x}"
        return safe

    def __repr__(self) -> str:
        return f"Machine({self.spec!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Machine) and (self.user, self.host, self.port) == (
            other.user, other.host, other.port)


def parse_machine(spec: str) -> Machine:
    """Parse ``[ssh://][user@]host[:port]``; raise ConfigError with a one-line reason."""
    text = spec.strip()
    if text.startswith("ssh://"):
        text = text[len("ssh://"):].rstrip("/")
    if not text:
        raise ConfigError(f"docker-machine {spec!r} is empty: expected [user@]host[:port]")
    user = None
    if "@" in text:
        user, _, text = text.rpartition("@")
        if not user or not set(user) <= _USER_CHARS:
            raise ConfigError(f"docker-machine {spec!r}: {user!r} is not a valid user name")
    host, port_text = _split_port(spec, text)
    port = None
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ConfigError(f"docker-machine {spec!r}: port {port_text!r} is not 1-65535")
        port = int(port_text)
    return Machine(spec, user, host, port)


def _split_port(spec: str, text: str) -> tuple[str, str | None]:
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        address, _, zone = host.partition("%")
        if not sep or not address or not set(address) <= _V6_CHARS or not zone.isalnum() and zone:
            raise ConfigError(f"docker-machine {spec!r}: bad IPv6 address")
        if rest and not rest.startswith(":"):
            raise ConfigError(f"docker-machine {spec!r}: expected [user@]host[:port]")
        return host, (rest[1:] if rest else None)
    host, sep, port = text.partition(":")
    if ":" in port:
        raise ConfigError(f"docker-machine {spec!r}: write an IPv6 address as [addr]:port")
    if not host or not set(host) <= _HOST_CHARS or host[0] in "-.":
        raise ConfigError(f"docker-machine {spec!r}: {host!r} is not a valid host name")
    return host, (port if sep else None)


def config_dir(env: dict | os._Environ = os.environ) -> str:
    base = env.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "remote-docker")


def config_path(env: dict | os._Environ = os.environ) -> str:
    return env.get("REMOTE_DOCKER_CONFIG") or os.path.join(config_dir(env), "config.toml")


def runtime_dir(env: dict | os._Environ = os.environ) -> str:
    """Where control sockets and other per-boot state live; created 0700.

    ``$XDG_RUNTIME_DIR`` when the session has one (tmpfs, per user), else
    ``~/.cache/remote-docker/run``.
    """
    xdg = env.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isdir(xdg) and os.access(xdg, os.W_OK):
        path = os.path.join(xdg, "remote-docker")
    else:
        path = os.path.join(cache_dir(env), "run")
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create state directory {path}: {exc.strerror}") from None
    return path


def cache_dir(env: dict | os._Environ = os.environ) -> str:
    """``$XDG_CACHE_HOME/remote-docker``: survives a reboot, unlike the runtime dir.

    The parsed config lives here so that the first command after a reboot
    does not pay for ``tomllib`` on top of a new ssh connection.
    """
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = os.path.join(base, "remote-docker")
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except OSError:
        pass  # without a cache we only lose speed
    return path


def read_settings(env: dict | os._Environ = os.environ) -> dict[str, str]:
    """The config file's top-level scalar settings as strings ({} when there is none)."""
    path = config_path(env)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    stamp = f"{st.st_mtime_ns} {st.st_size} {path}"
    if stamp in _SEEN:
        return _SEEN[stamp]
    cache = os.path.join(cache_dir(env), "config.cache")
    settings = _read_cache(cache, stamp)
    if settings is None:
        settings = _parse_toml(path)
        _write_cache(cache, stamp, settings)
    _SEEN[stamp] = settings
    return settings


_SEEN: dict[str, dict[str, str]] = {}  # one parse per config version per process


def _read_cache(cache: str, stamp: str) -> dict[str, str] | None:
    try:
        with open(cache, encoding="utf-8") as f:
            lines = f.read().split("\n")
    except OSError:
        return None
    if not lines or lines[0] != stamp:
        return None
    return dict(line.split("=", 1) for line in lines[1:] if "=" in line)


def _parse_toml(path: str) -> dict[str, str]:
    import tomllib

    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    return {k: str(v) for k, v in data.items()
            if isinstance(v, (str, int, bool)) and "\n" not in str(v)}


def _write_cache(cache: str, stamp: str, settings: dict[str, str]) -> None:
    write_cache_file(cache, "\n".join([stamp, *(f"{k}={v}" for k, v in settings.items())]))


def write_cache_file(path: str, text: str) -> None:
    """Replace a file of ``cache_dir`` whole (readers see the old one or the new one),
    or leave it: a cache we cannot write only costs speed."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def machine_spec(env: dict | os._Environ = os.environ) -> str:
    """The configured docker-machine as written, or ConfigError saying how to set one."""
    spec = env.get("REMOTE_DOCKER_HOST")
    if spec is None:
        spec = read_settings(env).get("host")
    if not spec:
        raise ConfigError(
            "no docker-machine configured: run 'remote-docker use [user@]host[:port]' "
            "or set REMOTE_DOCKER_HOST")
    return spec.strip()


def transport_name(env: dict | os._Environ = os.environ) -> str:
    name = env.get("REMOTE_DOCKER_TRANSPORT") or read_settings(env).get("transport") or "openssh"
    if name not in ("openssh", "fabric"):
        raise ConfigError(f"unknown transport {name!r}: use 'openssh' or 'fabric'")
    return name


def translate_paths(env: dict | os._Environ = os.environ) -> bool:
    """Whether workstation paths in ``-v``/``--mount`` become reverse mounts (default yes)."""
    value = env.get("REMOTE_DOCKER_TRANSLATE") or read_settings(env).get("translate_paths", "")
    return value.strip().lower() not in ("0", "false", "no", "off")


def local_docker_host(env: dict | os._Environ = os.environ) -> str:
    """The workstation's own engine, when it is not on docker's default socket ("" if so).

    ``REMOTE_DOCKER_LOCAL_HOST`` or ``local_docker_host``: a DOCKER_HOST value
    (e.g. rootless docker's ``unix:///run/user/1000/docker.sock``) given to the
    local docker client only. Setting DOCKER_HOST itself would send every
    shim call to the local engine, as it names a daemon explicitly.
    """
    value = env.get("REMOTE_DOCKER_LOCAL_HOST")
    if value is None:
        value = read_settings(env).get("local_docker_host", "")
    return value.strip()


def control_persist(env: dict | os._Environ = os.environ) -> str:
    """How long an idle master connection is kept, in ssh's ControlPersist syntax."""
    value = env.get("REMOTE_DOCKER_PERSIST") or read_settings(env).get("control_persist") or "600"
    if not value.isdigit() and value not in ("yes",) and not value[:-1].isdigit():
        raise ConfigError(f"control_persist {value!r}: expected seconds such as 600 or 10m")
    return value


def write_settings(updates: dict[str, str | None], env: dict | os._Environ = os.environ) -> str:
    """Set (or, with None, remove) top-level keys in the config file; returns its path.

    Rewrites only the ``key = "value"`` lines it owns and keeps everything else,
    comments included, so a hand-edited file survives ``remote-docker use``.
    """
    import json  # a JSON string is a valid TOML basic string

    path = config_path(env)
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        lines = []
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    first_table = next((i for i, l in enumerate(lines) if l.lstrip().startswith("[")), len(lines))
    head, tail = lines[:first_table], lines[first_table:]
    for key, value in updates.items():
        head = [l for l in head if l.split("=", 1)[0].strip() != key]
        if value is not None:
            head.append(f"{key} = {json.dumps(value)}")
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(head + tail) + "\n")
    os.replace(tmp, path)
    return path
