"""``remote-docker use HOST [--accept-new] [--repin]``: choose the docker-machine.

The config file is written last, only once the host key is pinned, the login
works and docker answers there: a ``use`` that fails leaves the previous
choice in force.  Prose and the question go to stderr (as ssh's do); the one
line saying what is now used goes to stdout.
"""

import os
import sys

from remote_docker import config, hostkeys
from remote_docker.errors import ExitStatus, RemoteDockerError, UsageError
from remote_docker.hostkeys import Action

USAGE = """usage: remote-docker use HOST [--accept-new] [--repin]

HOST is [user@]host[:port], ssh://[user@]host[:port], an ssh config alias, or the
name of a docker context whose endpoint is ssh://.
  --accept-new  pin a host key seen for the first time without asking
                (check the fingerprint it prints)
  --repin       replace remote-docker's pin of a host whose key has changed
"""


def parse_use_args(args: list[str]) -> tuple[str, bool, bool] | None:
    """(HOST, accept_new, repin), or None for --help; UsageError for anything else."""
    flags = {"--accept-new": False, "--repin": False}
    hosts = []
    for arg in args:
        if arg in ("-h", "--help"):
            return None
        if arg in flags:
            flags[arg] = True
        elif arg.startswith("-"):
            raise UsageError(f"use: unknown option {arg!r} (see 'remote-docker use --help')")
        else:
            hosts.append(arg)
    if len(hosts) != 1:
        raise UsageError("use: expected one HOST: remote-docker use [user@]host[:port]")
    return hosts[0], flags["--accept-new"], flags["--repin"]


def confirm(question: str) -> bool:
    sys.stderr.write(question)
    sys.stderr.flush()
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


def settle_host_key(check: hostkeys.KeyCheck, spec: str, accept_new: bool, repin: bool) -> None:
    """Pin, re-pin or refuse, as ``hostkeys.decide`` says; raise on refusal."""
    state = check.state
    action = hostkeys.decide(state, accept_new, repin, sys.stdin.isatty())
    name = check.target.key_name
    if action == Action.PROCEED:
        where = ", ".join(check.pinned_in())
        sys.stderr.write(f"host key of {name} is pinned ({where})\n")
        return
    if action == Action.REFUSE_REVOKED:
        raise RemoteDockerError(f"{spec} presents a host key marked @revoked in "
                                f"{', '.join(check.pinned_in())}: refusing to connect")
    if action == Action.REFUSE_CHANGED:
        raise RemoteDockerError(
            f"the host key of {spec} differs from the one pinned in "
            f"{', '.join(check.pinned_in())}: if the machine was reinstalled, re-pin it with "
            f"'remote-docker use --repin {spec}'")
    show_fingerprints(check)
    if action == Action.REFUSE_NO_TERMINAL:
        raise UsageError(f"no terminal to ask whether to pin the host key of {spec}: check the "
                         "fingerprint above, then pass --accept-new")
    if action == Action.ASK and not confirm("Pin this host key? [y/N] "):
        raise RemoteDockerError(f"host key of {spec} not pinned; nothing changed")
    hostkeys.unpin(check.target, check.our_file)
    hostkeys.pin(check.presented, check.target, check.our_file)
    sys.stderr.write(f"pinned in {check.our_file}\n")
    for other in (f for f in check.pinned_in() if f != check.our_file):
        sys.stderr.write(f"note: {other} still lists the old key of {name}; "
                         f"'ssh-keygen -R {name} -f {other}' removes it\n")


def show_fingerprints(check: hostkeys.KeyCheck) -> None:
    """What the user must compare with the machine's own ``ssh-keygen -lf`` before saying yes."""
    name = check.target.key_name
    old = [k for k in check.pinned if not k.marker]
    if old:
        sys.stderr.write(f"the host key of {name} has changed\n")
        for fp in hostkeys.fingerprints(old):
            sys.stderr.write(f"  pinned:    {fp}\n")
    else:
        sys.stderr.write(f"first contact with {name}; its host key:\n")
    for fp in hostkeys.fingerprints(check.presented):
        sys.stderr.write(f"  {'presented: ' if old else ''}{fp}\n")


def main_use(args: list[str]) -> int:
    parsed = parse_use_args(args)
    if parsed is None:
        sys.stdout.write(USAGE)
        return ExitStatus.OK
    text, accept_new, repin = parsed
    env = os.environ
    from remote_docker import machines

    name, text = text, machines.known(env).get(text, text)  # a name `machines` lists
    machine, via = hostkeys.resolve_spec(text, env)
    spec = hostkeys.canonical_spec(machine)
    if via:
        sys.stderr.write(f"{via} is {spec}\n")
    settle_host_key(hostkeys.check(machine, env, repin), spec, accept_new, repin)

    from remote_docker.cli.status import probe_docker
    from remote_docker.transport.openssh import ControlMaster

    master = ControlMaster(machine, env)
    master.ensure()
    versions = probe_docker(master)
    path = config.write_settings({"host": spec}, env)
    machines.remember(name, spec, env)
    sys.stdout.write(f"now using {spec}: docker {versions.server} (recorded in {path})\n")
    override = env.get("REMOTE_DOCKER_HOST")
    if override is not None and override.strip() != spec:
        sys.stderr.write(f"note: REMOTE_DOCKER_HOST={override} is set in this shell and "
                         "takes precedence over the config file\n")
    return ExitStatus.OK
