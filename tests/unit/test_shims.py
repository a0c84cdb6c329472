"""install-shims / uninstall-shims logic: the table, the scripts, the manifest, PATH."""

import os
import sys
import tomllib
from pathlib import Path

import pytest

from remote_docker import shims
from remote_docker.errors import RemoteDockerError, UsageError
from remote_docker.transport.local import is_shim

CHECKOUT = Path(__file__).resolve().parents[2]


def test_the_table_is_pyprojects_console_scripts() -> None:
    with open(CHECKOUT / "pyproject.toml", "rb") as f:
        scripts = tomllib.load(f)["project"]["scripts"]
    assert shims.SHIMS == scripts


def test_the_table_matches_the_checkouts_bin_scripts() -> None:
    assert sorted(p.name for p in (CHECKOUT / "bin").iterdir()) == sorted(shims.SHIMS)
    for name, entry in shims.SHIMS.items():
        module, func = entry.split(":")
        assert f"from {module} import {func}\n" in (CHECKOUT / "bin" / name).read_text()


def script(name: str = "docker", python: str = "/usr/bin/python3",
           parent: str = "/opt/it's here", dirs: list[str] | None = None) -> str:
    return shims.shim_script(name, shims.SHIMS[name], python, parent,
                             dirs if dirs is not None else ["/venv/lib/python3.11/site-packages"])


def test_a_shim_script_has_the_bin_shape_and_our_marks() -> None:
    text = script()
    assert text.startswith("#!/usr/bin/python3 -IS\n")
    head = text.encode()[:1024]
    assert shims.INSTALLED_MARKER.encode() in head and b"remote_docker" in head
    assert "from remote_docker.cli.docker import main\nsys.exit(main())\n" in text
    compile(text, "docker", "exec")  # quotes in paths are escaped, not broken


def path_after(text: str) -> list[str]:
    """sys.path as the script's own lines leave it (run up to its import)."""
    path_before = list(sys.path)
    try:
        exec(compile(text.split("from remote_docker")[0], "shim", "exec"), {})
        return list(sys.path)
    finally:
        sys.path[:] = path_before


def test_a_checkout_goes_first_and_site_packages_after_the_stdlib() -> None:
    path = path_after(script(parent="/pkg", dirs=["/site"]))
    assert path[0] == "/pkg" and path[-1] == "/site" and path[1:-1] == sys.path


def test_a_package_installed_in_site_packages_stays_after_the_stdlib() -> None:
    path = path_after(script(parent="/venv/site", dirs=["/venv/site", "/user/site"]))
    assert path == [*sys.path, "/venv/site", "/user/site"]


@pytest.mark.parametrize("python", ["", "python3", "/opt/my python/bin/python3",
                                    "/" + "x" * 300])
def test_interpreters_a_shebang_cannot_carry_are_refused(python: str) -> None:
    with pytest.raises(UsageError):
        shims.check_interpreter(python)


def test_site_dirs_exist_once_each() -> None:
    dirs = shims.site_dirs()
    assert all(os.path.isdir(d) for d in dirs)
    assert len(dirs) == len(set(dirs))


def scripts_for(names: list[str]) -> dict[str, str]:
    return {n: script(n) for n in names}


def test_install_then_uninstall_leaves_nothing(tmp_path) -> None:
    bin_dir, manifest = tmp_path / "bin", str(tmp_path / "cfg" / "shims.json")
    bin_dir.mkdir()
    plan = shims.plan_install(str(bin_dir), False, scripts_for(list(shims.SHIMS)), True)
    shims.install(plan, manifest)
    assert sorted(os.listdir(bin_dir)) == sorted(shims.SHIMS)
    assert all(shims.is_ours(str(bin_dir / n)) and is_shim(str(bin_dir / n)) for n in shims.SHIMS)
    assert os.access(bin_dir / "docker", os.X_OK)
    assert sorted(shims.load_manifest(manifest).shims) == sorted(str(bin_dir / n)
                                                                 for n in shims.SHIMS)
    result = shims.uninstall(None, manifest)
    assert len(result.removed) == len(shims.SHIMS) and not result.kept
    assert os.listdir(bin_dir) == [] and not os.path.exists(tmp_path / "cfg")


