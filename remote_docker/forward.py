"""From a docker argv to what must happen to run it on the docker-machine.

The docker-machine's docker runs the command; this module decides what of it
is local: environment values taken from the workstation (``-e VAR``,
``--env-file``), files the workstation reads or writes (``save -o``,
``load -i``, ``export -o``, ``--label-file``, ``--cidfile``, ``--iidfile``),
whether stdin is forwarded and whether a TTY is needed.  It only computes a
``Plan``; ``transport`` carries it out.  Errors here are the ones docker
itself would give for the same input, worded as docker words them.
"""

import os

from remote_docker import dockercli
from remote_docker.dockercli import DockerCommand, Option
from remote_docker.errors import CreateRefused, DockerError, ExitStatus, UsageError


class Plan:
    """Everything the transport needs to run one forwarded docker command."""

    __slots__ = ("argv", "tty", "stdin", "stdin_path", "stdout_path", "env", "outputs",
                 "display_name", "mounts", "command", "stdin_writer", "stdout_reader")

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv                      # remote argv, starting with "docker"
        self.tty = False                      # allocate a pty on the docker-machine
        self.stdin = "null"                   # "null" | "inherit" | "file" | "stream"
        self.stdin_path: str | None = None    # local file streamed as stdin ("file")
        self.stdout_path: str | None = None   # local file that receives remote stdout
        self.env: dict[str, str] = {}         # values exported remotely, never on a cmdline
        self.outputs: list[tuple[str, str]] = []  # (placeholder name, local path) to fetch
        self.display_name = "docker"
        self.mounts: list = []                # bind_sources.MountRequest, in placeholder order
        self.command = ""                     # docker's canonical subcommand: "run", "ps", …
        self.stdin_writer = None              # stdin "stream": called with a binary file
        self.stdout_reader = None             # called with the remote stdout, a binary file

    def __repr__(self) -> str:
        return f"Plan(argv={self.argv!r}, tty={self.tty}, stdin={self.stdin!r})"


# In remote argv, a file the docker-machine writes for us is named by this
# placeholder; the transport substitutes its remote scratch path.
OUTPUT_PLACEHOLDER = "\x00rd-output:"


class Terminal:
    """Which of the standard streams are terminals; passed in so tests can fake it."""

    __slots__ = ("stdin", "stdout", "stderr")

    def __init__(self, stdin: bool, stdout: bool, stderr: bool) -> None:
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr

    @classmethod
    def detect(cls) -> "Terminal":
        """Terminals as docker would use them: a background job has none for input.

        A local docker in a background job (``docker logs -f &``) never touches
        the terminal; were we to take its stdin for interactive, setting it raw
        would stop the job with SIGTTOU.
        """
        return cls(os.isatty(0) and _in_foreground(0), os.isatty(1), os.isatty(2))


def _in_foreground(fd: int) -> bool:
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False


def plan(argv: list[str], env: dict | os._Environ, term: Terminal, cwd: str | None = None,
         translate: bool = True, parsed: DockerCommand | None = None) -> Plan:
    """The plan for ``docker ARGV`` run from a workstation with ``env`` and ``term``.

    ``translate``: workstation paths in ``-v``/``--mount`` become reverse mounts
    (``bind_sources``); ``cwd`` is what relative ones are relative to.
    """
    cmd = parsed or dockercli.parse(argv)  # the caller may have parsed it already
    result = Plan(["docker", *argv])
    result.command = cmd.command
    result.tty = _needs_tty(cmd, term)
    # with a pty, stdin must be the terminal even if docker reads nothing from it:
    # ssh takes the pty's modes from it, and a Ctrl-C is read from it as a byte
    result.stdin = "inherit" if result.tty or dockercli.reads_stdin(cmd) else "null"
    if cmd.command in ("run", "create", "exec"):
        _localise_run(cmd, result, env, translate and cmd.command != "exec", cwd)
    elif cmd.command in ("save", "export"):
        _localise_output(cmd, result)
    elif cmd.command == "load":
        _localise_input(cmd, result)
    elif cmd.command == "import":
        _localise_import(cmd, result)
    elif cmd.command == "build":
        _localise_iidfile(cmd, result)
        _localise_context(cmd, result, env, term)
    return result


def _localise_context(cmd: DockerCommand, result: Plan, env: dict | os._Environ,
                      term: Terminal) -> None:
    """``build DIR``: the workstation's directory streamed as ``build -`` (``build_context``)."""
    from remote_docker import build_context

    for name in build_context.BUILD_ENV:
        if name in env:
            result.env[name] = env[name]
    inner = dockercli.parse(result.argv[1:])  # --iidfile already rewritten
    localised = build_context.localise(inner, env, term.stderr)
    if localised is None:
        return
    args, context = localised
    result.argv = ["docker", *inner.global_args, *inner.path, *args]
    result.stdin, result.stdin_writer, result.tty = "stream", context.write, False


