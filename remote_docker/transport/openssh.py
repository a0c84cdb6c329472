"""OpenSSH with one persistent ControlMaster per docker-machine: the hot path.

A forwarded command is one multiplexed session on a master connection that
``ControlPersist`` keeps warm, so it costs one round trip instead of a new
connection (~30 ms instead of ~300 ms).  The user's ``~/.ssh/config``
(ProxyJump, IdentityFile, Port, agent) applies because OpenSSH reads it.

A warm call spawns no ssh at all: ``transport.mux`` hands our stdin, stdout
and stderr to the master over its control socket (PROTOCOL.mux) and waits for
the exit status, saving the ~9 ms an ssh client costs to start.  The master
lives in a session of its own, so a Ctrl-C at the terminal reaches only the
shim, which delivers it to the remote docker client (``quoting.kill_script``);
that client's signal proxy then behaves exactly as a local docker's.  With a
pty the terminal is raw and Ctrl-C travels as a byte, as with ``ssh -t``.

The ssh binary is still used for a cold first call (its ssh becomes the
master) and as a fallback.  Two facts shape that path: the ssh mux client
dies on SIGINT whatever its inherited signal dispositions, without signalling
the remote process, so it runs in a process group of its own unless it must
own the terminal (a pty); and ssh reports a remote death by signal as 255,
like a lost connection, so the remote shell turns it into 128+n and the shim,
when it forwarded that signal, dies of it too, as a local docker would.

Everything here spawns with ``os.posix_spawnp`` and waits with ``os.waitpid``:
``subprocess`` and ``signal`` cost the shim milliseconds to import on every call.
"""

import os

from remote_docker import config
from remote_docker.config import Machine
from remote_docker.errors import ConnectionFailed
from remote_docker.forward import Plan
from remote_docker.transport import quoting
from remote_docker.transport.forwarded import ForwardedCall, call_tag



def socket_answers(path: str) -> bool:
    """Something listens on the unix socket ``path``."""
    import _socket

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(path)
        return True
    except OSError:
        return False
    finally:
        sock.close()


