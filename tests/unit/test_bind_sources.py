"""Workstation paths in -v/--mount: found, rewritten around placeholders, others untouched."""

import os

import pytest

from remote_docker import bind_sources, forward
from remote_docker.errors import UsageError
from remote_docker.forward import Terminal

PIPES = Terminal(False, False, False)


def plan(argv, cwd, translate=True):
    return forward.plan(argv, {}, PIPES, cwd=str(cwd), translate=translate)


def test_relative_and_absolute_dirs_become_volume_placeholders(tmp_path) -> None:
    (tmp_path / "src").mkdir()
    p = plan(["run", "-v", "./src:/src:ro", "--volume", f"{tmp_path}:/w", "img", "-v", "x:y"],
             tmp_path)
    assert [(m.local_path, m.readonly, m.is_file) for m in p.mounts] == [
        (str(tmp_path / "src"), True, False), (str(tmp_path), False, False)]
    assert p.argv == ["docker", "run", "-v", bind_sources.placeholder(0) + ":/src:ro,nocopy",
                      "--volume", bind_sources.placeholder(1) + ":/w:nocopy", "img", "-v", "x:y"]
    assert bind_sources.substitute(p.argv, ["rd-a", "rd-b"])[3] == "rd-a:/src:ro,nocopy"


@pytest.mark.parametrize("spec", ["data:/data", "/anon", "data:/data:ro"])
def test_named_and_anonymous_volumes_are_untouched(tmp_path, spec: str) -> None:
    p = plan(["run", "-v", spec, "img"], tmp_path)
    assert p.mounts == [] and p.argv == ["docker", "run", "-v", spec, "img"]


def test_machine_paths_use_the_at_spelling(tmp_path) -> None:
    p = plan(["run", "-v", "@/srv/data:/data", "--mount", "type=bind,src=@/etc,dst=/e", "img"],
             tmp_path)
    assert p.mounts == []
    assert p.argv == ["docker", "run", "-v", "/srv/data:/data", "--mount",
                      "type=bind,src=/etc,dst=/e", "img"]


def test_missing_dir_is_created_for_v_but_an_error_for_mount(tmp_path) -> None:
    p = plan(["run", "-v", "./new:/n", "img"], tmp_path)
    assert p.mounts[0].create and not p.mounts[0].is_file
    with pytest.raises(UsageError, match="bind source path does not exist"):
        plan(["run", "--mount", "type=bind,source=./nope,target=/n", "img"], tmp_path)


def test_mount_bind_becomes_volume_and_keeps_readonly(tmp_path) -> None:
    p = plan(["create", "--mount", "type=bind,source=.,target=/w,readonly", "img"], tmp_path)
    assert p.mounts[0].readonly
    assert p.argv[2:4] == ["--mount", f"type=volume,source={bind_sources.placeholder(0)},"
                                      "target=/w,volume-nocopy,readonly"]


def test_single_file_is_bound_by_path(tmp_path) -> None:
    (tmp_path / "app.yml").write_text("x")
    p = plan(["run", "-v", "./app.yml:/etc/app.yml:ro", "img"], tmp_path)
    assert p.mounts[0].is_file and p.mounts[0].local_path == str(tmp_path / "app.yml")


def test_translation_can_be_switched_off_and_exec_is_never_translated(tmp_path) -> None:
    assert plan(["run", "-v", ".:/w", "img"], tmp_path, translate=False).mounts == []
    assert plan(["exec", "-i", "c", "cat", "-v", ".:/w"], tmp_path).mounts == []


def test_symlinked_source_is_resolved(tmp_path) -> None:
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "link")
    assert plan(["run", "-v", "./link:/w", "img"], tmp_path).mounts[0].local_path == \
        str(tmp_path / "real")


def test_substitute_handles_inline_and_several() -> None:
    words = ["--mount=type=volume,source=" + bind_sources.placeholder(1) + ",target=/a",
             bind_sources.placeholder(0) + ":" + bind_sources.placeholder(1)]
    assert bind_sources.substitute(words, ["v0", "v1"]) == [
        "--mount=type=volume,source=v1,target=/a", "v0:v1"]


@pytest.mark.parametrize("spec, problem", [
    ("", "invalid empty volume spec"),
    ("ab", None), ("/data", None), ("./a:/x", None), ("./a:/x:ro,z", None),
    ("./rel:/x:", "invalid spec: ./rel:/x:: empty section between colons"),
    ("./a::ro", "invalid spec: ./a::ro: empty section between colons"),
    ("./a:/x:ro:extra", "invalid spec: ./a:/x:ro:extra: too many colons"),
])
def test_a_volume_spec_is_checked_as_the_docker_cli_checks_it(spec: str,
                                                              problem: str | None) -> None:
    assert bind_sources.volume_spec_problem(spec) == problem


@pytest.mark.parametrize("mode, valid", [
    ("", True), ("ro", True), ("rw,Z,rshared,nocopy,cached", True), ("z", True),
    ("badopt", False), ("ro,rw", False), ("z,Z", False), ("shared,private", False),
])
def test_bind_modes_are_the_engine_s(mode: str, valid: bool) -> None:
    assert bind_sources.valid_bind_mode(mode) is valid
