"""The command-line layer: one thin module per binary, one error boundary each.

``guarded`` is that boundary for the shims: an expected failure is one line,
``<prog>: <message>`` (docker's own words bare, as docker prints them), and its
exit status; Ctrl-C is 130; anything else is a
bug and keeps its traceback.  Only this layer prints or exits.
"""

import sys


def guarded(prog: str, run) -> int:
    from remote_docker.errors import ExitStatus, RemoteDockerError

    try:
        return run()
    except RemoteDockerError as exc:
        prefix = "" if exc.bare else f"{prog}: "
        sys.stderr.write(f"{prefix}{exc.message}\n")
        return exc.status
    except KeyboardInterrupt:
        return ExitStatus.SIGINT
