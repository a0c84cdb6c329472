"""Docker's command-line grammar, as far as forwarding needs it.

We never re-implement docker's commands; we only need to know, for a given
argv: which subcommand it is, which options take a value (so that the image
and the container's own command are not mistaken for options), whether docker
would read stdin or use a TTY, and which options name files on the
workstation.  The tables follow docker's pflag definitions (docker 20.10-28).
"""

GLOBAL_VALUE = frozenset({"--config", "-c", "--context", "-H", "--host", "-l", "--log-level",
                          "--tlscacert", "--tlscert", "--tlskey"})
ENDPOINT_OPTIONS = frozenset({"-c", "--context", "-H", "--host"})

MANAGEMENT = frozenset({"builder", "buildx", "checkpoint", "compose", "config", "container",
                        "context", "image", "manifest", "network", "node", "plugin", "secret",
                        "service", "stack", "swarm", "system", "trust", "volume"})

# ``docker container run`` is ``docker run``: the long forms map to the short ones.
ALIASES = {("container", n): n for n in (
    "attach", "commit", "cp", "create", "diff", "exec", "export", "inspect", "kill", "logs",
    "ls", "pause", "port", "prune", "rename", "restart", "rm", "run", "start", "stats",
    "stop", "top", "unpause", "update", "wait")}
ALIASES.update({("image", n): n for n in ("build", "history", "import", "inspect", "load",
                                           "ls", "prune", "pull", "push", "rm", "save", "tag")})
ALIASES.update({("builder", "build"): "build", ("buildx", "build"): "build",
                ("image", "ls"): "images", ("container", "ls"): "ps"})

_RUN_VALUES = (
    "--add-host --annotation -a --attach --blkio-weight --blkio-weight-device --cap-add "
    "--cap-drop --cgroup-parent --cgroupns --cidfile --cpu-count --cpu-percent --cpu-period "
    "--cpu-quota --cpu-rt-period --cpu-rt-runtime -c --cpu-shares --cpus --cpuset-cpus "
    "--cpuset-mems --detach-keys --device --device-cgroup-rule --device-read-bps "
    "--device-read-iops --device-write-bps --device-write-iops --dns --dns-opt --dns-option "
    "--dns-search --domainname --entrypoint -e --env --env-file --expose --gpus --group-add "
    "--health-cmd --health-interval --health-retries --health-start-interval "
    "--health-start-period --health-timeout -h --hostname --io-maxbandwidth --io-maxiops --ip "
    "--ip6 --ipc --isolation --kernel-memory -l --label --label-file --link --link-local-ip "
    "--log-driver --log-opt --mac-address -m --memory --memory-reservation --memory-swap "
    "--memory-swappiness --mount --name --net --network --net-alias --network-alias "
    "--oom-score-adj --pid --pids-limit --platform -p --publish --pull --restart --runtime "
    "--security-opt --shm-size --stop-signal --stop-timeout --storage-opt --sysctl --tmpfs "
    "--ulimit -u --user --userns --uts -v --volume --volume-driver --volumes-from -w --workdir")
_BUILD_VALUES = (
    "--add-host --allow --annotation --attest --build-arg --build-context --builder --cache-from "
    "--cache-to --call --cgroup-parent --cpu-period --cpu-quota -c --cpu-shares --cpuset-cpus "
    "--cpuset-mems -f --file --iidfile --isolation --label -m --memory --memory-swap "
    "--metadata-file --network -o --output --platform --progress --provenance --sbom "
    "--secret --security-opt --shm-size --ssh -t --tag --target --ulimit")

