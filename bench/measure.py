"""Timing commands as the bed's users, the same way for every column.

Every measured command is the bed's own `setpriv` wrapper around the command
(``ws_command``/``dm_command``), spawned by this root process with
``posix_spawn`` and timed with ``perf_counter`` from spawn to reap. The
wrapper costs the same in every column; `/bin/true` through it is measured
alongside, so its share is on the table rather than guessed.

Commands are interleaved round by round (a different order each round), so a
burst of load from something else on the machine lands on every column
rather than on whichever happened to run then.
"""

from __future__ import annotations

import hashlib
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

STDERR_TAIL = 2000


class MeasurementFailed(Exception):
    """A measured command did not do its job: the numbers would be meaningless."""

    def __init__(self, label: str, argv: Sequence[str], status: int, stderr: str) -> None:
        self.label = label
        self.argv = list(argv)
        self.status = status
        self.stderr = stderr
        super().__init__(f"{label}: exit status {status}: {stderr.strip()[-STDERR_TAIL:] or '(no stderr)'}")


@dataclass
class Probe:
    """One command to time: already wrapped to run as its user, with that user's env.

    ``prepare`` runs untimed before every run (stop the master for a cold
    start, check it is warm for a warm one).
    """

    label: str
    argv: list[str]
    env: dict[str, str]
    prepare: Callable[[], None] | None = None
    times: list[float] = field(default_factory=list)


