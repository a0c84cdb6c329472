"""The command-line layer: one thin module per binary, one error boundary each.

``guarded`` is that boundary for the shims: an expected failure is one line,
``<prog>: <message>`` (docker's own words bare, as docker prints them), and its
exit status; Ctrl-C is 130; an OSError is one line too (the machine's state);
anything else is a bug and keeps its traceback.  Only this layer prints or exits.
"""

import sys


def guarded(prog: str, run) -> int:
    import os

    from remote_docker.errors import ExitStatus, RemoteDockerError

    try:
        return run()
    except RemoteDockerError as exc:
        prefix = "" if exc.bare else f"{prog}: "
        sys.stderr.write(f"{prefix}{exc.message}\n")
        return exc.status
    except KeyboardInterrupt:
        return ExitStatus.SIGINT
    except OSError as exc:
        if os.environ.get("REMOTE_DOCKER_TRACEBACK"):
            raise
        sys.stderr.write(f"{prog}: {os_error_line(exc)}\n")
        return ExitStatus.ERROR


def os_error_line(exc: OSError) -> str:
    """An OSError no caller foresaw (a file we may not read, a full disk): still one line,
    naming the file, since the machine's state, not our code, is what the user can fix.
    ``REMOTE_DOCKER_TRACEBACK=1`` (``remote-docker --traceback``) shows where it came from."""
    what = (exc.strerror or str(exc) or type(exc).__name__).lower()
    return f"{exc.filename}: {what}" if exc.filename else what
