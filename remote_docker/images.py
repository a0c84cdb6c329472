"""Layer-aware image transfer between the workstation's engine and the docker-machine's.

`push` sends images from the workstation's own docker engine to the
docker-machine, `pull` brings them back; no registry on either side. Each
side is asked, in one call, which layers (chain IDs) it holds; the sender's
`docker save` stream is then filtered on the fly (``layerfilter``) so that
only the layers the receiver lacks travel, straight into the receiver's
load: on the docker-machine, its engine's own socket, forwarded by the
master (``transport.engine_load``: no docker client in the stream). No
temporary file on the workstation; a load reads the whole archive before it
loads anything, so a transfer that is cut short (Ctrl-C, a dead connection, a
failed save) loads nothing at all. A big transfer over a slow link keeps a copy
of its stream on the receiving side, and the next push or pull of that image
sends only what the copy lacks (``Resume``).

One `docker save` per image, because a 20.10 archive only tells its top layer
apart when it holds a single image; after each image the receiver's layer
set grows by that image's chains, so a second image sharing them sends none.

The local `docker save` starts before anything else (its first bytes take
longest); what is only needed after it (``layerfilter`` with tarfile and
hashlib, dataclasses' inspect) is imported late or not at all, since each
import is time the save starts later.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from remote_docker import config, layercache
from remote_docker.errors import RemoteDockerError, UsageError
from remote_docker.transport import quoting
from remote_docker.transport.local import find_local_docker, local_client_env
from remote_docker.transport.process import Piped, widen_pipe

if TYPE_CHECKING:
    import subprocess

    from remote_docker.transport.engine_load import SocketLoad

PIPE = -1  # subprocess.PIPE, whose module is imported only once the save has started
# The inventories run while `docker save` writes the image out (its first bytes take
# ~0.6 s for 100 MiB): they may be late, as long as they end before that; the save
# may not be (on a 2-core machine they took ~20 ms of its CPU).
NICE = "renice -n 10 -p $$ >/dev/null 2>&1 || :\n"
INSPECT_FORMAT = "{{.Id}} {{.Size}} {{json .RootFS.Layers}}"
# Where a resumable push keeps what has arrived, on the docker-machine (``spooling_load``).
SPOOL_DIR = "\"${XDG_CACHE_HOME:-$HOME/.cache}/remote-docker/pushes\""
# From this size on a push may be resumable: a copy of the stream is kept on the
# docker-machine, so that a push cut short sends only the rest (``Resume``).
RESUME_BYTES = 256 << 20
# The round trip that asks for such a copy doubles as a probe of the link: this slow, it is
# far (a WAN, a VPN) and the stream will wait on it, so the copy costs nothing there.
FAR_SECONDS = 0.025  # ~10 ms on the bed (a session: mux, sshd, sh); ~50 ms at +20 ms RTT


class LocalEngineUnavailable(RemoteDockerError):
    """No docker client or no engine on the workstation: push and pull need one."""


class TransferFailed(RemoteDockerError):
    """save, the connection or load failed; nothing was loaded."""


class Image(NamedTuple):
    name: str
    id: str
    size: int
    diff_ids: list[str]


class Inventory(NamedTuple):
    """What one engine holds: the requested images and every layer chain it has
    (``chains`` grows as images are sent), and what ``layercache`` is to keep."""

    images: dict[str, Image | None]
    chains: set[str]
    has_python: bool
    layers: layercache.LayerMap


class Resume(NamedTuple):
    """When a transfer keeps a copy of its stream on the receiving side to go on from if cut.

    The copy costs a process and a disk write in the stream's path: +19-24% for a
    push on the bed's loopback, where the stream is bound by disk and CPU, -4% to +7%
    behind 20 ms of round trip, where it waits on the link (bench/images.py). So by
    default only an image of ``from_bytes`` or more, over a link that answers slowly
    (``FAR_SECONDS``), or one whose cut transfer left a copy; a size set by the user
    (``always``) applies as it is.
    """

    from_bytes: int
    always: bool = False

    def asks(self, size: int) -> bool:
        """Whether to look for a kept copy (and time the link) before this image."""
        return 0 < self.from_bytes <= size

    def keeps(self, kept: int, answered_in: float) -> bool:
        return self.always or kept > 0 or answered_in >= FAR_SECONDS


class Outcome(NamedTuple):
    """One image's transfer, for the summary line and for tests and benchmarks."""

    name: str
    image_id: str
    layers: int
    layers_sent: int
    bytes_sent: int
    seconds: float
    resumed: int = 0  # bytes the receiver kept from a cut transfer and did not get again

    @property
    def noop(self) -> bool:
        return self.layers_sent == 0 and self.bytes_sent == 0