def run_timed(label: str, argv: Sequence[str], env: dict[str, str],
              stdin: str = "/dev/null", stdout: str = "/dev/null") -> float:
    """Seconds from spawn to exit; MeasurementFailed (with stderr) unless it exits 0."""
    with tempfile.TemporaryFile() as err:
        actions = [(os.POSIX_SPAWN_OPEN, 0, stdin, os.O_RDONLY, 0),
                   (os.POSIX_SPAWN_OPEN, 1, stdout, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
                   (os.POSIX_SPAWN_DUP2, err.fileno(), 2)]
        start = time.perf_counter()
        pid = os.posix_spawn(argv[0], list(argv), env, file_actions=actions)
        _, wait_status = os.waitpid(pid, 0)
        elapsed = time.perf_counter() - start
        status = os.waitstatus_to_exitcode(wait_status)
        if status != 0:
            err.seek(0)
            raise MeasurementFailed(label, argv, status,
                                    err.read().decode(errors="replace") or _silent_cause(status))
    return elapsed


def _silent_cause(status: int) -> str:
    """Why a command may have failed without a word: the bed is shared with tests."""
    if status == 255:
        return ("(no stderr) ssh's own failure: the master or sshd went away; did something "
                "else take the bed down while the bench ran?")
    if status < 0 or status > 128:
        signal = -status if status < 0 else status - 128
        return (f"(no stderr) killed by signal {signal}: did something else take the bed "
                "down or end ws's processes while the bench ran?")
    return ""


def capture(label: str, argv: Sequence[str], env: dict[str, str], timeout: float = 300,
            check: bool = True) -> str:
    """stdout of a set-up, tear-down or in-container command; MeasurementFailed if it fails.

    ``check=False`` is for cleanup, which must go on whatever one step says.
    """
    import subprocess

    try:
        result = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                                text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        if not check:
            return ""
        raise MeasurementFailed(label, argv, -1, f"still running after {timeout:.0f} s: "
                                f"{(exc.stderr or b'')[-STDERR_TAIL:]!r}") from None
    if check and result.returncode != 0:
        raise MeasurementFailed(label, argv, result.returncode,
                                result.stderr or _silent_cause(result.returncode))
    return result.stdout


def poll(ready: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait until ready() is true, checking often at first; MeasurementFailed at the deadline."""
    deadline = time.monotonic() + timeout
    interval = 0.005
    while not ready():
        if time.monotonic() > deadline:
            raise MeasurementFailed(what, [], 0, f"not ready after {timeout:.0f} s")
        time.sleep(interval)
        interval = min(interval * 2, 0.1)


def run_once(probe: Probe) -> float:
    if probe.prepare:
        probe.prepare()
    return run_timed(probe.label, probe.argv, probe.env)


def interleaved(probes: Sequence[Probe], runs: int) -> None:
    """One untimed warm-up of each probe, then ``runs`` rounds, each in a rotated order."""
    for probe in probes:
        run_once(probe)
    for round_number in range(runs):
        shift = round_number % len(probes)
        for probe in [*probes[shift:], *probes[:shift]]:
            probe.times.append(run_once(probe))


def summary(times: Sequence[float]) -> dict:
    """Median and p90 (what the table shows), min and mean, and every run, in seconds."""
    ordered = sorted(times)
    p90 = statistics.quantiles(ordered, n=10, method="inclusive")[8] if len(ordered) > 1 else ordered[0]
    return {"median": statistics.median(ordered), "p90": p90, "min": ordered[0],
            "mean": statistics.fmean(ordered), "runs": len(ordered), "times": list(times)}


def paired_speedup(ours: dict, theirs: dict) -> float:
    """How many times faster ours ran than theirs: the median, over rounds, of each
    round's ratio (their seconds / ours).  Both ran back to back in each round (in
    rotating order), so a machine that drifts during the run (it does: small-file
    work here varied by 2x within minutes) moves both sides of a ratio together,
    where comparing two medians would take the drift for a difference."""
    pairs = list(zip(ours["times"], theirs["times"]))
    return statistics.median(t / o for o, t in pairs)


# -- the control master ---------------------------------------------------------


def socket_answers(path: str) -> bool:
    """A master is listening on the control socket (root may connect to ws's socket)."""
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(path)
            return True
        except OSError:
            return False


def _gone(pid: int) -> bool:
    """The process has exited (a zombie counts: it no longer holds any socket)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, IndexError):
        return True


def master_pid(check_argv: Sequence[str], env: dict[str, str]) -> int | None:
    """The master's pid from `ssh -O check` ("Master running (pid=N)"), None if none."""
    import subprocess

    result = subprocess.run(check_argv, env=env, capture_output=True, text=True)
    text = result.stdout + result.stderr
    if result.returncode != 0 or "pid=" not in text:
        return None
    return int(text.split("pid=", 1)[1].split(")", 1)[0])


def stop_master(check_argv: Sequence[str], exit_argv: Sequence[str], env: dict[str, str],
                timeout: float = 10.0) -> None:
    """Stop the master and wait until it has exited.

    Waiting matters: a master unlinks its control path when it exits, and one
    still exiting would unlink the socket of the master the next call starts.
    """
    import subprocess

    pid = master_pid(check_argv, env)
    if pid is None:
        return
    subprocess.run(exit_argv, env=env, capture_output=True)
    deadline = time.monotonic() + timeout
    while not _gone(pid):
        if time.monotonic() > deadline:
            raise MeasurementFailed("stopping the master", exit_argv, 0,
                                    f"ssh master pid {pid} still running after {timeout} s")
        time.sleep(0.005)


# -- streams ------------------------------------------------------------------


def random_file(path: Path, size: int) -> str:
    """Write ``size`` random bytes to path; returns their sha256."""
    digest = hashlib.sha256()
    chunk = 4 << 20
    with open(path, "wb") as f:
        for offset in range(0, size, chunk):
            data = os.urandom(min(chunk, size - offset))
            digest.update(data)
            f.write(data)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def stream_once(label: str, argv: Sequence[str], env: dict[str, str], source: Path,
                sink: Path, expected: str) -> float:
    """Pipe source through argv into sink; seconds, after checking the bytes came back."""
    elapsed = run_timed(label, argv, env, stdin=str(source), stdout=str(sink))
    got = file_sha256(sink)
    if got != expected:
        raise MeasurementFailed(label, argv, 0, f"{sink.stat().st_size} bytes came back with "
                                f"sha256 {got}, not the {source.stat().st_size} sent ({expected})")
    return elapsed


# -- import time --------------------------------------------------------------


def parse_importtime(stderr: str) -> dict[str, tuple[int, int]]:
    """``-X importtime`` lines -> {module: (self µs, cumulative µs)}."""
    modules = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        self_us, cumulative_us, name = line[len("import time:"):].split("|", 2)
        modules[name.strip()] = (int(self_us), int(cumulative_us))
    return modules


def importtime(argv: Sequence[str], env: dict[str, str], runs: int) -> dict[str, tuple[int, int]]:
    """Per module, the least self and cumulative µs over ``runs`` runs (least disturbed)."""
    import subprocess

    best: dict[str, tuple[int, int]] = {}
    for _ in range(runs):
        result = subprocess.run(argv, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise MeasurementFailed("importtime", argv, result.returncode, result.stderr)
        for name, (self_us, cumulative_us) in parse_importtime(result.stderr).items():
            old = best.get(name, (self_us, cumulative_us))
            best[name] = (min(old[0], self_us), min(old[1], cumulative_us))
    return best
