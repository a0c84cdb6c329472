"""The docker-machines a workstation knows: ``machines.toml`` next to the config file.

``remote-docker use`` records each machine it switches to, under the name the
user typed; ``remote-docker machines --import-contexts`` adds every docker
context whose endpoint is ``ssh://…``.  The config file's ``host`` stays the
one current machine; this file only remembers names, so ``use NAME`` can
switch back (and pins the host key then, never at import).
"""

import json
import os

from remote_docker import config
from remote_docker.errors import ConfigError

FILE = "machines.toml"


def path(env: dict | os._Environ = os.environ) -> str:
    return os.path.join(config.config_dir(env), FILE)


def known(env: dict | os._Environ = os.environ) -> dict[str, str]:
    """name -> spec, in the file's order ({} when there is no file)."""
    import tomllib

    try:
        with open(path(env), "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path(env)}: {exc}") from None
    table = data.get("machines", {})
    return {k: v for k, v in table.items() if isinstance(v, str)} if isinstance(table, dict) \
        else {}


def save(machines: dict[str, str], env: dict | os._Environ = os.environ) -> str:
    """Write the file atomically; TOML basic strings are JSON strings."""
    target = path(env)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    text = "[machines]\n" + "".join(f"{json.dumps(k)} = {json.dumps(v)}\n"
                                    for k, v in machines.items())
    tmp = f"{target}.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, target)
    return target


def remember(name: str, spec: str, env: dict | os._Environ = os.environ) -> None:
    machines = known(env)
    if machines.get(name) != spec:
        machines[name] = spec
        save(machines, env)


def ssh_contexts(env: dict | os._Environ = os.environ) -> dict[str, str]:
    """docker contexts whose endpoint is ssh://, the only kind remote-docker can use."""
    from remote_docker.hostkeys import docker_contexts

    return {name: host for name, host in docker_contexts(env).items()
            if host.startswith("ssh://")}


def import_contexts(env: dict | os._Environ = os.environ) -> list[str]:
    """Add every ssh docker context by its name; the names added or changed."""
    machines = known(env)
    added = [name for name, host in ssh_contexts(env).items() if machines.get(name) != host]
    for name in added:
        machines[name] = ssh_contexts(env)[name]
    if added:
        save(machines, env)
    return added


def current(env: dict | os._Environ = os.environ) -> str:
    """The spec in force ("" when none): REMOTE_DOCKER_HOST, else the config file."""
    try:
        return config.machine_spec(env)
    except ConfigError:
        return ""


def listing(env: dict | os._Environ = os.environ) -> list[tuple[bool, str, str]]:
    """(is current, name, spec) for every known machine, the current one always included."""
    machines = known(env)
    now = current(env)
    rows = [(spec == now or name == now, name, spec) for name, spec in machines.items()]
    if now and not any(c for c, _, _ in rows):
        rows.insert(0, (True, now, now))
    return rows