Progress = Callable[[str, int | None], Callable[[int], None]]


def _no_progress(_name: str, _total: int | None) -> Callable[[int], None]:
    return lambda _n: None


def inventory_script(docker: str, names: list[str], layers: bool = True) -> str:
    """sh script: python3 or not; `unreachable` and docker's error if the engine does not
    answer; else `ID SIZE LAYERS` per name (`-` if absent), `---`; then, with ``layers``,
    every image ID the engine holds, `---`, and `ID LAYERS` for each of those not among
    the IDs read on stdin (``layercache``: those are known already). One sh, fewest
    docker calls: the sender needs no layer list of its own, only the receiver does."""
    quoted = " ".join(quoting.quote(n) for n in names)
    script = (NICE + "if command -v python3 >/dev/null 2>&1; then echo python3; else echo -; fi\n"
              "known=$(cat)\n")
    if layers:
        script += (f"if ! ids=$({docker} image ls -aq --no-trunc 2>&1); then echo unreachable; "
                   "printf '%s\\n' \"$ids\"; exit 0; fi\n")
    script += (
        f"for n in {quoted}; do if i=$({docker} image inspect --format "
        f"{quoting.quote(INSPECT_FORMAT)} \"$n\" 2>/dev/null) && [ -n \"$i\" ]; then "
        "echo \"$i\"; continue; fi\n"  # absent or no engine: ask again for the reason
        f"e=$({docker} image inspect --format x \"$n\" 2>&1 >/dev/null)\n"
        "case $e in *'No such image'*) echo - ;; *) echo unreachable; "
        "printf '%s\\n' \"$e\"; exit 0 ;; esac; done\n"
        "echo ---\n")
    if not layers:
        return script + "echo ---\n"
    return script + (
        "ids=$(printf '%s\\n' \"$ids\" | sort -u)\n"
        "printf '%s\\n---\\n' \"$ids\"\n"
        "printf '%s\\n---\\n%s\\n' \"$known\" \"$ids\" | awk "
        "'f { if ($0 != \"\" && !($0 in k)) print; next } $0 == \"---\" { f = 1; next } "
        "{ k[$0] = 1 }' "
        f"| xargs -r {docker} image inspect --format '{{{{.Id}}}} {{{{json .RootFS.Layers}}}}'\n"
    )


class EngineUnreachable(Exception):
    """The inventory's engine did not answer; carries docker's own last line."""


def known_ids(known: layercache.LayerMap) -> bytes:
    """The inventory script's stdin: the IDs whose layers need not be asked for."""
    return "".join(f"{i}\n" for i in sorted(known)).encode()


def parse_inventory(names: list[str], text: str,
                    known: layercache.LayerMap | None = None) -> Inventory:
    """The script's answer; ``known`` (the cache it was given) fills in the layers it
    did not print. ``Inventory.layers`` is what to remember for next time."""
    import json

    known = known or {}
    lines = text.splitlines()
    answers = lines[1:len(names) + 1]
    if "unreachable" in answers:  # the script stops at the first name the engine fails on
        at = answers.index("unreachable") + 2
        raise EngineUnreachable(_last_line("\n".join(lines[at:]).encode()) or "no reply")
    if len(lines) < len(names) + 2 or lines[len(names) + 1] != "---":
        raise TransferFailed("could not list the images of the engine: unexpected answer")
    images: dict[str, Image | None] = {}
    for name, line in zip(names, lines[1:len(names) + 1]):
        if line == "-":
            images[name] = None
            continue
        image_id, size, layers = line.split(" ", 2)
        images[name] = Image(name, image_id, int(size), json.loads(layers))
    rest = lines[len(names) + 2:]
    if "---" not in rest:
        raise TransferFailed("could not list the images of the engine: unexpected answer")
    held = [l.strip() for l in rest[:rest.index("---")] if l.strip()]
    asked = {}
    for line in rest[rest.index("---") + 1:]:
        if line.strip():
            image_id, layers = line.split(" ", 1)
            asked[image_id] = json.loads(layers)
    current = {i: known[i] if i in known else asked[i]
               for i in held if i in known or i in asked}  # absent: removed meanwhile
    chains: set[str] = set()
    for layers in current.values():
        chains.update(_chains(layers))
    return Inventory(images, chains, has_python=lines[0] == "python3", layers=current)


