"""docker-run: the docker run argv it stands for, and the directory it mounts."""

from remote_docker.cli import docker_run


def test_docker_run_mounts_the_directory_where_it_is() -> None:
    assert docker_run.run_argv(["-e", "X", "img", "ls"], "/home/u/p", interactive=True) == [
        "run", "--rm", "-i", "-t", "-v", "/home/u/p:/home/u/p", "-w", "/home/u/p",
        "-e", "X", "img", "ls"]
    assert "-t" not in docker_run.run_argv(["img"], "/p", interactive=False)


def test_logical_cwd_keeps_a_symlinked_pwd(tmp_path, monkeypatch) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    monkeypatch.chdir(real)
    assert docker_run.logical_cwd({"PWD": str(tmp_path / "link")}) == str(tmp_path / "link")
    assert docker_run.logical_cwd({"PWD": "/elsewhere"}) == str(real)
