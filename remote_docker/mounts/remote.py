"""The shell scripts a reverse mount runs on the docker-machine, built from quoted words.

Each step is one script, so a step costs one round trip on the master.  The
docker-machine's side of a mount lives under
``~/.cache/remote-docker/mounts/<owner>/`` there: ``<uuid>`` (the mountpoint),
``<uuid>.pid`` (its sshfs), ``<uuid>.lane`` (a stat-cached mount's write lane, while
it waits for its session), and in classic mode ``<uuid>.key[.pub]``.  ``<owner>``
keeps workstations that share a docker-machine account from sweeping each other's
mounts.

Every value reaches the shell through ``quoting.quote``; nothing is pasted.
"""

from __future__ import annotations

from remote_docker.errors import RemoteDockerError
from remote_docker.transport.quoting import join, quote

# Exit statuses of our scripts, each turned into one line by reverse.py.
NO_SSHFS, NO_FUSE, NO_ALLOW_OTHER, NO_DOCKER, NO_DIR = 10, 11, 12, 13, 14
SSHFS_DIED, NOT_MOUNTED, NOT_SERVING, VOLUME_FAILED = 20, 21, 22, 23
IN_USE, DIR_LEFT, VOLUME_LEFT = 30, 31, 32

# sshfs options, and why:
# - allow_other: dockerd (root) sees a user's FUSE mount only with it;
# - fsname=rd-<uuid>: findmnt and gc recognise the mount by its source;
# - auto_unmount: if sshfs dies the mountpoint is unmounted, never left dead;
# - no reconnect (the default): a lost relay gives ENOTCONN at once, not a hang;
# - dcache_timeout=0, attr_timeout=0.01: a change on the workstation is seen within a
#   second (sshfs keeps an entry while time(NULL) <= the second it was stored +
#   dcache_timeout, so 0 means "until the end of this second", and =1 held them
#   1-2 s; the kernel's own 1 s attribute cache came on top). Measured on the
#   bed (bench/sshfs_options.py): changes seen in 0.5-0.6 s instead of 1.5-1.9 s,
#   at the cost of a slower stat walk when round trips are long. The kernel keeps
#   attributes 10 ms, not 0: a stat right after the lookup that found the name
#   (what find, ls -l and git status do for every entry) is then answered by the
#   kernel instead of a second trip through sshfs; at 0 ms a cold walk of 5,000
#   files went from 18,100 to 24,900 files/s (plain sshfs: 27,600), for 10 ms
#   more staleness at most;
# - no follow_symlinks, no transform_symlinks: links stay links, as written;
# - no_contain_symlinks where sshfs has it (Debian's fix for CVE-2026-47187 made
#   readlink refuse targets that are absolute or hold ".."): here the links
#   resolve inside the container, as with a local bind mount, and the server
#   is the user's own workstation, so `../f` must read as `../f`.
SSHFS_OPTIONS = ("allow_other", "auto_unmount", "dcache_timeout=0", "attr_timeout=0.01")
# Added only when this sshfs knows it: an unknown option stops sshfs.
LINKS_AS_WRITTEN = "no_contain_symlinks"

# A session that took this long (seconds; ~2 round trips and a shell) means round trips
# are long enough for stat_cache to pay: on the bed 8 ms at 0 ms RTT, ~50 ms at +20 ms.
LONG_SESSION = 0.025


def stat_cache_wanted(setting: str, session_seconds: float) -> bool:
    """``on``/``off`` as said; ``auto``: on when a session took LONG_SESSION or more. At
    0 ms the cache's own hop costs more (a 5,000-file walk: 0.26 s without, 0.7 s with)
    than the round trips it saves; at +20 ms it saves a round trip per entry left when a
    second ends mid-directory."""
    return setting == "on" or (setting == "auto" and session_seconds >= LONG_SESSION)

MOUNT_WAIT_TICKS = 500  # polls of 20 ms: the mount must be live within about 10 s


def owner_key(owner: str) -> str:
    """A directory name for ``user@host``."""
    return "".join(c if c.isalnum() or c in "._@-" else "_" for c in owner) or "_"


def base_dir(owner: str) -> str:
    """Shell words for the owner's mounts directory on the docker-machine."""
    return '"$HOME/.cache/remote-docker/mounts/"' + quote(owner_key(owner))