def _remembered(engine: str, env: dict | os._Environ, layers: bool,
                ask: Callable[[layercache.LayerMap], Inventory]) -> Inventory:
    """An engine's inventory with ``layercache``: ``ask`` gets what is remembered for
    ``engine`` (only with ``layers``), and what it found is remembered when it differs."""
    known = layercache.load(engine, env) if layers else {}
    found = ask(known)
    if layers and found.layers != known:
        layercache.save(engine, found.layers, env)
    return found


def _last_line(data: bytes) -> str:
    lines = [l.strip() for l in data.decode(errors="replace").splitlines() if l.strip()]
    return lines[-1] if lines else ""


class LocalEngine:
    """The workstation's own docker: its client on PATH (not our shim), its engine
    on the default socket or where REMOTE_DOCKER_LOCAL_HOST/local_docker_host say."""

    def __init__(self, env: dict | os._Environ) -> None:
        docker = find_local_docker(env)
        if docker is None:
            raise LocalEngineUnavailable("no local docker client on PATH (besides "
                                         "remote-docker's shim): install docker on the workstation")
        self.docker = docker
        self.env = local_client_env([], env)
        self.label = "the workstation"

    def _run(self, argv: list[str], input: bytes | None = None) -> subprocess.CompletedProcess:
        import subprocess

        return subprocess.run(argv, input=input, capture_output=True, env=self.env,
                              stdin=None if input is not None else subprocess.DEVNULL)

    def inventory(self, names: list[str], layers: bool) -> Inventory:
        def ask(known: layercache.LayerMap) -> Inventory:
            done = self._run(["sh", "-c", inventory_script(quoting.quote(self.docker), names,
                                                           layers)], known_ids(known))
            if done.returncode != 0:
                raise TransferFailed(f"listing the workstation's images failed: "
                                     f"{_last_line(done.stderr)}")
            try:
                return parse_inventory(names, done.stdout.decode(), known)
            except EngineUnreachable as exc:
                where = self.env.get("DOCKER_HOST") or "the default socket"
                raise LocalEngineUnavailable(
                    f"the workstation's docker engine ({where}) does not answer: {exc} (set "
                    "REMOTE_DOCKER_LOCAL_HOST or local_docker_host if it listens elsewhere)"
                ) from None

        engine = "local-" + (self.env.get("DOCKER_HOST") or "default")
        return _remembered(engine, self.env, layers, ask)

    def save(self, name: str) -> Piped:
        return Piped([self.docker, "save", name], dict(self.env))

    def load(self) -> ProcessLoad | SocketLoad:
        """A load on the engine's socket, where the client's environment says which it is
        (``transport.engine_load``: no client in the stream); else the client's own."""
        from remote_docker.transport import engine_load
        from remote_docker.transport.local import engine_socket

        path = engine_socket(self.env)
        if path:
            try:
                return engine_load.SocketLoad(path)
            except engine_load.NoEngine:
                pass
        return self.client_load()

    def client_load(self) -> ProcessLoad:
        import subprocess

        return ProcessLoad(subprocess.Popen([self.docker, "load", "-q"], stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                            env=self.env))

    def spool(self, key: str) -> str:
        return os.path.join(config.cache_dir(self.env), "pulls", f"{key}.part")

    def spooled(self, key: str) -> tuple[int, str]:
        """(size, sha256) of what a cut pull (``key``) left here, or (0, "")."""
        import hashlib

        digest, size = hashlib.sha256(), 0
        try:
            with open(self.spool(key), "rb") as f:
                while chunk := f.read(1 << 20):
                    digest.update(chunk)
                    size += len(chunk)
        except OSError:
            return 0, ""
        return (size, digest.hexdigest()) if size else (0, "")

    def drop_spooled(self, key: str) -> None:
        try:
            os.unlink(self.spool(key))
        except OSError:
            pass

    def spooling_load(self, key: str, resume: bool) -> ProcessLoad:
        """The workstation's ``docker load`` behind a copy of what arrives, as a push's
        ``RemoteEngine.spooling_load`` on the docker-machine (the same script)."""
        import subprocess

        script = _spooling_script(quoting.quote(os.path.dirname(self.spool(key))), key,
                                  resume, quoting.quote(self.docker))
        return ProcessLoad(subprocess.Popen(["sh", "-c", script], stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                            env=self.env))


