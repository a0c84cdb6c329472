"""The workstation user's own network namespace, so published ports are tested honestly.

On the bed the docker-machine and the workstation share a kernel: a port
docker publishes on the machine is on ws's localhost too, and a port-forward
test would pass without any forward.  In the namespace ws has a loopback of
its own (only 127.0.0.1), and every other 127.x address is routed over a
veth pair to the machine's loopback, so `ssh dm@127.0.0.2` and the classic
mounts' 127.0.0.3 keep working unchanged.  Loopback destinations on a wire
are martians to the kernel unless `route_localnet` is set on both ends; it is
set on the pair's two devices only, never machine-wide.

Commands enter it with `nsenter --net` (not `ip netns exec`, which also
unshares the mount namespace and would hide ws's FUSE mounts from the rest).
"""

from __future__ import annotations

from remote_docker.testbed import layout
from remote_docker.testbed.process import run

_NS = ["ip", "-n", layout.WS_NETNS]


def _ip(*args: str, check: bool = True) -> str:
    return run(["ip", *args], check=check).stdout.decode()


def _in_ns(*args: str, check: bool = True) -> str:
    return run([*_NS, *args], check=check).stdout.decode()


def ok() -> bool:
    """The namespace exists with its loopback private and 127/8 routed to the machine."""
    if not layout.WS_NETNS_PATH.exists():
        return False
    host_side = _ip("-o", "addr", "show", "dev", layout.WS_VETH_HOST, check=False)
    if f"{layout.WS_VETH_HOST_ADDRESS}/" not in host_side:
        return False
    local = _in_ns("route", "show", "table", "local", check=False)
    routed = _in_ns("route", "show", "127.0.0.0/8", check=False)
    return "127.0.0.0/8" not in local and f"via {layout.WS_VETH_HOST_ADDRESS}" in routed


def _sysctl_localnet(device: str, in_ns: bool) -> None:
    argv = ["sysctl", "-q", "-w", f"net.ipv4.conf.{device}.route_localnet=1"]
    run([layout.NSENTER, f"--net={layout.WS_NETNS_PATH}", "--", *argv] if in_ns else argv)


def ensure() -> str:
    """Make the namespace and its veth pair unless they are already right."""
    if ok():
        return "ok"
    stop()
    run(["ip", "netns", "add", layout.WS_NETNS])
    run(["ip", "link", "add", layout.WS_VETH_HOST, "type", "veth", "peer", "name",
         layout.WS_VETH_NS, "netns", layout.WS_NETNS])
    prefix = f"/{layout.WS_VETH_PREFIX}"
    _ip("addr", "add", layout.WS_VETH_HOST_ADDRESS + prefix, "dev", layout.WS_VETH_HOST)
    _ip("link", "set", layout.WS_VETH_HOST, "up")
    _sysctl_localnet(layout.WS_VETH_HOST, in_ns=False)
    _in_ns("link", "set", "lo", "up")
    _in_ns("addr", "add", layout.WS_VETH_NS_ADDRESS + prefix, "dev", layout.WS_VETH_NS)
    _in_ns("link", "set", layout.WS_VETH_NS, "up")
    _sysctl_localnet(layout.WS_VETH_NS, in_ns=True)
    _in_ns("route", "del", "table", "local", "local", "127.0.0.0/8", "dev", "lo")
    _in_ns("route", "add", "127.0.0.0/8", "via", layout.WS_VETH_HOST_ADDRESS,
           "src", layout.WS_VETH_NS_ADDRESS)
    return (f"made {layout.WS_NETNS} ({layout.WS_VETH_NS_ADDRESS} -> "
            f"{layout.WS_VETH_HOST_ADDRESS}, 127/8 but 127.0.0.1 via the veth)")


def stop() -> str:
    """Remove the namespace and the pair (deleting either end deletes both)."""
    done = []
    if layout.WS_NETNS_PATH.exists():
        run(["ip", "netns", "del", layout.WS_NETNS], check=False)
        done.append(f"removed netns {layout.WS_NETNS}")
    if run(["ip", "link", "show", layout.WS_VETH_HOST], check=False).returncode == 0:
        run(["ip", "link", "del", layout.WS_VETH_HOST], check=False)
    return ", ".join(done)

