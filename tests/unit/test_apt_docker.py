"""apt-docker's pure parts: names, the Dockerfile, launchers, desktop entries, the CLI's errors."""

import pytest

from remote_docker.apt import apps, dockerfile as df
from remote_docker.cli import apt_docker
from remote_docker.errors import UsageError


def test_package_names_are_checked() -> None:
    apps.check_names(["x11-apps", "g++", "libc6.1"])
    for bad in (["Firefox"], ["-rf"], ["a b"], []):
        with pytest.raises(UsageError):
            apps.check_names(bad)


def test_dockerfile_puts_the_package_layer_first() -> None:
    text = df.dockerfile(["jq", "x11-apps"], 1000, 1001)
    lines = text.splitlines()
    assert lines[1] == "FROM debian:stable-slim"
    assert text.index("apt-get install") < text.index("chown -R 1000:1001 /home/app")
    assert "jq x11-apps" in text


def test_launchers_pass_arguments_and_pick_the_runner() -> None:
    cli = df.launcher("jq", "/usr/bin/jq", "rd-apt/jq:latest", "rd-apt-home-jq", False)
    assert cli.startswith("#!/bin/sh\n") and cli.rstrip().endswith('"$@"')
    assert "exec docker-run " in cli and '"$(id -u):$(id -g)"' in cli
    gui = df.launcher("xeyes", "/usr/bin/xeyes", "rd-apt/x:latest", "v", True)
    assert "exec docker.x11 " in gui and '"$PWD":"$PWD"' in gui


def test_desktop_entry_points_at_the_launcher() -> None:
    text = "[Desktop Entry]\nName=Eyes\nExec=xeyes -geometry 9x9\nTryExec=/usr/bin/xeyes\n"
    out = apps.rewrite_desktop(text, {"xeyes": "/h/.local/bin/xeyes"})
    assert "Exec=/h/.local/bin/xeyes -geometry 9x9\n" in out
    assert "TryExec=/h/.local/bin/xeyes\n" in out
    assert apps._exec_programs(text) == ["xeyes", "xeyes"]


def test_prefix_must_be_a_repository_name() -> None:
    assert apps.prefix({"REMOTE_DOCKER_APT_PREFIX": "me/apps", "HOME": "/nonexistent"}) == \
        "me/apps"
    with pytest.raises(UsageError):
        apps.prefix({"REMOTE_DOCKER_APT_PREFIX": "Bad Prefix", "HOME": "/nonexistent"})


def test_cli_usage_errors_are_one_line(capsys) -> None:
    assert apt_docker.main(["install", "--force"]) == 125
    assert apt_docker.main(["remove"]) == 125
    assert apt_docker.make_dockerfile(["jq", "-o"]) == 125
    err = capsys.readouterr().err
    assert err.count("\n") == 3 and all(line.startswith(("apt-docker: ", "make_dockerfile: "))
                                        for line in err.splitlines())
