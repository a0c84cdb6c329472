"""The mount registry: records, locks as liveness, and the hot-path stale check."""

import os
import subprocess
import sys
import time

import pytest

from remote_docker.mounts import registry, statedir
from remote_docker.mounts.registry import Record


@pytest.fixture
def env(tmp_path) -> dict:
    return {"XDG_STATE_HOME": str(tmp_path), "HOME": str(tmp_path)}


def record(uuid: str = "u1") -> Record:
    return Record(uuid=uuid, local_dir="/w", machine="dm@h", owner="ws@box")


def holder(path: str) -> subprocess.Popen:
    """Another process holding the lock, as a keeper does; it lets go when killed."""
    code = ("import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, path], stdout=subprocess.PIPE)
    assert proc.stdout.readline() == b"locked\n"
    return proc


def test_the_registry_lives_in_the_xdg_state_dir(env) -> None:
    assert statedir.registry_dir(env) == os.path.join(env["XDG_STATE_HOME"], "remote-docker",
                                                      "mounts")
    assert statedir.registry_dir({"HOME": "/h"}) == "/h/.local/state/remote-docker/mounts"


def test_a_record_is_locked_before_it_is_visible_and_round_trips(env) -> None:
    fd = registry.create(record(), env)
    try:
        assert registry.load("u1", env).local_dir == "/w"
        assert registry.is_held("u1", env)
        assert registry.claim("u1", env) is None
        assert [r.uuid for r in registry.live_mounts(env)] == ["u1"]
        assert not statedir.stale_hint(env)
    finally:
        os.close(fd)
    assert not registry.is_held("u1", env)
    assert statedir.stale_hint(env)
    assert registry.live_mounts(env) == []


def test_a_dead_holder_makes_the_record_stale(env) -> None:
    os.close(registry.create(record(), env))
    proc = holder(os.path.join(statedir.registry_dir(env), "u1.lock"))
    try:
        assert not statedir.stale_hint(env)
    finally:
        proc.kill()
        proc.wait()
    assert statedir.stale_hint(env)
    claimed = registry.claim("u1", env)
    assert claimed is not None
    registry.remove("u1", env)
    os.close(claimed)
    assert os.listdir(statedir.registry_dir(env)) == []
    assert not statedir.stale_hint(env)


def test_a_deferred_record_is_not_stale_for_a_while(env) -> None:
    os.close(registry.create(record(), env))
    registry.defer("u1", env)
    assert not statedir.stale_hint(env)
    old = time.time() - statedir.RETRY_AFTER - 1
    os.utime(os.path.join(statedir.registry_dir(env), "u1.defer"), (old, old))
    assert statedir.stale_hint(env)


def test_no_registry_is_nothing_stale(env) -> None:
    assert not statedir.stale_hint(env)
    assert registry.uuids(env) == []


def test_updates_are_whole(env) -> None:
    os.close(registry.create(record(), env))
    r = registry.load("u1", env)
    r.container, r.keeper = "abc", 42
    registry.save(r, env)
    again = registry.load("u1", env)
    assert (again.container, again.keeper, again.volume) == ("abc", 42, "rd-u1")
    assert [n for n in os.listdir(statedir.registry_dir(env)) if n.endswith(".tmp")] == []


def test_age_reads_like_docker_ps() -> None:
    assert [registry.format_age(s) for s in (5, 90, 7200, 200000)] == ["5s", "1m", "2h", "2d"]


def test_the_listing_line_says_how_the_mount_is_served() -> None:
    record = registry.Record(uuid="u1", local_dir="/home/me/src", machine="dm@host",
                             owner="me@ws", readonly=True, stat_cache="on", kept=True)
    line = str(record)
    assert line.startswith("rd-u1  /home/me/src (ro) (stat cache)  on dm@host  kept  ")
    assert "(stat cache)" not in str(registry.Record(uuid="u2", local_dir="/d", machine="m",
                                                     owner="o", stat_cache="off"))
