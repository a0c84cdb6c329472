"""The workstation's display seen from the test process: windows, screenshots, the test image.

The test process (root) opens ws's Xvfb with ws's Xauthority, whose cookie is
a FamilyLocal entry (python-xlib skips FamilyWild ones).  Screenshots are
written as PPM (no imaging library needed) under tests/artifacts/, which git
ignores, for a person to look at after a run.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from remote_docker.apt.dockerfile import dockerfile
from remote_docker.testbed import layout, runas
from tests.bedtools import run_dm

X11_IMAGE = "rd-x11-bed/x11-apps:latest"  # x11-apps (xeyes, xmessage) and x11-utils (xdpyinfo)
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


def ensure_x11_image() -> str:
    """Build the bed's X11 image once (one apt install); its layer is apt-docker's for the same
    packages, so installing ``x11-apps x11-utils`` with apt-docker afterwards is a cache hit."""
    if run_dm(["docker", "image", "inspect", X11_IMAGE]).returncode == 0:
        return X11_IMAGE
    ws = runas.ws_env()
    uid = int(os.stat(ws["HOME"]).st_uid)
    text = dockerfile(["x11-apps", "x11-utils"], uid, uid)
    result = run_dm(["docker", "build", "-q", "-t", X11_IMAGE, "-"], input=text.encode(),
                    timeout=600)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return X11_IMAGE


def open_display():
    from Xlib import display

    os.environ["XAUTHORITY"] = str(layout.home(layout.WS_USER) / ".Xauthority")
    return display.Display(layout.DISPLAY)


def window_names(d) -> list[tuple[str, str]]:
    """(WM_CLASS instance, WM_NAME) of every viewable top-level window."""
    from Xlib import X

    found = []
    for window in d.screen().root.query_tree().children:
        try:
            if window.get_attributes().map_state != X.IsViewable:
                continue
            cls = window.get_wm_class() or ("", "")
            found.append((cls[0], window.get_wm_name() or ""))
        except Exception:  # a window that went away while we looked
            continue
    return found


def wait_for_window(instance: str, timeout: float = 60.0) -> bool:
    d = open_display()
    try:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if any(cls == instance for cls, _ in window_names(d)):
                return True
            time.sleep(0.1)
        return False
    finally:
        d.close()


def screenshot(name: str) -> Path:
    """The whole screen as ``tests/artifacts/<name>.ppm``."""
    from Xlib import X

    d = open_display()
    try:
        root = d.screen().root
        geometry = root.get_geometry()
        image = root.get_image(0, 0, geometry.width, geometry.height, X.ZPixmap, 0xFFFFFFFF)
        data = image.data
        pixels = bytearray()
        for i in range(0, len(data), 4):  # BGRX, 32 bits per pixel at depth 24
            pixels += bytes((data[i + 2], data[i + 1], data[i]))
    finally:
        d.close()
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.ppm"
    path.write_bytes(f"P6 {geometry.width} {geometry.height} 255\n".encode() + bytes(pixels))
    return path
