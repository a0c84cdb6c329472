"""Running commands as the test bed's users: the helpers the whole suite uses.

`run_ws` is the workstation user running the shims; `run_dm` is the
docker-machine user, whose plain `docker` on the same engine is the
reference the shim is compared against. Both start from the user's own
clean environment (never root's) and from the user's home, because the
checkout tests run from is usually one the users cannot enter.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from remote_docker import testbed
from remote_docker.testbed import layout

DEFAULT_TIMEOUT = 120


def run_as(
    user: str,
    argv: Sequence[str],
    input: bytes | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    netns: bool = True,
) -> subprocess.CompletedProcess:
    """argv as a bed user, stdout/stderr as bytes; `env` adds to the user's own.

    stdin is empty unless `input` is given, so nothing reads the test's own.
    netns (ws only, default): in the workstation's own network namespace, where
    the docker-machine's published ports are not on localhost (testbed.netns).
    """
    wrap, base_env = {
        layout.WS_USER: (lambda a: testbed.ws_command(a, netns), testbed.ws_env),
        layout.DM_USER: (testbed.dm_command, testbed.dm_env),
    }[user]
    return subprocess.run(
        wrap(list(argv)),
        env={**base_env(), **(env or {})},
        input=input,
        stdin=subprocess.DEVNULL if input is None else None,
        capture_output=True,
        timeout=timeout,
        cwd=cwd if cwd is not None else layout.home(user),
    )


def run_ws(argv: Sequence[str], **options) -> subprocess.CompletedProcess:
    """argv as ws, the shims first on PATH (options: input, timeout, cwd, env, netns)."""
    return run_as(layout.WS_USER, argv, **options)


def run_dm(argv: Sequence[str], **options) -> subprocess.CompletedProcess:
    """argv as dm, whose docker is the engine's local client (options as run_ws)."""
    return run_as(layout.DM_USER, argv, **options)