class ProcessLoad:
    """A ``docker load -q`` client reading our pipe: the workstation's for a pull, and on
    the docker-machine, in a session, where its engine's socket cannot be reached."""

    framed = False

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc

    def fileno(self) -> int:
        return self.proc.stdin.fileno()

    def ready(self) -> None:
        """Nothing to wait for: the client reads its stdin as soon as it runs."""

    def finish(self) -> tuple[int, bytes]:
        self.proc.stdin.close()
        return _finish(self.proc)

    def abort(self) -> tuple[int, bytes]:
        try:
            self.proc.stdin.close()
        except OSError:  # the pipe's reader is gone
            pass
        return self.proc.wait(), self.proc.stderr.read()

    def kill(self) -> None:
        _kill(self.proc)


class RemoteEngine:
    """The docker-machine's engine, over the ControlMaster connection."""

    def __init__(self, env: dict | os._Environ) -> None:
        from remote_docker.transport.openssh import ControlMaster

        spec = config.machine_spec(env)
        if spec == config.LOCAL:
            raise UsageError("push and pull move images to and from a docker-machine, but "
                             "REMOTE_DOCKER_HOST=local names none")
        self.master = ControlMaster(config.parse_machine(spec), env)
        self.label = self.master.machine.spec
        self.env = env

    def inventory(self, names: list[str], layers: bool) -> Inventory:
        def ask(known: layercache.LayerMap) -> Inventory:
            status, out = self.master.capture(inventory_script("docker", names, layers),
                                              known_ids(known))
            if status != 0:
                raise TransferFailed(
                    f"listing the images on {self.label} failed (status {status})")
            try:
                return parse_inventory(names, out.decode(), known)
            except EngineUnreachable as exc:
                raise TransferFailed(f"docker on {self.label} does not answer: {exc}") from None

        self.master.ensure()
        return _remembered(self.label, self.env, layers, ask)

    def _session(self, script: str, stdin: int | None, stdout: int | None) -> subprocess.Popen:
        import subprocess

        return subprocess.Popen(self.master.session_argv(script, null_stdin=stdin is None),
                                stdin=stdin if stdin is not None else subprocess.DEVNULL,
                                stdout=stdout, stderr=subprocess.PIPE)

    def load(self) -> ProcessLoad | SocketLoad:
        """A load on the engine's own socket, forwarded by the master (no docker client in
        the stream, ``transport.engine_load``); a ``docker load`` session where there is none."""
        from remote_docker.errors import ConfigError, ConnectionFailed
        from remote_docker.transport import docker_socket, engine_load

        try:
            return engine_load.SocketLoad(docker_socket.forward(self.master))
        except (ConnectionFailed, ConfigError, engine_load.NoEngine):
            return self.client_load()

    def client_load(self) -> ProcessLoad:
        return ProcessLoad(self._session("docker load -q", PIPE, PIPE))

    def spooled(self, key: str) -> tuple[int, str]:
        """(size, sha256) of what the docker-machine kept of a cut push (``key``), or (0, "")."""
        status, out = self.master.capture(
            f"f={SPOOL_DIR}/{key}.part\n"
            "[ -s \"$f\" ] && wc -c < \"$f\" && sha256sum < \"$f\" || :\n")
        words = out.split()
        if status != 0 or len(words) < 2 or not words[0].isdigit():
            return 0, ""
        return int(words[0]), words[1].decode()

    def drop_spooled(self, key: str) -> None:
        self.master.capture(f"rm -f {SPOOL_DIR}/{key}.part\n")

    def spooling_load(self, key: str, resume: bool) -> ProcessLoad:
        """A ``docker load`` session that keeps a copy of what arrives (``key``.part), so a
        push cut short can go on from there (``_spooling_script``)."""
        return ProcessLoad(self._session(_spooling_script(SPOOL_DIR, key, resume, "docker"),
                                         PIPE, PIPE))

    def save(self, image: Image, present: set[str], filtered: bool, skip: int = 0,
             expect: str = "") -> subprocess.Popen:
        """`docker save`, filtered on the docker-machine by this very layerfilter module;
        ``skip``/``expect``: only what follows the workstation's kept copy of it."""
        import json
        from pathlib import Path

        from remote_docker import layerfilter

        save = "docker save " + quoting.quote(image.name)
        if filtered:
            spec = json.dumps({"layers": image.diff_ids, "present": sorted(present),
                               **({"skip": skip, "expect": expect} if skip else {})})
            source = Path(layerfilter.__file__).read_text()
            save += " | python3 -c " + quoting.quote(source) + " " + quoting.quote(spec)
        return self._session(save, None, PIPE)


