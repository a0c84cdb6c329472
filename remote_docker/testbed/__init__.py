"""The local test bed: a docker-machine and a workstation on one machine, real parts on loopback.

`remote-docker testbed up|down|status|exec` drives it; tests use this API.
Standard library only: it runs as root before any dependency is installed.
The bed is for disposable machines; see remote_docker.testbed.bed.

Names are imported on first use, so that `exec` (which needs few of them)
does not pay for the modules that build images or install packages.
"""

from __future__ import annotations

import importlib

_HOMES = {
    "up": "bed", "down": "bed", "status": "bed", "exclusive": "bed",
    "is_up": "readiness",
    "sync_code": "code",
    "TestbedError": "process",
    "ws_command": "runas", "ws_env": "runas", "dm_command": "runas", "dm_env": "runas",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    globals()[name] = value
    return value
