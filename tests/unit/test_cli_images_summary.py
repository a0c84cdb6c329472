"""The summary line of a push or pull: what a person reads and tests parse."""

from types import SimpleNamespace

from remote_docker.cli.images import summary


def _outcome(**kw):
    base = dict(name="app:2", noop=False, image_id="sha256:" + "3f6c10341949" + "0" * 52,
                layers=3, layers_sent=1, bytes_sent=1064960, seconds=1.46, resumed=0)
    return SimpleNamespace(**{**base, **kw})


def test_a_push_says_layers_bytes_in_docker_units_and_time() -> None:
    assert summary("push", _outcome()) == (
        "app:2: pushed to the docker-machine, 1 of 3 layers sent (2 already there), "
        "1064960 bytes (1.065MB) in 1.5 s")


def test_a_small_pull_is_not_shown_as_zero() -> None:
    line = summary("pull", _outcome(bytes_sent=22185, layers_sent=2))
    assert "to the workstation" in line and "22185 bytes (22.18kB)" in line


def test_an_image_already_there_sends_nothing() -> None:
    assert summary("push", _outcome(noop=True)) == (
        "app:2: already on the docker-machine (3f6c10341949), sent 0 bytes")


def test_a_resumed_push_says_what_it_did_not_send_again() -> None:
    assert summary("push", _outcome(resumed=33021952)).endswith(
        "in 1.5 s, resumed after the 33021952 bytes (33.02MB) a cut push had sent")