def _spooling_script(directory: str, key: str, resume: bool, docker: str) -> str:
    """sh: ``docker load`` fed through a copy kept in ``directory``/``key``.part; with
    ``resume``, the copy is fed to it first. The copy goes once the image is loaded, and
    with it older copies of the same image (another set of layers present) and any a week
    old. Where no copy can be made (a read-only home), an ordinary load."""
    image = key.split("-", 1)[0]
    ready = ": >> \"$f\"" if resume else f"rm -f \"$d\"/{image}-*.part && : > \"$f\""
    return (f"d={directory}; f=$d/{key}.part\n"
            f"if {{ mkdir -p \"$d\" && {ready}; }} 2>/dev/null; then\n"
            "  find \"$d\" -name '*.part' -mtime +7 -exec rm -f {} + 2>/dev/null\n"
            f"  {{ cat \"$f\" && exec tee -a \"$f\"; }} | {docker} load -q || exit\n"
            "  rm -f \"$f\"\n"
            "else\n" + (
                "  echo \"cannot add to the kept copy $f: remove it\" >&2; exit 1\n"
                if resume else
                f"  exec {docker} load -q  # no room for a copy (a read-only home)\n") +
            "fi\n")


def _finish(proc: subprocess.Popen) -> tuple[int, bytes]:
    """Wait for a process whose stdout we no longer read; its status and stderr."""
    if proc.stdout is not None and not proc.stdout.closed:
        proc.stdout.read()
    err = proc.stderr.read() if proc.stderr is not None else b""
    return proc.wait(), err


def _kill(*procs: subprocess.Popen | None) -> None:
    """Stop a transfer that failed: the receiver's load must see a cut stream, not an end."""
    for proc in procs:
        if proc is not None and proc.poll() is None:
            proc.kill()
    for proc in procs:
        if proc is not None:
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    try:
                        stream.close()
                    except OSError:
                        pass
            proc.wait()


def _explain(exc: BaseException, save: subprocess.Popen, save_where: str,
             load: ProcessLoad | SocketLoad, load_where: str) -> TransferFailed:
    """Why a stream broke: a failed save says so on stderr, else a failed load, else exc."""
    load_status, load_err = load.abort()
    save.stdout.close()
    save_status, save_err = save.wait(), save.stderr.read()
    if save_status > 0 and save_err.strip():
        return TransferFailed(f"docker save on {save_where} failed: {_last_line(save_err)}")
    if load_status != 0 and load_err.strip():
        return TransferFailed(f"docker load on {load_where} failed: {_last_line(load_err)}")
    return TransferFailed(f"the transfer from {save_where} to {load_where} broke: {exc}")


