"""The bench's printed report and its targets, from the results dictionary.

Kept apart from the measuring so the wording of the report can change without
touching how anything is timed, and so the targets read as a list.
"""

from __future__ import annotations

from typing import Callable

COLUMN_TITLES = {
    "local": "(a) local",
    "ssh": "(b) ssh new",
    "ssh_master": "(c) ssh -S",
    "docker_ssh": "(d) ssh://",
    "shim": "(e) shim",
}
# The commands whose own work is small enough for the latency targets to be
# about the transport; `docker run` starts a container (hundreds of ms that
# vary by tens), so its line is shown but is not held to them.
TARGET_COMMANDS = ("docker version", "docker ps")


def ms(seconds: float) -> str:
    """Milliseconds, to 0.1 ms where that is not noise (below a second)."""
    return f"{seconds * 1000:.1f}" if seconds < 1 else f"{seconds * 1000:.0f}"


def cell(stats: dict | None) -> str:
    return f"{ms(stats['median'])} / {ms(stats['p90'])}" if stats else "-"


def latency_table(results: dict) -> list[str]:
    columns = list(COLUMN_TITLES)
    head = f"{'command':<30}{'N':>3}  " + "".join(f"{COLUMN_TITLES[c]:>16}" for c in columns)
    lines = [head + f"{'(e)-(c)':>10}", "-" * (len(head) + 10)]
    for command, row in results["latency"].items():
        cells = "".join(f"{cell(row.get(c)):>16}" for c in columns)
        diff = row["shim"]["median"] - row["ssh_master"]["median"]
        lines.append(f"{command:<30}{row['shim']['runs']:>3}  {cells}{ms(diff):>10}")
    for label, stats in results["baselines"].items():
        lines.append(f"{label:<30}{stats['runs']:>3}  {cell(stats):>16}")
    return lines


def legend(results: dict) -> list[str]:
    setup = results["setup"]
    return [
        "(a) local:    dm runs " + setup["docker_client"] + " on the engine itself",
        "(b) ssh new:  ws: ssh -o BatchMode=yes -o ControlPath=none " + setup["dm_host"] + " docker …",
        "(c) ssh -S:   ws: ssh -S <the shim's control socket> -o BatchMode=yes "
        + setup["dm_host"] + " docker … (master warm)",
        "(d) ssh://:   ws: DOCKER_HOST=ssh://" + setup["dm_host"] + " " + setup["docker_client"] + " …",
        "(e) shim:     ws: " + setup["shim"] + " … (master warm)",
    ]


def _target(name: str, passed: bool, detail: str) -> dict:
    return {"target": name, "passed": passed, "detail": detail}


def targets(results: dict) -> list[dict]:
    """The issue's four targets, each with the numbers that decide it."""
    found = []
    python = results["baselines"]["python3 -IS -c pass (ws)"]["median"]
    for command in TARGET_COMMANDS:
        row = results["latency"][command]
        shim, master, docker_ssh = (row[c]["median"] for c in ("shim", "ssh_master", "docker_ssh"))
        found.append(_target(
            f"{command}: shim - (c) <= 1.3 x bare python", shim - master <= 1.3 * python,
            f"{ms(shim)} - {ms(master)} = {ms(shim - master)} ms vs 1.3 x {ms(python)} = "
            f"{ms(1.3 * python)} ms"))
        found.append(_target(
            f"{command}: shim >= 7x faster than (d)", docker_ssh >= 7 * shim,
            f"{ms(docker_ssh)} / {ms(shim)} = {docker_ssh / shim:.1f}x"))
    cold, fresh = results["cold"]["shim"]["median"], results["cold"]["ssh"]["median"]
    found.append(_target("cold shim <= 1.1 x one new ssh connection", cold <= 1.1 * fresh,
                         f"{ms(cold)} / {ms(fresh)} = {cold / fresh:.2f}x"))
    stream = results["stream"]
    shim_rate, raw_rate = stream["shim"]["mb_per_s"], stream["ssh_master"]["mb_per_s"]
    found.append(_target("shim stream >= 0.9 x raw ssh -S pipe", shim_rate >= 0.9 * raw_rate,
                         f"{shim_rate:.1f} / {raw_rate:.1f} MB/s = {shim_rate / raw_rate:.2f}x"))
    return found


