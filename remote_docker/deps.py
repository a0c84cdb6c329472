"""Finding our third-party dependencies when started with ``python -IS``.

The shims start Python with ``-IS`` (no ``site``: it costs ~5-15 ms a call), so
site-packages is not on ``sys.path``.  The hot path needs no dependency; the
commands that do (Fabric, rich, python-xlib, shellingham) call
``ensure_site_packages()`` first, which adds the site-packages of the Python we
were installed with, or of a ``.venv`` beside the package (a checkout or the
test bed).
"""

import os
import sys


def candidate_dirs() -> list[str]:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    dirs = [os.path.join(root, ".venv", "lib", version, "site-packages")]
    for prefix in (sys.prefix, sys.base_prefix):
        dirs.append(os.path.join(prefix, "lib", version, "site-packages"))
    if os.path.basename(sys.prefix) != ".venv":
        # Debian: pip --break-system-packages installs here, apt's python3-* there
        dirs.append(os.path.join("/usr/local/lib", version, "dist-packages"))
        dirs.append("/usr/lib/python3/dist-packages")
    return [d for d in dirs if os.path.isdir(d)]


def ensure_site_packages() -> None:
    """Make site-packages importable if ``-S`` left it out; cheap when already there."""
    for folder in candidate_dirs():
        if folder not in sys.path:
            sys.path.append(folder)
