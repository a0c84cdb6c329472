"""The mount benchmark's table and targets, from results["mounts"] (see mounts.py)."""

from __future__ import annotations

from measure import paired_speedup
from mount_work import FRESHNESS_TARGET, KINDS

TITLES = {"passive": "(a) passive", "classic": "(b) classic", "docker_cp": "(c) docker cp"}
# docker cp's operations in the mount columns' places: what lands on the
# workstation for "write" and "creates", what reaches the container for "read".
CP_AS = {"write": "out_big", "read": "in_big", "creates": "out_tree"}
SPEED_RATIO = 1.3  # (a) / (b) on sequential reads and writes
NOISE = 1.05  # "no slower": medians of equal speeds differ by a few % from run to run


def _rates(rtt: dict, path: str, setup: dict) -> dict[str, float | None]:
    """MB/s for write/read, operations per second for creates and the walk."""
    units = {"write": setup["seq_bytes"] / 1e6, "read": setup["seq_bytes"] / 1e6,
             "creates": setup["creates"], "walk": setup["tree_files"]}
    if path == "docker_cp":
        row = {w: rtt["docker_cp"][CP_AS[w]]["median"] for w in CP_AS}
    elif path in rtt:
        row = {w: rtt[path][w]["median"] for w in units}
    else:
        return {w: None for w in units}
    return {w: (units[w] / row[w] if w in row else None) for w in units}


def _paired(rtt: dict, workload: str) -> float:
    """(a)'s speed over (b)'s, round by round (see measure.paired_speedup)."""
    return paired_speedup(rtt["passive"][workload], rtt["classic"][workload])


def _round_trips(mounts: dict, path: str) -> dict[str, float | None]:
    """Extra seconds at +20 ms over 0 ms, in round trips of the measured added RTT,
    per MiB (write, read), per file (creates, walk)."""
    setup, slow, fast = mounts["setup"], mounts["rtt"]["20"], mounts["rtt"]["0"]
    rtt = slow["check"]["added_s"]
    per = {"write": setup["seq_bytes"] / (1 << 20), "read": setup["seq_bytes"] / (1 << 20),
           "creates": setup["creates"], "walk": setup["tree_files"]}
    found: dict[str, float | None] = {}
    for workload, count in per.items():
        if path == "docker_cp":
            key = CP_AS.get(workload)
            pair = (slow["docker_cp"][key]["median"], fast["docker_cp"][key]["median"]) \
                if key else None
        else:
            pair = (slow[path][workload]["median"], fast[path][workload]["median"]) \
                if path in slow else None
        found[workload] = max(0.0, (pair[0] - pair[1]) / rtt / count) if pair else None
    return found


def _num(value: float | None, width: int, digits: int = 1) -> str:
    if value is None:
        return f"{'-':>{width}}"
    return f"{value:>{width}.{digits}f}" if value < 100 else f"{value:>{width}.0f}"


def table(mounts: dict) -> list[str]:
    setup = mounts["setup"]
    rounds = setup["rounds"]
    lines = [
        f"mounts: {setup['seq_bytes'] >> 20} MiB sequential write and read in MB/s, "
        f"{setup['creates']} small file creates and a stat walk of {setup['tree_files']:,} "
        "files in files/s;",
        f"medians of {rounds['0']} fresh mount(s) at 0 ms and {rounds['20']} at +20 ms, each "
        f"workload timed inside a {setup['image']} container on the mount",
        f"{'':<16}" + "".join("  " + f" {group} ".center(31, "-") for group in (
            "0 ms", "+20 ms", "round trips per op")),
        f"{'path':<16}" + f"{'write':>8}{'read':>8}{'creates':>9}{'walk':>8}" * 2
        + f"{'w/MiB':>9}{'r/MiB':>8}{'create':>8}{'walk':>8}",
    ]
    for path, title in TITLES.items():
        if path == "passive" and setup["passive_unavailable"]:
            lines.append(f"{title:<16}  {setup['passive_unavailable']}")
            continue
        cells = ""
        for rtt in ("0", "20"):
            rates = _rates(mounts["rtt"][rtt], path, setup)
            cells += (_num(rates["write"], 8) + _num(rates["read"], 8)
                      + _num(rates["creates"], 9, 0) + _num(rates["walk"], 8, 0))
        trips = _round_trips(mounts, path)
        cells += (_num(trips["write"], 9, 2) + _num(trips["read"], 8, 2)
                  + _num(trips["creates"], 8, 2) + _num(trips["walk"], 8, 3))
        lines.append(f"{title:<16}{cells}")
    return lines + notes(mounts)


