"""Images with familiar names, built locally: no registry is reachable from the bed.

`busybox:latest` is a busybox-static rootfs (~2 MB, built in a second) and
`debian:stable-slim` a debootstrap minbase (~30 s, the one slow step of a
cold `up`). Each is built once and kept: images are the bed's cache and
`down` leaves them. An image of that name that the bed did not build (its
import comment says which recipe made it) is replaced: a machine may come
with a half-made `busybox:latest` that lacks most applets and a CMD.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from remote_docker.testbed import layout, mounts
from remote_docker.testbed.dockerd import docker, docker_env
from remote_docker.testbed.process import TestbedError, run

BUSYBOX = "busybox:latest"
DEBIAN = "debian:stable-slim"
BUSYBOX_BINARY = Path("/bin/busybox")
DEBIAN_SUITES = ("stable", "bookworm")  # bookworm: a debootstrap that predates `stable`
DEFAULT_MIRROR = "http://deb.debian.org/debian"
RECIPE_VERSION = 1  # raise to rebuild every bed's images after changing a recipe
# Like the registry's images: tools find the shell on PATH.
PATH_ENV = "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"


def _marker(image: str) -> str:
    return f"remote-docker testbed: {image} recipe {RECIPE_VERSION}"


def _inspect(image: str) -> tuple[str, str] | None:
    """(id, import comment) of the image, or None when there is none of that name."""
    result = docker("image", "inspect", "--format", "{{.Id}} {{.Comment}}", image, check=False)
    if result.returncode != 0:
        return None
    image_id, _, comment = result.stdout.decode().strip().partition(" ")
    return image_id, comment


def ours(image: str) -> bool:
    """The image of that name is the one this recipe of the bed built."""
    found = _inspect(image)
    return found is not None and found[1] == _marker(image)


def _import(rootfs: Path, image: str, cmd: str) -> None:
    """tar the rootfs straight into `docker import`, with numeric owners kept."""
    tar = subprocess.Popen(
        ["tar", "--numeric-owner", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE,
    )
    try:
        result = subprocess.run(
            ["docker", "import", "-m", _marker(image), "-c", PATH_ENV, "-c", f"CMD {cmd}",
             "-", image], stdin=tar.stdout,
            capture_output=True, env=docker_env(),
        )
    finally:
        tar.stdout.close()
        tar_status = tar.wait()
    if result.returncode != 0 or tar_status != 0:
        why = result.stderr.decode(errors="replace").strip()
        raise TestbedError(f"docker import {image} failed (tar {tar_status}): {why}", result)


def busybox_rootfs(root: Path) -> None:
    """bin/busybox, a link per applet, and the few files a shell image needs."""
    (root / "bin").mkdir()
    shutil.copy2(BUSYBOX_BINARY, root / "bin" / "busybox")
    applets = run([str(BUSYBOX_BINARY), "--list"]).stdout.decode().split()
    for applet in applets:
        if applet != "busybox":
            (root / "bin" / applet).symlink_to("busybox")
    (root / "etc").mkdir()
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)
    for name in ("root", "proc", "sys", "dev", "tmp"):
        (root / name).mkdir()
    (root / "root").chmod(0o700)
    (root / "tmp").chmod(0o1777)


def mirror() -> str:
    """The Debian mirror apt on this machine uses (deb.debian.org unless told otherwise)."""
    sources = Path("/etc/apt")
    files = [sources / "sources.list", *sorted((sources / "sources.list.d").glob("*"))]
    for path in files:
        try:
            text = path.read_text()
        except OSError:
            continue
        for url in re.findall(r"(?:^URIs:|^deb(?:\s+\[[^]]*\])?)\s+(\S+)", text, re.MULTILINE):
            if url.rstrip("/").endswith("/debian"):
                return url.rstrip("/")
    return DEFAULT_MIRROR


def _known_suite() -> str:
    scripts = Path("/usr/share/debootstrap/scripts")
    for suite in DEBIAN_SUITES:
        if (scripts / suite).exists():
            return suite
    raise TestbedError(f"debootstrap knows none of {', '.join(DEBIAN_SUITES)}")


def debian_rootfs(root: Path) -> str:
    """debootstrap minbase, slimmed of apt's downloads and lists; says which suite."""
    suite = _known_suite()
    run(["debootstrap", "--variant=minbase", suite, str(root), mirror()], timeout=1800)
    for pattern in ("var/cache/apt/archives/*.deb", "var/cache/apt/*.bin", "var/lib/apt/lists/*_*"):
        for path in root.glob(pattern):
            path.unlink()
    for name in ("etc/resolv.conf", "etc/hostname"):  # docker provides both at run time
        (root / name).write_text("")
    return f"debootstrap {suite}"


def _build(image: str, make_rootfs, cmd: str) -> str:
    layout.STATE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rootfs-", dir=layout.STATE_DIR) as temp:
        root = Path(temp) / "root"
        root.mkdir()
        try:
            detail = make_rootfs(root)
            _import(root, image, cmd)
        finally:
            mounts.unmount_lazily([root])
    return f"built {image}" + (f" ({detail})" if detail else "")


RECIPES = {BUSYBOX: (busybox_rootfs, '["sh"]'), DEBIAN: (debian_rootfs, '["bash"]')}


def ensure() -> str:
    """Build each image the bed has not built yet; drop a foreign one it replaces."""
    done = []
    for image, (make_rootfs, cmd) in RECIPES.items():
        if ours(image):
            continue
        before = _inspect(image)
        done.append(_build(image, make_rootfs, cmd))
        if before:
            docker("image", "rm", before[0], check=False)  # still used by a container: kept
            done[-1] += " in place of another"
    return ", ".join(done) or "ok"


def ok() -> bool:
    return all(ours(image) for image in RECIPES)
