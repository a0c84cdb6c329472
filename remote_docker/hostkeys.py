"""Which host a name means, and which of its host keys we trust.

The OpenSSH transport connects with ``StrictHostKeyChecking=yes`` and lists our
own ``known_hosts`` first, so a docker-machine must be pinned before the first
connection.  ``remote-docker use`` pins on first contact, after the user has
seen the fingerprint (trust on first use, made explicit), and refuses a key
that differs from a pin: that is a reinstalled machine or someone in the
middle, and only the user can tell which (``--repin``).

What counts as "pinned" is what ssh itself will accept: the known_hosts files
are the ones ``ssh -G`` reports for the same options the transport passes, and
a host is pinned when one key it presents is listed for it there.  Every
question is asked of the OpenSSH tools themselves (``ssh -G``, ``ssh-keyscan``,
``ssh-keygen -F/-l/-R``), so hashed entries, ``[host]:port`` names and
``HostKeyAlias`` behave as they do for ssh.  The parsing is done by plain
functions so that tests can feed them text.
"""

import glob
import json
import os
import subprocess
from dataclasses import dataclass, field

from remote_docker import config
from remote_docker.config import Machine
from remote_docker.errors import ConnectionFailed, RemoteDockerError, UsageError

SSH_PORT = 22
KEYSCAN_TIMEOUT = 10  # seconds ssh-keyscan waits for one host


# -- which machine a name means ---------------------------------------------------------

def docker_config_dir(env: dict | os._Environ = os.environ) -> str:
    """Where the docker CLI keeps its contexts: ``$DOCKER_CONFIG`` or ``~/.docker``."""
    home = env.get("HOME") or os.path.expanduser("~")
    return env.get("DOCKER_CONFIG") or os.path.join(home, ".docker")


def context_endpoint(meta: object) -> tuple[str, str] | None:
    """(name, docker endpoint) from one context's ``meta.json``, or None if it has none."""
    if not isinstance(meta, dict) or not isinstance(meta.get("Name"), str):
        return None
    endpoint = (meta.get("Endpoints") or {}).get("docker") or {}
    host = endpoint.get("Host") if isinstance(endpoint, dict) else None
    return (meta["Name"], host) if isinstance(host, str) else None


def docker_contexts(env: dict | os._Environ = os.environ) -> dict[str, str]:
    """Every docker context's name and endpoint, read from its meta file directly.

    Read as JSON rather than asked of ``docker context inspect``: the docker CLI
    need not be installed on the workstation, and a broken meta file of some
    other context must not stop ``use``.
    """
    pattern = os.path.join(docker_config_dir(env), "contexts", "meta", "*", "meta.json")
    contexts = {}
    for path in sorted(glob.glob(pattern)):
        try:
            with open(path, encoding="utf-8") as f:
                found = context_endpoint(json.load(f))
        except (OSError, ValueError):
            continue
        if found:
            contexts[found[0]] = found[1]
    return contexts


def resolve_spec(spec: str, env: dict | os._Environ = os.environ) -> tuple[Machine, str]:
    """The machine HOST names, and a few words on how: a docker context or as written.

    A bare name is looked up as a docker context first: a user who names a
    context means it, and an ssh alias or host name of the same spelling is
    still reachable as ``ssh://name``.
    """
    text = spec.strip()
    if text == config.LOCAL:
        raise UsageError("'local' is the workstation's own docker: set REMOTE_DOCKER_HOST=local "
                         "or run 'remote-docker local …' instead")
    if text and not set(text) & set("@:/[]"):
        endpoint = docker_contexts(env).get(text)
        if endpoint is not None:
            if not endpoint.startswith("ssh://"):
                raise UsageError(f"docker context {text!r} points at {endpoint}, "
                                 "not at an ssh:// docker-machine")
            return config.parse_machine(endpoint), f"docker context {text!r}"
    return config.parse_machine(text), ""


def canonical_spec(machine: Machine) -> str:
    """``[user@]host[:port]``: what the config file records, whatever the user typed."""
    return machine.destination + (f":{machine.port}" if machine.port else "")


# -- what ssh will connect to ---------------------------------------------------------

@dataclass(frozen=True)
class SshTarget:
    """What ``ssh -G`` says a machine resolves to, after the user's ``~/.ssh/config``."""

    hostname: str
    port: int
    user: str
    key_alias: str = ""
    known_hosts_files: tuple[str, ...] = ()
    proxied: bool = False

    @property
    def key_name(self) -> str:
        """The name ssh looks up in known_hosts: ``host`` or ``[host]:port``."""
        return known_hosts_name(self.key_alias or self.hostname, self.port)


def known_hosts_name(host: str, port: int) -> str:
    return host if port == SSH_PORT else f"[{host}]:{port}"


