"""``remote-docker completion [bash|zsh|fish]``: shell completion for our verbs and shims.

The scripts are generated from the same tables the programs use (the
dispatcher's VERBS, the shims table), so a new verb completes without anyone
editing a script.  ``docker`` completes its subcommand names from a static list
and only where the shell has no docker completion of its own: docker's own
completion asks ``docker`` for containers and images, which through the shim
lists the docker-machine's, so it is the better one when present.

Host names for ``use`` come from ``remote-docker completion --hosts`` (docker
contexts with an ssh:// endpoint and ``Host`` aliases in ``~/.ssh/config``),
asked at the moment of completion.
"""

import os
import sys

from remote_docker import shims
from remote_docker.cli.remote_docker import VERBS
from remote_docker.errors import ExitStatus, UsageError

SHELLS = ("bash", "zsh", "fish")

DOCKER_COMMANDS = (
    "attach build builder buildx checkpoint commit compose config container context cp create "
    "diff events exec export history image images import info init inspect kill load login "
    "logout logs manifest network node pause plugin port ps pull push rename restart rm rmi run "
    "save search secret service stack start stats stop swarm system tag top trust unpause "
    "update version volume wait").split()

COMPOSE_COMMANDS = (
    "build config cp create down events exec images kill logs ls pause port ps pull push "
    "restart rm run scale start stop top unpause up version wait watch").split()

# What follows a verb: its options, or fixed words.
VERB_WORDS: dict[str, list[str]] = {
    "use": ["--accept-new", "--repin"],
    "install-shims": ["--dir", "--force"],
    "uninstall-shims": ["--dir"],
    "completion": list(SHELLS),
    "testbed": ["up", "down", "status", "exec"],
}


def ssh_aliases(path: str) -> list[str]:
    """``Host`` names without wildcards in one ssh config file (Include is not followed)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    names = []
    for line in lines:
        words = line.replace("=", " ").split()
        if len(words) > 1 and words[0].lower() == "host":
            names += [w for w in words[1:] if not set(w) & set("*?!")]
    return names


def completion_hosts(env: dict | os._Environ = os.environ) -> list[str]:
    from remote_docker import hostkeys

    contexts = [n for n, e in hostkeys.docker_contexts(env).items() if e.startswith("ssh://")]
    home = env.get("HOME") or os.path.expanduser("~")
    aliases = ssh_aliases(os.path.join(home, ".ssh", "config"))
    return sorted(set(contexts + aliases))


def _words(items: list[str] | tuple[str, ...]) -> str:
    return " ".join(items)


def bash_script() -> str:
    verbs = _words([*VERBS, "--help", "--version"])
    cases = "".join(f"        {verb}) words=\"{_words(words)}\" ;;\n"
                    for verb, words in VERB_WORDS.items())
    return f"""# remote-docker completion for bash: eval "$(remote-docker completion bash)"
_remote_docker() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}" words=""
    if (( COMP_CWORD == 1 )); then
        COMPREPLY=( $(compgen -W "{verbs}" -- "$cur") ); return
    fi
    if [[ $prev == --dir ]]; then COMPREPLY=( $(compgen -d -- "$cur") ); return; fi
    case "${{COMP_WORDS[1]}}" in
{cases}        local) words="{_words(DOCKER_COMMANDS)}" ;;
    esac
    COMPREPLY=( $(compgen -W "$words" -- "$cur") )
    if [[ ${{COMP_WORDS[1]}} == use && $cur != -* ]]; then
        COMPREPLY+=( $(compgen -W "$(remote-docker completion --hosts 2>/dev/null)" -- "$cur") )
    fi
}}
_remote_docker_words() {{
    (( COMP_CWORD == 1 )) && COMPREPLY=( $(compgen -W "$1" -- "${{COMP_WORDS[COMP_CWORD]}}") )
}}
_remote_docker_docker() {{ _remote_docker_words "{_words(DOCKER_COMMANDS)}"; }}
_remote_docker_compose() {{ _remote_docker_words "{_words(COMPOSE_COMMANDS)}"; }}
complete -F _remote_docker remote-docker
# docker's own completion, where installed, knows far more: leave it in charge.
complete -p docker >/dev/null 2>&1 || [[ -e /usr/share/bash-completion/completions/docker ]] \\
    || complete -F _remote_docker_docker docker