class ControlMaster:
    """The master connection to one docker-machine, and how to run things over it."""

    def __init__(self, machine: Machine, env: dict | os._Environ = os.environ) -> None:
        self.machine = machine
        self.env = env
        self.path = os.path.join(config.runtime_dir(env), "cm-" + machine.key())

    # -- the master -------------------------------------------------------------

    def is_warm(self) -> bool:
        """A master is listening on the control socket (a connect costs ~0.1 ms)."""
        return socket_answers(self.path)

    def host_key_options(self) -> list[str]:
        """Pinned host keys only: ours (``remote-docker use``) and the user's."""
        pinned = os.path.join(config.config_dir(self.env), "known_hosts")
        files = [pinned, "~/.ssh/known_hosts", "~/.ssh/known_hosts2"]
        files = [f'"{f}"' if " " in f else f for f in files]
        return ["-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + " ".join(files)]

    def master_options(self) -> list[str]:
        """Options that shape the master connection: persistence, keep-alive, logging,
        the cipher (``ciphers``: AES-GCM first on a CPU with AES instructions)."""
        from remote_docker.transport.ciphers import cipher_options

        return ["-o", "ControlPersist=" + config.control_persist(self.env),
                "-E", self.log_path, "-o", "ConnectTimeout=15",
                "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=3",
                *cipher_options(self.machine.ssh_args(), os.path.join(
                    config.cache_dir(self.env), f"ciphers-{self.machine.key()}")),
                *self.host_key_options()]

    @property
    def log_path(self) -> str:
        return self.path + ".log"

    def master_argv(self) -> list[str]:
        return ["ssh", "-M", "-S", self.path, "-f", "-N", *self.master_options(),
                *self.machine.ssh_args()]

    def log_size(self) -> int:
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def log_since(self, offset: int) -> str:
        """What ssh logged since ``offset``: only errors, as LogLevel is ERROR."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read(8000).decode("utf-8", "replace")
        except OSError:
            return ""

    def ensure(self) -> bool:
        """Start the master unless one is listening; True when this call started it.

        Runs in the foreground so ssh can ask for a passphrase; a lock keeps
        concurrent first calls from starting two masters.
        """
        if self.is_warm():
            return False
        import fcntl

        from remote_docker.transport.process import spawn, wait

        with open(self.path + ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self.is_warm():
                return False
            try:
                os.unlink(self.path)  # a stale socket from a master that was killed
            except FileNotFoundError:
                pass
            argv = self.master_argv()
            offset = self.log_size()
            status = wait(spawn(argv))
            if status != 0 or not self.is_warm():
                raise explain_failure(self.machine, argv, self.log_since(offset))
        return True

    def stop(self) -> None:
        from remote_docker.transport.process import spawn, wait

        if self.is_warm():
            wait(spawn(["ssh", "-S", self.path, "-O", "exit", "-o", "LogLevel=QUIET",
                        *self.machine.ssh_args()], stdout="/dev/null", stderr="/dev/null"))

    # -- sessions on the master -------------------------------------------------

    def session_argv(self, script: str, tty: bool = False, null_stdin: bool = False,
                     become_master: bool = False) -> list[str]:
        """argv of one session running ``script`` on the docker-machine.

        On a warm master it is a mux session.  ``become_master`` lets this very
        ssh make the connection and stay behind as the master (ControlPersist),
        so a cold first command costs one connection, not a master start and
        then a session.  BatchMode always: ssh may sit in a process group that
        cannot read the terminal, so it must fail rather than prompt; ``run``
        then starts the master in the foreground, where prompts work.
        """
        master = ["-o", "ControlMaster=auto", *self.master_options()] if become_master \
            else ["-o", "ControlMaster=no", *self.host_key_options()]
        return ["ssh", "-S", self.path, *master, "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
                "-t" if tty else "-T", *(["-n"] if null_stdin else []),
                *self.machine.ssh_args(), script]

    def capture(self, script: str, stdin: bytes | None = None) -> tuple[int, bytes]:
        """Run a small script of ours; return its exit status and stdout."""
        from remote_docker.transport.process import capture

        return capture(self.session_argv(script, null_stdin=stdin is None), stdin)

    def run(self, plan: Plan) -> int:
        """Run a forwarded docker command; returns the status the shim should exit with."""
        cold = not self.is_warm()
        if cold and (plan.env or plan.outputs):
            self.ensure()  # these take several sessions: make the master first
            cold = False
        tag = call_tag()
        if plan.env:
            status, _ = self.capture(quoting.upload_script(f"env-{tag}"),
                                     quoting.env_script(plan.env))
            if status != 0:
                raise ConnectionFailed(f"could not pass the environment to {self.machine.spec}")
        script = quoting.docker_script(plan.argv, tag, self.machine.spec,
                                       env_file=bool(plan.env), needs_dir=bool(plan.outputs))
        call = ForwardedCall(self, plan, tag, script)
        if cold:
            offset = self.log_size()
            status = call.run(become_master=True)
            log = self.log_since(offset) if status == 255 else ""
            if log and _needs_a_person(log) and os.isatty(0):
                self.ensure()  # passphrase or password: ask in the foreground, then run
                status = call.run()
            elif log:
                raise explain_failure(self.machine, call.argv, log)
        else:
            status = call.run()
        for name, local in plan.outputs:
            self._fetch(quoting.output_path(tag, name), local)
        return call.exit_status(status)

    def _fetch(self, remote_name: str, local: str) -> None:
        status, data = self.capture(quoting.fetch_script(remote_name))
        if status == 0:
            from remote_docker.transport import write_output

            write_output(local, data)

    def send_signal(self, tag: str, signame: str) -> None:
        from remote_docker.transport.process import spawn, wait

        wait(spawn(self.session_argv(quoting.kill_script(tag, signame), null_stdin=True),
                   stdout="/dev/null"))


def _needs_a_person(log: str) -> bool:
    """Authentication failed, perhaps only because BatchMode forbade asking for a secret.

    With a terminal, ``run`` then starts the master in the foreground, where ssh
    may ask; if that fails too, its own classified error is what the user sees.
    """
    return "Permission denied" in log


def explain_failure(machine: Machine, argv: list[str], log: str) -> ConnectionFailed:
    """One line that names the machine and the cause, from what ssh logged."""
    spec = machine.spec
    checks = [
        ("Could not resolve hostname", f"cannot reach {spec}: unknown host {machine.host!r}"),
        ("Name or service not known", f"cannot reach {spec}: unknown host {machine.host!r}"),
        ("Connection refused", f"cannot reach {spec}: connection refused (is sshd running?)"),
        ("timed out", f"cannot reach {spec}: connection timed out"),
        ("No route to host", f"cannot reach {spec}: no route to host"),
        ("Network is unreachable", f"cannot reach {spec}: network is unreachable"),
        ("HOST IDENTIFICATION HAS CHANGED",
         f"the host key of {spec} has changed: if you expected that, re-pin it with "
         f"'remote-docker use --repin {spec}'"),
        ("Host key verification failed",
         f"the host key of {spec} is not pinned: check and pin it with "
         f"'remote-docker use {spec}'"),
        ("Permission denied", f"{spec} refused our login: check that 'ssh {machine.destination}' "
                              "works without a password (ssh-copy-id)"),
    ]
    for needle, message in checks:
        if needle in log:
            return ConnectionFailed(message, argv, log)
    last = [line for line in log.splitlines() if line.strip()]
    detail = last[-1].strip() if last else "ssh failed"
    return ConnectionFailed(f"cannot connect to {spec}: {detail}", argv, log)
