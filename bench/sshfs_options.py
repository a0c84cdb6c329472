"""sshfs options compared, on the classic path and on a raw passive one, at 0 and +20 ms.

Not part of `make bench` (about 7 minutes): run it as root on the bed when
choosing the passive mount's options,

    .venv/bin/python bench/sshfs_options.py [--only NAME …]

Each variant is a fresh mount and container doing mounts.py's workloads (with
fewer creates at +20 ms, since each costs ~4 round trips whatever the options)
plus a read 128 KiB at a time, as cat and cp read, and the freshness check.
Prints a table; the raw numbers go to bench/results/sshfs-options-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ContextManager, Iterator

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))

from remote_docker.testbed import is_up, sync_code  # noqa: E402

import measure  # noqa: E402
import mount_bed  # noqa: E402
import mounts  # noqa: E402
from mount_bed import Mounted  # noqa: E402
from mount_work import KINDS  # noqa: E402

ROUNDS = {0: 2, 20: 1}
CREATES = {0: 500, 20: 100}
READAHEAD_KIB = 4096
WORKLOADS = ("write", "read", "read_128k", "creates", "walk")


@dataclass(frozen=True)
class Variant:
    name: str
    options: tuple[str, ...] = ()
    readahead_kib: int = 0  # 0: the kernel's default for FUSE (128 KiB)
    passive: bool = False


CIPHER = "Ciphers=aes128-gcm@openssh.com"
# sshfs keeps a cached entry while time(NULL) <= the second it was stored + N:
# dcache_timeout=1 holds it 1-2 s, =0 to the end of the current second (< 1 s).
# attr_timeout=0: the kernel asks sshfs on every stat instead of keeping 1 s.
FRESH = ("dcache_timeout=0", "attr_timeout=0")
VARIANTS = (
    Variant("default"),  # the original scripts: allow_other and nothing else
    Variant("aes128-gcm", (CIPHER,)),
    Variant("max_read=65536", ("max_read=65536",)),
    Variant("kernel_cache", ("kernel_cache",)),
    Variant("direct_io", ("direct_io",)),
    Variant("dcache_timeout=1", ("dcache_timeout=1",)),
    Variant("dcache_timeout=1,attr_timeout=0", ("dcache_timeout=1", "attr_timeout=0")),
    Variant(",".join(FRESH), FRESH),
    # what the mount uses: a stat right after the lookup is answered by the kernel
    Variant("dcache_timeout=0,attr_timeout=0.01", ("dcache_timeout=0", "attr_timeout=0.01")),
    Variant(f"read_ahead_kb={READAHEAD_KIB}", readahead_kib=READAHEAD_KIB),
    Variant(f"aes128-gcm,{','.join(FRESH)},read_ahead_kb={READAHEAD_KIB}",
            (CIPHER, *FRESH), READAHEAD_KIB),
    Variant("passive: default", passive=True),
    Variant(f"passive: {','.join(FRESH)},read_ahead_kb={READAHEAD_KIB}", FRESH, READAHEAD_KIB,
            passive=True),
)


@contextmanager
def _readahead(mount: ContextManager[Mounted], kib: int) -> Iterator[Mounted]:
    with mount as mounted:
        if kib:
            mount_bed.set_readahead(mounted, kib)
        yield mounted


def mount_for(rig: mounts.Rig, variant: Variant) -> Callable[[], ContextManager[Mounted]]:
    def mount() -> ContextManager[Mounted]:
        if variant.passive:
            inner = mount_bed.raw_passive_mount(rig.source.root, rig.env, variant.options)
        else:
            inner = mount_bed.classic_mount(rig.source.root, *rig.ws_endpoint, variant.options)
        return _readahead(inner, variant.readahead_kib)
    return mount


def measure_variants(variants: list[Variant], say: Callable[[str], None]) -> dict:
    found: dict = {"rounds": ROUNDS, "creates": CREATES, "seq_bytes": mounts.SEQ_BYTES,
                   "tree_files": mounts.TREE_DIRS * mounts.TREE_PER_DIR, "rtt": {}}
    with ExitStack() as stack:
        source = stack.enter_context(mount_bed.workstation_dir(
            mounts.TREE_DIRS, mounts.TREE_PER_DIR, mounts.SEQ_BYTES, mounts.CP_TREE,
            mounts.CREATES))
        stack.enter_context(mount_bed.dm_key_on_ws())
        for rtt in mounts.RTTS_MS:
            with mounts.rig_at(source, rtt) as (rig, check):
                row = found["rtt"][str(rtt)] = {"check": check, "variants": {}}
                for variant in variants:
                    say(f"+{rtt} ms: {variant.name} …")
                    times = {w: [] for w in ("setup", *WORKLOADS)}
                    fresh: dict = {}
                    for round_number in range(ROUNDS[rtt]):
                        tag = f"v{variants.index(variant)}-{rtt}-{round_number}"
                        mounts.session(rig, mount_for(rig, variant), tag, times,
                                       None if round_number else fresh, CREATES[rtt],
                                       small_reads=True)
                    row["variants"][variant.name] = {
                        **{w: measure.summary(t) for w, t in times.items()},
                        "freshness": next(iter(fresh.values()))}
    return found


def _cells(found: dict, rtt: str, name: str) -> list[float]:
    entry = found["rtt"][rtt]["variants"][name]
    mb = found["seq_bytes"] / 1e6
    units = {"write": mb, "read": mb, "read_128k": mb, "creates": found["creates"][int(rtt)],
             "walk": found["tree_files"]}
    return [units[w] / entry[w]["median"] for w in WORKLOADS]


def _round_trips(found: dict, name: str) -> list[float]:
    """Per MiB (write, reads), per file (creates, walk): the +20 ms excess over 0 ms
    in measured added RTTs."""
    fast, slow = found["rtt"]["0"]["variants"][name], found["rtt"]["20"]["variants"][name]
    rtt = found["rtt"]["20"]["check"]["added_s"]
    mib = found["seq_bytes"] / (1 << 20)
    per = {"write": mib, "read": mib, "read_128k": mib, "walk": found["tree_files"]}
    trips = [(slow[w]["median"] - fast[w]["median"]) / rtt / per[w]
             for w in ("write", "read", "read_128k")]
    creates = (slow["creates"]["median"] / found["creates"][20]
               - fast["creates"]["median"] / found["creates"][0]) / rtt
    walk = (slow["walk"]["median"] - fast["walk"]["median"]) / rtt / per["walk"]
    return trips + [creates, walk]


def _worst_fresh(found: dict, name: str) -> str:
    seen = [found["rtt"][rtt]["variants"][name]["freshness"][k]
            for rtt in ("0", "20") for k in KINDS]
    return "> 3 s" if None in seen else f"{max(seen):.2f} s"


def table(found: dict) -> list[str]:
    heads = ("write", "read", "r128k", "creates", "walk")
    lines = [
        "sshfs options: MB/s (write, read 1 MiB blocks, read 128 KiB blocks), files/s "
        "(creates, walk), round trips per MiB / per file;",
        f"medians of {ROUNDS[0]} fresh mounts at 0 ms, {ROUNDS[20]} at +20 ms "
        f"({CREATES[0]} creates at 0 ms, {CREATES[20]} at +20 ms); fresh = slowest change "
        "seen (of content, new, stat)",
        f"{'variant':<44}" + "".join(f" {g:-^39}" for g in ("0 ms", "+20 ms"))
        + f" {'round trips per op':-^39}{'fresh':>8}",
        f"{'':<44}" + "".join(f"{h:>8}" for h in heads) * 3,
    ]
    for name in found["rtt"]["0"]["variants"]:
        cells = "".join(_fmt(v) for v in _cells(found, "0", name) + _cells(found, "20", name))
        trips = "".join(f"{max(0.0, v):>8.2f}" for v in _round_trips(found, name))
        lines.append(f"{name[:44]:<44}{cells}{trips}{_worst_fresh(found, name):>8}")
    return lines


def _fmt(value: float) -> str:
    return f"{value:>8.1f}" if value < 100 else f"{value:>8.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="variants whose name contains NAME (default: all)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0 or not is_up():
        raise SystemExit("sshfs_options: run as root with the test bed up (make testbed)")
    variants = [v for v in VARIANTS if not args.only or any(n in v.name for n in args.only)]
    sync_code()
    os.chdir("/")
    started = time.monotonic()
    try:
        found = measure_variants(variants, lambda line: print(line, flush=True))
    except measure.MeasurementFailed as exc:
        print(f"sshfs_options: a measurement failed: {exc}", file=sys.stderr)
        return 1
    print()
    for line in table(found):
        print(line)
    path = mounts_results_path()
    path.write_text(json.dumps(found, indent=1) + "\n")
    print(f"\nraw numbers: {path} ({time.monotonic() - started:.0f} s)")
    return 0


def mounts_results_path() -> Path:
    directory = BENCH_DIR / "results"
    directory.mkdir(exist_ok=True)
    return directory / time.strftime("sshfs-options-%Y%m%dT%H%M%SZ.json", time.gmtime())


if __name__ == "__main__":
    sys.exit(main())
