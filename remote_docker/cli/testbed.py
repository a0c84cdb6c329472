"""`remote-docker testbed up|down|status|exec -- CMD…`: the local test bed, as root.

Thin on purpose: the work is in remote_docker.testbed. Expected failures
(bad input, a step that cannot be done) are one line on stderr and a
non-zero exit; only a bug shows a traceback.
"""

from __future__ import annotations

import sys

PROG = "remote-docker testbed"
USAGE = f"usage: {PROG} up|down|status|exec -- CMD..."

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _say(line: str) -> None:
    print(line, flush=True)


def _status() -> int:
    from remote_docker.testbed import status

    parts = status()
    width = max(len(name) for name, _ in parts)
    for name, ok in parts:
        print(f"{name:<{width}}  {'ok' if ok else 'missing'}")
    return 0 if all(ok for _, ok in parts) else EXIT_FAILED


def _exec(words: list[str]) -> int:
    from remote_docker.testbed import TestbedError, is_up, sync_code
    from remote_docker.testbed.runas import exec_as_ws, require_root

    command = words[1:] if words[:1] == ["--"] else words
    if not command:
        raise _Usage("exec needs a command: exec -- CMD...")
    require_root()
    if not is_up():
        raise TestbedError(f"the test bed is not up: run `{PROG} up` first")
    sync_code()
    sys.stdout.flush()
    exec_as_ws(command)  # returns only by raising
    return EXIT_FAILED


class _Usage(Exception):
    pass


def _dispatch(argv: list[str]) -> int:
    from remote_docker.testbed import down, up

    if not argv or argv[0] in ("-h", "--help", "help"):
        if not argv:
            raise _Usage("a command is needed")
        print(USAGE)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "exec":
        return _exec(rest)
    if rest:
        raise _Usage(f"{command} takes no arguments, got {' '.join(rest)}")
    if command == "up":
        up(_say)
        return 0
    if command == "down":
        down(_say)
        return 0
    if command == "status":
        return _status()
    raise _Usage(f"unknown command {command!r}")


def main(argv: list[str]) -> int:
    """The CLI; argv is what follows `testbed`. Returns the exit status."""
    from remote_docker.testbed import TestbedError

    try:
        return _dispatch(list(argv))
    except _Usage as error:
        print(f"{PROG}: {error} ({USAGE.removeprefix('usage: ')})", file=sys.stderr)
        return EXIT_USAGE
    except TestbedError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as error:  # a missing command or a permission denied on the way
        print(f"{PROG}: {error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
