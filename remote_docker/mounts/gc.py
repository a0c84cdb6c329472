"""``remote-docker gc``: remove every reverse mount whose keeper is gone, on both sides.

After a ``kill -9`` (of a keeper, of ``docker-mount``, of the whole session)
what can be left is: records on the workstation, and on the docker-machine
a volume labelled with our owner, a mountpoint directory under our mounts
dir, an sshfs process.  ``collect`` claims the stale records (a keeper's
lock cannot be claimed while it lives), then sweeps the docker-machine of
everything of ours not on the live list, in one script.

``stale_hint`` is for the ``docker`` shim's hot path, which starts
``remote-docker gc --quiet`` detached when it says yes; importing this
module costs nothing beyond ``statedir`` (no ``typing``: ~12 ms).
"""

from __future__ import annotations

import os

from remote_docker.mounts.statedir import stale_hint

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing is the cost avoided above
if TYPE_CHECKING:
    from remote_docker.transport.openssh import ControlMaster

__all__ = ["collect", "stale_hint"]

TEMP_LOCK_AGE = 60.0  # a maker that died between making and renaming its lock file


def collect(master: "ControlMaster", quiet: bool = False) -> list[str]:
    """Remove every stale mount of ours on ``master``'s machine; what was removed, one per line.

    Records of other docker-machines are left alone (they are cleaned when
    that machine is the configured one).  ``quiet`` only affects the
    warnings about what must wait (a volume still used by a container).
    """
    import sys

    from remote_docker.mounts import registry, remote
    from remote_docker.mounts.reverse import owner

    env = master.env
    claimed: dict[str, int] = {}
    live: list[str] = []
    for uuid in registry.uuids(env):
        record = registry.load(uuid, env)
        fd = registry.claim(uuid, env)
        if fd is None:
            live.append(uuid)  # held by a keeper, or being made, or just removed
        elif record is not None and record.machine != master.machine.spec:
            os.close(fd)
            live.append(uuid)
        else:
            claimed[uuid] = fd
    try:
        master.ensure()
        status, out = master.capture(remote.sweep(owner()), "\n".join(live).encode() + b"\n")
        if status != 0:
            raise remote.explain(status, master.machine.spec)
        pairs = (line.split(" ", 1) for line in out.decode().splitlines() if " " in line)
        results = {uuid: code for code, uuid in pairs}
        removed = _settle(master, claimed, results, quiet, sys.stderr)
        from remote_docker.mounts import classic

        held = set(live)
        classic.forget_keys(lambda uuid: uuid not in held, env)
        return removed
    finally:
        for fd in claimed.values():
            os.close(fd)
        _remove_temp_locks(env)


def _settle(master: "ControlMaster", claimed: dict[str, int], results: dict[str, str],
            quiet: bool, err) -> list[str]:
    """Forget the claimed records whose remote side is gone; defer those still in use."""
    from remote_docker.mounts import registry, remote

    env = master.env
    removed = []
    for uuid, status in results.items():
        if status == "0":
            removed.append(f"{registry.volume_name(uuid)} on {master.machine.spec}")
    for uuid in claimed:
        status = results.get(uuid, "0")
        record = registry.load(uuid, env)
        if record is not None and record.mode == "classic":
            from remote_docker.mounts import classic

            classic.finish(record, env)
        if status == "0":
            registry.remove(uuid, env)
            if uuid not in results:
                removed.append(f"{registry.volume_name(uuid)} (record only)")
        else:
            registry.defer(uuid, env)
            if not quiet:
                why = remote.explain(int(status), master.machine.spec).message
                err.write(f"remote-docker: {registry.volume_name(uuid)} left for later: {why}\n")
    return removed


def _remove_temp_locks(env) -> None:
    import time

    from remote_docker.mounts.statedir import lock_is_free, registry_dir

    directory = registry_dir(env)
    try:
        names = [n for n in os.listdir(directory) if n.startswith(".") and n.endswith(".lock")]
    except OSError:
        return
    for name in names:
        path = os.path.join(directory, name)
        try:
            old = time.time() - os.stat(path).st_mtime > TEMP_LOCK_AGE
        except OSError:
            continue
        if old and lock_is_free(path):
            try:
                os.unlink(path)
            except OSError:
                pass
