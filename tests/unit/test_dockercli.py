"""docker's argv grammar: subcommands, value options, stdin and TTY decisions."""

import pytest

from remote_docker import dockercli as d


def test_container_run_is_run_and_options_stop_at_image() -> None:
    c = d.parse(["container", "run", "-it", "--rm", "-e", "A=1", "busybox", "sh", "-t"])
    assert c.command == "run"
    assert [o.name for o in c.options] == ["-i", "-t", "--rm", "-e"]
    assert c.positionals == [(4, "busybox")]
    assert c.args[c.rest_index:] == ["sh", "-t"]
    assert d.wants_tty(c) and d.reads_stdin(c)


@pytest.mark.parametrize("argv, value", [
    (["run", "-eFOO=1", "img"], "FOO=1"),
    (["run", "-e=FOO", "img"], "FOO"),
    (["run", "--env=FOO", "img"], "FOO"),
    (["run", "-ite", "FOO", "img"], "FOO"),
])
def test_shorthand_values(argv: list[str], value: str) -> None:
    assert d.parse(argv).values("-e", "--env") == [value]


@pytest.mark.parametrize("argv, stdin", [
    (["ps"], False), (["images"], False), (["run", "img"], False), (["run", "-i", "img"], True),
    (["run", "-a", "stdin", "img"], True), (["exec", "-i", "c", "cat"], True),
    (["load"], True), (["load", "-i", "f"], False), (["import", "-"], True),
    (["build", "-"], True), (["build", "-f", "-", "."], True), (["build", "."], False),
    (["login", "--password-stdin"], True), (["attach", "c"], True),
    (["attach", "--no-stdin", "c"], False), (["compose", "up"], True), (["some-plugin"], True),
    ([], False), (["--help"], False), (["secret", "create", "s", "-"], True),
])
def test_reads_stdin(argv: list[str], stdin: bool) -> None:
    assert d.reads_stdin(d.parse(argv)) is stdin


def test_tty_false_is_not_a_tty() -> None:
    assert not d.wants_tty(d.parse(["run", "--tty=false", "img"]))


def test_explicit_endpoint() -> None:
    assert d.parse(["-H", "tcp://x", "ps"]).explicit_endpoint
    assert d.parse(["--context=foo", "ps"]).explicit_endpoint
    assert not d.parse(["--debug", "ps"]).explicit_endpoint
    assert d.parse(["-H", "tcp://x", "ps"]).command == "ps"


def test_image_positional_after_value_option() -> None:
    c = d.parse(["run", "--name", "busybox", "alpine", "--name"])
    assert c.positionals == [(2, "alpine")]


@pytest.mark.parametrize("name", [
    "busybox", "busybox:latest", "my_app.dir", "library/debian:stable-slim",
    "registry.example.com:5000/team/app:v1.2_rc-3", "localhost/app", "[::1]:5000/app",
    "1723688d4e41", "sha256:" + "a" * 64, "app@sha256:" + "0" * 64, "Registry.Example/app",
])
def test_image_references_docker_accepts(name: str) -> None:
    assert d.image_reference_problem(name) is None


@pytest.mark.parametrize("name, problem", [
    ("bad name!", "invalid reference format"),
    ("x:", "invalid reference format"),
    ("a//b", "invalid reference format"),
    ("-q", "invalid reference format"),
    ("app@sha256:abc", "invalid reference format"),
    ("Busybox", "invalid reference format: repository name must be lowercase"),
    ("Team/app", "invalid reference format: repository name must be lowercase"),
    ("a" * 256, "invalid reference format: repository name must not be more than 255 "
                "characters"),
])
def test_image_references_docker_refuses(name: str, problem: str) -> None:
    assert d.image_reference_problem(name) == problem