def test_a_foreign_file_is_refused_and_nothing_changes(tmp_path) -> None:
    (tmp_path / "docker").write_text("#!/bin/sh\necho mine\n")
    with pytest.raises(UsageError, match="--force"):
        shims.plan_install(str(tmp_path), False, scripts_for(["docker-run", "docker"]), True)
    assert os.listdir(tmp_path) == ["docker"]


def test_force_moves_a_foreign_file_aside_and_uninstall_puts_it_back(tmp_path) -> None:
    bin_dir, manifest = tmp_path / "bin", str(tmp_path / "shims.json")
    bin_dir.mkdir()
    (bin_dir / "docker").symlink_to("/usr/bin/true")
    plan = shims.plan_install(str(bin_dir), True, scripts_for(["docker"]), True)
    shims.install(plan, manifest)
    assert shims.is_ours(str(bin_dir / "docker"))
    assert os.readlink(bin_dir / f".docker{shims.BACKUP_SUFFIX}") == "/usr/bin/true"
    again = shims.plan_install(str(bin_dir), False, scripts_for(["docker"]), True)
    shims.install(again, manifest)  # ours now: no --force needed, the backup stays recorded
    result = shims.uninstall(str(bin_dir), manifest)
    assert result.restored == [str(bin_dir / "docker")]
    assert os.listdir(bin_dir) == ["docker"] and os.readlink(bin_dir / "docker") == "/usr/bin/true"


def test_uninstall_leaves_a_file_that_is_no_longer_ours(tmp_path) -> None:
    manifest = str(tmp_path / "shims.json")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shims.install(shims.plan_install(str(bin_dir), False, scripts_for(["docker", "docker-run"]),
                                     True), manifest)
    (bin_dir / "docker").write_text("#!/bin/sh\n# the user's own now\n")
    result = shims.uninstall(None, manifest)
    assert result.kept == [str(bin_dir / "docker")]
    assert os.listdir(bin_dir) == ["docker"]
    assert not os.path.exists(manifest)


def test_uninstall_with_a_dir_touches_only_that_dir(tmp_path) -> None:
    manifest = str(tmp_path / "shims.json")
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    for folder in (a, b):
        shims.install(shims.plan_install(str(folder), False, scripts_for(["docker"]), True),
                      manifest)
    shims.uninstall(str(a), manifest)
    assert os.listdir(a) == [] and os.listdir(b) == ["docker"]
    assert list(shims.load_manifest(manifest).shims) == [str(b / "docker")]


def test_a_missing_default_dir_is_made_and_removed_again(tmp_path) -> None:
    manifest = str(tmp_path / "shims.json")
    target = tmp_path / "home" / ".local" / "bin"
    (tmp_path / "home").mkdir()
    shims.install(shims.plan_install(str(target), False, scripts_for(["docker"]), False), manifest)
    assert os.listdir(target) == ["docker"]
    shims.uninstall(None, manifest)
    assert os.listdir(tmp_path / "home") == []


def test_an_explicit_missing_dir_is_an_error(tmp_path) -> None:
    with pytest.raises(UsageError, match="not a directory"):
        shims.plan_install(str(tmp_path / "nope"), False, scripts_for(["docker"]), True)
    assert not (tmp_path / "nope").exists()


def test_a_corrupt_manifest_is_one_clear_error(tmp_path) -> None:
    (tmp_path / "shims.json").write_text("[1, 2")
    with pytest.raises(RemoteDockerError, match="shims manifest"):
        shims.load_manifest(str(tmp_path / "shims.json"))


def test_manifest_json_round_trip() -> None:
    m = shims.Manifest({"/b/docker": None, "/b/x": "/b/.x.bak"}, ["/b"])
    assert shims.Manifest.from_json(m.to_json()) == m


def executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


def test_path_warnings(tmp_path) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    ours.mkdir(), theirs.mkdir()
    executable(theirs / "docker", "#!/bin/sh\n")
    assert "not on PATH" in shims.path_warnings(str(ours), str(theirs))[0]
    warning = shims.path_warnings(str(ours), f"{theirs}:{ours}")
    assert len(warning) == 1 and str(theirs / "docker") in warning[0]
    assert shims.path_warnings(str(ours), f"{ours}:{theirs}") == []
    executable(theirs / "docker", script())  # a shim of ours earlier on PATH is fine
    assert shims.path_warnings(str(ours), f"{theirs}:{ours}") == []
