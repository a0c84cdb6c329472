"""`remote-docker push` against `docker save | ssh dm docker load`, on the bed.

A ~100 MiB image (busybox, a 99 MiB layer, a 1 MiB layer) is built on the
workstation's engine, then a rebuild of it whose 1 MiB layer changed. Each
round, with neither on the docker-machine: the first push of v1, then the
push of v2 (the rebuild), by ours and by the baseline, in alternating order.
The baseline rides the same ControlMaster socket as ours, so both pay the
same connection; its bytes are the size of `docker save`'s stream. A third
column, the baseline with `zstd -1` on both ends, tells whether compressing
on the wire would pay on this link.

Then pulls, as information (the issue sets no target for them): with both
versions on the docker-machine and neither on the workstation, each round
pulls v1 by ours and by `ssh dm docker save | docker load`, alternating, and
removes it from the workstation's engine after each.

Bytes for ours are what its summary line reports: all it wrote into the
forwarded engine socket (or the pipe of a `docker load` session).

Last, as information, what a resumable push costs (REMOTE_DOCKER_RESUME_BYTES=1:
the docker-machine keeps a copy of the stream, `tee` and a disk write in its
path) against the default push of v1, alternating, on the bed's own link and
behind a delay proxy of +20 ms round trip, where the stream waits on the link;
and a resumable pull (the copy kept on the workstation) on the bed's own link.
"""

from __future__ import annotations

import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Callable

import measure
from measure import MeasurementFailed
from remote_docker.testbed import dm_command, dm_env, layout, ws_command, ws_env

MiB = 1 << 20
BIG = 99 * MiB
CHANGED = 1 * MiB
ROUNDS = 7
PULL_ROUNDS = 5
RESUME_ROUNDS = {0: 5, 20: 3}  # rounds at each added round trip (ms)
COLUMNS = ("ours", "save|load", "save|zstd|load")


def _ws_env() -> dict[str, str]:
    return {**ws_env(), "DOCKER_HOST": layout.WS_DOCKER_HOST}


def _client() -> str:
    client = shutil.which("docker", path=layout.SYSTEM_PATH)
    if not client:
        raise MeasurementFailed("images", [], 0, "no docker client on " + layout.SYSTEM_PATH)
    return client


def _socket() -> str:
    return str(Path(ws_env()["XDG_RUNTIME_DIR"]) / "remote-docker" / f"cm-{layout.DM_HOST}")


class Images:
    """The two versions of the image on ws's engine, and how each column sends one."""

    def __init__(self, scratch: Path) -> None:
        self.name = f"rdbench-images-{uuid.uuid4().hex[:8]}"
        self.scratch = scratch
        self.client = _client()

    def build(self, version: str, seed: str) -> str:
        tag = f"{self.name}:{version}"
        context = self.scratch / version
        context.mkdir(parents=True, exist_ok=True)
        (context / "Dockerfile").write_text(
            "FROM busybox:latest\n"
            # this run's own big layer (v1 and v2 share it): one left by an earlier
            # run would come from the build cache, and may be on the docker-machine
            f"RUN echo {self.name} && head -c {BIG} /dev/urandom > /big.bin\n"
            f"RUN echo {seed} && head -c {CHANGED} /dev/urandom > /changed.bin\n")
        measure.capture(f"build {tag}", ws_command(
            [self.client, "build", "-q", "-t", tag, str(context)]), _ws_env())
        return tag

    def save_bytes(self, tag: str, zstd: bool = False) -> int:
        """The size of `docker save`'s stream (zstd -1'ed): what a baseline sends."""
        script = f"{self.client} save {tag} | " + ("zstd -q -1 | " if zstd else "") + "wc -c"
        return int(measure.capture(f"size of {tag}", ws_command(["sh", "-c", script]),
                                   _ws_env()).strip())

    def ours(self, tag: str, verb: str = "push",
             env: dict[str, str] | None = None) -> tuple[float, int]:
        started = time.perf_counter()
        out = measure.capture(f"remote-docker {verb} {tag}",
                              ws_command([str(layout.SHIM_DIR / "remote-docker"), verb, tag]),
                              env or ws_env())
        seconds = time.perf_counter() - started
        found = re.search(r"(\d+) bytes", out)
        if not found:
            raise MeasurementFailed(f"remote-docker {verb}", [], 0, f"no byte count in {out!r}")
        return seconds, int(found.group(1))

    def pull_baseline(self, tag: str) -> float:
        script = (f"ssh -S {_socket()} -o BatchMode=yes {layout.DM_HOST} docker save {tag} | "
                  f"{self.client} load -q")
        started = time.perf_counter()
        measure.capture(f"save|load {tag}", ws_command(["sh", "-c", script]), _ws_env())
        return time.perf_counter() - started

    def clear_ws(self, *versions: str) -> None:
        for version in versions:
            measure.capture("rmi", ws_command([self.client, "image", "rm",
                                               f"{self.name}:{version}"]), _ws_env(), check=False)

    def baseline(self, tag: str, zstd: bool) -> float:
        ssh = f"ssh -S {_socket()} -o BatchMode=yes {layout.DM_HOST}"
        if zstd:
            script = f"{self.client} save {tag} | zstd -q -1 | {ssh} 'zstd -q -d | docker load -q'"
        else:
            script = f"{self.client} save {tag} | {ssh} docker load -q"
        started = time.perf_counter()
        measure.capture(f"save|load {tag}", ws_command(["sh", "-c", script]), _ws_env())
        return time.perf_counter() - started

    def clear_dm(self) -> None:
        """Neither version on the docker-machine (busybox, which they build on, stays)."""
        for version in ("v1", "v2"):
            measure.capture("rmi", dm_command(["docker", "image", "rm", f"{self.name}:{version}"]),
                            dm_env(), check=False)

    def remove(self) -> None:
        self.clear_dm()
        self.clear_ws("v1", "v2")