def parse_ssh_config(text: str) -> SshTarget:
    """Read ``ssh -G`` output (``keyword value`` lines, keywords in lower case)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.strip().partition(" ")
        if key and key not in values:
            values[key] = value.strip()
    files = values.get("userknownhostsfile", "").split() + \
        values.get("globalknownhostsfile", "").split()
    proxy = any(values.get(k, "none").lower() != "none" for k in ("proxyjump", "proxycommand"))
    port = values.get("port", str(SSH_PORT))
    return SshTarget(hostname=values.get("hostname", ""),
                     port=int(port) if port.isdigit() else SSH_PORT,
                     user=values.get("user", ""),
                     key_alias=values.get("hostkeyalias", "") if
                     values.get("hostkeyalias", "none").lower() != "none" else "",
                     known_hosts_files=tuple(files), proxied=proxy)


def ssh_options(env: dict | os._Environ = os.environ) -> list[str]:
    """The host-key options the transport uses, so ``ssh -G`` answers for the same ssh.

    Asked of ``ControlMaster.host_key_options`` itself (it reads only ``env``)
    rather than copied; building a real ControlMaster would create its state
    directory, and a ``use`` that fails must leave nothing behind.
    """
    from types import SimpleNamespace

    from remote_docker.transport.openssh import ControlMaster

    return ControlMaster.host_key_options(SimpleNamespace(env=env))  # type: ignore[arg-type]


def resolve_target(machine: Machine, env: dict | os._Environ = os.environ) -> SshTarget:
    argv = ["ssh", "-G", *ssh_options(env), *machine.ssh_args()]
    proc = run_tool(argv)
    if proc.returncode != 0:
        raise UsageError(f"ssh cannot make sense of {machine.spec!r}: {last_line(proc.stderr)}")
    return parse_ssh_config(proc.stdout)


# -- keys -------------------------------------------------------------------------------

REVOKED = "@revoked"
CERT_AUTHORITY = "@cert-authority"


@dataclass(frozen=True)
class HostKey:
    """One public host key; ``marker`` is a known_hosts ``@revoked``/``@cert-authority``."""

    keytype: str
    blob: str
    marker: str = ""
    source: str = field(default="", compare=False)  # the file it was pinned in

    def line(self, name: str) -> str:
        return f"{name} {self.keytype} {self.blob}"


def parse_key_lines(text: str, source: str = "") -> list[HostKey]:
    """Keys from known_hosts-format text: ``ssh-keyscan`` or ``ssh-keygen -F`` output."""
    keys = []
    for line in text.splitlines():
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        marker = fields.pop(0) if fields[0].startswith("@") else ""
        if len(fields) >= 3:
            keys.append(HostKey(fields[1], fields[2], marker, source))
    return keys


@dataclass(frozen=True)
class Fingerprint:
    bits: str
    digest: str  # SHA256:…
    keytype: str  # ED25519, RSA, ECDSA

    def __str__(self) -> str:
        return f"{self.digest} ({self.keytype}, {self.bits} bits)"


def parse_fingerprints(text: str) -> list[Fingerprint]:
    """Read ``ssh-keygen -l`` output: ``256 SHA256:abc… comment (ED25519)`` per key."""
    prints = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[1].startswith("SHA256:"):
            keytype = fields[-1].strip("()") if fields[-1].startswith("(") else "?"
            prints.append(Fingerprint(fields[0], fields[1], keytype))
    return prints


class PinState:
    NEW = "new"  # nothing pinned under this name: ask
    PINNED = "pinned"  # a presented key is pinned: nothing to ask
    CHANGED = "changed"  # pinned, but no presented key matches: refuse
    REVOKED = "revoked"  # a presented key is marked @revoked: refuse, even with --repin


def compare(presented: list[HostKey], pinned: list[HostKey]) -> str:
    """What the pins say of the keys a host presents, as ssh would judge them.

    ssh accepts a host when one of the keys it can negotiate is listed for it,
    in any of its known_hosts files; a ``@cert-authority`` line means the
    user delegated trust to a CA, which ssh checks for itself.
    """
    revoked = {(k.keytype, k.blob) for k in pinned if k.marker == REVOKED}
    if any((k.keytype, k.blob) in revoked for k in presented):
        return PinState.REVOKED
    plain = {(k.keytype, k.blob) for k in pinned if not k.marker}
    if any((k.keytype, k.blob) in plain for k in presented):
        return PinState.PINNED
    if any(k.marker == CERT_AUTHORITY for k in pinned):
        return PinState.PINNED
    return PinState.CHANGED if plain else PinState.NEW


# -- asking the OpenSSH tools -----------------------------------------------------------

def run_tool(argv: list[str], stdin: str | None = None,
             timeout: float = 60) -> subprocess.CompletedProcess:
    """Run one OpenSSH helper (argv list, never a shell) and capture its text."""
    try:
        return subprocess.run(argv, input=stdin, capture_output=True, text=True,
                              stdin=None if stdin is not None else subprocess.DEVNULL,
                              timeout=timeout)
    except FileNotFoundError:
        raise RemoteDockerError(f"{argv[0]} is not installed on this workstation "
                                "(Debian: apt-get install openssh-client)") from None
    except subprocess.TimeoutExpired:
        raise ConnectionFailed(f"{argv[0]} did not finish within {timeout:.0f} s", argv) from None


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def scan(machine: Machine, target: SshTarget) -> list[HostKey]:
    """The keys the host presents now, asked with ``ssh-keyscan`` (no login, no trust)."""
    if target.proxied:
        raise UsageError(f"{machine.spec} is reached through ProxyJump/ProxyCommand, which "
                         f"ssh-keyscan cannot follow: pin its key by running 'ssh {machine.spec}' "
                         "once, then run 'remote-docker use' again")
    argv = ["ssh-keyscan", "-T", str(KEYSCAN_TIMEOUT), "-p", str(target.port), target.hostname]
    proc = run_tool(argv, timeout=KEYSCAN_TIMEOUT * 5)
    keys = parse_key_lines(proc.stdout)
    if keys:
        return keys
    where = f"{target.hostname} port {target.port}"
    if "not known" in proc.stderr or "resolution" in proc.stderr:
        message = f"cannot reach {machine.spec}: unknown host {target.hostname!r}"
    else:
        message = f"cannot reach {machine.spec}: no ssh server answered at {where}"
    raise ConnectionFailed(message, argv, proc.stderr, proc.returncode)


def pinned_keys(target: SshTarget) -> list[HostKey]:
    """Every key pinned for the target's name, in each known_hosts file ssh reads."""
    keys = []
    for path in target.known_hosts_files:
        if os.path.isfile(path):
            proc = run_tool(["ssh-keygen", "-F", target.key_name, "-f", path])
            keys += parse_key_lines(proc.stdout, source=path)
    return keys


