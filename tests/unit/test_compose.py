"""Compose through the shim, the pure parts: its command line and the model's rewrite."""

import os

import pytest

from remote_docker.compose import model, options
from remote_docker.compose.run import ComposeMissing, find_compose, uses_own_endpoint
from remote_docker.errors import UsageError


# -- the command line ---------------------------------------------------------------


@pytest.mark.parametrize("argv, command, opts", [
    (["up", "-d"], "up", []),
    (["-p", "demo", "-f", "a.yml", "up"], "up", [("-p", "demo"), ("-f", "a.yml")]),
    (["--file=a.yml", "--verbose", "logs", "-f"], "logs", [("--file", "a.yml"), ("--verbose", None)]),
    (["-fa.yml", "ps"], "ps", [("-f", "a.yml")]),
    (["--project-directory", "sub", "run", "--rm", "app"], "run", [("--project-directory", "sub")]),
    (["--no-ansi"], "", [("--no-ansi", None)]),
])
def test_parse_splits_global_options_from_the_subcommand(argv, command, opts):
    cmd = options.parse(argv)
    assert cmd.command == command
    assert cmd.options == opts
    assert cmd.rest == argv[len(argv) - len(cmd.rest):]


@pytest.mark.parametrize("argv, needs", [
    (["up"], True), (["-p", "x", "logs", "-f"], True), ([], False), (["version"], False),
    (["config"], False), (["--version"], False), (["-h"], False), (["help", "up"], False),
])
def test_only_commands_that_need_the_engine_connect(argv, needs):
    assert options.parse(argv).needs_engine is needs


def test_parse_refuses_an_option_without_its_value():
    with pytest.raises(UsageError, match="-p needs a value"):
        options.parse(["-p"])


def test_without_drops_only_the_named_options():
    cmd = options.parse(["-p", "x", "-f", "a.yml", "--file=b.yml", "--verbose", "up"])
    assert cmd.without("-f", "--file") == ["-p", "x", "--verbose"]


def test_project_directory_follows_compose(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "docker-compose.yml").write_text("services: {}\n")
    cwd = str(tmp_path / "sub")
    assert options.project_directory(options.parse(["up"]), {}, cwd) == str(tmp_path)
    assert options.project_directory(options.parse(["-f", "../x/c.yml", "up"]), {}, cwd) == \
        str(tmp_path / "x")
    assert options.project_directory(options.parse(["up"]), {"COMPOSE_FILE": "/p/a.yml:b.yml"},
                                     cwd) == "/p"
    assert options.project_directory(options.parse(["--project-directory", "..", "-f", "/p/a.yml",
                                                    "up"]), {}, cwd) == str(tmp_path)
    assert options.project_directory(options.parse(["-f", "-", "up"]), {}, cwd) == cwd


def test_no_compose_file_anywhere_leaves_the_error_to_compose(tmp_path):
    assert options.project_directory(options.parse(["up"]), {}, str(tmp_path)) is None


# -- which engine, which compose ------------------------------------------------------


def test_an_engine_the_user_names_is_used_as_is():
    ours = {"DOCKER_HOST": "unix:///run/x.sock", "REMOTE_DOCKER_COMPOSE_DOCKER_HOST":
            "unix:///run/x.sock"}
    assert not uses_own_endpoint(options.parse(["up"]), {})
    assert not uses_own_endpoint(options.parse(["up"]), ours)
    assert uses_own_endpoint(options.parse(["up"]), {"DOCKER_HOST": "tcp://h:2375"})
    assert uses_own_endpoint(options.parse(["-H", "tcp://h:2375", "up"]), {})
    assert uses_own_endpoint(options.parse(["--context", "c", "up"]), {})
    assert uses_own_endpoint(options.parse(["up"]), {"REMOTE_DOCKER_HOST": "local"})


