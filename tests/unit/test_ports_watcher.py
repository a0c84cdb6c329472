"""The watcher's bookkeeping, with the master replaced by a loud fake that records requests."""

import pytest

from remote_docker.config import parse_machine
from remote_docker.ports import watcher as watcher_module
from remote_docker.ports.state import LIVE, TAKEN, Forward
from remote_docker.ports.watcher import Watcher
from remote_docker.transport.mux import MuxError


@pytest.fixture
def watcher(tmp_path, monkeypatch):
    w = Watcher(parse_machine("dm@example"), {"XDG_STATE_HOME": str(tmp_path),
                                              "XDG_RUNTIME_DIR": str(tmp_path)})
    w.requests = []
    w.taken_here = set()
    w.refused = set()

    def mux(fwd, close):
        w.requests.append(("cancel" if close else "open", fwd.port, fwd.connect_host))
        if not close and fwd.port in w.refused:
            raise MuxError("the ssh master refused: Port forwarding failed")

    monkeypatch.setattr(w, "_mux", mux)
    monkeypatch.setattr(watcher_module, "port_free", lambda port: port not in w.taken_here)
    return w


def fwd(port, host="127.0.0.1", cid="c1", status=LIVE):
    return Forward(port, host, port, cid, "web", status)


def test_apply_cancels_before_it_opens(watcher) -> None:
    watcher.forwards = [fwd(8080, cid="old")]
    watcher.apply([fwd(8080, host="127.0.0.2", cid="new"), fwd(9000)])
    assert watcher.requests == [("cancel", 8080, "127.0.0.1"), ("open", 8080, "127.0.0.2"),
                                ("open", 9000, "127.0.0.1")]
    assert [(f.port, f.container, f.status) for f in watcher.forwards] == [
        (8080, "new", LIVE), (9000, "c1", LIVE)]


def test_same_forward_again_is_reopened_without_a_free_port_check(watcher) -> None:
    watcher.forwards = [fwd(8080, cid="old")]  # a killed watcher's: our own listener holds it
    watcher.taken_here = {8080}
    watcher.apply([fwd(8080, cid="new")])
    assert watcher.requests == [("open", 8080, "127.0.0.1")]  # the master answers a duplicate OK
    assert [(f.container, f.status) for f in watcher.forwards] == [("new", LIVE)]


def test_taken_or_refused_ports_are_recorded_not_fatal(watcher) -> None:
    watcher.taken_here, watcher.refused = {8080}, {9000}
    watcher.apply([fwd(8080), fwd(9000)])
    assert watcher.requests == [("open", 9000, "127.0.0.1")]
    assert [(f.port, f.status) for f in watcher.forwards] == [(8080, TAKEN), (9000, TAKEN)]
    watcher.remove_container("c1")
    assert watcher.forwards == [] and len(watcher.requests) == 1  # nothing live to cancel


def test_die_cancels_only_that_containers_forwards(watcher) -> None:
    watcher.apply([fwd(8080, cid="aaaaaaaaaaaa"), fwd(9000, cid="bbbbbbbbbbbb")])
    watcher.on_event("aaaaaaaaaaaa0123456789 die")
    assert watcher.requests[-1] == ("cancel", 8080, "127.0.0.1")
    assert [f.port for f in watcher.forwards] == [9000]
    watcher.on_event("bbbbbbbbbbbb0123456789 exec_start: sh")  # not ours to act on
    assert [f.port for f in watcher.forwards] == [9000]