def prepare(uuid: str, owner: str) -> str:
    """Check what a mount needs there, make the mountpoint, print its absolute path."""
    return "\n".join([
        f"command -v sshfs >/dev/null 2>&1 || exit {NO_SSHFS}",
        f"[ -r /dev/fuse ] && [ -w /dev/fuse ] || exit {NO_FUSE}",
        "grep -qsx '[[:space:]]*user_allow_other[[:space:]]*' /etc/fuse.conf "
        f"|| exit {NO_ALLOW_OTHER}",
        f"command -v docker >/dev/null 2>&1 || exit {NO_DOCKER}",
        f"b={base_dir(owner)}",
        f'mkdir -p "$b" && d="$b"/{quote(uuid)} && mkdir "$d" || exit {NO_DIR}',
        "printf '%s\\n' \"$d\"",
    ])


def sshfs_options(uuid: str, readonly: bool, extra: tuple[str, ...] = (),
                  own_cache: bool = True) -> str:
    """``own_cache`` false: sshfs keeps nothing (``stat_cache`` in front of it does)."""
    base = SSHFS_OPTIONS if own_cache else tuple(
        "dir_cache=no" if o.startswith("dcache_timeout=") else o for o in SSHFS_OPTIONS)
    return ",".join([f"fsname=rd-{uuid}", *base, *(["ro"] if readonly else []), *extra])


LINKS_OPTION_SCRIPT = (f"x=; sshfs -h 2>&1 | grep -q {LINKS_AS_WRITTEN} && "
                       f"x=,{LINKS_AS_WRITTEN}")


def passive_sshfs(mountpoint: str, uuid: str, local_dir: str, readonly: bool,
                  stat_cache: bool = False) -> str:
    """sshfs in the foreground, speaking SFTP on this session's stdin/stdout.

    The shell records its pid and becomes sshfs, so ``<uuid>.pid`` names it.
    With ``stat_cache`` (long round trips), and where python3 is, it becomes
    ``stat_cache`` running sshfs instead (its command line names the mountpoint
    too, so release's check and kill work the same; killing it ends sshfs).
    """
    def sshfs(own_cache: bool) -> str:
        options = sshfs_options(uuid, readonly, ("passive",), own_cache)
        return (join(["sshfs", "-f", "-o", options]) + '"$x" ' + join([f":{local_dir}"])
                + ' "$d"')

    lines = [f"d={quote(mountpoint)}", LINKS_OPTION_SCRIPT]
    if stat_cache:
        from pathlib import Path

        from remote_docker.mounts import stat_cache as module

        source = Path(module.__file__).read_text()
        lines.append("command -v python3 >/dev/null 2>&1 && echo $$ > \"$d.pid\" && exec python3 "
                     f"-c {quote(source)} {module.TTL} --lane \"$d.lane\" -- {sshfs(False)}")
    lines.append('echo $$ > "$d.pid" && exec ' + sshfs(True))
    return "\n".join(lines)


def write_lane(mountpoint: str) -> str:
    """The second session of a mount with ``stat_cache``: hands its stdin and stdout to
    the proxy listening at ``<mountpoint>.lane`` and stays until the proxy ends (its
    session must stay open). Without python3 there is no proxy: it ends at once."""
    from remote_docker.mounts.stat_cache import LANE_SOURCE

    return "\n".join([f"d={quote(mountpoint)}",
                      "command -v python3 >/dev/null 2>&1 || exit 0",
                      f'exec python3 -c {quote(LANE_SOURCE)} "$d.lane"'])


def classic_sshfs(mountpoint: str, uuid: str, login: str, port: int, key: str,
                  local_dir: str, readonly: bool) -> str:
    """sshfs to the workstation's sshd, ended when this session's stdin closes.

    sshfs does not read stdin in classic mode, so a watcher does: when the
    keeper goes away however it goes, the session ends and so does sshfs.
    """
    ssh_options = ("BatchMode=yes", f"IdentityFile={key}", "IdentitiesOnly=yes",
                   "StrictHostKeyChecking=yes", "ServerAliveInterval=15",
                   "ServerAliveCountMax=3")
    options = sshfs_options(uuid, readonly, tuple(ssh_options))
    return "\n".join([
        f"d={quote(mountpoint)}", LINKS_OPTION_SCRIPT,
        join(["sshfs", "-f", "-p", str(port), "-o", options]) + '"$x" '
        + join([f"{login}:{local_dir}"]) + ' "$d" </dev/null &',
        'p=$!; echo "$p" > "$d.pid"',
        '{ cat >/dev/null; kill "$p" 2>/dev/null; } <&0 &',
        'wait "$p"',
    ])


# Images tried, in order, for the one-shot container that raises the readahead:
# it needs a shell, and nothing is ever pulled for it.
READAHEAD_IMAGES = ("busybox:latest", "alpine:latest", "debian:stable-slim", "ubuntu:latest")
DEFAULT_READAHEAD_KB = 4096