complete -p docker-compose >/dev/null 2>&1 || complete -F _remote_docker_compose docker-compose
complete -o default -o bashdefault {_words(_file_shims())} 2>/dev/null || true
"""


def _file_shims() -> list[str]:
    """Shims that take files and arguments of their own: plain file completion."""
    return [n for n in shims.SHIMS if n not in ("docker", "docker-compose", "remote-docker")]


def _zsh_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def zsh_script() -> str:
    described = " ".join(_zsh_quote(f"{verb.replace(':', chr(92) + ':')}:{text}")
                         for verb, (_, text) in VERBS.items())
    cases = "".join(f"    {verb}) compadd -- {_words(words)} ;;\n"
                    for verb, words in VERB_WORDS.items())
    return f"""#compdef remote-docker docker docker-compose
# remote-docker completion for zsh: eval "$(remote-docker completion zsh)"
(( $+functions[compdef] )) || {{ autoload -Uz compinit && compinit; }}
_remote_docker() {{
  local -a verbs
  verbs=({described})
  if (( CURRENT == 2 )); then _describe 'remote-docker command' verbs; return; fi
  if [[ $words[CURRENT-1] == --dir ]]; then _files -/; return; fi
  case $words[2] in
{cases}    local) (( CURRENT == 3 )) && compadd -- {_words(DOCKER_COMMANDS)} ;;
  esac
  [[ $words[2] == use ]] && compadd -- ${{(f)"$(remote-docker completion --hosts 2>/dev/null)"}}
}}
_remote_docker_docker() {{
  (( CURRENT == 2 )) && compadd -- {_words(DOCKER_COMMANDS)} || _files
}}
_remote_docker_compose() {{
  (( CURRENT == 2 )) && compadd -- {_words(COMPOSE_COMMANDS)} || _files
}}
compdef _remote_docker remote-docker
# docker's own completion, where installed, knows far more: leave it in charge.
(( $+_comps[docker] )) || compdef _remote_docker_docker docker
(( $+_comps[docker-compose] )) || compdef _remote_docker_compose docker-compose
"""


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def fish_script() -> str:
    lines = ["# remote-docker completion for fish: remote-docker completion fish | source",
             "complete -c remote-docker -f"]
    for verb, (_, text) in VERBS.items():
        lines.append(f"complete -c remote-docker -n __fish_use_subcommand -a {verb} "
                     f"-d {_fish_quote(text)}")
    for verb, words in VERB_WORDS.items():
        seen = f"-n '__fish_seen_subcommand_from {verb}'"
        for word in words:
            if word.startswith("--"):
                lines.append(f"complete -c remote-docker {seen} -l {word[2:]}"
                             + (" -r -F" if word == "--dir" else ""))
            else:
                lines.append(f"complete -c remote-docker {seen} -a {word}")
    lines.append("complete -c remote-docker -n '__fish_seen_subcommand_from use' "
                 "-a '(command -q remote-docker; and remote-docker completion --hosts 2>/dev/null)'")
    lines.append("complete -c remote-docker -n '__fish_seen_subcommand_from local' "
                 f"-a {_fish_quote(_words(DOCKER_COMMANDS))}")
    lines.append(f"complete -c docker -n __fish_use_subcommand -a "
                 f"{_fish_quote(_words(DOCKER_COMMANDS))}")
    lines.append(f"complete -c docker-compose -n __fish_use_subcommand -a "
                 f"{_fish_quote(_words(COMPOSE_COMMANDS))}")
    return "\n".join(lines) + "\n"


SCRIPTS = {"bash": bash_script, "zsh": zsh_script, "fish": fish_script}


def detect_shell(env: dict | os._Environ = os.environ) -> str:
    """The shell we run under (shellingham), else ``$SHELL``'s name, else ''."""
    from remote_docker import deps

    deps.ensure_site_packages()  # the shims run with -IS
    fallback = os.path.basename(env.get("SHELL", ""))
    try:
        import shellingham
    except ImportError:
        return fallback
    try:
        return shellingham.detect_shell()[0]
    except shellingham.ShellDetectionFailure:  # no known shell among our ancestors
        return fallback


def main(args: list[str]) -> int:
    if args == ["--hosts"]:
        sys.stdout.write("".join(f"{h}\n" for h in completion_hosts()))
        return ExitStatus.OK
    if args and args[0] in ("-h", "--help"):
        sys.stdout.write("usage: remote-docker completion [bash|zsh|fish]\n")
        return ExitStatus.OK
    if len(args) > 1:
        raise UsageError("completion: expected at most one shell: bash, zsh or fish")
    shell = args[0] if args else detect_shell()
    if shell not in SCRIPTS:
        how = "" if args else " (detected)"
        raise UsageError(f"no completion for shell {shell or 'unknown'!r}{how}: "
                         "pass bash, zsh or fish")
    sys.stdout.write(SCRIPTS[shell]())
    return ExitStatus.OK
