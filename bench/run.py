"""`make bench`: the shim and the reverse mounts against their baselines, in one run, on the bed.

Run as root (`.venv/bin/python bench/run.py`) with the test bed up. Prints the
table and the issue's targets (PASS/FAIL), saves the raw numbers to
bench/results/<timestamp>.json. A missed target is not an error; a command
that fails while being measured is (exit 1), since its numbers would mean
nothing. See bench/README.md for what each column runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))  # this checkout's remote_docker, not another one

from remote_docker.testbed import dm_command, dm_env, is_up, sync_code, ws_command, ws_env  # noqa: E402
from remote_docker.testbed import layout  # noqa: E402

import images  # noqa: E402
import measure  # noqa: E402
import mount_report  # noqa: E402
import mounts  # noqa: E402
import report  # noqa: E402
import x11  # noqa: E402
from measure import MeasurementFailed, Probe  # noqa: E402

# command -> (docker argv, runs): fewer runs where each one takes a while.
COMMANDS = {
    "docker version": (["version"], 15),
    "docker ps": (["ps"], 15),
    "docker run --rm busybox true": (["run", "--rm", "busybox", "true"], 7),
}
STREAM_BYTES = 256 << 20
STREAM_RUNS = 2
STREAM_WARMUP_BYTES = 1 << 20
IMPORTTIME_RUNS = 3
RESULTS_DIR = BENCH_DIR / "results"


def say(line: str) -> None:
    print(line, flush=True)


@dataclass
class Bed:
    """What the bench needs to know about the bed, found once (and checked)."""

    ws_env: dict[str, str]
    dm_env: dict[str, str]
    shim: str
    docker_client: str
    ssh: str
    runtime_dir: Path
    socket: str

    @classmethod
    def find(cls) -> "Bed":
        ws = ws_env()
        shim = shutil.which("docker", path=layout.WS_PATH)
        if not shim or Path(shim).parent != layout.SHIM_DIR:
            raise SystemExit(f"bench: the docker on ws's PATH is {shim}, not the shim in {layout.SHIM_DIR}")
        client = shutil.which("docker", path=layout.SYSTEM_PATH)
        ssh = shutil.which("ssh", path=layout.SYSTEM_PATH)
        if not client or not ssh:
            raise SystemExit("bench: no docker client or ssh on " + layout.SYSTEM_PATH)
        runtime = Path(ws["XDG_RUNTIME_DIR"]) / "remote-docker"
        return cls(ws, dm_env(), shim, client, ssh, runtime, str(runtime / f"cm-{layout.DM_HOST}"))

    # -- how each column runs a docker argv ----------------------------------

    def columns(self, args: list[str]) -> dict[str, tuple[list[str], dict[str, str]]]:
        host = layout.DM_HOST
        ssh_new = [self.ssh, "-o", "BatchMode=yes", "-o", "ControlPath=none", host, "docker"]
        ssh_master = [self.ssh, "-S", self.socket, "-o", "BatchMode=yes", host, "docker"]
        return {
            "local": (dm_command([self.docker_client, *args]), self.dm_env),
            "ssh": (ws_command([*ssh_new, *args]), self.ws_env),
            "ssh_master": (ws_command([*ssh_master, *args]), self.ws_env),
            "docker_ssh": (ws_command([self.docker_client, *args]),
                           {**self.ws_env, "DOCKER_HOST": f"ssh://{host}"}),
            "shim": (ws_command([self.shim, *args]), self.ws_env),
        }

    # -- the shim's master -----------------------------------------------------

    def require_warm(self) -> None:
        """(c) and (e) must ride the master: a dead one would make (c) a new connection."""
        if not measure.socket_answers(self.socket):
            raise MeasurementFailed("warm master", [self.socket], 0,
                                    f"no master listening on {self.socket}")

    def stop_master(self) -> None:
        control = [self.ssh, "-S", self.socket, "-o", "LogLevel=QUIET"]
        measure.stop_master(ws_command([*control, "-O", "check", layout.DM_HOST]),
                            ws_command([*control, "-O", "exit", layout.DM_HOST]), self.ws_env)

    def make_cold(self) -> None:
        """As after a reboot: no master, no runtime dir (the shim's config cache goes too)."""
        self.stop_master()
        shutil.rmtree(self.runtime_dir, ignore_errors=True)

    def warm_up_master(self) -> None:
        argv, env = self.columns(["ps"])["shim"]
        measure.run_timed("shim docker ps (starting the master)", argv, env)
        self.require_warm()


def latency(bed: Bed, results: dict) -> None:
    """Each command through every column, interleaved; `docker ps` also carries the
    cold start and the start-up baselines, so they share its rounds."""
    for command, (args, runs) in COMMANDS.items():
        say(f"{command}: {runs} interleaved rounds …")
        started = time.monotonic()
        probes = []
        for column, (argv, env) in bed.columns(args).items():
            warm = bed.require_warm if column in ("ssh_master", "shim") else None
            probes.append(Probe(column, argv, env, prepare=warm))
        extra = []
        if args == ["ps"]:
            shim_argv, _ = bed.columns(args)["shim"]
            extra = [Probe("cold", shim_argv, bed.ws_env, prepare=bed.make_cold),
                     Probe("cold, runtime dir kept", shim_argv, bed.ws_env,
                           prepare=bed.stop_master),
                     Probe("python3 -IS -c pass (ws)",
                           ws_command(["/usr/bin/python3", "-IS", "-c", "pass"]), bed.ws_env),
                     Probe("setpriv wrapper, /bin/true", ws_command(["/bin/true"]), bed.ws_env)]
        measure.interleaved(probes + extra, runs)
        say(f"  done in {time.monotonic() - started:.0f} s")
        results["latency"][command] = {p.label: measure.summary(p.times) for p in probes}
        for probe in extra:
            if probe.label.startswith("cold"):
                results["cold"]["shim" if probe.label == "cold" else "shim_dir_kept"] = \
                    measure.summary(probe.times)
                results["cold"]["ssh"] = results["latency"][command]["ssh"]
            else:
                results["baselines"][probe.label] = measure.summary(probe.times)


def stream(bed: Bed, results: dict) -> None:
    """The same random bytes through the shim and through a raw ssh -S pipe, alternating."""
    cat = ["run", "-i", "--rm", "busybox", "cat"]
    ssh_master = [bed.ssh, "-S", bed.socket, "-o", "BatchMode=yes", layout.DM_HOST]
    paths = {"shim": ws_command([bed.shim, *cat]),
             "ssh_master": ws_command([*ssh_master, "docker", *cat])}
    scratch = "/dev/shm" if os.path.isdir("/dev/shm") else None  # keep the disk out of it
    with tempfile.TemporaryDirectory(prefix="remote-docker-bench-", dir=scratch) as tmp:
        source, sink = Path(tmp) / "in", Path(tmp) / "out"
        small = measure.random_file(source, STREAM_WARMUP_BYTES)
        for label, argv in paths.items():
            bed.require_warm()
            measure.stream_once(f"stream warm-up via {label}", argv, bed.ws_env, source, sink, small)
        say(f"stream: {STREAM_BYTES >> 20} MiB x {STREAM_RUNS} through each")
        digest = measure.random_file(source, STREAM_BYTES)
        times: dict[str, list[float]] = {label: [] for label in paths}
        for run in range(STREAM_RUNS):
            for label in paths if run % 2 == 0 else reversed(list(paths)):
                bed.require_warm()
                times[label].append(measure.stream_once(f"stream via {label}", paths[label],
                                                        bed.ws_env, source, sink, digest))
                say(f"  {label}: {times[label][-1]:.1f} s")
        ssh_cat = measure.stream_once("ssh -S cat", ws_command([*ssh_master, "cat"]),
                                      bed.ws_env, source, sink, digest)
    results["stream"] = {"bytes": STREAM_BYTES, "sha256": digest,
                         "ssh_cat_mb_per_s": STREAM_BYTES / ssh_cat / 1e6}
    for label, seconds in times.items():
        stats = measure.summary(seconds)
        results["stream"][label] = {**stats, "mb_per_s": STREAM_BYTES / stats["median"] / 1e6,
                                    "best_mb_per_s": STREAM_BYTES / stats["min"] / 1e6}


def _pyc_current(source: Path) -> bool:
    """A .pyc the interpreter would use as is: same source mtime and size in its header."""
    import importlib.util

    try:
        header = Path(importlib.util.cache_from_source(str(source))).read_bytes()[:16]
    except OSError:
        return False
    stat = source.stat()
    return (len(header) == 16 and int.from_bytes(header[4:8], "little") == 0
            and int.from_bytes(header[8:12], "little") == int(stat.st_mtime) & 0xFFFFFFFF
            and int.from_bytes(header[12:16], "little") == stat.st_size & 0xFFFFFFFF)


def pycache_state(modules: list[str]) -> dict:
    """Which of the shim's own modules ws must compile from source on every call."""
    missing = []
    for name in modules:
        base = layout.SRC_DIR / name.replace(".", "/")
        source = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
        if not _pyc_current(source):
            missing.append(name)
    return {"root": str(layout.SRC_DIR), "modules": len(modules), "missing": missing}


def importtime(bed: Bed, results: dict) -> None:
    bed.require_warm()
    argv = ws_command(["/usr/bin/python3", "-IS", "-X", "importtime", bed.shim, "ps"])
    modules = measure.importtime(argv, bed.ws_env, IMPORTTIME_RUNS)
    ranked = sorted(modules.items(), key=lambda item: item[1][0], reverse=True)
    own = [name for name in modules if name.split(".")[0] == "remote_docker"]
    results["importtime"] = {
        "shim": bed.shim, "runs": IMPORTTIME_RUNS,
        "total_self_us": sum(s for s, _ in modules.values()),
        "own_self_us": sum(modules[name][0] for name in own),
        "top": [(name, s, c) for name, (s, c) in ranked[:10]],
        "modules": modules,
    }
    results["setup"]["pycache"] = pycache_state(own)


def save(results: dict) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / (time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + ".json")
    path.write_text(json.dumps(results, indent=1) + "\n")
    return path


def measure_all(bed: Bed, results: dict) -> None:
    bed.warm_up_master()
    latency(bed, results)
    bed.warm_up_master()  # the cold rounds may have left it stopped
    stream(bed, results)
    importtime(bed, results)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="make bench: the shim and the mounts, "
                                     "against their baselines, on the test bed (as root)")
    parser.add_argument("--only", choices=("shim", "mounts", "x11", "images"),
                        help="run one part (default: all, about 7 minutes)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("bench: run as root (make bench): it runs commands as the bed's users")
    if not is_up():
        raise SystemExit("bench: the test bed is not up: run `make testbed` first")
    sync_code()  # measure the shim as it is in this checkout
    os.chdir("/")  # a directory every bed user may enter
    bed = Bed.find()
    results: dict = {
        "meta": {"started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                 "cores": os.cpu_count(), "load_before": os.getloadavg()[0]},
        "setup": {"shim": bed.shim, "docker_client": bed.docker_client, "ssh": bed.ssh,
                  "dm_host": layout.DM_HOST, "socket": bed.socket,
                  "runtime_dir": str(bed.runtime_dir)},
        "latency": {}, "baselines": {}, "cold": {}, "stream": {}, "importtime": {},
    }
    started = time.monotonic()
    try:
        if args.only in (None, "shim"):
            measure_all(bed, results)
        if args.only in (None, "mounts"):
            mounts.measure_mounts(results, say)
        if args.only in (None, "x11"):
            x11.measure_x11(results, say)
        if args.only in (None, "images"):
            images.measure_images(results, say)
    except MeasurementFailed as exc:
        results["error"] = str(exc)
        print(f"bench: a measurement failed, so there are no results: {exc}", file=sys.stderr)
        print(f"bench: partial numbers in {save(results)}", file=sys.stderr)
        return 1
    results["meta"]["load_after"] = os.getloadavg()[0]
    results["meta"]["seconds"] = time.monotonic() - started
    results["targets"] = (report.targets(results) if args.only in (None, "shim") else []) + \
        (mount_report.targets(results["mounts"]) if args.only in (None, "mounts") else []) + \
        (x11.targets(results["x11"]) if args.only in (None, "x11") else []) + \
        (images.targets(results["images"]) if "images" in results else [])
    report.print_report(results)
    say(f"\nraw numbers: {save(results)} ({results['meta']['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