def raise_readahead(mountpoint: str, kib: int) -> str:
    """Raise the kernel's readahead of this FUSE mount to ``kib``, in the background.

    Why: the kernel reads a FUSE file ahead by at most its bdi's read_ahead_kb,
    128 KiB by default, so a sequential read waits a round trip per 128 KiB;
    at +20 ms that is ~6 MB/s, with 4 MiB it is ~7x more (bench/sshfs_options.py).
    Only root may write that knob, but the docker-machine user is in group
    docker: a short container with the mount's bdi directory bound in does it
    (no --privileged).  In the background, so a mount is never slower to make;
    files opened before it lands read with the default.  Nothing happens when
    no image with a shell is on the machine: the mount works the same, slower.
    """
    images = " ".join(quote(i) for i in READAHEAD_IMAGES)
    return "\n".join([
        f"d={quote(mountpoint)}",
        'dev=$(findmnt -rn -o MAJ:MIN --mountpoint "$d" 2>/dev/null)',
        f'[ -n "$dev" ] && for i in {images}; do',
        '  docker image inspect "$i" >/dev/null 2>&1 || continue',
        '  (docker run --rm --network none --log-driver none --label remote-docker.helper=readahead'
        f' -v /sys/devices/virtual/bdi:/bdi "$i" sh -c "echo {int(kib)} > /bdi/$dev/read_ahead_kb"'
        ") </dev/null >/dev/null 2>&1 &",
        "  break",
        "done",
    ])


def wait_and_create_volume(mountpoint: str, uuid: str, labels: dict[str, str],
                           readahead_kb: int = 0) -> str:
    """Poll until the mount is live and answers, then make the volume; only then.

    Fails fast when sshfs has died; docker must never get the empty directory.
    """
    label_args: list[str] = []
    for key, value in labels.items():
        label_args += ["--label", f"{key}={value}"]
    create = join(["docker", "volume", "create", "--driver", "local", "--opt", "type=none",
                   "--opt", "o=bind", "--opt", f"device={mountpoint}", *label_args,
                   f"rd-{uuid}"])
    return "\n".join([
        f"d={quote(mountpoint)}; i=0",
        f"until findmnt -rn -o SOURCE --mountpoint \"$d\" 2>/dev/null | grep -qx {quote('rd-' + uuid)}; do",
        '  p=$(cat "$d.pid" 2>/dev/null)',
        f'  if [ -n "$p" ]; then kill -0 "$p" 2>/dev/null || exit {SSHFS_DIED};'
        f" elif [ $i -gt 100 ]; then exit {SSHFS_DIED}; fi",
        f"  i=$((i+1)); [ $i -gt {MOUNT_WAIT_TICKS} ] && exit {NOT_MOUNTED}; sleep 0.02",
        "done",
        f'ls "$d"/ >/dev/null || exit {NOT_SERVING}',
        f"{create} >/dev/null || exit {VOLUME_FAILED}",
        *([raise_readahead(mountpoint, readahead_kb)] if readahead_kb > 0 else []),
    ])


RELEASE_FUNCTION = f"""release() {{
  u=$1; force=$2; d="$b/$u"; v="rd-$u"; s=0
  if docker volume inspect "$v" >/dev/null 2>&1; then
    if ! docker volume rm "$v" >/dev/null 2>&1; then
      [ "$force" = 1 ] || return {IN_USE}
      s={VOLUME_LEFT}
    fi
  fi
  fusermount3 -u -z "$d" 2>/dev/null || fusermount -u -z "$d" 2>/dev/null
  p=$(cat "$d.pid" 2>/dev/null)
  if [ -n "$p" ] && tr '\\0' ' ' 2>/dev/null < "/proc/$p/cmdline" | grep -qF "$d"; then
    kill "$p" 2>/dev/null
  fi
  rmdir "$d" 2>/dev/null; rm -f "$d.pid" "$d.lane" "$d.key" "$d.key.pub"
  [ -e "$d" ] && return {DIR_LEFT}
  return $s
}}"""


def release(uuid: str, owner: str, force: bool) -> str:
    """Volume first (so no container can get the mount half gone), then mount, sshfs, dir.

    Every step tolerates "already gone".  Without ``force`` a volume in use
    stops it before anything is changed; with it, the rest is still undone.
    """
    return "\n".join([f"b={base_dir(owner)}", RELEASE_FUNCTION,
                      f"release {quote(uuid)} {1 if force else 0}"])


# Containers that bind a path inside $d (a file of the mount), one id a line.
_BINDERS = ("docker ps -aq | xargs -r docker inspect --format "
            "'{{.Id}}{{range .Mounts}} {{.Source}}{{end}}' 2>/dev/null | "
            "while read -r c s; do case \" $s \" in *\" $d/\"*) echo \"$c\";; esac; done")