def _needs_tty(cmd: DockerCommand, term: Terminal) -> bool:
    """When the docker-machine's docker must see a terminal, as a local one would.

    ``-t`` asks for one explicitly: needed when stdin is a terminal and either
    input is attached (``-i``) or output goes to a terminal (``-t`` alone
    with output piped must give the container's raw bytes, so no pty).
    Without ``-t``, interactive use (all three streams terminals) gets a pty too,
    so that progress bars, colours, line editing in ``attach``/``compose`` and
    Ctrl-C behave as at a local terminal; a pty merges stderr into stdout, which
    only shows when they are not the same terminal, hence "all three".
    """
    if dockercli.wants_tty(cmd):
        return term.stdin and (dockercli.interactive(cmd) or term.stdout)
    return term.stdin and term.stdout and term.stderr and cmd.command not in (
        "save", "export", "load", "import", "cp")


def _localise_run(cmd: DockerCommand, result: Plan, env: dict | os._Environ,
                  translate: bool, cwd: str | None) -> None:
    """``-e VAR``, ``--env-file``, ``--label-file``, ``--cidfile``, bind sources, locally.

    ``translate`` False leaves ``-v``/``--mount`` alone (switched off, or ``exec``).
    """
    try:
        _localise_run_options(cmd, result, env, translate, cwd)
    except DockerError:
        raise
    except CreateRefused as exc:
        if cmd.command != "run":
            raise DockerError(exc.message) from None
        raise _with_help(cmd, exc.message, _run_status(exc.message)) from None
    except UsageError as exc:  # a flag's file: docker's words, as its flag parsing says them
        raise _with_help(cmd, exc.message, exc.status) from None


def _with_help(cmd: DockerCommand, message: str, status: int) -> DockerError:
    """The CLI's ``withHelp``: its error, then where to read about the flags."""
    return DockerError(f"docker: {message}\n\nRun 'docker {cmd.command} --help' for more "
                       "information", status)


def _run_status(message: str) -> int:
    """``docker run``'s toStatusError: the status says what kind of failure it was."""
    if "executable file not found" in message or "no such file or directory" in message:
        return 127
    if "permission denied" in message or "is a directory" in message:
        return 126
    return ExitStatus.USAGE


def _localise_run_options(cmd: DockerCommand, result: Plan, env: dict | os._Environ,
                          translate: bool, cwd: str | None) -> None:
    replace: dict[int, list[str]] = {}
    for opt in cmd.options:
        if translate and opt.value is not None and opt.name in ("-v", "--volume", "--mount"):
            from remote_docker import bind_sources

            cwd = cwd or _current_directory()
            translated = (bind_sources.translate_mount if opt.name == "--mount" else
                          bind_sources.translate_volume)(opt, cwd, result.mounts)
            if translated is not None:
                replace[opt.start] = translated
            continue
        if opt.name in ("-e", "--env") and opt.value is not None:
            name, eq, _ = opt.value.partition("=")
            if eq:
                continue  # `-e VAR=value`: the user wrote the value on a command line
            if name in env:  # `-e VAR`: the workstation's value, passed out of band
                result.env[name] = env[name]
                replace[opt.start] = ["-e", name]
            else:  # unset here: docker leaves it unset, so the remote's must not leak in
                replace[opt.start] = []
        elif opt.name == "--env-file" and opt.value is not None:
            pairs = read_env_file(opt.value, env)
            result.env.update(pairs)
            replace[opt.start] = [w for k in pairs for w in ("-e", k)]
        elif opt.name == "--label-file" and opt.value is not None:
            labels = read_label_file(opt.value)
            replace[opt.start] = [w for lab in labels for w in ("--label", lab)]
        elif opt.name == "--cidfile" and opt.value is not None:
            _check_cidfile(opt.value)
            replace[opt.start] = _rewrite(opt, "--cidfile", _output(result, "cid", opt.value))
    if replace:
        result.argv = ["docker", *cmd.global_args, *cmd.path, *_apply(cmd, replace)]


def _current_directory() -> str:
    try:
        return os.getcwd()
    except OSError:
        raise UsageError("the current directory no longer exists", 125) from None


def _rewrite(opt: Option, name: str, value: str) -> list[str]:
    return [f"{name}={value}"] if opt.inline and name.startswith("--") else [name, value]


def _apply(cmd: DockerCommand, replace: dict[int, list[str]]) -> list[str]:
    """cmd.args with the options that start at the given indexes replaced."""
    out: list[str] = []
    ends = {o.start: o.end for o in cmd.options}
    i = 0
    while i < len(cmd.args):
        if i in replace and i < cmd.rest_index:
            out.extend(replace[i])
            i = ends[i]
        else:
            out.append(cmd.args[i])
            i += 1
    return out


def _output(result: Plan, kind: str, local_path: str) -> str:
    name = f"{kind}{len(result.outputs)}"
    result.outputs.append((name, os.path.abspath(local_path)))
    return OUTPUT_PLACEHOLDER + name


def _check_cidfile(path: str) -> None:
    """docker's ``newCIDFile``, which creates the file before the container: one that
    exists, or cannot be made, stops the run here."""
    if os.path.exists(path):
        raise CreateRefused(f"container ID file found, make sure the other container isn't "
                            f"running or delete {path}")
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as exc:
        raise CreateRefused(f"failed to create the container ID file: open {path}: "
                            f"{_reason(exc)}") from None
    os.unlink(path)  # written once the docker-machine says the ID (``Plan.outputs``)


