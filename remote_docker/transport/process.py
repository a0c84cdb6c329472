"""Starting and waiting for processes: the only place that starts one on the hot path.

``os.posix_spawnp`` and ``os.waitpid`` rather than ``subprocess``, and
``_signal`` rather than ``signal``: those imports cost the shim milliseconds on
every call.  ``capture`` (our own small helper commands) may use subprocess.
"""

import os

import _signal

from remote_docker.errors import ConnectionFailed


def spawn(argv: list[str], stdin: str | int | None = None, stdout: str | int | None = None,
          stderr: str | None = None, own_group: bool = False) -> int:
    """Start ``argv``; the only way this package starts a process on the hot path.

    ``stdin`` and ``stdout`` are a path or a file descriptor, ``stderr`` a
    path (created); None inherits.  SIGPIPE is reset to default for the child
    (Python ignores it, and children inherit that).
    """
    actions: list[tuple] = []
    if isinstance(stdin, int):
        actions.append((os.POSIX_SPAWN_DUP2, stdin, 0))
    elif stdin is not None:
        actions.append((os.POSIX_SPAWN_OPEN, 0, stdin, os.O_RDONLY, 0))
    if isinstance(stdout, int):
        actions.append((os.POSIX_SPAWN_DUP2, stdout, 1))
    elif stdout is not None:
        actions.append((os.POSIX_SPAWN_OPEN, 1, stdout, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                        0o666))
    if stderr is not None:
        actions.append((os.POSIX_SPAWN_OPEN, 2, stderr, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                        0o666))
    try:
        return os.posix_spawnp(argv[0], argv, os.environ, file_actions=actions,
                               setsigdef=(_signal.SIGPIPE,),
                               **({"setpgroup": 0} if own_group else {}))
    except FileNotFoundError:
        raise ConnectionFailed(f"{argv[0]} is not installed on this workstation "
                               "(Debian: apt-get install openssh-client)", argv) from None


class Piped:
    """A child with stdin from /dev/null and stdout and stderr into pipes of ours: the part
    of ``subprocess.Popen`` that ``images`` uses for the ``docker save`` it starts before
    anything else, without importing subprocess (6 ms here, with locale and re)."""

    stdin = None

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            self.pid = os.posix_spawn(argv[0], argv, env, setsigdef=(_signal.SIGPIPE,),
                                      file_actions=[
                                          (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                                          (os.POSIX_SPAWN_DUP2, out_w, 1),
                                          (os.POSIX_SPAWN_DUP2, err_w, 2)])
        except BaseException:
            os.close(out_r)
            os.close(err_r)
            raise
        finally:
            os.close(out_w)
            os.close(err_w)
        self.stdout, self.stderr = open(out_r, "rb"), open(err_r, "rb")
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self) -> int:
        if self.returncode is None:
            _, status = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def kill(self) -> None:
        if self.returncode is None:
            os.kill(self.pid, _signal.SIGKILL)


def widen_pipe(fd: int, size: int = 1 << 20) -> None:
    """Make the pipe at ``fd`` hold ``size`` bytes (1 MiB: the unprivileged maximum) instead
    of 64 KiB: a bulk stream then costs its writer and reader a wake-up per 1 MiB, not per
    64 KiB. Only speed depends on it, so a refusal (a socket, a lower limit) is ignored."""
    import fcntl

    try:
        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), size)
    except OSError:
        pass


def wait(pid: int) -> int:
    """Wait for ``pid``; its exit status, or minus the signal that killed it."""
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def capture(argv: list[str], stdin: bytes | None = None) -> tuple[int, bytes]:
    """Run ``argv``, feeding ``stdin``; return (status, stdout). Stderr passes through."""
    import subprocess  # off the hot path: only our own small helper commands use this

    proc = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE,
                          stdin=None if stdin is not None else subprocess.DEVNULL)
    return proc.returncode, proc.stdout


def die_of(signum: int) -> None:
    """End this process by ``signum``, so that a calling shell sees what it would locally."""
    _signal.signal(signum, _signal.SIG_DFL)
    os.kill(os.getpid(), signum)