def release_volume(uuid: str, mountpoint: str = "") -> str:
    """Remove the volume if it is there; if a container uses it, name the containers, exit IN_USE.

    A container that binds a single file of the mount (served as
    ``<mountpoint>/<name>``) uses it without naming its volume: given the
    mountpoint, those containers count as users too, and come first.
    """
    v = quote(f"rd-{uuid}")
    binders = [f"d={quote(mountpoint)}", f"b=$({_BINDERS})",
               f'[ -n "$b" ] && {{ echo "$b"; exit {IN_USE}; }}'] if mountpoint else []
    return "\n".join([
        *binders,
        f"docker volume inspect {v} >/dev/null 2>&1 || exit 0",
        f"docker volume rm {v} >/dev/null 2>&1 && exit 0",
        f"docker ps -aq --filter volume={v}; exit {IN_USE}",
    ])


def sweep(owner: str) -> str:
    """gc: release everything of ours there whose uuid is not on stdin (the live ones).

    Volumes labelled with our owner, entries in our mounts directory, and
    sshfs processes serving a mountpoint in it.  Prints ``<status> <uuid>``
    for each one it released (status 0) or could not release.
    """
    owner_filter = quote(f"label=remote-docker.owner={owner}")
    return "\n".join([
        f"b={base_dir(owner)}", "live=$(cat)", RELEASE_FUNCTION,
        "done_=' '",
        'one() { case "$live $done_" in *"$1"*) return;; esac; done_="$done_ $1"; '
        'release "$1" 1; echo "$? $1"; }',
        f"for v in $(docker volume ls -q --filter {owner_filter}); do one \"${{v#rd-}}\"; done",
        'for e in "$b"/*; do [ -e "$e" ] || continue; u=${e##*/}; one "${u%%.*}"; done',
        'for p in $(pgrep -u "$(id -u)" sshfs); do',
        '  c=$(tr \'\\0\' \' \' 2>/dev/null < "/proc/$p/cmdline") || continue',
        '  case "$c" in *"$b/"*) u=${c##*"$b/"}; u=${u%% *}; '
        'case "$live" in *"$u"*) ;; *) kill "$p" 2>/dev/null;; esac;; esac',
        "done",
        "exit 0",
    ])


def watch_container(container: str) -> str:
    """Print ``gone`` once the container is destroyed (or already is), then end.

    ``docker events`` never ends by itself, so it is killed when it has
    spoken, or when this session's stdin closes (the keeper went away).
    """
    c = quote(container)
    return "\n".join([
        "t=$(date +%s)",
        f"docker container inspect {c} >/dev/null 2>&1 || {{ echo gone; exit 0; }}",
        f"docker events --since \"$t\" --filter container={c} --filter event=destroy "
        "--format gone &",
        'p=$!',
        '{ cat >/dev/null; kill "$p" 2>/dev/null; } <&0 &',
        'wait "$p"',
    ])


class MountError(RemoteDockerError):
    """A reverse mount could not be made or released; the message says why, in one line."""


class MountInUse(MountError):
    """The volume is used by a container: releasing it now would pull it from under it."""


def explain(status: int, machine: str, detail: str = "") -> MountError:
    """One line for a script's exit status, with the last thing sshfs or docker said."""
    lines = {
        NO_SSHFS: f"sshfs is not installed on {machine} (Debian: apt-get install sshfs)",
        NO_FUSE: f"/dev/fuse on {machine} is missing or not read-write for its user",
        NO_ALLOW_OTHER: f"/etc/fuse.conf on {machine} lacks the line user_allow_other: without "
                        "it dockerd cannot see a user's FUSE mount (add it there, as root)",
        NO_DOCKER: f"docker is not installed on {machine}",
        NO_DIR: f"cannot make a mountpoint under ~/.cache/remote-docker/mounts on {machine}",
        SSHFS_DIED: f"sshfs on {machine} ended before the mount was live",
        NOT_MOUNTED: f"the mount on {machine} did not become live within 10 s",
        NOT_SERVING: f"the mount on {machine} does not answer",
        VOLUME_FAILED: f"docker on {machine} could not create the volume",
        IN_USE: "the volume is in use by a container: remove the container first",
        DIR_LEFT: f"the mountpoint on {machine} could not be removed",
        VOLUME_LEFT: "the volume is in use by a container and was left for gc",
        255: f"lost the connection to {machine}",
    }
    message = lines.get(status, f"a mount step failed on {machine} (status {status})")
    return (MountInUse if status == IN_USE else MountError)(
        message + (f": {detail}" if detail and status not in (IN_USE, NO_ALLOW_OTHER) else ""))
