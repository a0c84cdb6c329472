"""`remote-docker testbed up|down|status|exec -- CMD…`: the local test bed, as root.

Thin on purpose: the work is in remote_docker.testbed. Expected failures
(bad input, a step that cannot be done) are one line on stderr and a
non-zero exit; only a bug shows a traceback.
"""

from __future__ import annotations

import sys

from remote_docker.errors import ExitStatus, RemoteDockerError, UsageError

PROG = "remote-docker testbed"
USAGE = f"{PROG} up|down|status|exec [--host-net] -- CMD..."


def _say(line: str) -> None:
    print(line, flush=True)


def _status() -> int:
    from remote_docker.testbed import status

    parts = status()
    width = max(len(name) for name, _ in parts)
    for name, ok in parts:
        print(f"{name:<{width}}  {'ok' if ok else 'missing'}")
    return ExitStatus.OK if all(ok for _, ok in parts) else ExitStatus.ERROR


def _exec(words: list[str]) -> int:
    """Become the command as ws; only the checks a command relies on are imported.

    In ws's own network namespace (testbed.netns), with published ports on, so
    `docker run -p` behaves there as on a real workstation; --host-net keeps
    the machine's network (and ports off).
    """
    from remote_docker.testbed import TestbedError, is_up, sync_code
    from remote_docker.testbed.runas import exec_as_ws, require_root

    from remote_docker.testbed import layout

    netns = words[:1] != ["--host-net"]  # ws's own network namespace unless asked
    words = words[1:] if not netns else words
    command = words[1:] if words[:1] == ["--"] else words
    if not command:
        raise UsageError(f"exec needs a command: {USAGE}")
    require_root()
    if not is_up() or netns and not layout.WS_NETNS_PATH.exists():
        raise TestbedError(f"the test bed is not up: run `{PROG} up` first")
    sync_code()
    sys.stdout.flush()
    exec_as_ws(command, netns)  # returns only by raising
    return ExitStatus.ERROR


def _dispatch(argv: list[str]) -> int:
    if not argv:
        raise UsageError(f"a command is needed: {USAGE}")
    command, rest = argv[0], argv[1:]
    if command in ("-h", "--help", "help"):
        print(f"usage: {USAGE}")
        return ExitStatus.OK
    if command == "exec":
        return _exec(rest)
    if command not in ("up", "down", "status"):
        raise UsageError(f"unknown command {command!r}: {USAGE}")
    if rest:
        raise UsageError(f"{command} takes no arguments, got {' '.join(rest)!r}")
    if command == "status":
        return _status()
    from remote_docker import testbed

    getattr(testbed, command)(_say)
    return ExitStatus.OK


def main(argv: list[str]) -> int:
    """The CLI; argv is what follows `testbed`. Returns the exit status."""
    try:
        return _dispatch(list(argv))
    except RemoteDockerError as error:  # TestbedError and UsageError among them
        print(f"{PROG}: {error.message}", file=sys.stderr)
        return error.status
    except OSError as error:  # a missing command or a permission denied on the way
        print(f"{PROG}: {error}", file=sys.stderr)
        return ExitStatus.ERROR
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return ExitStatus.SIGINT