def measure_images(results: dict, say: Callable[[str], None]) -> None:
    import tempfile

    scratch = Path(tempfile.mkdtemp(prefix="rdbench-images-", dir="/tmp"))
    scratch.chmod(0o755)
    images = Images(scratch)
    times: dict[str, dict[str, list[float]]] = {c: {"first": [], "rebuild": []} for c in COLUMNS}
    sent: dict[str, dict[str, int]] = {c: {} for c in COLUMNS}
    try:
        v1, v2 = images.build("v1", "one"), images.build("v2", "two")
        measure.capture("warm master", ws_command([str(layout.SHIM_DIR / "docker"), "version"]),
                        ws_env())
        say(f"images: {ROUNDS} rounds of first push + rebuild push, per column …")
        for round_number in range(ROUNDS):
            order = COLUMNS[round_number % 3:] + COLUMNS[:round_number % 3]
            for column in order:
                images.clear_dm()
                for step, tag in (("first", v1), ("rebuild", v2)):
                    if column == "ours":
                        seconds, sent[column][step] = images.ours(tag)
                    else:
                        seconds = images.baseline(tag, zstd=column != "save|load")
                    times[column][step].append(seconds)
        for column, zstd in (("save|load", False), ("save|zstd|load", True)):
            sent[column] = {"first": images.save_bytes(v1, zstd),
                            "rebuild": images.save_bytes(v2, zstd)}
        resumable = {rtt: measure_resumable(images, v1, rtt, rounds, say)
                     for rtt, rounds in RESUME_ROUNDS.items()}
        pulls = measure_pulls(images, v1, say)  # last: it takes v1 off the workstation
        pulls["resumable"] = measure_resumable_pulls(images, v1, say)
    finally:
        images.remove()
        shutil.rmtree(scratch, ignore_errors=True)
    results["images"] = {
        "big_bytes": BIG, "changed_bytes": CHANGED, "rounds": ROUNDS,
        "times": {c: {s: measure.summary(t) for s, t in steps.items()} for c, steps in times.items()},
        "bytes": sent, "pull": pulls, "resumable": resumable,
    }
    for line in table(results["images"]):
        say(line)


def measure_pulls(images: Images, v1: str, say: Callable[[str], None]) -> dict:
    """Pulls of v1 into a workstation engine that has neither version (the pushes left
    v1 on the docker-machine), by ours and by the baseline in alternating order."""
    images.clear_ws("v1", "v2")
    times: dict[str, list[float]] = {"ours": [], "save|load": []}
    sent = 0
    say(f"images: {PULL_ROUNDS} rounds of pull, per column …")
    for round_number in range(PULL_ROUNDS):
        for column in sorted(times, reverse=round_number % 2 == 1):
            if column == "ours":
                seconds, sent = images.ours(v1, "pull")
            else:
                seconds = images.pull_baseline(v1)
            times[column].append(seconds)
            images.clear_ws("v1")
    return {"times": {c: measure.summary(t) for c, t in times.items()}, "bytes": sent}