# Options that take a value, per canonical subcommand.  Commands absent here
# need no option parsing to be forwarded correctly.
VALUE_OPTIONS: dict[str, frozenset[str]] = {
    "run": frozenset(_RUN_VALUES.split()),
    "create": frozenset(_RUN_VALUES.split()),
    "exec": frozenset("-e --env --env-file -u --user -w --workdir --detach-keys".split()),
    "start": frozenset("--detach-keys --checkpoint --checkpoint-dir".split()),
    "attach": frozenset(["--detach-keys"]),
    "load": frozenset("-i --input --platform".split()),
    "save": frozenset("-o --output --platform".split()),
    "export": frozenset("-o --output".split()),
    "import": frozenset("-c --change -m --message --platform".split()),
    "build": frozenset(_BUILD_VALUES.split()),
    "login": frozenset("-u --username -p --password".split()),
    "cp": frozenset(),
}
# Where the first positional argument ends option parsing (IMAGE, CONTAINER):
# what follows belongs to the container's own command line.
STOPS_AT_FIRST_POSITIONAL = frozenset({"run", "create", "exec"})
# Commands that never read stdin unless a flag says so; anything not listed
# here (plugins, compose, unknown commands) is given stdin, the safe default.
NO_STDIN = frozenset({
    "",  # plain `docker`, `docker --help`, `docker --version`
    "commit", "diff", "events", "export", "history", "images", "info", "inspect", "kill",
    "logs", "pause", "port", "ps", "pull", "push", "rename", "restart", "rm", "rmi", "save",
    "search", "stats", "stop", "tag", "top", "unpause", "update", "version", "wait", "create",
    "run", "exec", "start", "network", "volume", "system", "image", "container", "context",
    "builder", "node", "service", "swarm", "trust", "manifest", "plugin", "checkpoint",
    "login", "logout", "load", "import", "build", "cp", "attach", "config", "secret", "stack",
})


class Option:
    """One parsed option: its name as typed (``-e``, ``--env``), its value, where it was."""

    __slots__ = ("name", "value", "start", "end", "inline")

    def __init__(self, name: str, value: str | None, start: int, end: int, inline: bool) -> None:
        self.name = name
        self.value = value
        self.start = start  # index of the first token of the option in args
        self.end = end      # index one past its last token
        self.inline = inline  # value given as --opt=value or -ovalue

    def __repr__(self) -> str:
        return f"Option({self.name!r}, {self.value!r})"


class DockerCommand:
    """A docker argv split into global options, the subcommand and its arguments."""

    __slots__ = ("argv", "global_args", "path", "command", "args", "options", "positionals",
                 "rest_index")

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self.global_args: list[str] = []
        self.path: list[str] = []      # subcommand words as typed: ["container", "run"]
        self.command = ""              # canonical name: "run"; "" for plain `docker`
        self.args: list[str] = []      # everything after the subcommand words
        self.options: list[Option] = []
        self.positionals: list[tuple[int, str]] = []
        self.rest_index = len(argv)    # in args: where the container's own argv starts

    def has(self, *names: str) -> bool:
        return any(o.name in names for o in self.options)

    def values(self, *names: str) -> list[str]:
        return [o.value for o in self.options if o.name in names and o.value is not None]

    def flag(self, *names: str) -> bool:
        """True when a boolean option is on (``-t``, ``--tty``, ``--tty=true``)."""
        on = False
        for o in self.options:
            if o.name in names:
                on = o.value is None or o.value.lower() not in ("false", "0", "f")
        return on

    @property
    def explicit_endpoint(self) -> bool:
        """The user named a daemon themselves (-H, --host, --context)."""
        i = 0
        while i < len(self.global_args):
            word = self.global_args[i].split("=", 1)[0]
            if word in ENDPOINT_OPTIONS:
                return True
            i += 1
        return False


def parse(argv: list[str]) -> DockerCommand:
    """Split ``argv`` (without the program name) the way docker's CLI does."""
    cmd = DockerCommand(argv)
    i = 0
    while i < len(argv) and argv[i].startswith("-") and argv[i] != "-":
        word = argv[i]
        cmd.global_args.append(word)
        if word == "--":
            i += 1
            break
        if word in GLOBAL_VALUE and i + 1 < len(argv):
            cmd.global_args.append(argv[i + 1])
            i += 1
        i += 1
    if i >= len(argv):
        return cmd
    cmd.path.append(argv[i])
    i += 1
    if cmd.path[0] in MANAGEMENT and i < len(argv) and not argv[i].startswith("-"):
        cmd.path.append(argv[i])
        i += 1
    key = tuple(cmd.path)
    cmd.command = ALIASES.get(key, " ".join(key)) if len(key) == 2 else key[0]
    cmd.args = argv[i:]
    _parse_options(cmd)
    return cmd


def _parse_options(cmd: DockerCommand) -> None:
    values = VALUE_OPTIONS.get(cmd.command)
    if values is None:
        return
    args = cmd.args
    stops = cmd.command in STOPS_AT_FIRST_POSITIONAL
    i = 0
    while i < len(args):
        word = args[i]
        if word == "--":
            cmd.positionals.extend((k, args[k]) for k in range(i + 1, len(args)))
            if stops and i + 1 < len(args):
                cmd.rest_index = i + 2
            return
        if word.startswith("--"):
            i = _long_option(cmd, values, i)
        elif word.startswith("-") and word != "-":
            i = _short_options(cmd, values, i)
        else:
            cmd.positionals.append((i, word))
            i += 1
            if stops:
                cmd.rest_index = i
                return
    cmd.rest_index = len(args)


