"""`make bench`, mounts: our passive mount against classic sshfs and `docker cp`, at 0 and +20 ms.

(a) passive: `docker-mount DIR` as ws, the volume used by a container as dm;
(b) classic: dm runs `sshfs ws@…:DIR` (the original scripts), its mountpoint
    bound into a container as dm;
(c) docker cp: the same bytes copied in and out through the shim, as ws.

At +20 ms both sshds sit behind a delay proxy (bench/delay_proxy.py): ws's
own master reaches dm through it (an ssh alias in a runtime dir of its own)
and dm's sshfs reaches ws through the other. Each (a)/(b) session is a fresh
mount and a fresh container, so no cache carries over; sessions alternate
between (a) and (b) round by round. See bench/README.md.
"""

from __future__ import annotations

import shutil
from contextlib import ExitStack, contextmanager
from typing import Callable, ContextManager, Iterator

from remote_docker.testbed import layout, ws_command

import measure
import mount_bed
import mount_work as work
from delay_proxy import delayed, ssh_round_trip
from mount_bed import Mounted, SourceTree

RTTS_MS = (0, 20)
ROUNDS = {0: 5, 20: 1}  # +20 ms rounds take a minute each (mostly the creates)
TREE_DIRS, TREE_PER_DIR = 50, 100  # the 5,000-file walk
SEQ_BYTES = 64 << 20
CREATES = 500
CP_TREE = "small"  # the 500-file tree copied by docker cp
WORKLOADS = ("write", "read", "creates", "walk")
SSH_PORT = 22


def _rotated(items: list[str], by: int) -> list[str]:
    by %= len(items)
    return items[by:] + items[:by]


class Rig:
    """Everything one RTT's measurements go through: endpoints, ws's env, the tree."""

    def __init__(self, source: SourceTree, rtt_ms: int, ws_endpoint: tuple[str, int],
                 env: dict[str, str]) -> None:
        self.source, self.rtt_ms, self.ws_endpoint, self.env = source, rtt_ms, ws_endpoint, env

    def mount(self, path: str) -> ContextManager[Mounted]:
        if path == "classic":
            return mount_bed.classic_mount(self.source.root, *self.ws_endpoint)
        return mount_bed.passive_mount(self.source.root, self.env)


@contextmanager
def rig_at(source: SourceTree, rtt_ms: int) -> Iterator[tuple[Rig, dict]]:
    """Proxies (at +RTT), ws's own master through them; yields the rig and what the
    proxy check measured."""
    with ExitStack() as stack:
        check: dict = {"rtt_ms": rtt_ms}
        if rtt_ms:
            to_ws = stack.enter_context(delayed((layout.WS_ADDRESS, SSH_PORT), rtt_ms))
            to_dm = stack.enter_context(delayed((layout.DM_ADDRESS, SSH_PORT), rtt_ms))
            ws_endpoint = (to_ws.host, to_ws.port)
            host = stack.enter_context(mount_bed.ws_ssh_alias(to_dm.port))
            direct = min(ssh_round_trip(layout.DM_ADDRESS, SSH_PORT) for _ in range(5))
            proxied = min(ssh_round_trip(to_dm.host, to_dm.port) for _ in range(5))
            check |= {"direct_s": direct, "proxied_s": proxied, "added_s": proxied - direct}
        else:
            ws_endpoint, host = (layout.WS_ADDRESS, SSH_PORT), layout.DM_HOST
        env = stack.enter_context(mount_bed.ws_machine(host))
        rig = Rig(source, rtt_ms, ws_endpoint, env)
        check |= warm_master(rig)
        yield rig, check


def warm_master(rig: Rig) -> dict:
    """Start ws's master (untimed work must not land in the first measurement), and time
    64 MiB through it with plain `cat`: what the link itself can carry."""
    shim = str(layout.SHIM_DIR / "docker")
    started = measure.run_timed("start the master", ws_command([shim, "version"]), rig.env)
    socket = mount_bed.master_socket(rig.env)
    if socket is None:
        raise measure.MeasurementFailed("start the master", [shim, "version"], 0,
                                        "no control socket appeared")
    cat = ws_command(["ssh", "-S", str(socket), "-o", "BatchMode=yes", "x", "cat > /dev/null"])
    seconds = measure.run_timed("cat over the master", cat, rig.env,
                                stdin=str(rig.source.root / "read.bin"))
    return {"master_start_s": started, "cat_mb_per_s": rig.source.read_bytes / seconds / 1e6}