def _localise_output(cmd: DockerCommand, result: Plan) -> None:
    """``save -o FILE`` / ``export -o FILE``: the remote writes stdout, we write FILE."""
    outs = [o for o in cmd.options if o.name in ("-o", "--output")]
    if not outs or outs[-1].value is None:
        return
    target = outs[-1].value
    parent = os.path.dirname(os.path.normpath(target))  # ValidateOutputPath: as typed
    if parent not in ("", ".") and not os.path.exists(parent):
        what = "save image" if cmd.command == "save" else "export container"
        raise DockerError(f"failed to {what}: invalid output path: stat {parent}: "
                          "no such file or directory")
    result.stdout_path = target
    result.tty = False
    result.argv = ["docker", *cmd.global_args, *cmd.path,
                   *_apply(cmd, {o.start: [] for o in outs})]


def _localise_input(cmd: DockerCommand, result: Plan) -> None:
    """``load -i FILE``: the workstation's file streamed as the remote's stdin."""
    ins = [o for o in cmd.options if o.name in ("-i", "--input")]
    if not ins or ins[-1].value is None:
        return
    path = _readable(ins[-1].value)
    result.stdin, result.stdin_path, result.tty = "file", path, False
    result.argv = ["docker", *cmd.global_args, *cmd.path,
                   *_apply(cmd, {o.start: [] for o in ins})]


def _localise_import(cmd: DockerCommand, result: Plan) -> None:
    """``import FILE``: the workstation's file as the remote's stdin (``import -``). A URL
    is fetched by the engine, as locally; ``-`` is our stdin already."""
    if not cmd.positionals:
        return
    index, source = cmd.positionals[0]
    if source == "-" or source.startswith(("http://", "https://")):
        return
    _readable(source)
    args = list(cmd.args)
    args[index] = "-"
    result.stdin, result.stdin_path, result.tty = "file", source, False
    result.argv = ["docker", *cmd.global_args, *cmd.path, *args]


def _reason(exc: OSError) -> str:
    """Go's words for ``exc``; ``gofs`` is imported only on this error path, off the shim's
    hot one (every module there is paid by every forwarded command)."""
    from remote_docker.gofs import reason

    return reason(exc)


def _readable(path: str) -> str:
    """``path``, once it opens for reading; else docker's ``open PATH: reason``, at once
    rather than from the stream's feeder after the remote command has started."""
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise DockerError(f"open {path}: {_reason(exc)}") from None
    return path


def _localise_iidfile(cmd: DockerCommand, result: Plan) -> None:
    opts = [o for o in cmd.options if o.name == "--iidfile" and o.value is not None]
    if opts:
        replace = {o.start: _rewrite(o, "--iidfile", _output(result, "iid", o.value))
                   for o in opts}
        result.argv = ["docker", *cmd.global_args, *cmd.path, *_apply(cmd, replace)]


def _read_lines(path: str) -> list[str]:
    """kvfile's lines: Go's bufio.ScanLines (``\\r\\n`` too), each valid UTF-8, the first
    without its BOM."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise UsageError(f"open {path}: {_reason(exc)}", 125) from None
    lines = []
    for number, raw in enumerate(data.split(b"\n")[:-1] if data.endswith(b"\n")
                                 else data.split(b"\n"), start=1):
        raw = raw[:-1] if raw.endswith(b"\r") else raw
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            listed = " ".join(str(b) for b in raw)
            raise UsageError(f"invalid env file ({path}): invalid utf8 bytes at line "
                             f"{number}: [{listed}]", 125) from None
        lines.append(line.removeprefix("\ufeff") if number == 1 else line)
    return lines


def read_env_file(path: str, env: dict | os._Environ) -> dict[str, str]:
    """Parse an env file exactly as docker's ``kvfile.Parse`` does.

    Lines are ``NAME=value`` (value taken literally, no quote processing) or a
    bare ``NAME`` (the workstation's value, skipped when unset); blank lines and
    lines starting with ``#`` are ignored; a name with whitespace is an error.
    """
    pairs: dict[str, str] = {}
    for raw in _read_lines(path):
        line = raw.lstrip()
        if not line or line.startswith("#"):
            continue
        name, eq, value = line.partition("=")
        if not name:
            raise UsageError(f"invalid env file ({path}): no variable name on line '{line}'", 125)
        if any(c in name for c in " \t\n\v\f\r"):
            raise UsageError(f"invalid env file ({path}): variable '{name}' contains "
                             "whitespaces", 125)
        if eq:
            pairs[name] = value
        elif name in env:
            pairs[name] = env[name]
    return pairs


def read_label_file(path: str) -> list[str]:
    """Labels from a label file: one ``key=value`` a line, ``#`` comments, blanks skipped."""
    labels = []
    for raw in _read_lines(path):
        line = raw.lstrip(" \t")
        if line and not line.startswith("#"):
            labels.append(line)
    return labels