def _chains(diff_ids: list[str]) -> list[str]:
    from remote_docker import layerfilter

    return layerfilter.chain_ids(diff_ids)


def _missing(image: Image, present: set[str]) -> int:
    return sum(chain not in present for chain in _chains(image.diff_ids))


def _check(step: str, status: int, err: bytes, where: str) -> None:
    if status != 0:
        raise TransferFailed(f"{step} on {where} failed: {_last_line(err) or f'status {status}'}")


def _ready(load: ProcessLoad | SocketLoad,
           engine: LocalEngine | RemoteEngine) -> ProcessLoad | SocketLoad:
    """``load`` once its engine reads; a ``docker load`` client if no engine answered."""
    from remote_docker.transport import engine_load

    try:
        load.ready()
        return load
    except engine_load.NoEngine:
        load.kill()
        return engine.client_load()
    except engine_load.Refused as exc:
        raise TransferFailed(f"docker load on {engine.label} failed: {exc}") from None


def _splice(image: Image, save: subprocess.Popen, load: ProcessLoad | SocketLoad,
            present: set[str], tick: Callable[[int], None], sender: str, receiver: str,
            skip: int = 0, expect: str = "") -> int:
    """Stream ``save``'s archive into ``load`` without the layers in ``present`` (the
    receiver's), spliced pipe to pipe; the bytes written. Both ends must then say they
    succeeded, each named by its engine in the error when not. ``skip``/``expect``:
    the receiver has that much of the stream already (``layerfilter.filter_fds``)."""
    from remote_docker import layerfilter

    for fd in (save.stdout.fileno(), load.fileno()):
        widen_pipe(fd)  # a wake-up per MiB for save, filter and ssh, not per 64 KiB
    try:
        _, sent = layerfilter.filter_fds(save.stdout.fileno(), load.fileno(),
                                         image.diff_ids, present, tick, load.framed,
                                         skip, expect)
    except (OSError, EOFError, ValueError) as exc:
        raise _explain(exc, save, sender, load, receiver) from None
    _check("docker save", *_finish(save), sender)
    _check("docker load", *load.finish(), receiver)
    return sent


def _abandon(save: subprocess.Popen | None, load: ProcessLoad | SocketLoad | None) -> None:
    """A transfer failed or was interrupted: cut both ends, so the load sees no end."""
    _kill(save)
    if load is not None:
        load.kill()


def push_one(image: Image, local: LocalEngine, remote: RemoteEngine, present: set[str],
             progress: Progress,
             begun: tuple[subprocess.Popen, ProcessLoad | SocketLoad] | None = None,
             resume: Resume = Resume(RESUME_BYTES)) -> Outcome:
    """One image; ``begun``: its save and the remote load, already started. ``resume``:
    whether it keeps a copy on the docker-machine, or goes on from one (``spooling_load``)."""
    from remote_docker import layerfilter

    started = time.monotonic()
    layers_sent = _missing(image, present)
    tick = progress(image.name, image.size if layers_sent == len(image.diff_ids) else None)
    save, load = begun or (None, None)
    skip, expect = 0, ""
    try:
        if resume.asks(image.size):
            key = spool_key(image, present)
            asked = time.monotonic()
            skip, expect = remote.spooled(key)
            if resume.keeps(skip, time.monotonic() - asked):
                if load is not None:
                    load.kill()  # a load cut before its first byte loads nothing
                load = remote.spooling_load(key, resume=skip > 0)
        save = save or local.save(image.name)
        load = load or remote.load()
        load = _ready(load, remote)  # assigned first: a refusal must still close it
        sent = _splice(image, save, load, present, tick, local.label, remote.label, skip,
                       expect)
    except layerfilter.ResumeMismatch:
        _abandon(save, load)  # the kept copy is not this stream's start: start afresh,
        remote.drop_spooled(spool_key(image, present))  # keeping a new one
        again = push_one(image, local, remote, present, progress, None,
                         resume._replace(always=True))
        return again._replace(seconds=time.monotonic() - started)  # the first try counts
    except BaseException:
        _abandon(save, load)
        raise
    return Outcome(image.name, image.id, len(image.diff_ids), layers_sent, sent,
                   time.monotonic() - started, skip)