def info_lines(results: dict) -> list[str]:
    """Ratios shown for context but held to no target (see TARGET_COMMANDS)."""
    lines = []
    for command, row in results["latency"].items():
        if command in TARGET_COMMANDS:
            continue
        shim, master, docker_ssh = (row[c]["median"] for c in ("shim", "ssh_master", "docker_ssh"))
        lines.append(f"  info  {command}: shim - (c) = {ms(shim - master)} ms; "
                     f"(d) / shim = {docker_ssh / shim:.1f}x (container start dominates both)")
    return lines


def stream_lines(results: dict) -> list[str]:
    stream = results["stream"]
    mib = stream["bytes"] // (1 << 20)
    lines = [f"stream: {mib} MiB of random data through `docker run -i --rm busybox cat`, "
             f"MB/s = 10^6 bytes/s (median of {stream['shim']['runs']}, best)"]
    for key, title in (("shim", "(e) shim"), ("ssh_master", "(c) ssh -S pipe")):
        entry = stream[key]
        lines.append(f"  {title:<18}{entry['mb_per_s']:>8.1f} MB/s   best {entry['best_mb_per_s']:.1f}"
                     f"   ({', '.join(f'{t:.2f} s' for t in entry['times'])})")
    lines.append(f"  bytes back identical (sha256 {stream['sha256'][:16]}…) in every run")
    lines.append(f"  for scale: ssh -S … cat (no docker) moved the same at "
                 f"{stream['ssh_cat_mb_per_s']:.0f} MB/s")
    return lines


def importtime_lines(results: dict) -> list[str]:
    data = results["importtime"]
    lines = [f"shim imports (python3 -IS -X importtime {data['shim']} ps, as ws; least of "
             f"{data['runs']} runs): {data['total_self_us'] / 1000:.1f} ms in all, "
             f"{data['own_self_us'] / 1000:.1f} ms in remote_docker.*",
             f"  {'self ms':>8} {'cumul ms':>9}  module"]
    for name, self_us, cumulative_us in data["top"]:
        lines.append(f"  {self_us / 1000:>8.1f} {cumulative_us / 1000:>9.1f}  {name}")
    pycache = results["setup"]["pycache"]
    if pycache["missing"]:
        lines.append(f"  NOTE: {len(pycache['missing'])} of {pycache['modules']} modules under "
                     f"{pycache['root']} have no up-to-date .pyc and ws cannot write one there: "
                     "every call compiles them from source (the bed's code sync should run "
                     "`/usr/bin/python3 -m compileall` and keep __pycache__)")
    else:
        lines.append(f"  bytecode: all {pycache['modules']} modules under {pycache['root']} precompiled")
    return lines


def shim_lines(results: dict) -> list[str]:
    cold = results["cold"]
    return [
        "latency in ms: median / p90 of N interleaved runs after one warm-up. Every command "
        "is spawned through the bed's setpriv wrapper as its user",
        "(ws; dm for (a)): that wrapper running /bin/true is the last line, and is inside every "
        "number.",
        "",
        *latency_table(results), "", *legend(results), "",
        f"cold first command (master stopped, {results['setup']['runtime_dir']} removed), "
        f"N={cold['shim']['runs']}:",
        f"  (e) shim docker ps      {cell(cold['shim'])}",
        f"  (b) ssh new docker ps   {cell(cold['ssh'])}",
        f"  diagnostic: the same cold shim with the runtime dir kept (only the master stopped,"
        f" so the config cache is warm): {cell(cold['shim_dir_kept'])}",
        "",
        *stream_lines(results),
    ]


def verdict(passed: bool | None) -> str:
    return "n/a " if passed is None else "PASS" if passed else "FAIL"


def print_report(results: dict, out: Callable[[str], None] = print) -> None:
    """The shim's part and the mounts' part, whichever ran (`run.py --only`), then the targets."""
    import mount_report

    meta = results["meta"]
    out("")
    out(f"remote-docker bench, {meta['started']} ({meta['cores']} cores, load average "
        f"{meta['load_before']:.2f} before, {meta['load_after']:.2f} after)")
    shim = bool(results.get("latency"))
    sections = ([shim_lines(results)] if shim else []) + \
        ([mount_report.table(results["mounts"])] if "mounts" in results else [])
    for lines in sections:
        out("")
        for line in lines:
            out(line)
    out("")
    out("targets")
    for target in results["targets"]:
        out(f"  {verdict(target['passed'])}  {target['target']}: {target['detail']}")
    if shim:
        for line in info_lines(results):
            out(line)
        out("")
        for line in importtime_lines(results):
            out(line)
