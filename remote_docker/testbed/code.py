"""The code the bed's users run: a world-readable copy of this checkout, and a venv.

Checkouts here are root-only (drwx------), so ws cannot run them in place.
`sync_code` copies only what changed (size or mtime differ) and removes what
was deleted, in milliseconds, so `exec` can call it every time and tests
always run the code as it is now. The venv holds the runtime dependencies
from pyproject.toml, reinstalled only when that list changes.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import remote_docker
from remote_docker.testbed import layout
from remote_docker.testbed.process import TestbedError, run

# What of the checkout the bed's users need; everything else (.git, .ci) stays behind.
ENTRIES = ("remote_docker", "bin", "tests", "examples", "bench", "pyproject.toml", "README.md")
SKIPPED = {"__pycache__", ".pytest_cache", ".venv", ".mypy_cache", ".ruff_cache"}
VENV_PYTHON = "/usr/bin/python3"
DEPS_STAMP = layout.VENV_DIR / "remote-docker-testbed-deps.json"


def checkout() -> Path:
    """The checkout this package runs from (the directory holding remote_docker/)."""
    root = Path(remote_docker.__file__).resolve().parent.parent
    if not (root / "pyproject.toml").is_file():
        raise TestbedError(f"no checkout around {root}: the bed copies a source checkout")
    return root


def _wanted(entry: os.DirEntry) -> bool:
    return entry.name not in SKIPPED and not entry.name.endswith((".pyc", ".pyo"))


def _same(source: os.stat_result, target: Path) -> bool:
    try:
        stat = target.stat()
    except FileNotFoundError:
        return False
    return stat.st_size == source.st_size and stat.st_mtime_ns == source.st_mtime_ns


def _mkdir(directory: Path) -> None:
    """A directory everyone may enter, whatever the caller's umask."""
    if not directory.is_dir():
        directory.mkdir()
        directory.chmod(0o755)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _copy_file(source: Path, target: Path, stat: os.stat_result) -> None:
    """Copy with its mtime (what the next sync compares), readable by everyone."""
    if target.is_dir() or target.is_symlink():
        _remove(target)
    shutil.copy2(source, target)
    executable = stat.st_mode & 0o100
    os.chmod(target, 0o755 if executable else 0o644)


def _sync_dir(source: Path, target: Path) -> int:
    """Mirror source into target; returns how many files were copied or removed."""
    changes = 0
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        target.unlink()
    _mkdir(target)
    seen = set()
    with os.scandir(source) as entries:
        for entry in entries:
            if not _wanted(entry):
                continue
            seen.add(entry.name)
            changes += _sync_entry(Path(entry.path), target / entry.name)
    for stale in target.iterdir():
        if stale.name not in seen and stale.name not in SKIPPED:  # keep our own bytecode
            _remove(stale)
            changes += 1
    return changes


def _sync_entry(source: Path, target: Path) -> int:
    if source.is_symlink():
        link = os.readlink(source)
        if target.is_symlink() and os.readlink(target) == link:
            return 0
        _remove(target)
        target.symlink_to(link)
        return 1
    if source.is_dir():
        return _sync_dir(source, target)
    stat = source.stat()
    if _same(stat, target):
        return 0
    _copy_file(source, target, stat)
    return 1


def sync_code() -> int:
    """Bring the world-readable copy up to date with the checkout; returns the changes.

    Running from the copy itself (ws, or root in /opt) is a no-op.
    """
    source = checkout()
    if source == layout.SRC_DIR.resolve():
        return 0
    _mkdir(layout.OPT_DIR)
    _mkdir(layout.SRC_DIR)
    changes = 0
    for name in ENTRIES:
        if (source / name).exists():
            changes += _sync_entry(source / name, layout.SRC_DIR / name)
        elif (layout.SRC_DIR / name).exists() or (layout.SRC_DIR / name).is_symlink():
            _remove(layout.SRC_DIR / name)
            changes += 1
    if changes:
        _compile()
    return changes


def _compile() -> None:
    """Write the bytecode ws cannot write itself (the copy is root's), with the
    interpreter the shims run, so each shim start does not recompile the package."""
    package = layout.SRC_DIR / "remote_docker"
    if package.is_dir():
        run([VENV_PYTHON, "-m", "compileall", "-q", str(package)], check=False)


def dependencies() -> list[str]:
    """[project] dependencies of the checkout's pyproject.toml."""
    import tomllib  # here, not at the top: `exec` syncs code on every call and needs no toml

    with open(checkout() / "pyproject.toml", "rb") as file:
        return list(tomllib.load(file).get("project", {}).get("dependencies", []))


def venv_ok() -> bool:
    try:
        stamped = json.loads(DEPS_STAMP.read_text())
    except (OSError, ValueError):
        return False
    return (layout.VENV_DIR / "bin" / "python").exists() and stamped == dependencies()


def ensure_venv() -> str:
    """Create the venv and install the dependencies, unless the stamp says they are in."""
    if venv_ok():
        return "ok"
    deps = dependencies()
    if not (layout.VENV_DIR / "bin" / "python").exists():
        run([VENV_PYTHON, "-m", "venv", str(layout.VENV_DIR)])
    if deps:
        run([str(layout.VENV_DIR / "bin" / "pip"), "install", "--quiet",
             "--disable-pip-version-check", *deps], timeout=1800)
    DEPS_STAMP.write_text(json.dumps(deps))
    return f"installed {len(deps)} dependencies into {layout.VENV_DIR}"


def ensure() -> str:
    changes = sync_code()
    venv = ensure_venv()
    synced = f"synced {changes} files" if changes else ""
    return ", ".join(part for part in (synced, "" if venv == "ok" else venv) if part) or "ok"


def ok() -> bool:
    return (layout.SRC_DIR / "remote_docker").is_dir() and venv_ok()
