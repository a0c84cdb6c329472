"""The work a container does on a mounted workstation directory, timed inside the container.

Each workload is one `docker exec` of a bash script that reads the clock
(`date +%s%N`) just before and after the work, so the container's start and
docker exec's own cost (tens of ms, varying) stay out of the number. Each
script also checks that the work really happened (bytes read, files seen):
a mount that died would otherwise time an empty directory.

Also here: the freshness check, "a change made on the workstation is seen in
the container within a second", which is what caching options trade against.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from remote_docker.testbed import dm_command, dm_env, ws_command, ws_env

import measure
from measure import MeasurementFailed
from mount_bed import SourceTree, in_container

FRESHNESS_DEADLINE = 3.0  # seconds the container waits for a change before giving up
FRESHNESS_TARGET = 1.0


def _timed(setup: str, work: str, check: str = "") -> str:
    """bash: setup untimed, then work between two clock reads, then check untimed."""
    return (f"set -e; {setup}\n s=$(date +%s%N); {work}\n e=$(date +%s%N)\n {check}\n"
            f' echo "elapsed_ns $((e - s))"')


def _elapsed(output: str) -> float:
    for line in output.splitlines():
        if line.startswith("elapsed_ns "):
            return int(line.split()[1]) / 1e9
    raise ValueError(f"no elapsed_ns line in {output!r}")


def run(container: str, label: str, script: str) -> float:
    return _elapsed(in_container(container, label, script))


def write(container: str, directory: str, size: int) -> float:
    """Sequential write of size bytes (zeros; ssh does not compress by default).

    dd's close() is a FUSE flush, which sshfs answers only once every write
    has been acknowledged: the time includes the data reaching the workstation.
    """
    mib = size >> 20
    return run(container, "sequential write", _timed(
        f"mkdir -p {directory}",
        f"dd if=/dev/zero of={directory}/write.bin bs=1M count={mib} status=none",
        f'[ "$(stat -c %s {directory}/write.bin)" = {size} ]'))


def read(container: str, path: str, size: int, block_kib: int = 1024) -> float:
    """Sequential read of a file this mount has never read (so not in its page cache),
    in blocks of block_kib (1 MiB like dd; 128 KiB is what cat and cp use)."""
    blocks = size // (block_kib << 10)
    return run(container, "sequential read", _timed(
        "", f"out=$(dd if={path} of=/dev/null bs={block_kib}K status=noxfer 2>&1)",
        f'case "$out" in "{blocks}+0 records in"*) ;; *) echo "$out" >&2; exit 1;; esac'))


def creates(container: str, directory: str, count: int) -> float:
    """count small files, each created, written (a few bytes) and closed, one by one."""
    return run(container, "small file creates", _timed(
        f"mkdir -p {directory}",
        f"for i in $(seq {count}); do echo $i > {directory}/f$i; done",
        f'[ "$(ls {directory} | wc -l)" = {count} ]'))


def walk(container: str, directory: str, files: int) -> float:
    """lstat every file of the tree, as `git status` does (-printf %s needs the stat;
    a plain `find -type f` would use readdir's d_type and stat nothing)."""
    return run(container, "stat walk", _timed(
        "", f"n=$(find {directory} -type f -printf '%s\\n' | wc -l)",
        f'[ "$n" = {files} ] || {{ echo "walked $n files, expected {files}" >&2; exit 1; }}'))


# -- freshness --------------------------------------------------------------------

_POLL = """
d={directory}; end=$(( $(date +%s%N) + {deadline_ns} )); c=; n=; m=
echo ready
while [ -z "$c" ] || [ -z "$n" ] || [ -z "$m" ]; do
  now=$(date +%s%N)
  if [ -z "$c" ] && [ "$(cat $d/f 2>/dev/null)" = "v2 changed" ]
  then c=$now; echo "content $now"; fi
  if [ -z "$n" ] && ls $d | grep -qx g; then n=$now; echo "new $now"; fi
  if [ -z "$m" ] && [ "$(stat -c %s $d/h)" = 10 ]; then m=$now; echo "stat $now"; fi
  if [ "$now" -gt "$end" ]; then echo timeout; break; fi
  sleep 0.01
done
"""
KINDS = ("content", "new", "stat")


def freshness(container: str, source: SourceTree, tag: str) -> dict:
    """Seconds until the container sees what ws changed: (content) new bytes in a file
    it has read, (new) a new name in the listing of a directory it has listed (readdir,
    as a glob or `git status` would look), (stat) the new size
    of a file it has only stat'ed, as make or `git status` would see it; None if not
    within FRESHNESS_DEADLINE."""
    name = f"probe-{tag}"
    probe = source.root / name
    measure.capture("make the probe", ws_command(
        ["sh", "-c", 'mkdir "$1" && printf v1 > "$1/f" && printf v1 > "$1/h"', "sh", str(probe)]),
        ws_env())
    in_container(container, "read the probe", f'[ "$(cat /w/{name}/f)" = v1 ] && ls /w/{name} '
                 f'&& [ "$(stat -c %s /w/{name}/h)" = 2 ]')
    script = _POLL.format(directory=f"/w/{name}", deadline_ns=int(FRESHNESS_DEADLINE * 1e9))
    poller = subprocess.Popen(dm_command(["docker", "exec", container, "bash", "-c", script]),
                              env=dm_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        first = poller.stdout.readline()
        if first.strip() != "ready":
            raise MeasurementFailed("freshness poller", poller.args, poller.wait(),
                                    first + poller.stderr.read())
        change = 'printf "v2 changed" | tee "$1/f" > "$1/h" && : > "$1/g" && date +%s%N'
        changed = int(measure.capture("change the probe on the workstation", ws_command(
            ["sh", "-c", change, "sh", str(probe)]), ws_env()))  # the clock at the change
        out, _ = poller.communicate(timeout=FRESHNESS_DEADLINE + 30)
    finally:
        if poller.poll() is None:
            poller.kill()
            poller.wait()
    seen = dict(line.split() for line in out.splitlines() if len(line.split()) == 2)
    return {kind: (max(0, int(seen[kind]) - changed) / 1e9 if kind in seen else None)
            for kind in KINDS} | {"deadline": FRESHNESS_DEADLINE}


# -- docker cp, the copy baseline ---------------------------------------------------


def _ws_pipe(label: str, script: str, args: list[str], env: dict[str, str]) -> float:
    """A pipeline as ws, timed from spawn to exit; pipefail, so a failed docker cp counts."""
    return measure.run_timed(label, ws_command(["bash", "-o", "pipefail", "-c", script, "bash",
                                                *args]), env)


def cp_out(container: str, remote: str, local_dir: Path, env: dict[str, str]) -> float:
    """`docker cp CTR:PATH -` through the shim, unpacked on the workstation."""
    return _ws_pipe("docker cp out", 'mkdir -p "$2" && docker cp "$1" - | tar -xf - -C "$2"',
                    [f"{container}:{remote}", str(local_dir)], env)


def cp_in(container: str, local_dir: Path, name: str, remote_dir: str,
          env: dict[str, str]) -> float:
    """`docker cp - CTR:DIR` through the shim, fed a tar of a workstation path."""
    return _ws_pipe("docker cp in", 'tar -cf - -C "$1" "$2" | docker cp - "$3"',
                    [str(local_dir), name, f"{container}:{remote_dir}"], env)