def test_find_compose_skips_our_own_shim(tmp_path):
    shims, real = tmp_path / "shims", tmp_path / "real"
    shims.mkdir()
    real.mkdir()
    (shims / "docker-compose").write_text("#!/usr/bin/python3 -IS\nimport remote_docker\n")
    (real / "docker-compose").write_text("#!/bin/sh\n")
    for f in (shims / "docker-compose", real / "docker-compose"):
        f.chmod(0o755)
    env = {"PATH": f"{shims}:{real}", "HOME": str(tmp_path)}
    assert find_compose(env) == str(real / "docker-compose")


def test_find_compose_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.setattr("remote_docker.compose.run.PLUGIN_DIRS", ())
    with pytest.raises(ComposeMissing, match="apt-get install docker-compose"):
        find_compose({"PATH": str(tmp_path)})


# -- the model ----------------------------------------------------------------------


def v1_model():
    """What docker-compose 1.29's `config` prints (short syntax, absolute sources)."""
    return {"version": "3.8", "services": {
        "app": {"build": {"context": "/w/p/app"}, "volumes": [
            "/w/p/data:/data:rw", "/w/p/conf:/etc/conf:ro", "named:/cache:rw", "/anon",
            "@/srv/shared:/shared:rw"]},
        "worker": {"image": "busybox", "volumes": ["/w/p/data:/work:rw"]},
        "plain": {"image": "busybox"},
    }, "volumes": {"named": {}}}


def test_rewrite_lists_each_directory_and_mode_once():
    m = v1_model()
    sources = model.rewrite(m)
    assert [(s.local_path, s.readonly) for s in sources] == \
        [("/w/p/data", False), ("/w/p/conf", True)]
    app = m["services"]["app"]["volumes"]
    assert app[0] == "rd-compose-mount-0:/data:rw,nocopy"
    assert app[1] == "rd-compose-mount-1:/etc/conf:ro,nocopy"
    assert app[2:4] == ["named:/cache:rw", "/anon"]
    assert app[4] == "/srv/shared:/shared:rw"  # @/path: the docker-machine's own, a bind
    assert m["services"]["worker"]["volumes"] == ["rd-compose-mount-0:/work:rw,nocopy"]


def test_name_volumes_puts_the_mounts_in_as_external_volumes():
    m = v1_model()
    model.rewrite(m)
    model.name_volumes(m, ["rd-aaa", "rd-bbb"], ["/m/aaa", "/m/bbb"])
    assert m["services"]["app"]["volumes"][:2] == ["rd-aaa:/data:rw,nocopy",
                                                   "rd-bbb:/etc/conf:ro,nocopy"]
    assert m["services"]["worker"]["volumes"] == ["rd-aaa:/work:rw,nocopy"]
    assert m["volumes"] == {"named": {}, "rd-aaa": {"external": True},
                            "rd-bbb": {"external": True}}


def test_rewrite_understands_compose_v2s_long_syntax():
    m = {"name": "p", "services": {"app": {"volumes": [
        {"type": "bind", "source": "/w/p/data", "target": "/data",
         "bind": {"create_host_path": True}},
        {"type": "bind", "source": "/w/p/ro", "target": "/ro", "read_only": True},
        {"type": "volume", "source": "named", "target": "/cache"},
        {"type": "bind", "source": "@/srv", "target": "/srv"},
    ]}}}
    sources = model.rewrite(m)
    assert [(s.local_path, s.readonly) for s in sources] == [("/w/p/data", False),
                                                            ("/w/p/ro", True)]
    vols = m["services"]["app"]["volumes"]
    assert vols[:2] == ["rd-compose-mount-0:/data:rw,nocopy", "rd-compose-mount-1:/ro:ro,nocopy"]
    assert vols[2] == {"type": "volume", "source": "named", "target": "/cache"}
    assert vols[3]["source"] == "/srv"


def test_a_model_without_binds_is_left_alone():
    m = {"services": {"a": {"image": "busybox", "volumes": ["v:/v"]}}}
    assert model.rewrite(m) == []
    assert m == {"services": {"a": {"image": "busybox", "volumes": ["v:/v"]}}}


