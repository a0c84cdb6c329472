"""docker-mount, docker-umount and gc: argument handling, before anything reaches a machine."""

import pytest

from remote_docker.cli import mounts
from remote_docker.errors import ExitStatus, UsageError


@pytest.mark.parametrize("args", [["a", "b"], ["-x"], ["--rw"]])
def test_docker_mount_usage(args: list[str]) -> None:
    with pytest.raises(UsageError, match="usage: docker-mount"):
        mounts.run_mount(args)


@pytest.mark.parametrize("args", [[], ["--all", "rd-x"]])
def test_docker_umount_usage(args: list[str]) -> None:
    with pytest.raises(UsageError, match="usage: docker-umount"):
        mounts.run_umount(args)


def test_gc_usage() -> None:
    with pytest.raises(UsageError, match="usage: remote-docker gc"):
        mounts.main_gc(["--loud"])


def test_help_goes_to_stdout(capsys) -> None:
    assert mounts.run_mount(["--help"]) == ExitStatus.OK
    assert capsys.readouterr().out.startswith("usage: docker-mount")


def test_the_local_docker_needs_no_reverse_mount(monkeypatch) -> None:
    monkeypatch.setenv("REMOTE_DOCKER_HOST", "local")
    with pytest.raises(UsageError, match="need a docker-machine"):
        mounts.run_mount(["."])


def test_the_boundary_prints_one_line(capsys) -> None:
    assert mounts.docker_umount([]) == ExitStatus.USAGE
    err = capsys.readouterr().err
    assert err.startswith("docker-umount: usage") and err.count("\n") == 1
