"""What a running container publishes, from ``docker inspect``, as forwards to make.

Docker has already parsed every spelling (``-p``, ``--publish`` long form,
ranges, ``-P``'s random ports, compose's ``ports:``) by the time a container
runs: its ``NetworkSettings.Ports`` is the truth, so we read that rather
than parse argv again.
"""

from __future__ import annotations

from remote_docker.ports.state import LIVE, Forward

ANY_ADDRESS = ("", "0.0.0.0", "::")


def connect_host(host_ip: str) -> str:
    """Where, on the docker-machine, the published port answers: its loopback
    for a wildcard binding, else the address docker bound."""
    if host_ip in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host_ip == "::":
        return "::1"
    return host_ip


def of_container(info: dict) -> tuple[list[Forward], list[str]]:
    """The TCP forwards a container wants (one per host port) and its ports we cannot carry.

    An IPv4 and an IPv6 binding of the same host port are one forward, the
    IPv4 one preferred.  UDP and SCTP are returned as ``"53/udp"`` for a
    warning: ssh forwards carry TCP only.
    """
    cid = str(info.get("Id", ""))[:12]
    name = str(info.get("Name", "")).lstrip("/")
    ports = (info.get("NetworkSettings") or {}).get("Ports") or {}
    chosen: dict[int, Forward] = {}
    skipped: list[str] = []
    for key, bound in sorted(ports.items()):
        _, _, proto = key.partition("/")
        for binding in bound or []:
            host_port = str(binding.get("HostPort", ""))
            if not host_port.isdigit():
                continue
            if proto not in ("tcp", ""):
                skipped.append(f"{host_port}/{proto}")
                continue
            host_ip = str(binding.get("HostIp", ""))
            port = int(host_port)
            if port in chosen and ":" in host_ip:
                continue  # the IPv4 twin is enough
            chosen[port] = Forward(port, connect_host(host_ip), port, cid, name, LIVE)
    return [chosen[p] for p in sorted(chosen)], sorted(set(skipped))
