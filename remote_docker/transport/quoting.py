"""Quoting argv for the docker-machine's POSIX shell, and the scripts we send it.

``quote``/``join`` give exactly ``shlex.quote``/``shlex.join`` (a unit test
holds them to it) without importing ``shlex``, which pulls in ``re`` and costs
the shim ~14 ms a call.  Remote commands are always argv lists joined here,
never strings pasted together.
"""

from remote_docker.forward import OUTPUT_PLACEHOLDER

_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./-_")

# The docker-machine user's scratch directory for files we exchange with it.
STATE_DIR = '"${XDG_RUNTIME_DIR:-$HOME/.cache}/remote-docker"'
TAG_VAR = "REMOTE_DOCKER_CALL"


def quote(word: str) -> str:
    if not word:
        return "''"
    if set(word) <= _SAFE:
        return word
    return "'" + word.replace("'", "'\"'\"'") + "'"


def join(argv: list[str]) -> str:
    return " ".join(quote(w) for w in argv)


def output_path(tag: str, name: str) -> str:
    """The remote file, under the scratch dir ``$d``, that stands for a local output."""
    return f"out-{tag}-{name}"


def _word(word: str, tag: str) -> str:
    """Quote one word, turning an output placeholder into ``"$d"/out-…``."""
    if OUTPUT_PLACEHOLDER not in word:
        return quote(word)
    before, _, name = word.partition(OUTPUT_PLACEHOLDER)
    return (quote(before) if before else "") + '"$d"/' + quote(output_path(tag, name))


def docker_script(argv: list[str], tag: str, machine_label: str,
                  env_file: bool = False, needs_dir: bool = False) -> str:
    """The remote shell command that runs one forwarded docker argv.

    - a missing docker is one clear line naming the machine, exit 127, and so
      is a user who may not use the default docker socket (exit 1, as docker);
    - the environment we send arrives in a 0600 file that is sourced and
      removed before docker starts, so no value is ever on a command line;
    - docker runs as a child of the shell with ``REMOTE_DOCKER_CALL=<tag>`` in
      its environment, so a signal the user sends the shim can be delivered to
      exactly this docker client (``kill_script``), and the shell, trapping
      INT/QUIT, turns a signal death into 128+n: ssh reports a remote signal
      death as 255, which would be indistinguishable from a lost connection.
    """
    tool = argv[0]  # "docker", or another tool run there (docker-machine)
    hint = ": install it there, e.g. 'apt-get install docker.io'" if tool == "docker" else ""
    missing = quote(f"{tool}: {tool} is not installed on {machine_label} (or not on its PATH)"
                    + hint)
    denied = quote(f"may not use docker on {machine_label} (/var/run/docker.sock): add the "
                   "user to the docker group there")
    lines = [f"command -v {quote(tool)} >/dev/null 2>&1 || "
             f"{{ printf '%s\\n' {missing} >&2; exit 127; }}",
             '[ -z "${DOCKER_HOST-}" ] && [ -S /var/run/docker.sock ] && '
             '[ ! -w /var/run/docker.sock ] && [ ! -d "$HOME/.docker/contexts" ] && '
             f'{{ printf \'docker: user %s %s\\n\' "$(id -un)" {denied} >&2; exit 1; }}']
    if env_file or needs_dir:
        lines.append(f"d={STATE_DIR}")
    if env_file:
        envf = quote(f"env-{tag}")
        lines.append(f'. "$d"/{envf} || exit 125; rm -f "$d"/{envf}')
    if needs_dir:
        lines.append('mkdir -p "$d" || exit 125')
    lines.append("trap : INT QUIT")
    lines.append(f"{TAG_VAR}={tag} " + " ".join(_word(w, tag) for w in argv))
    lines.append("exit $?")
    return "\n".join(lines)


def env_script(env: dict[str, str]) -> bytes:
    """The file content that exports ``env`` when sourced by the remote shell."""
    return "".join(f"export {name}={quote(value)}\n" for name, value in env.items()).encode()


def upload_script(name: str) -> str:
    """Remote command: store stdin as a private file ``name`` in the scratch dir."""
    return f'umask 077; d={STATE_DIR}; mkdir -p "$d" && cat > "$d"/{quote(name)}'


def fetch_script(name: str) -> str:
    """Remote command: print a scratch file and remove it; exit 3 if it is not there."""
    return f'd={STATE_DIR}; f="$d"/{quote(name)}; [ -f "$f" ] || exit 3; cat "$f" && rm -f "$f"'


def kill_script(tag: str, signame: str) -> str:
    """Remote command: send SIGNAME to every process of call ``tag``.

    Found by the tag in their environment (``/proc/PID/environ``), which only
    the same user (or root) can read.  Retries for about a second because a
    signal can arrive before the remote docker has started.
    """
    needle = quote(f"{TAG_VAR}={tag}")
    return ("i=0; while [ $i -lt 20 ]; do "
            f"p=$(grep -lsxzF {needle} /proc/[0-9]*/environ); "
            'if [ -n "$p" ]; then for f in $p; do f=${f#/proc/}; '
            f'kill -s {quote(signame)} "${{f%/environ}}" 2>/dev/null; done; exit 0; fi; '
            "i=$((i+1)); sleep 0.05; done; exit 1")
