"""The one place the test bed spawns, waits for and kills processes.

Everything here is standard library only: the bed is brought up by root's
bare python3 before any dependency of the project is installed. Child
processes are argv lists, never shell strings.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from remote_docker.errors import RemoteDockerError


class TestbedError(RemoteDockerError):
    """An expected failure of the bed: one line on stderr, exit status 1.

    Carries the failed command's result, when there is one, so nobody has to
    run it again to see its output.
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, message: str, result: subprocess.CompletedProcess | None = None):
        super().__init__(message)
        self.result = result


def _last_line(data: bytes | str | None) -> str:
    text = data.decode(errors="replace") if isinstance(data, bytes) else (data or "")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = 600,
    cwd: str | Path | None = None,
) -> subprocess.CompletedProcess:
    """Run argv to completion with output captured (bytes).

    A failure raises TestbedError carrying the result, whose message is the
    command and the last line it printed, so the caller never has to re-run
    anything to explain it.
    """
    try:
        result = subprocess.run(
            list(argv), input=input, capture_output=True, env=env, timeout=timeout,
            cwd=cwd, stdin=None if input is not None else subprocess.DEVNULL,
        )
    except FileNotFoundError as error:
        raise TestbedError(f"{argv[0]}: not installed ({error.strerror})") from None
    except subprocess.TimeoutExpired:
        raise TestbedError(f"{' '.join(argv)}: still running after {timeout:.0f} s") from None
    if check and result.returncode != 0:
        why = _last_line(result.stderr) or _last_line(result.stdout) or "no output"
        raise TestbedError(f"{' '.join(argv)} exited {result.returncode}: {why}", result)
    return result


def spawn_detached(argv: Sequence[str], log: Path, env: Mapping[str, str] | None = None) -> None:
    """Start a daemon that is not our child and outlives us.

    `setsid --fork` puts the daemon in its own session under init, so that a
    long-lived caller (pytest) never holds its zombie after `down` kills it,
    and the CLI can exit while the daemon runs on. Output goes to `log`.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        subprocess.run(
            ["/usr/bin/setsid", "--fork", *argv], stdin=subprocess.DEVNULL,
            stdout=out, stderr=subprocess.STDOUT, env=env, check=True,
        )


def wait_until(ready: Callable[[], bool], *, timeout: float, what: str) -> None:
    """Poll `ready` until it is true, or raise after `timeout` seconds.

    The interval starts small and grows, so a fast daemon costs a few
    milliseconds and a slow one does not spin the CPU.
    """
    deadline = time.monotonic() + timeout
    interval = 0.005
    while not ready():
        if time.monotonic() > deadline:
            raise TestbedError(f"{what}: not ready after {timeout:.0f} s")
        time.sleep(interval)
        interval = min(interval * 2, 0.2)


def log_tail(log: Path, lines: int = 2) -> str:
    """The last lines of a daemon's log, for the one-line error when it did not start."""
    try:
        text = log.read_text(errors="replace").splitlines()
    except OSError:
        return f"{log}: no log"
    return f"{log}: " + " | ".join(line.strip() for line in text[-lines:] if line.strip())


def read_pid(pidfile: Path) -> int | None:
    """The pid in a pidfile, or None when the file is missing or not a pid."""
    try:
        return int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _status_fields(pid: int) -> dict[str, str]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def alive(pid: int | None, name: str | None = None) -> bool:
    """True when pid runs (a zombie does not count), with that command name if given.

    The name check keeps a recycled pid from a stale pidfile from being taken
    for our daemon.
    """
    if not pid:
        return False
    fields = _status_fields(pid)
    if not fields or fields.get("State", "").startswith("Z"):
        return False
    return name is None or fields.get("Name") == name[:15]


def processes_named(name: str, with_argument: str) -> list[int]:
    """Live pids of command `name` that have `with_argument` among their arguments."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and alive(int(entry), name):
            try:
                argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if with_argument.encode() in argv:
                pids.append(int(entry))
    return pids


def processes_of(uid: int) -> list[int]:
    """Live pids with uid as their real, effective or saved uid.

    Zombies are left out: init on these machines reaps orphans only every few
    seconds, and a zombie holds nothing that `down` needs gone.
    """
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _status_fields(int(entry))
        uids = fields.get("Uid", "").split()[:3]
        if str(uid) in uids and not fields.get("State", "").startswith("Z"):
            pids.append(int(entry))
    return pids


def _signal_all(pids: Sequence[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


def terminate(find: Callable[[], list[int]], *, what: str, grace: float = 10) -> int:
    """SIGTERM what `find` returns, then SIGKILL what is left after `grace`.

    Returns how many processes there were. `find` is called again while
    polling, so processes started meanwhile (a session forking) are caught.
    """
    pids = find()
    if not pids:
        return 0
    _signal_all(pids, signal.SIGTERM)
    try:
        wait_until(lambda: not find(), timeout=grace, what=what)
    except TestbedError:
        _signal_all(find(), signal.SIGKILL)
        wait_until(lambda: not find(), timeout=grace, what=f"{what} (after SIGKILL)")
    return len(pids)
