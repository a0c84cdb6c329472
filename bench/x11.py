"""`bench/run.py --only x11`: docker.x11 against a local X client and the seed's `ssh -X` + `--net=host`.

Two numbers per path, as ws on the bed's Xvfb :42:
- xdpyinfo: the X traffic of one `xdpyinfo` (a few hundred requests, many
  round trips), timed *inside* the container (or locally), so container
  start-up is not counted;
- first window: from starting the command to xeyes' window being mapped,
  seen with python-xlib by this process (start-up included: what a user waits for).
Target (issue 6): docker.x11 within 1.5x of `ssh -X`.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from remote_docker.testbed import layout, ws_command, ws_env  # noqa: E402
from measure import MeasurementFailed  # noqa: E402
from tests import xtools  # noqa: E402

RUNS = 5
TIMED = ('s=$(date +%s%N); xdpyinfo >/dev/null || exit 1; e=$(date +%s%N); '
         'echo $(( (e - s) / 1000 ))')


def paths(image: str) -> dict[str, list[str]]:
    """Each path's argv prefix: the command after it runs with the display."""
    ssh_x = ["ssh", "-X", "-o", "BatchMode=yes", "-o", "ControlPath=none", layout.DM_HOST,
             "docker", "run", "--rm", "--net=host", "-e", "DISPLAY",
             "-e", "XAUTHORITY=/tmp/.Xauthority",
             "-v", "/home/dm/.Xauthority:/tmp/.Xauthority:ro", image]
    return {"local": [], "docker.x11": ["docker.x11", image], "ssh -X --net=host": ssh_x}


def run_ws(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(ws_command(argv), env=ws_env(), capture_output=True, cwd="/",
                          stdin=subprocess.DEVNULL, timeout=120)


def xdpyinfo_us(prefix: list[str]) -> float:
    script = TIMED if not prefix or prefix[0] == "docker.x11" else f"'{TIMED}'"
    result = run_ws([*prefix, "sh", "-c", script])
    if result.returncode != 0:
        raise MeasurementFailed(f"xdpyinfo via {prefix[:1]}", prefix, result.returncode,
                                    result.stderr.decode(errors="replace"))
    return float(result.stdout.split()[-1])


def first_window_ms(prefix: list[str]) -> float:
    name = f"rdbench{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    app = subprocess.Popen(ws_command([*prefix, "xeyes", "-name", name]), env=ws_env(),
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, cwd="/")
    d = xtools.open_display()
    try:
        while not any(cls == name for cls, _ in xtools.window_names(d)):
            if app.poll() is not None or time.monotonic() - started > 60:
                raise MeasurementFailed(f"xeyes via {prefix[:1]}: no window", prefix,
                                        app.returncode or 0, app.stderr.read().decode())
            time.sleep(0.005)
        elapsed = (time.monotonic() - started) * 1000
    finally:
        d.close()
        app.terminate()  # docker.x11 and ssh pass it to the container
        try:
            app.wait(timeout=30)
        except subprocess.TimeoutExpired:
            app.kill()
    return elapsed


def measure_x11(results: dict, say) -> None:
    image = xtools.ensure_x11_image()
    out: dict = {}
    for label, prefix in paths(image).items():
        xdpy = [xdpyinfo_us(prefix) / 1000 for _ in range(RUNS)]
        window = [first_window_ms(prefix) for _ in range(RUNS)]
        out[label] = {"xdpyinfo_ms": statistics.median(xdpy),
                      "first_window_ms": statistics.median(window), "runs": RUNS}
        say(f"x11 {label:20} xdpyinfo {out[label]['xdpyinfo_ms']:8.1f} ms   first window "
            f"{out[label]['first_window_ms']:8.1f} ms")
    results["x11"] = out


def targets(x11: dict) -> list[dict]:
    ours, seed = x11["docker.x11"], x11["ssh -X --net=host"]
    return [{"target": f"docker.x11 {key[:-3]} within 1.5x of ssh -X + --net=host",
             "passed": ours[key] <= 1.5 * seed[key],
             "detail": f"{ours[key]:.1f} ms vs 1.5 x {seed[key]:.1f} ms"}
            for key in ("xdpyinfo_ms", "first_window_ms")]