def spool_key(image: Image, present: set[str]) -> str:
    """Names a transfer's stream: the image and which of its layers the receiver has (the
    filter drops those, so another set makes another stream). ``<image>-<layers>``."""
    import hashlib

    mine = "\n".join(c for c in _chains(image.diff_ids) if c in present)
    return f"{image.id.split(':')[-1][:16]}-{hashlib.sha256(mine.encode()).hexdigest()[:16]}"


def resume_setting(env: dict | os._Environ) -> Resume:
    """REMOTE_DOCKER_RESUME_BYTES or ``resume_bytes`` in the config: from that size every
    push and pull is resumable (0: none is); unset, ``Resume``'s default."""
    value = env.get("REMOTE_DOCKER_RESUME_BYTES") or config.read_settings(env).get(
        "resume_bytes", "")
    if value == "":
        return Resume(RESUME_BYTES)
    try:
        return Resume(max(0, int(value)), always=True)
    except ValueError:
        raise UsageError(f"resume_bytes must be a number of bytes, not {value!r}") from None


def pull_one(image: Image, local: LocalEngine, remote: RemoteEngine, present: set[str],
             filtered: bool, progress: Progress, resume: Resume = Resume(RESUME_BYTES)) -> Outcome:
    """One image; as a push (``Resume``), a big one over a far link keeps a copy of its
    stream, here, to go on from. Only a docker-machine that filters (python3) can resume."""
    from remote_docker import layerfilter

    started = time.monotonic()
    layers_sent = _missing(image, present) if filtered else len(image.diff_ids)
    tick = progress(image.name, image.size if layers_sent == len(image.diff_ids) else None)
    save = load = None
    key, keep, skip, expect = "", False, 0, ""
    try:
        if filtered and resume.asks(image.size):
            key = spool_key(image, present)
            skip, expect = local.spooled(key)
            asked = time.monotonic()
            if not (resume.always or skip):
                remote.master.capture(":")  # how far the docker-machine is, if that decides
            keep = resume.keeps(skip, time.monotonic() - asked)
            skip, expect = (skip, expect) if keep else (0, "")
        save = remote.save(image, present, filtered, skip, expect)
        load = local.spooling_load(key, resume=skip > 0) if keep else _ready(local.load(), local)
        if skip:  # the stream starts inside the archive: the docker-machine filtered it
            tick(skip)  # the bar starts where the kept copy ends, as a push's does
            count = _pass_on(save, load, tick, remote.label, local.label)
        else:  # an archive the docker-machine could not filter is passed on whole
            count = _splice(image, save, load, present if filtered else set(), tick,
                            remote.label, local.label)
    except layerfilter.ResumeMismatch:
        _abandon(save, load)  # the kept copy is not this stream's start: start afresh
        local.drop_spooled(key)
        return pull_one(image, local, remote, present, filtered, progress, resume)
    except BaseException:
        _abandon(save, load)
        raise
    return Outcome(image.name, image.id, len(image.diff_ids), layers_sent, count,
                   time.monotonic() - started, skip)


def _pass_on(save: subprocess.Popen, load: ProcessLoad, tick: Callable[[int], None],
             sender: str, receiver: str) -> int:
    """A resumed pull's stream into the load as it comes; ResumeMismatch if the
    docker-machine found the kept copy is not how it begins."""
    from remote_docker import layerfilter

    try:
        sent = layerfilter.pass_fds(save.stdout.fileno(), load.fileno(), tick)
    except OSError as exc:
        raise _explain(exc, save, sender, load, receiver) from None
    status, err = _finish(save)
    if status == layerfilter.MISMATCH_STATUS:
        raise layerfilter.ResumeMismatch(err.decode(errors="replace").strip())
    _check("docker save", status, err, sender)
    _check("docker load", *load.finish(), receiver)
    return sent