def _long_option(cmd: DockerCommand, values: frozenset[str], i: int) -> int:
    word = cmd.args[i]
    name, eq, value = word.partition("=")
    if eq:
        cmd.options.append(Option(name, value, i, i + 1, True))
        return i + 1
    if name in values and i + 1 < len(cmd.args):
        cmd.options.append(Option(name, cmd.args[i + 1], i, i + 2, False))
        return i + 2
    cmd.options.append(Option(name, None, i, i + 1, False))
    return i + 1


def _short_options(cmd: DockerCommand, values: frozenset[str], i: int) -> int:
    """pflag shorthand: ``-it``, ``-eFOO=1``, ``-itp 80:80``, ``-e=FOO``."""
    word = cmd.args[i]
    k = 1
    while k < len(word):
        name = "-" + word[k]
        if name in values:
            rest = word[k + 1:]
            if rest:
                value = rest[1:] if rest.startswith("=") else rest
                cmd.options.append(Option(name, value, i, i + 1, True))
                return i + 1
            if i + 1 < len(cmd.args):
                cmd.options.append(Option(name, cmd.args[i + 1], i, i + 2, False))
                return i + 2
            cmd.options.append(Option(name, None, i, i + 1, False))
            return i + 1
        if k + 1 < len(word) and word[k + 1] == "=":
            cmd.options.append(Option(name, word[k + 2:], i, i + 1, True))
            return i + 1
        cmd.options.append(Option(name, None, i, i + 1, False))
        k += 1
    return i + 1


def wants_tty(cmd: DockerCommand) -> bool:
    """docker was asked for a TTY in the container (``run/create/exec -t``)."""
    return cmd.command in ("run", "create", "exec") and cmd.flag("-t", "--tty")


def interactive(cmd: DockerCommand) -> bool:
    return cmd.flag("-i", "--interactive")


def reads_stdin(cmd: DockerCommand) -> bool:
    """Whether docker would read its stdin for this command.

    Matters because ssh forwards stdin eagerly: a ``docker ps`` inside a
    ``while read`` loop must not swallow the loop's input, as a local docker
    would not.
    """
    c = cmd.command
    if c in ("run", "create", "exec"):
        return interactive(cmd) or "stdin" in [v.lower() for v in cmd.values("-a", "--attach")]
    if c == "start":
        return interactive(cmd)
    if c == "attach":
        return not cmd.flag("--no-stdin")
    if c == "load":
        return not cmd.has("-i", "--input")
    if c == "import":
        return bool(cmd.positionals) and cmd.positionals[0][1] == "-"
    if c == "build":
        return any(p == "-" for _, p in cmd.positionals) or "-" in cmd.values("-f", "--file")
    if c == "login":
        return cmd.flag("--password-stdin")
    if c == "cp":
        return any(p == "-" for _, p in cmd.positionals[:1])
    if c in ("secret create", "config create"):
        return True
    return c not in NO_STDIN


# distribution/reference's grammar (regexp.go), which the engine applies to every name
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = (r"(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
           r"(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[a-fA-F0-9:]+\])"
           r"(?::[0-9]+)?")
_REFERENCE = (rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
              r"(?::[\w][\w.-]{0,127})?"
              r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?")


def image_reference_problem(name: str) -> str | None:
    """Why ``name`` cannot name an image (docker's words), or None if it can.

    Checked here, before any engine is asked, because an engine's answer to a
    malformed name reads like a failure of the engine itself ("no such image:
    …: invalid reference format"), not like the typing mistake it is. An image
    ID, short or ``sha256:…``, fits the same grammar.
    """
    import re

    lowercase = "invalid reference format: repository name must be lowercase"
    if not re.fullmatch(_REFERENCE, name):
        return lowercase if re.fullmatch(_REFERENCE, name.lower()) else "invalid reference format"
    repository = name.split("@", 1)[0]
    if ":" in repository.rsplit("/", 1)[-1]:
        repository = repository.rsplit(":", 1)[0]
    first, _, rest = repository.partition("/")
    is_domain = rest and ("." in first or ":" in first or first == "localhost")
    if not is_domain and first != first.lower():
        return lowercase
    if len(repository) > 255:
        return "invalid reference format: repository name must not be more than 255 characters"
    return None
