"""The per-engine memory of image layers: a speed-up that must never be wrong."""

from __future__ import annotations

from remote_docker import layercache

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64


def test_round_trip_per_engine(tmp_path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    layercache.save("dm@host:22", {A: ["sha256:l1"]}, env)
    assert layercache.load("dm@host:22", env) == {A: ["sha256:l1"]}
    assert layercache.load("other", env) == {}
    layercache.save("dm@host:22", {B: []}, env)  # replaced, not merged
    assert layercache.load("dm@host:22", env) == {B: []}
    assert [p.name for p in (tmp_path / "remote-docker").iterdir()] == ["layers-dm_host_22.json"]


def test_unusable_files_are_ignored(tmp_path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    layercache.save("e", {}, env)
    path = tmp_path / "remote-docker" / "layers-e.json"
    for text in ("{torn", "[1, 2]", '{"not-an-id": []}', '{"%s": "x"}' % A):
        path.write_text(text)
        assert layercache.load("e", env) == {}
    path.write_text('{"%s": ["sha256:l"], "junk": 1}' % A)
    assert layercache.load("e", env) == {A: ["sha256:l"]}