def fingerprints(keys: list[HostKey]) -> list[Fingerprint]:
    """SHA256 fingerprints, as ``ssh-keygen -l`` prints them (what ssh shows users)."""
    text = "".join(key.line("host") + "\n" for key in keys if key.marker != CERT_AUTHORITY)
    if not text:
        return []
    proc = run_tool(["ssh-keygen", "-l", "-f", "-"], stdin=text)
    return parse_fingerprints(proc.stdout)


def pin_file(env: dict | os._Environ = os.environ) -> str:
    """Our own known_hosts: the first file the OpenSSH transport lists."""
    return os.path.join(config.config_dir(env), "known_hosts")


def pin(keys: list[HostKey], target: SshTarget, path: str) -> None:
    """Append the keys under the name ssh will look up; plain text, so a user can read it."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    lines = "".join(key.line(target.key_name) + "\n" for key in keys if not key.marker)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        f.write(lines)


def unpin(target: SshTarget, path: str) -> None:
    """Remove the target's pins from OUR file only; the user's own files are theirs."""
    if not os.path.isfile(path):
        return
    proc = run_tool(["ssh-keygen", "-R", target.key_name, "-f", path])
    if proc.returncode != 0:
        raise RemoteDockerError(f"could not remove the old pin from {path}: "
                                f"{last_line(proc.stderr)}")
    try:
        os.unlink(path + ".old")  # ssh-keygen's backup: the old key was shown to the user
    except FileNotFoundError:
        pass


# -- the decision ---------------------------------------------------------------------

@dataclass
class KeyCheck:
    """Everything ``use`` needs to decide on a host's key, gathered once."""

    target: SshTarget
    presented: list[HostKey]
    pinned: list[HostKey]
    our_file: str
    left_to_ssh: bool = False  # not scanned: ssh checks the pin itself on connecting

    @property
    def state(self) -> str:
        return PinState.PINNED if self.left_to_ssh else compare(self.presented, self.pinned)

    def pinned_in(self) -> list[str]:
        """The files that pin this host, ours first, for messages."""
        return sorted({k.source for k in self.pinned}, key=lambda f: f != self.our_file)


def scan_needed(target: SshTarget, pinned: list[HostKey], repin: bool) -> bool:
    """Whether ``use`` must see the presented keys itself.

    A host reached through ProxyJump cannot be scanned, but once the user's
    own ssh pinned it, ssh (with StrictHostKeyChecking=yes) verifies that pin
    on connecting: nothing is gained by refusing.
    """
    return repin or not target.proxied or not pinned


def check(machine: Machine, env: dict | os._Environ = os.environ,
          repin: bool = False) -> KeyCheck:
    target = resolve_target(machine, env)
    pinned = pinned_keys(target)
    if not scan_needed(target, pinned, repin):
        return KeyCheck(target, [], pinned, pin_file(env), left_to_ssh=True)
    return KeyCheck(target, scan(machine, target), pinned, pin_file(env))


class Action:
    PROCEED = "proceed"  # already pinned
    ASK = "ask"  # confirm on the terminal, then pin
    PIN = "pin"  # --accept-new: pin without asking
    REFUSE_CHANGED = "refuse-changed"
    REFUSE_REVOKED = "refuse-revoked"
    REFUSE_NO_TERMINAL = "refuse-no-terminal"


def decide(state: str, accept_new: bool, repin: bool, interactive: bool) -> str:
    """What ``use`` does with a host key; ``--repin`` is the only way past a changed key."""
    if state == PinState.PINNED:
        return Action.PROCEED
    if state == PinState.REVOKED:
        return Action.REFUSE_REVOKED
    if state == PinState.CHANGED and not repin:
        return Action.REFUSE_CHANGED
    if accept_new:
        return Action.PIN
    return Action.ASK if interactive else Action.REFUSE_NO_TERMINAL
