"""The bed's two accounts, their keys, runtime dirs and ws's remote-docker config.

`dm` is the docker-machine's user (group docker), `ws` the workstation's.
Both get `*` as password field: sshd with `UsePAM no` refuses an account
that useradd left locked (`!`), and `*` still allows no password login.
Keys are made once per bed and kept across `down`, so `up` stays fast.
"""

from __future__ import annotations

import grp
import os
import pwd
from pathlib import Path

from remote_docker.testbed import layout, runas
from remote_docker.testbed.process import run

DOCKER_GROUP = "docker"
CONFIG_TEXT = f'host = "{layout.DM_HOST}"\n'


def exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return True


def _password_field(user: str) -> str:
    for line in Path("/etc/shadow").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user and len(fields) > 1:
            return fields[1]
    return ""


def _in_group(user: str, group: str) -> bool:
    entry = grp.getgrnam(group)
    return user in entry.gr_mem or pwd.getpwnam(user).pw_gid == entry.gr_gid


def _ensure_account(user: str, groups: tuple[str, ...]) -> list[str]:
    done = []
    if not exists(user):
        extra = ["-G", ",".join(groups)] if groups else []
        run(["useradd", "--create-home", "--shell", "/bin/bash", *extra, user])
        done.append(f"created {user}")
    for group in groups:
        if not _in_group(user, group):
            run(["usermod", "-a", "-G", group, user])
            done.append(f"added {user} to {group}")
    if _password_field(user) != "*":
        run(["usermod", "-p", "*", user])
        done.append(f"unlocked {user}")
    return done


def ensure_accounts() -> str:
    """dm in group docker and ws, both with a home and bash; the two docker-less accounts."""
    done = _ensure_account(layout.DM_USER, (DOCKER_GROUP,))
    done += _ensure_account(layout.WS_USER, ())
    for user in (layout.OUTSIDER_USER, layout.NO_DOCKER_USER):
        done += _ensure_account(user, ())
    return ", ".join(done) or "ok"


def mkdir_owned(directory: Path, user: str, mode: int = 0o700) -> None:
    """Make directory and its missing parents below user's home, owned by user,
    so that ssh's permission checks on ~/.ssh (and the shims' on ~/.config) pass."""
    account = pwd.getpwnam(user)
    home = Path(account.pw_dir)
    for path in [*reversed(directory.parents), directory]:
        if home in path.parents and not path.exists():
            path.mkdir(mode=mode)
            os.chown(path, account.pw_uid, account.pw_gid)


def write_owned(path: Path, text: str, user: str, mode: int = 0o644) -> bool:
    """Write text to path (atomically) as owned by user; False when it already held it."""
    account = pwd.getpwnam(user)
    mkdir_owned(path.parent, user)
    if path.exists() and path.read_text() == text:
        return False
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.chown(tmp, account.pw_uid, account.pw_gid)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return True


def ensure_key(user: str) -> bool:
    """An ed25519 key at ~user/.ssh/id_ed25519, made once; True when made now."""
    key = layout.home(user) / ".ssh" / "id_ed25519"
    if key.exists() and key.with_suffix(".pub").exists():
        return False
    key.unlink(missing_ok=True)
    mkdir_owned(key.parent, user)
    run(runas.command(user, ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C",
                             f"{user}@remote-docker-testbed", "-f", str(key)]))
    return True


def public_key(user: str) -> str:
    return (layout.home(user) / ".ssh" / "id_ed25519.pub").read_text().strip()


def ensure_line(path: Path, line: str, user: str, mode: int = 0o600) -> bool:
    """Have `line` in the file, keeping the lines others put there; True when added."""
    old = path.read_text() if path.exists() else ""
    if line in old.splitlines():
        return False
    prefix = old if not old or old.endswith("\n") else old + "\n"
    return write_owned(path, prefix + line + "\n", user, mode)


def ensure_keys() -> str:
    """Per-bed keys for ws and dm; ws's key is authorized on dm, dm's nowhere yet.

    dm's own key exists for classic mounts (dm -> ws), which a later issue
    authorizes with restrictions; it is deliberately not trusted by ws here.
    """
    made = [user for user in (layout.WS_USER, layout.DM_USER) if ensure_key(user)]
    added = False
    for user in (layout.DM_USER, layout.OUTSIDER_USER, layout.NO_DOCKER_USER):
        authorized = layout.home(user) / ".ssh" / "authorized_keys"
        added = ensure_line(authorized, public_key(layout.WS_USER), user) or added
    done = [f"made {user}'s key" for user in made] + (["authorized ws on dm"] if added else [])
    return ", ".join(done) or "ok"


def ensure_runtime_and_config() -> str:
    """XDG_RUNTIME_DIR for ws (the shims keep their ssh control sockets there), and
    ws's remote-docker config naming the docker-machine."""
    account = pwd.getpwnam(layout.WS_USER)
    done = []
    layout.RUNTIME_ROOT.mkdir(mode=0o755, parents=True, exist_ok=True)
    runtime = layout.runtime_dir(layout.WS_USER)
    if not runtime.is_dir():
        runtime.mkdir(mode=0o700)
        done.append(f"made {runtime}")
    stat = runtime.stat()
    if (stat.st_uid, stat.st_gid, stat.st_mode & 0o7777) != (account.pw_uid, account.pw_gid, 0o700):
        os.chown(runtime, account.pw_uid, account.pw_gid)
        os.chmod(runtime, 0o700)
    config = layout.home(layout.WS_USER) / ".config" / "remote-docker" / "config.toml"
    if write_owned(config, CONFIG_TEXT, layout.WS_USER):
        done.append(f"wrote {config}")
    return ", ".join(done) or "ok"


def accounts_ok() -> bool:
    usable = all(exists(user) and _password_field(user) == "*"
                 for user in (layout.DM_USER, layout.WS_USER, layout.OUTSIDER_USER,
                              layout.NO_DOCKER_USER))
    return usable and _in_group(layout.DM_USER, DOCKER_GROUP)
