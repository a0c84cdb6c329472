"""The errors remote-docker expects, each with the exit status it ends in.

Every expected failure is raised as a ``RemoteDockerError`` and turned into one
line on stderr by the error boundary in ``cli/``; anything else is a bug.  The
module imports nothing so that the ``docker`` shim can raise these on its hot
path for free.
"""


class ExitStatus:
    """Exit statuses of our own making; docker's own codes pass through untouched.

    A plain class rather than ``enum.IntEnum``: importing ``enum`` costs the shim
    several milliseconds on every call.
    """

    OK = 0
    ERROR = 1
    USAGE = 125  # what docker itself uses for its own usage errors
    NOT_FOUND = 127
    SIGINT = 130
    SSH = 255  # what ssh exits with when the connection itself failed


class RemoteDockerError(Exception):
    """An expected failure: a message for the user and the status to exit with."""

    status = ExitStatus.ERROR
    bare = False  # printed without the ``<prog>:`` prefix (``DockerError``)

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class UsageError(RemoteDockerError):
    """Bad input from the user: a malformed host, a missing file, an unknown flag."""

    status = ExitStatus.USAGE


class DockerError(UsageError):
    """A failure docker's own CLI reports, in docker's words and with its status 1.

    Printed as docker prints it, without our ``<prog>:`` prefix: a user's
    scripts and eyes should see what a local docker would have said
    ("unable to prepare context: …", "lstat /x: no such file or directory").
    """

    status = ExitStatus.ERROR
    bare = True


class CreateRefused(UsageError):
    """What docker's CLI meets while creating a container, after its flags parsed: the
    engine refusing a mount, a container ID file it cannot make. ``run`` frames it as
    its toStatusError does; ``create`` prints it bare with status 1 (``forward``)."""


class ConfigError(RemoteDockerError):
    """No docker-machine configured, or a config file that cannot be read."""

    status = ExitStatus.USAGE


class ConnectionFailed(RemoteDockerError):
    """ssh could not reach or log in to the docker-machine.

    Carries the argv and the captured stderr of the ssh that failed, so a caller
    never has to run it again to explain what happened.
    """

    status = ExitStatus.SSH

    def __init__(self, message: str, argv: list[str] | None = None,
                 stderr: str = "", returncode: int | None = None) -> None:
        super().__init__(message)
        self.argv = argv or []
        self.stderr = stderr
        self.returncode = returncode


class RemoteCommandFailed(RemoteDockerError):
    """A command we ran on the docker-machine for our own purposes failed."""

    def __init__(self, message: str, argv: list[str] | None = None,
                 stdout: bytes = b"", stderr: bytes = b"", returncode: int = 1) -> None:
        super().__init__(message)
        self.argv = argv or []
        self.stdout = stdout
        self.stderr = stderr
        self.returncode = returncode


class NotYetAvailable(RemoteDockerError):
    """A shim whose issue has not landed yet."""

    status = ExitStatus.USAGE
