"""Finding and lazily unmounting what is mounted below a directory.

`down` uses it for the users' sshfs mounts, and the image builder before it
removes a debootstrap root: removing a tree that still has /proc or /dev
mounted inside would reach into the real ones.
"""

from __future__ import annotations

from pathlib import Path

from remote_docker.testbed.process import run


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def mounts_under(roots: list[Path], fstype_prefix: str = "") -> list[Path]:
    """Mountpoints at or below any of roots whose type starts with fstype_prefix,
    deepest first, so that each unmounts before the one it sits on."""
    found = set()
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        before, _, after = line.partition(" - ")
        fstype = after.split(" ", 1)[0]
        point = Path(_unescape(before.split(" ")[4]))
        if fstype.startswith(fstype_prefix) and fstype != "fusectl":
            if any(point == root or root in point.parents for root in roots):
                found.add(point)
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def unmount_lazily(roots: list[Path], fstype_prefix: str = "") -> int:
    """Detach every such mount; lazily, so a dead sshfs cannot hang us. Returns how many."""
    points = mounts_under(roots, fstype_prefix)
    for point in points:
        run(["umount", "--lazy", str(point)], check=False)
    return len(points)
