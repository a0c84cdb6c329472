"""Compose's command line: its global options, its subcommand, and its project directory.

The same grammar for compose v1 (``docker-compose`` 1.x, Python) and v2 (the
Go plugin run as ``docker-compose`` or ``docker compose``): global options
come first, then the subcommand.  Only what the shim needs is known here:
which global options take a value (so the subcommand is found), which name
an engine (then the user chose one: compose runs untouched), and the files
that say where the project lives.
"""

import os

from remote_docker.errors import UsageError

GLOBAL_VALUE = frozenset({
    "-f", "--file", "-p", "--project-name", "--profile", "-c", "--context", "--log-level",
    "--ansi", "-H", "--host", "--tlscacert", "--tlscert", "--tlskey", "--project-directory",
    "--env-file", "--parallel", "--progress",
})
ENDPOINT_OPTIONS = frozenset({"-c", "--context", "-H", "--host"})

# What compose looks for, in this order, in the current directory and its parents.
DEFAULT_FILES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")

# Subcommands that create containers: their bind sources need reverse mounts.
CREATING = frozenset({"up", "run", "create", "scale"})
# What compose answers without an engine: no connection is made for these.
NO_ENGINE = frozenset({"", "help", "version", "config", "convert"})


class ComposeCommand:
    """A compose argv split into global options and the subcommand with its arguments."""

    __slots__ = ("argv", "options", "command", "rest")

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self.options: list[tuple[str, str | None]] = []  # (name, value) as given
        self.command = ""
        self.rest: list[str] = []  # the subcommand and everything after it

    def values(self, *names: str) -> list[str]:
        return [v for n, v in self.options if n in names and v is not None]

    def has(self, *names: str) -> bool:
        return any(n in names for n, _ in self.options)

    @property
    def needs_engine(self) -> bool:
        return self.command not in NO_ENGINE and not self.has("-h", "--help", "-v", "--version")

    @property
    def explicit_endpoint(self) -> bool:
        return self.has(*ENDPOINT_OPTIONS)

    def without(self, *names: str) -> list[str]:
        """The global options as words, less those named."""
        words: list[str] = []
        for name, value in self.options:
            if name not in names:
                words += [name] if value is None else [name, value]
        return words


def parse(argv: list[str]) -> ComposeCommand:
    """Split ``argv`` (without the program name) the way compose does."""
    cmd = ComposeCommand(argv)
    i = 0
    while i < len(argv) and argv[i].startswith("-") and argv[i] != "-":
        word = argv[i]
        name, eq, value = word.partition("=")
        if word.startswith("--") and eq:
            cmd.options.append((name, value))
        elif word in GLOBAL_VALUE:
            if i + 1 >= len(argv):
                raise UsageError(f"option {word} needs a value")
            cmd.options.append((word, argv[i + 1]))
            i += 1
        elif len(word) > 2 and not word.startswith("--") and word[:2] in GLOBAL_VALUE:
            cmd.options.append((word[:2], word[2:]))  # -fdocker-compose.yml
        else:
            cmd.options.append((word, None))
        i += 1
    cmd.rest = argv[i:]
    cmd.command = cmd.rest[0] if cmd.rest else ""
    return cmd


def compose_files(cmd: ComposeCommand, env: dict | os._Environ) -> list[str]:
    """The files given with -f, else in COMPOSE_FILE; [] when compose is to search."""
    files = cmd.values("-f", "--file")
    if files:
        return files
    listed = env.get("COMPOSE_FILE", "")
    if listed:
        return [f for f in listed.split(env.get("COMPOSE_PATH_SEPARATOR", os.pathsep)) if f]
    return []


def find_default_file(cwd: str) -> str | None:
    """The compose file compose would find from ``cwd``: here, else in a parent."""
    directory = cwd
    while True:
        for name in DEFAULT_FILES:
            candidate = os.path.join(directory, name)
            if os.path.isfile(candidate):
                return candidate
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def project_directory(cmd: ComposeCommand, env: dict | os._Environ, cwd: str) -> str | None:
    """Where compose takes the project to be (relative paths, ``.env``, the default name).

    ``--project-directory``, else the first file's directory (the current one
    for ``-f -``), else where the default file was found; None when there is
    no file at all (compose then says so itself).
    """
    given = cmd.values("--project-directory")
    if given:
        return os.path.abspath(os.path.join(cwd, given[-1]))
    files = compose_files(cmd, env)
    if files:
        if files[0] == "-":
            return cwd
        return os.path.dirname(os.path.abspath(os.path.join(cwd, files[0])))
    found = find_default_file(cwd)
    return os.path.dirname(found) if found else None