def notes(mounts: dict) -> list[str]:
    setup, check = mounts["setup"], mounts["rtt"]["20"]["check"]
    cp = {rtt: mounts["rtt"][rtt]["docker_cp"]["in_tree"]["median"] for rtt in ("0", "20")}
    lines = [
        "(c) as ws through the shim: write = `docker cp CTR:FILE - | tar -x` (container to "
        "workstation), read = `tar -c | docker cp - CTR:DIR`,",
        f"    creates = the {setup['creates']}-file tree copied out; copied in it took "
        f"{cp['0'] * 1000:.0f} ms at 0 ms, {cp['20'] * 1000:.0f} ms at +20 ms",
        "round trips per op = (median at +20 ms - median at 0 ms) / the proxy's added RTT "
        f"({check['added_s'] * 1000:.1f} ms measured: one ssh round trip "
        f"{check['direct_s'] * 1000:.1f} ms direct, {check['proxied_s'] * 1000:.1f} ms "
        "through it)",
        "64 MiB `cat > /dev/null` over ws's master: " + ", ".join(
            f"{mounts['rtt'][rtt]['check']['cat_mb_per_s']:.0f} MB/s at +{rtt} ms"
            for rtt in ("0", "20")),
        "freshness: seconds until the container sees what ws changed: new bytes in a file it "
        "has read (content), a new name in the",
        "  listing of a directory it has listed (new), the new size of a file it has only "
        "stat'ed, as make or git status would (stat):",
    ]
    for path in ("passive", "classic"):
        if path not in mounts["rtt"]["0"]:
            continue
        seen = []
        for rtt in ("0", "20"):
            fresh = mounts["rtt"][rtt][path]["freshness"]
            seen.append(f"+{rtt} ms: " + ", ".join(
                f"{kind} {_seen(fresh[kind], fresh['deadline'])}" for kind in KINDS))
        lines.append(f"  {TITLES[path]:<14}" + "; ".join(seen))
    return lines


def _seen(seconds: float | None, deadline: float) -> str:
    return f"not within {deadline:.0f} s" if seconds is None else f"{seconds:.2f} s"


def _target(name: str, passed: bool | None, detail: str) -> dict:
    return {"target": name, "passed": passed, "detail": detail}


def targets(mounts: dict) -> list[dict]:
    """(a) >= 1.3x (b) on sequential I/O, (a) no slower on creates and the walk, both
    fresh within a second; passed None (n/a) while (a) has not landed."""
    setup, found = mounts["setup"], []
    missing = setup["passive_unavailable"]
    for rtt in ("0", "20"):
        a, b = (_rates(mounts["rtt"][rtt], p, setup) for p in ("passive", "classic"))
        for workload in ("read", "write"):
            name = f"+{rtt} ms {workload}: (a) >= {SPEED_RATIO} x (b)"
            if missing:
                found.append(_target(name, None, f"(a) {missing}; (b) {b[workload]:.1f} MB/s"))
                continue
            ratio = _paired(mounts["rtt"][rtt], workload)
            found.append(_target(name, ratio >= SPEED_RATIO,
                                 f"{a[workload]:.1f} / {b[workload]:.1f} MB/s (medians); "
                                 f"paired by round {ratio:.2f}x"))
        for workload in ("creates", "walk"):
            name = f"+{rtt} ms {workload}: (a) no slower than (b) (within {NOISE - 1:.0%})"
            if missing:
                found.append(_target(name, None, f"(a) {missing}; (b) "
                                     f"{b[workload]:.0f} files/s"))
                continue
            ratio = _paired(mounts["rtt"][rtt], workload)
            found.append(_target(name, ratio * NOISE >= 1,
                                 f"{a[workload]:.0f} vs {b[workload]:.0f} files/s (medians); "
                                 f"paired by round {ratio:.2f}x"))
    for path in ("passive", "classic"):
        if path not in mounts["rtt"]["0"]:
            continue
        worst = [mounts["rtt"][rtt][path]["freshness"][k] for rtt in ("0", "20")
                 for k in KINDS]
        late = None in worst or max(worst) > FRESHNESS_TARGET
        found.append(_target(f"{TITLES[path]}: a change on ws seen within "
                             f"{FRESHNESS_TARGET:.0f} s", not late,
                             "slowest " + ("never (within the deadline)" if None in worst
                                           else f"{max(worst):.2f} s")))
    return found