def _check_names(names: list[str]) -> None:
    from remote_docker.dockercli import image_reference_problem

    for name in names:
        problem = image_reference_problem(name)
        if problem:
            raise UsageError(f"{name!r} is not an image name: {problem}")


def _require(names: list[str], found: Inventory, where: str) -> list[Image]:
    missing = [n for n in names if found.images[n] is None]
    if missing:
        raise UsageError(f"no such image on {where}: {', '.join(missing)}")
    return [found.images[n] for n in names]  # type: ignore[misc]


def _each(images: list[Image], receiver: Inventory,
          send: Callable[[Image], Outcome]) -> list[Outcome]:
    """Send each image the receiver lacks, in order; what one sends, the next need
    not: a child image listed after its parent sends only its own layers."""
    outcomes = []
    for image in images:
        there = receiver.images.get(image.name)
        if there is not None and there.id == image.id:
            outcomes.append(Outcome(image.name, image.id, len(image.diff_ids), 0, 0, 0.0))
            continue
        outcomes.append(send(image))
        receiver.chains.update(_chains(image.diff_ids))
    return outcomes


def _both(local: LocalEngine, remote: RemoteEngine, names: list[str],
          receiver_is_remote: bool) -> tuple[Inventory, Inventory]:
    """Both inventories at once: each is a few docker calls, one over ssh; only the
    receiver lists every layer it holds, the sender just its named images. A bare
    thread, not concurrent.futures: that imports logging, 17 ms before a push starts."""
    import threading

    theirs: list[Inventory | BaseException] = []

    def ask() -> None:
        try:
            theirs.append(remote.inventory(names, layers=receiver_is_remote))
        except BaseException as exc:  # re-raised in the caller's thread
            theirs.append(exc)

    asking = threading.Thread(target=ask, daemon=True)
    asking.start()
    ours = local.inventory(names, layers=not receiver_is_remote)
    asking.join()
    if isinstance(theirs[0], BaseException):
        raise theirs[0]
    return ours, theirs[0]


def push(names: list[str], env: dict | os._Environ = os.environ,
         progress: Progress = _no_progress, save: Piped | None = None) -> list[Outcome]:
    """Send images from the workstation's engine to the docker-machine's.

    The first image's ``docker save`` and the remote ``docker load`` start
    before the inventories are asked for, not after: both take a while to get
    going (the save's first bytes, a session on the connection), and that
    time then overlaps with the inventories' round trips instead of adding to
    them.  Nothing is read from the save until the filter knows what to drop;
    if the image turns out to be there already (or missing), both are killed,
    and a ``docker load`` whose stream is cut loads nothing.  ``save``: the
    first image's save, already started by the caller (the CLI starts it with
    ``transport.local.start_save`` before it imports this module).
    """
    try:
        _check_names(names)
        local = LocalEngine(env)
        save = save or local.save(names[0])  # first of all: its first bytes take longest
        remote = RemoteEngine(env)
        remote.master.ensure()
        early: tuple[subprocess.Popen, ProcessLoad | SocketLoad] | None = (save, remote.load())
    except BaseException:
        _kill(save)
        raise
    try:
        ours, theirs = _both(local, remote, names, receiver_is_remote=True)
        resume = resume_setting(env)

        def send(image: Image) -> Outcome:
            nonlocal early
            started, early = (early if image.name == names[0] else None), None
            return push_one(image, local, remote, theirs.chains, progress, started, resume)

        return _each(_require(names, ours, local.label), theirs, send)
    finally:
        if early is not None:
            _kill(early[0])
            early[1].kill()


def pull(names: list[str], env: dict | os._Environ = os.environ,
         progress: Progress = _no_progress) -> list[Outcome]:
    """Bring images from the docker-machine's engine to the workstation's."""
    _check_names(names)
    local, remote = LocalEngine(env), RemoteEngine(env)
    ours, found = _both(local, remote, names, receiver_is_remote=False)
    resume = resume_setting(env)
    return _each(_require(names, found, remote.label), ours,
                 lambda image: pull_one(image, local, remote, ours.chains, found.has_python,
                                        progress, resume))