def test_relative_sources_are_made_absolute():
    m = {"services": {"a": {"volumes": ["./d:/d"]}}}
    sources = model.rewrite(m)
    assert sources[0].local_path == os.path.abspath("./d")


def test_the_docker_shim_run_by_our_compose_still_forwards():
    from remote_docker import dockercli
    from remote_docker.cli.docker import _local_reason

    cmd = dockercli.parse(["exec", "-it", "c", "sh"])
    host = "unix:///run/user/1/remote-docker/cm-x.docker.sock"
    assert _local_reason(cmd, {"DOCKER_HOST": host,
                               "REMOTE_DOCKER_COMPOSE_DOCKER_HOST": host}) == ""
    assert "DOCKER_HOST" in _local_reason(cmd, {"DOCKER_HOST": "tcp://elsewhere:2375",
                                                "REMOTE_DOCKER_COMPOSE_DOCKER_HOST": host})


def test_a_single_file_is_bound_from_the_mount_of_its_directory(tmp_path):
    (tmp_path / "app.yml").write_text("k: v\n")
    (tmp_path / "data").mkdir()
    m = {"services": {"a": {"volumes": [f"{tmp_path}/app.yml:/etc/app.yml:ro",
                                        f"{tmp_path}/data:/data:rw",
                                        f"{tmp_path}:/all:ro"]}}}
    sources = model.rewrite(m)
    assert [(s.local_path, s.readonly) for s in sources] == \
        [(str(tmp_path), True), (f"{tmp_path}/data", False)]
    model.name_volumes(m, ["rd-dir", "rd-data"], ["/m/dir", "/m/data"])
    assert m["services"]["a"]["volumes"] == ["/m/dir/app.yml:/etc/app.yml:ro",
                                             "rd-data:/data:rw,nocopy", "rd-dir:/all:ro,nocopy"]
    assert m["volumes"] == {"rd-dir": {"external": True}, "rd-data": {"external": True}}


def test_a_mount_used_only_for_files_is_not_declared_as_a_volume(tmp_path):
    (tmp_path / "f").write_text("x")
    m = {"services": {"a": {"volumes": [f"{tmp_path}/f:/f:rw"]}}}
    model.rewrite(m)
    model.name_volumes(m, ["rd-dir"], ["/m/dir"])
    assert m == {"services": {"a": {"volumes": ["/m/dir/f:/f:rw"]}}}


def test_secret_and_config_files_are_served_from_the_workstation(tmp_path):
    (tmp_path / "pw.txt").write_text("s3cret")
    (tmp_path / "app.conf").write_text("k=v")
    m = {"services": {"a": {"secrets": ["pw", {"source": "pw", "target": "other"},
                                        {"source": "pw", "target": "/etc/pw"}, "ext"]}},
         "secrets": {"pw": {"file": f"{tmp_path}/pw.txt"}, "ext": {"external": True}},
         "configs": {"c": {"file": f"{tmp_path}/app.conf"},
                     "gone": {"file": f"{tmp_path}/missing.conf"}}}
    sources = model.rewrite(m)
    assert [(s.local_path, s.readonly) for s in sources] == [(str(tmp_path), True)]
    model.name_volumes(m, ["rd-dir"], ["/m/dir"])
    assert m["services"]["a"] == {"secrets": ["ext"], "volumes": [
        "/m/dir/pw.txt:/run/secrets/pw:ro", "/m/dir/pw.txt:/run/secrets/other:ro",
        "/m/dir/pw.txt:/etc/pw:ro"]}
    assert m["secrets"]["pw"] == {"file": f"{tmp_path}/pw.txt"}  # still there for compose
    assert m["configs"] == {"c": {"file": "/m/dir/app.conf"},
                            "gone": {"file": f"{tmp_path}/missing.conf"}}  # docker's to refuse
    assert "volumes" not in m
