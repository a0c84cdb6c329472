"""The second lane for writes: which request takes which lane, what waits for what, and how
the workstation's relay merges the lanes into one sftp-server and routes the replies back.

Real pipes and threads; the test plays sshfs, the connection and sftp-server. "Not sent
yet" is checked by an empty pipe after a short wait, "sent" by reading it.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import threading

import pytest

from remote_docker.mounts import sftp_relay, stat_cache as sc

U32 = struct.Struct(">I")
QUIET = 0.3  # seconds a pipe must stay empty to count as "nothing sent"


def s(data: bytes) -> bytes:
    return U32.pack(len(data)) + data


def frame(kind: int, request_id: int, body: bytes = b"") -> bytes:
    payload = bytes([kind]) + U32.pack(request_id) + body
    return U32.pack(len(payload)) + payload


def write(request_id: int, offset: int, size: int = 4096) -> bytes:
    return frame(sc.FXP_WRITE, request_id, s(b"h1") + struct.pack(">Q", offset)
                 + s(bytes([request_id % 256]) * size))


def ok(request_id: int) -> bytes:
    return sc.status_reply(request_id, sc.FX_OK, b"")


def read_frame(fd: int) -> bytes:
    ready, _, _ = select.select([fd], [], [], 10)
    assert ready, "nothing came"
    head = sc.read_exact(fd, 4)
    return head + sc.read_exact(fd, U32.unpack(head)[0])


def request_id(data: bytes) -> int:
    return U32.unpack_from(data, 5)[0]


def quiet(fd: int) -> bool:
    return not select.select([fd], [], [], QUIET)[0]


class ProxyRig:
    """A Proxy with its lane taken; ``sshfs``/``link``/``lane`` ends to play the others."""

    def __init__(self) -> None:
        self.from_sshfs_r, self.sshfs_w = os.pipe()  # sshfs's requests, into the proxy
        self.sshfs_r, self.to_sshfs_w = os.pipe()  # replies, out to sshfs
        self.link_r, self.to_link_w = os.pipe()
        self.from_link_r, self.link_w = os.pipe()
        self.lane_r, self.to_lane_w = os.pipe()
        self.from_lane_r, self.lane_w = os.pipe()
        self.proxy = sc.Proxy(sc.StatCache(), self.to_sshfs_w, self.from_sshfs_r,
                              self.from_link_r, self.to_link_w)
        for direction in (self.proxy.requests, self.proxy.replies):
            threading.Thread(target=sc._guarded, args=(direction, None), daemon=True).start()
        self.proxy.take_lane(self.from_lane_r, self.to_lane_w, None)

    def close(self) -> None:
        for fd in (self.sshfs_w, self.link_w, self.lane_w):
            os.close(fd)


@pytest.fixture
def rig():
    made = ProxyRig()
    yield made
    made.close()


def test_writes_take_the_lane_of_their_stripe(rig: ProxyRig) -> None:
    os.write(rig.sshfs_w, write(10, sc.STRIPE) + write(11, 0) + write(12, 3 * sc.STRIPE + 8))
    assert read_frame(rig.lane_r) == write(10, sc.STRIPE)  # byte for byte, data spliced
    assert request_id(read_frame(rig.link_r)) == 11
    assert request_id(read_frame(rig.lane_r)) == 12
    os.write(rig.lane_w, ok(10) + ok(12))
    os.write(rig.link_w, ok(11))
    assert sorted(request_id(read_frame(rig.sshfs_r)) for _ in range(3)) == [10, 11, 12]


def test_other_requests_wait_until_the_lane_is_done(rig: ProxyRig) -> None:
    lstat = frame(sc.FXP_LSTAT, 21, s(b"/w/f"))
    os.write(rig.sshfs_w, write(20, sc.STRIPE) + lstat)
    assert request_id(read_frame(rig.lane_r)) == 20
    assert quiet(rig.link_r)  # the lstat must see the write done
    os.write(rig.lane_w, ok(20))
    assert read_frame(rig.link_r) == lstat
    assert request_id(read_frame(rig.sshfs_r)) == 20


def test_lane_writes_wait_for_other_requests_in_flight(rig: ProxyRig) -> None:
    truncate = frame(sc.FXP_EXTENDED, 30, s(b"anything") + b"x")  # any change at all
    os.write(rig.sshfs_w, truncate + write(31, sc.STRIPE))
    assert read_frame(rig.link_r) == truncate
    assert quiet(rig.lane_r)  # must not overtake it
    os.write(rig.link_w, ok(30))
    assert request_id(read_frame(rig.lane_r)) == 31


def test_a_write_across_a_stripe_end_is_ordered_like_any_request(rig: ProxyRig) -> None:
    across = write(41, sc.STRIPE * 2 - 2048, 4096)
    os.write(rig.sshfs_w, write(40, sc.STRIPE) + across + write(42, sc.STRIPE + 4096))
    assert request_id(read_frame(rig.lane_r)) == 40
    assert quiet(rig.link_r)
    os.write(rig.lane_w, ok(40))
    assert read_frame(rig.link_r) == across
    assert quiet(rig.lane_r)  # and the next lane write waits for it in turn
    os.write(rig.link_w, ok(41))
    assert request_id(read_frame(rig.lane_r)) == 42


def test_a_lane_reply_forgets_what_the_cache_learnt_meanwhile(rig: ProxyRig) -> None:
    os.write(rig.sshfs_w, write(50, sc.STRIPE))
    read_frame(rig.lane_r)
    generation = rig.proxy.cache.generation
    os.write(rig.lane_w, ok(50))
    read_frame(rig.sshfs_r)
    assert rig.proxy.cache.generation > generation


# -- the workstation's relay --------------------------------------------------------


class RelayRig:
    """A Relay whose client (sshfs's lane) and write lane are sockets; the test is sftp-server."""

    def __init__(self, root: str) -> None:
        self.client, client = socket.socketpair()
        self.lane, lane = socket.socketpair()
        self.server_r, to_server_w = os.pipe()
        from_server_r, self.server_w = os.pipe()
        self.relay = sftp_relay.Relay(root.encode(), False, client.fileno(), client.fileno(),
                                      to_server_w, from_server_r, lane.fileno())
        self.keep = (client, lane)
        self.thread = threading.Thread(target=self.relay.run, daemon=True)
        self.thread.start()


def test_the_relay_merges_the_lanes_and_routes_replies_back(tmp_path) -> None:
    rig = RelayRig(str(tmp_path))
    rig.lane.sendall(write(5, sc.STRIPE))
    assert read_frame(rig.server_r) == write(5, sc.STRIPE)
    lstat = frame(sc.FXP_LSTAT, 6, s(b"f"))
    rig.client.sendall(lstat)
    assert read_frame(rig.server_r) == lstat
    os.write(rig.server_w, ok(6) + ok(5))  # one read: routed frame by frame
    assert read_frame(rig.lane.fileno()) == ok(5)
    assert read_frame(rig.client.fileno()) == ok(6)
    os.write(rig.server_w, ok(7))
    assert read_frame(rig.client.fileno()) == ok(7)  # not a lane id: the first lane
    assert not rig.relay.lane_ids


def test_anything_but_a_write_on_the_lane_ends_the_relay(tmp_path) -> None:
    rig = RelayRig(str(tmp_path))
    rig.lane.sendall(frame(sc.FXP_LSTAT, 8, s(b"f")))
    rig.client.settimeout(10)
    assert rig.client.recv(1) == b""  # sshfs's stream is cut: the mount ends
    assert "write lane" in (rig.relay.error or "")
    os.close(rig.server_w)  # sftp-server's end, as it exits on its EOF
    rig.thread.join(10)
    assert not rig.thread.is_alive()