def session(rig: Rig, mount: Callable[[], ContextManager[Mounted]], tag: str,
            times: dict[str, list[float]], fresh: dict[str, dict] | None,
            creates: int = CREATES, small_reads: bool = False) -> None:
    """One fresh mount, one fresh container, every workload once (and the freshness
    check into ``fresh[tag]`` unless None); what was written is checked on ws after.
    ``small_reads``: also read a second fresh file 128 KiB at a time ("read_128k")."""
    source = rig.source
    read_names = [source.fresh_read_file(f"{tag}-{n}") for n in range(1 + small_reads)]
    run_dir = f"run-{tag}"
    try:
        with mount() as mounted, mount_bed.container(mounted.source) as ctr:
            times["setup"].append(mounted.setup_s)
            times["write"].append(work.write(ctr, f"/w/{run_dir}", SEQ_BYTES))
            times["read"].append(work.read(ctr, f"/w/{read_names[0]}", SEQ_BYTES))
            if small_reads:
                times["read_128k"].append(work.read(ctr, f"/w/{read_names[1]}", SEQ_BYTES, 128))
            times["creates"].append(work.creates(ctr, f"/w/{run_dir}/c", creates))
            times["walk"].append(work.walk(ctr, "/w/tree", source.tree_files))
            if fresh is not None:
                fresh[tag] = work.freshness(ctr, source, tag)
        if source.size(f"{run_dir}/write.bin") != SEQ_BYTES or \
                source.count(f"{run_dir}/c") != creates:
            raise measure.MeasurementFailed(f"session {tag}", [], 0,
                                            "the workstation does not hold what was written")
    finally:
        shutil.rmtree(source.root / run_dir, ignore_errors=True)
        for name in read_names:
            (source.root / name).unlink(missing_ok=True)


def docker_cp(rig: Rig, rounds: int) -> dict[str, list[float]]:
    """(c): 64 MiB and the 500-file tree, out of and into a container, through the shim."""
    source, env = rig.source, rig.env
    times: dict[str, list[float]] = {"out_big": [], "in_big": [], "out_tree": [], "in_tree": []}
    with mount_bed.container(None) as ctr:
        mount_bed.in_container(ctr, "make the files to copy out", (
            f"mkdir -p /tmp/in /tmp/out/{CP_TREE} && head -c {SEQ_BYTES} /dev/urandom "
            f"> /tmp/out/big.bin && for i in $(seq {CREATES}); do echo $i > "
            f"/tmp/out/{CP_TREE}/f$i; done"))
        for round_number in range(rounds):
            out = source.root / f"cp-out-{rig.rtt_ms}-{round_number}"
            try:
                times["out_big"].append(work.cp_out(ctr, "/tmp/out/big.bin", out, env))
                times["in_big"].append(work.cp_in(ctr, source.root, "read.bin", "/tmp/in", env))
                times["out_tree"].append(work.cp_out(ctr, f"/tmp/out/{CP_TREE}", out, env))
                times["in_tree"].append(work.cp_in(ctr, source.root, CP_TREE, "/tmp/in", env))
                if source.size(f"{out.name}/big.bin") != SEQ_BYTES or \
                        source.count(f"{out.name}/{CP_TREE}") != CREATES:
                    raise measure.MeasurementFailed("docker cp out", [], 0, "files missing on ws")
                mount_bed.in_container(ctr, "check what docker cp put in", (
                    f'[ "$(stat -c %s /tmp/in/read.bin)" = {SEQ_BYTES} ] && '
                    f'[ "$(ls /tmp/in/{CP_TREE} | wc -l)" = {CREATES} ] && rm -rf /tmp/in/*'))
            finally:
                shutil.rmtree(out, ignore_errors=True)
    return times


def at_rtt(source: SourceTree, rtt_ms: int, paths: list[str],
           say: Callable[[str], None]) -> dict:
    rounds = ROUNDS[rtt_ms]
    with rig_at(source, rtt_ms) as (rig, check):
        if rtt_ms:
            say(f"  proxy: one ssh round trip {check['direct_s'] * 1000:.1f} ms direct, "
                f"{check['proxied_s'] * 1000:.1f} ms through it")
        times = {p: {w: [] for w in ("setup", *WORKLOADS)} for p in paths}
        fresh: dict[str, dict] = {}
        for round_number in range(rounds):
            for path in _rotated(paths, round_number):
                say(f"  {path}, round {round_number + 1} of {rounds} …")
                session(rig, lambda: rig.mount(path), f"{path}-{rtt_ms}-{round_number}",
                        times[path], None if round_number else fresh)
        say(f"  docker cp, {rounds} round(s) …")
        cp = docker_cp(rig, rounds)
    found: dict = {"check": check, "rounds": rounds}
    for path in paths:
        found[path] = {w: measure.summary(t) for w, t in times[path].items()}
        found[path]["freshness"] = fresh[f"{path}-{rtt_ms}-0"]
    found["docker_cp"] = {k: measure.summary(t) for k, t in cp.items()}
    return found


def measure_mounts(results: dict, say: Callable[[str], None]) -> None:
    unavailable = mount_bed.passive_available()
    paths = ["classic"] if unavailable else ["passive", "classic"]
    results["mounts"] = {
        "setup": {"seq_bytes": SEQ_BYTES, "creates": CREATES,
                  "tree_files": TREE_DIRS * TREE_PER_DIR,
                  "image": mount_bed.IMAGE, "rounds": {str(k): v for k, v in ROUNDS.items()},
                  "passive_unavailable": unavailable},
        "rtt": {}}
    say("mounts: " + (f"(a) passive {unavailable}; " if unavailable else "")
        + "making the workstation's tree …")
    with ExitStack() as stack:
        source = stack.enter_context(mount_bed.workstation_dir(
            TREE_DIRS, TREE_PER_DIR, SEQ_BYTES, CP_TREE, CREATES))
        stack.enter_context(mount_bed.dm_key_on_ws())
        for rtt_ms in RTTS_MS:
            say(f"mounts at +{rtt_ms} ms RTT:")
            results["mounts"]["rtt"][str(rtt_ms)] = at_rtt(source, rtt_ms, paths, say)

