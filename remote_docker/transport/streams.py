"""In-process producers and consumers of a forwarded command's stdin and stdout.

``docker build DIR`` writes its context tar into the remote docker's stdin as
it walks the directory, and ``docker cp CONTAINER:PATH DIR`` extracts the
remote's stdout as it arrives.  Each runs in a thread on one end of a pipe
whose other end is handed to the session like any stdin/stdout, so every
transport streams the same way and nothing is staged in a file.
"""

import os
import threading

from remote_docker.forward import Plan

CHUNK = 1 << 20


class LocalStreams:
    """The pipes and threads of one session attempt; ``finish`` re-raises a thread's error."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.stdin: int | None = None    # the session's ends: handed over, then closed here
        self.stdout: int | None = None
        self._ours: list[tuple[int, str]] = []
        self._threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []
        if plan.stdin_writer is not None:
            self.stdin, write_end = os.pipe()
            self._ours.append((write_end, "w"))
        if plan.stdout_reader is not None:
            read_end, self.stdout = os.pipe()
            self._ours.append((read_end, "r"))

    def session_fds(self) -> list[int]:
        return [fd for fd in (self.stdin, self.stdout) if fd is not None]

    def detach_session_fds(self) -> None:
        """The caller keeps the session's ends and closes them itself (the Fabric transport)."""
        self.stdin = self.stdout = None

    def start(self) -> None:
        """The session holds its ends now: close ours of them, start feeding and reading."""
        for fd in self.session_fds():
            os.close(fd)
        self.stdin = self.stdout = None
        for fd, mode in self._ours:
            target = self._feed if mode == "w" else self._drain
            thread = threading.Thread(target=target, args=(fd,), daemon=True,
                                      name=f"remote-docker-{mode}")
            thread.start()
            self._threads.append(thread)
        self._ours = []

    def _feed(self, fd: int) -> None:
        try:
            with open(fd, "wb", buffering=CHUNK) as out:
                self.plan.stdin_writer(out)
        except BrokenPipeError:
            pass  # the remote stopped reading: its own status and message say why
        except BaseException as exc:  # reported by finish(), in the main thread
            self.errors.append(exc)

    def _drain(self, fd: int) -> None:
        with open(fd, "rb", buffering=CHUNK) as source:
            try:
                self.plan.stdout_reader(source)
                while source.read(CHUNK):
                    pass  # tar padding after the end marker: read, so the remote ends cleanly
            except BaseException as exc:
                self.errors.append(exc)

    def close(self) -> None:
        """Give up an attempt that never started (the session did not open)."""
        for fd in [*self.session_fds(), *(fd for fd, _ in self._ours)]:
            os.close(fd)
        self.stdin = self.stdout = None
        self._ours = []

    def finish(self) -> None:
        for thread in self._threads:
            thread.join()
        if self.errors:
            raise self.errors[0]
