"""The workstation's X display, as docker.x11 hands it to a container.

What a container gets is the *user's own* X server, reached through a unix
socket the ssh master relays, and the user's own cookie for it: the X server
checks only the cookie's bytes, never the address in the Xauthority entry, so
the cookie the user's clients already present is the one that works.  It is
written into a per-session Xauthority file as a FamilyWild entry (libXau and
xcb match FamilyWild for any host name, and the container's host name is not
known before it exists) plus a FamilyLocal entry for a host name the user
set with ``--hostname``, for clients that, like python-xlib, skip FamilyWild.

python-xlib does the parsing, the connection test and the reading of the
user's Xauthority, so that the names and families mean what X means by them.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import struct
from dataclasses import dataclass

from remote_docker.errors import RemoteDockerError
from remote_docker.transport.mux import PORT_STREAMLOCAL

FAMILY_WILD = 0xFFFF
FAMILY_LOCAL = 256
CONTAINER_DISPLAY = 0  # the container sees :0, at /tmp/.X11-unix/X0


class X11Error(RemoteDockerError):
    """No display, an unreachable one, or one that refuses us."""


@dataclass
class WorkstationDisplay:
    name: str  # $DISPLAY
    number: int
    connect: tuple[str, int]  # what the master connects to: (path, PORT_STREAMLOCAL) or (host, port)
    auth_name: bytes
    auth_data: bytes


def find(env: dict | os._Environ) -> WorkstationDisplay:
    """The display ``$DISPLAY`` names, checked by connecting to it as any X client would."""
    name = env.get("DISPLAY", "")
    if not name:
        raise X11Error("no X display: DISPLAY is not set (docker.x11 shows windows on this "
                       "workstation's display)")
    from remote_docker.deps import ensure_site_packages

    ensure_site_packages()
    from Xlib import error
    from Xlib.support import unix_connect

    try:
        _, protocol, host, number, _ = unix_connect.get_display(name)
    except error.DisplayNameError:
        raise X11Error(f"DISPLAY={name!r} is not an X display name") from None
    _check_server(name, env)
    if (protocol == "unix" or not host or host == "unix") and protocol != "tcp":
        path = f"/tmp/.X11-unix/X{number}"
        if not os.path.exists(path):
            raise X11Error(f"the X display {name} has no socket at {path} (an abstract-only "
                           "socket cannot be relayed)")
        connect: tuple[str, int] = (path, PORT_STREAMLOCAL)
        family, address = FAMILY_LOCAL, socket.gethostname().encode()
    else:
        connect = (host, 6000 + number)
        family, address = _tcp_family(host)
    auth_name, auth_data = user_cookie(env, family, address, number)
    return WorkstationDisplay(name, number, connect, auth_name, auth_data)


def _check_server(name: str, env: dict | os._Environ) -> None:
    """Connect once: an unreachable display or a refused cookie is one clear line now."""
    from Xlib import display, error

    with _xauthority_env(env), contextlib.redirect_stdout(io.StringIO()):
        try:
            display.Display(name).close()
        except error.DisplayConnectionError as exc:
            raise X11Error(f"cannot open the X display {name}: {exc.msg}".rstrip()) from None
        except (error.DisplayError, OSError) as exc:
            raise X11Error(f"cannot open the X display {name}: {exc}") from None


@contextlib.contextmanager
def _xauthority_env(env: dict | os._Environ):
    """python-xlib reads os.environ: lend it ours for the duration."""
    saved = {k: os.environ.get(k) for k in ("XAUTHORITY", "HOME")}
    for key in saved:
        if env.get(key):
            os.environ[key] = env[key]
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _tcp_family(host: str) -> tuple[int, bytes]:
    try:
        return 0, socket.inet_aton(socket.gethostbyname(host))  # FamilyInternet
    except OSError:
        return FAMILY_LOCAL, socket.gethostname().encode()


def xauthority_path(env: dict | os._Environ) -> str:
    return env.get("XAUTHORITY") or os.path.join(env.get("HOME") or os.path.expanduser("~"),
                                                 ".Xauthority")


def user_cookie(env: dict | os._Environ, family: int, address: bytes,
                number: int) -> tuple[bytes, bytes]:
    """The user's MIT-MAGIC-COOKIE-1 for this display; empty when the server needs none.

    As ssh and python-xlib do: a ``localhost:N`` display (ssh -X) is looked up
    as the local display N when no Internet entry matches.
    """
    from Xlib import error, xauth

    path = xauthority_path(env)
    if not os.path.exists(path):
        return b"", b""
    with contextlib.redirect_stdout(io.StringIO()):  # python-xlib prints warnings there
        try:
            authority = xauth.Xauthority(path)
        except error.XauthError:
            return b"", b""
    candidates = [(family, address)]
    if family == 0 and address == b"\x7f\x00\x00\x01":
        candidates.append((FAMILY_LOCAL, socket.gethostname().encode()))
    for fam, addr in candidates:
        try:
            return authority.get_best_auth(fam, addr, number)
        except error.XNoAuthError:
            continue
    return b"", b""


def _entry(family: int, address: bytes, number: bytes, name: bytes, data: bytes) -> bytes:
    def field(value: bytes) -> bytes:
        return struct.pack(">H", len(value)) + value

    return struct.pack(">H", family) + field(address) + field(number) + field(name) + field(data)


def container_xauthority(display: WorkstationDisplay, hostnames: list[str]) -> bytes:
    """The Xauthority file the container reads: the cookie for its display :0."""
    if not display.auth_data:
        return b""
    number = str(CONTAINER_DISPLAY).encode()
    entries = [_entry(FAMILY_WILD, b"", number, display.auth_name, display.auth_data)]
    entries += [_entry(FAMILY_LOCAL, host.encode(), number, display.auth_name, display.auth_data)
                for host in hostnames]
    return b"".join(entries)
