"""A TCP proxy on loopback that adds round-trip time, because `tc netem` is not in this kernel.

Every chunk read from one side is delivered to the other at its arrival time
plus half the RTT, so both directions together add one RTT. Chunks are
scheduled, not slept on one after another: a reader never waits for the
delay, so bytes in flight pile up as on a real long link and throughput stays
what the ends can do (up to ``MAX_IN_FLIGHT`` bytes per direction, then the
reader pauses, as a full TCP window would). Order is kept because each
direction has one queue and one writer.

Run by the bench as a child process (``delayed``), so the timing code and the
proxy do not share one interpreter's lock. The child exits when its stdin
closes (the bench ended, however it ended) or after ``--lifetime`` seconds,
whichever comes first, so it cannot outlive a bench run. It listens only on
loopback addresses and connects only to loopback addresses.

    python3 bench/delay_proxy.py --target 127.0.0.2:22 --rtt-ms 20
    # prints "listening 127.0.0.1 PORT", then proxies until stdin closes
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import subprocess
import sys
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

CHUNK = 256 << 10
MAX_IN_FLIGHT = 32 << 20  # per direction: more than any ssh channel window we meet
DEFAULT_LIFETIME = 900.0
START_TIMEOUT = 10.0


class _DelayedPipe:
    """One direction of one connection: read, stamp, and deliver each chunk when due."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 delay: float) -> None:
        self.reader, self.writer, self.delay = reader, writer, delay
        self.queue: deque[tuple[float, bytes]] = deque()  # (due, data); b"" is EOF
        self.queued_bytes = 0
        self.ready = asyncio.Event()  # the queue got something
        self.room = asyncio.Event()  # the queue fell below MAX_IN_FLIGHT
        self.room.set()
        self.broken = False  # the receiving side is gone: drop what still arrives

    async def read_side(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                await self.room.wait()
                data = await self.reader.read(CHUNK)
                self._put(loop.time() + self.delay, data)
                if not data:
                    return
        except (ConnectionError, OSError):
            self._put(loop.time() + self.delay, b"")

    def _put(self, due: float, data: bytes) -> None:
        if self.broken:
            return
        self.queue.append((due, data))
        self.queued_bytes += len(data)
        if self.queued_bytes >= MAX_IN_FLIGHT:
            self.room.clear()
        self.ready.set()

    async def write_side(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                while not self.queue:
                    self.ready.clear()
                    await self.ready.wait()
                due, data = self.queue[0]
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                self.queue.popleft()
                self.queued_bytes -= len(data)
                if self.queued_bytes < MAX_IN_FLIGHT:
                    self.room.set()
                if not data:
                    if self.writer.can_write_eof():
                        self.writer.write_eof()  # half-close, as the sender did
                    return
                self.writer.write(data)
                await self.writer.drain()
        except (ConnectionError, OSError):
            self.broken = True
            self.queue.clear()
            self.room.set()  # the reader must not wait for room that never comes


async def _serve_one(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter,
                     target: tuple[str, int], delay: float) -> None:
    try:
        server_reader, server_writer = await asyncio.open_connection(*target)
    except OSError:
        client_writer.close()
        return
    pipes = [_DelayedPipe(client_reader, server_writer, delay),
             _DelayedPipe(server_reader, client_writer, delay)]
    tasks = [asyncio.create_task(step()) for pipe in pipes
             for step in (pipe.read_side, pipe.write_side)]
    try:
        await asyncio.gather(*tasks)
    finally:
        for writer in (client_writer, server_writer):
            writer.close()


async def _stdin_closed() -> None:
    """Returns when our stdin reaches EOF: the bench that started us is gone."""

    def drain() -> None:
        while os.read(0, 4096):
            pass

    await asyncio.get_running_loop().run_in_executor(None, drain)


async def serve(listen: tuple[str, int], target: tuple[str, int], rtt: float,
                lifetime: float) -> None:
    delay = rtt / 2

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _serve_one(reader, writer, target, delay)

    server = await asyncio.start_server(handle, *listen, reuse_address=True)
    host, port = server.sockets[0].getsockname()[:2]
    print(f"listening {host} {port}", flush=True)
    watcher = asyncio.create_task(_stdin_closed())
    await asyncio.wait([watcher], timeout=lifetime)
    # Out at once, connections and all: the stdin reader thread cannot be cancelled,
    # and waiting for open connections to close could outlast the lifetime.
    os._exit(0)


def loopback(address: str) -> tuple[str, int]:
    """``HOST:PORT`` parsed; SystemExit unless HOST is a loopback address."""
    host, _, port = address.rpartition(":")
    if not ipaddress.ip_address(host.strip("[]")).is_loopback:
        raise SystemExit(f"delay_proxy: {host} is not a loopback address")
    return host.strip("[]"), int(port)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", default="127.0.0.1:0", help="loopback HOST:PORT (0: any port)")
    parser.add_argument("--target", required=True, help="loopback HOST:PORT to forward to")
    parser.add_argument("--rtt-ms", type=float, required=True, help="round-trip time to add")
    parser.add_argument("--lifetime", type=float, default=DEFAULT_LIFETIME,
                        help="exit after this many seconds at the latest")
    args = parser.parse_args(argv)
    asyncio.run(serve(loopback(args.listen), loopback(args.target), args.rtt_ms / 1000,
                      args.lifetime))


# -- used by the bench ----------------------------------------------------------


@dataclass
class Proxy:
    host: str
    port: int
    rtt: float
    pid: int


@contextmanager
def delayed(target: tuple[str, int], rtt_ms: float,
            lifetime: float = DEFAULT_LIFETIME) -> Iterator[Proxy]:
    """A delay proxy to target for the duration of the with block, on 127.0.0.1:<free port>."""
    child = subprocess.Popen(
        [sys.executable, "-I", __file__, "--target", f"{target[0]}:{target[1]}",
         "--rtt-ms", str(rtt_ms), "--lifetime", str(lifetime)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = _first_line(child)
        _, host, port = line.split()
        yield Proxy(host, int(port), rtt_ms / 1000, child.pid)
    finally:
        child.stdin.close()  # the child's cue to exit
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        child.stdout.close()


def ssh_round_trip(host: str, port: int, timeout: float = 10.0) -> float:
    """Seconds of one clean round trip with an sshd: our version line out, its KEXINIT back.

    sshd sends KEXINIT only after it has read the client's version line, so
    this is exactly one trip there and back, with no crypto on either side:
    through the proxy it shows the added RTT plus loopback and scheduling.
    """
    import socket

    with socket.create_connection((host, port), timeout=timeout) as sock:
        banner = b""
        while b"\n" not in banner:
            data = sock.recv(256)
            if not data:
                raise ConnectionError(f"{host}:{port} closed before its version line")
            banner += data
        start = time.perf_counter()
        sock.sendall(b"SSH-2.0-remote-docker-bench\r\n")
        if not sock.recv(1):
            raise ConnectionError(f"{host}:{port} closed instead of sending KEXINIT")
        return time.perf_counter() - start


def _first_line(child: subprocess.Popen) -> str:
    """The child's "listening HOST PORT" line, or RuntimeError if it does not come in time."""
    import selectors

    deadline = time.monotonic() + START_TIMEOUT
    with selectors.DefaultSelector() as selector:
        selector.register(child.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(timeout=deadline - time.monotonic()):
                line = child.stdout.readline()
                if line.startswith("listening "):
                    return line
                break
    raise RuntimeError(f"delay proxy did not start (exit status {child.poll()})")


if __name__ == "__main__":
    main()