def measure_resumable(images: Images, v1: str, rtt_ms: int, rounds: int,
                      say: Callable[[str], None]) -> dict:
    """First pushes of v1, resumable and not, alternating; through a delay proxy of
    ``rtt_ms`` (with its own master) when that is not 0."""
    from contextlib import ExitStack

    say(f"images: {rounds} rounds of resumable and plain first push at +{rtt_ms} ms …")
    times: dict[str, list[float]] = {"plain": [], "resumable": []}
    with ExitStack() as stack:
        env = ws_env()
        if rtt_ms:
            import mount_bed
            from delay_proxy import delayed

            proxy = stack.enter_context(delayed((layout.DM_ADDRESS, 22), rtt_ms))
            alias = stack.enter_context(mount_bed.ws_ssh_alias(proxy.port))
            env = stack.enter_context(mount_bed.ws_machine(alias))
        for round_number in range(rounds):
            for column in sorted(times, reverse=round_number % 2 == 1):
                images.clear_dm()
                setting = "1" if column == "resumable" else "0"
                seconds, _ = images.ours(v1, env={**env, "REMOTE_DOCKER_RESUME_BYTES": setting})
                times[column].append(seconds)
    return {"times": {c: measure.summary(t) for c, t in times.items()}}


def measure_resumable_pulls(images: Images, v1: str, say: Callable[[str], None]) -> dict:
    """Pulls of v1, resumable (a copy kept on the workstation) and not, alternating, on the
    bed's own link: what the copy costs where the stream does not wait on the link."""
    say(f"images: {RESUME_ROUNDS[0]} rounds of resumable and plain pull at +0 ms …")
    times: dict[str, list[float]] = {"plain": [], "resumable": []}
    for round_number in range(RESUME_ROUNDS[0]):
        for column in sorted(times, reverse=round_number % 2 == 1):
            images.clear_ws("v1")
            setting = "1" if column == "resumable" else "0"
            env = {**ws_env(), "REMOTE_DOCKER_RESUME_BYTES": setting}
            seconds, _ = images.ours(v1, "pull", env)
            times[column].append(seconds)
    images.clear_ws("v1")
    return {"times": {c: measure.summary(t) for c, t in times.items()}}


def table(found: dict) -> list[str]:
    lines = [f"{'images':<16}{'first push (s)':>16}{'bytes':>12}{'rebuild push (s)':>18}"
             f"{'bytes':>12}", "-" * 74]
    for column, steps in found["times"].items():
        sent = found["bytes"].get(column, {})
        lines.append(f"{column:<16}{steps['first']['median']:>16.2f}"
                     f"{sent.get('first', '-'):>12}{steps['rebuild']['median']:>18.2f}"
                     f"{sent.get('rebuild', '-'):>12}")
    pull = found.get("pull")
    if pull:
        ours, base = pull["times"]["ours"], pull["times"]["save|load"]
        lines.append(f"pull (info): ours {ours['median']:.2f} s ({pull['bytes']} bytes), "
                     f"ssh save | load {base['median']:.2f} s; paired by round "
                     f"{1 / measure.paired_speedup(ours, base):.2f}x the time")
    if pull and "resumable" in pull:
        run = pull["resumable"]["times"]
        kept, plain = run["resumable"], run["plain"]
        lines.append(f"resumable pull (info), +0 ms: {kept['median']:.2f} s against "
                     f"{plain['median']:.2f} s; paired by round "
                     f"{1 / measure.paired_speedup(kept, plain):.2f}x the time")
    for rtt, run in sorted((int(k), v) for k, v in found.get("resumable", {}).items()):
        kept, plain = run["times"]["resumable"], run["times"]["plain"]
        lines.append(f"resumable push (info), +{rtt} ms: {kept['median']:.2f} s against "
                     f"{plain['median']:.2f} s; paired by round "
                     f"{1 / measure.paired_speedup(kept, plain):.2f}x the time")
    return lines


def targets(found: dict) -> list[dict]:
    ours, base = found["times"]["ours"], found["times"]["save|load"]
    rebuild = found["bytes"]["ours"]["rebuild"]
    limit = 1.05 * found["changed_bytes"]
    first, first_base = ours["first"]["median"], base["first"]["median"]
    speedup = measure.paired_speedup(ours["first"], base["first"])
    return [
        {"target": "images: re-push sends <= 1.05 x the changed layer", "passed": rebuild <= limit,
         "detail": f"{rebuild} bytes vs 1.05 x {found['changed_bytes']} = {limit:.0f}"},
        {"target": "images: first push no slower than save|ssh load",
         "passed": speedup >= 1,
         "detail": f"{first:.2f} s vs {first_base:.2f} s (medians); paired by round "
                   f"{1 / speedup:.2f}x the time"},
    ]
