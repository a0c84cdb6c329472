"""The overlay: an image derived from any base, with an sshd the session can reach.

How the sshd gets in depends on the base, found by asking it
(``probe_script``) or told with ``--distro``:

- ``apt`` (Debian, Ubuntu), ``apk`` (Alpine), ``dnf``/``yum`` (Fedora, RHEL):
  the distribution's own openssh-server;
- ``bundle`` (busybox and other bases without a package manager or a C
  library of their own): OpenSSH's sshd and the shared libraries it links,
  copied from a builder stage of ``debian:stable-slim`` to the same paths.

The image holds no key: the host key and the authorized key are copied into
a volume of the session at ``dev run`` (``keys.container_files``), so an
exported image carries none.  The lines that install the sshd come before
anything session-specific, so every session on the same base shares the
docker build cache for the slow step.
"""

from __future__ import annotations

import os

from remote_docker.dev.session import KEY_DIR, LABEL, Session
from remote_docker.errors import UsageError

DISTROS = ("apt", "apk", "dnf", "yum", "bundle")
BUILDER_IMAGE = "debian:stable-slim"
OWN_DIR = "/opt/rd-dev"  # sshd_config and the start script, from the build context

PROBE_SCRIPT = (
    "for m in apt-get apk dnf yum; do command -v $m >/dev/null 2>&1 && { echo $m; exit 0; }; "
    "done; for l in /lib64/ld-linux-x86-64.so.2 /lib/ld-linux-aarch64.so.1 /lib/ld-musl-*; do "
    "[ -e $l ] && { echo libc; exit 0; }; done; echo none")

SSHD_CONFIG = f"""\
# remote-docker dev: the container's sshd, reached only through the docker-machine
Port 22
HostKey {KEY_DIR}/ssh_host_ed25519_key
AuthorizedKeysFile {KEY_DIR}/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
X11Forwarding no
PrintMotd no
PidFile none
Subsystem sftp internal-sftp
"""

# The image's ENV (PATH, LANG…) is not what sshd gives a session: the start
# script saves it for `dev exec` to source.
START_SCRIPT = f"""\
#!/bin/sh
# remote-docker dev: run the session's sshd in the foreground.
k={KEY_DIR}
if [ ! -s $k/ssh_host_ed25519_key ] || [ ! -s $k/authorized_keys ]; then
    echo "rd-dev: no session keys in $k: start this container with 'remote-docker dev run'" >&2
    exit 1
fi
mkdir -p /run/sshd /var/empty && chmod 0755 /run/sshd
rm -rf /run/rd-dev  # env files a killed dodo could not delete
(unset HOME HOSTNAME PWD OLDPWD SHLVL _; export -p) > $k/environment
sshd=$(command -v sshd || echo /usr/sbin/sshd)
exec "$sshd" -D -e -f {OWN_DIR}/sshd_config
"""

INSTALL = {
    "apt": "export DEBIAN_FRONTEND=noninteractive; apt-get update; "
           "apt-get install -y --no-install-recommends openssh-server; "
           "rm -rf /var/lib/apt/lists/*",
    "apk": "apk add --no-cache openssh-server",
    "dnf": "dnf install -y openssh-server; dnf clean all",
    "yum": "yum install -y openssh-server; yum clean all",
}

# In the builder: sshd, its helpers (OpenSSH >= 9.8 splits it) and every
# library ldd names, copied under /bundle at the paths they have.
BUNDLE_COPY = (
    "mkdir /bundle; "
    "for f in /usr/sbin/sshd /usr/lib/openssh/sshd-session /usr/lib/openssh/sshd-auth; do "
    "[ -e \"$f\" ] || continue; cp --parents \"$f\" /bundle; "
    "for lib in $(ldd \"$f\" | awk '$2 == \"=>\" && $3 ~ /^\\// {print $3} "
    "$1 ~ /^\\// {print $1}'); do cp --parents -L \"$lib\" /bundle; done; done")


def bundle_stage(builder: str) -> str:
    return f"FROM {builder} AS rd-dev-sshd\nRUN set -e; {INSTALL['apt']}; {BUNDLE_COPY}"


PRIVSEP_USER = ("grep -q '^sshd:' /etc/passwd || "
                "echo 'sshd:x:74:65534:sshd privsep:/run/sshd:/bin/false' >> /etc/passwd")


def distro_of(probe_output: str, base: str) -> str:
    """The overlay kind for what ``PROBE_SCRIPT`` printed in ``base``."""
    found = probe_output.strip().splitlines()[-1:] or [""]
    kind = {"apt-get": "apt", "apk": "apk", "dnf": "dnf", "yum": "yum", "none": "bundle"}.get(
        found[0])
    if kind:
        return kind
    if found[0] == "libc":
        raise UsageError(f"{base} has no package manager remote-docker knows (apt, apk, dnf, "
                         "yum) but a C library of its own: install an sshd in it, or pass "
                         "--distro bundle to copy Debian's sshd and libraries over it")
    raise UsageError(f"cannot tell what {base} is (it needs /bin/sh for the overlay): "
                     "pass --distro apt|apk|dnf|yum|bundle")


def dockerfile(base: str, distro: str, session_id: str, builder: str = BUILDER_IMAGE) -> str:
    if distro not in DISTROS:
        raise UsageError(f"--distro {distro!r}: use one of {', '.join(DISTROS)}")
    lines = ["# remote-docker dev overlay: edit freely, 'remote-docker dev build' uses it as is"]
    if distro == "bundle":
        lines.append(bundle_stage(builder))
    lines += [f"FROM {base}", "USER root"]
    if distro == "bundle":
        lines += ["COPY --from=rd-dev-sshd /bundle/ /", f"RUN {PRIVSEP_USER}"]
    else:
        lines.append(f"RUN set -e; {INSTALL[distro]}; rm -f /etc/ssh/ssh_host_*")
    lines += [f"COPY sshd_config start {OWN_DIR}/",
              f'ENTRYPOINT ["{OWN_DIR}/start"]',
              "CMD []",
              f"LABEL {LABEL}={session_id}"]
    return "\n".join(lines) + "\n"


def write_context(session: Session, distro: str, builder: str = BUILDER_IMAGE) -> str:
    """The build context in the session directory; returns the Dockerfile's path."""
    os.makedirs(session.context_dir, mode=0o700, exist_ok=True)
    files = {"Dockerfile": (dockerfile(session.base_image, distro, session.id, builder), 0o644),
             "sshd_config": (SSHD_CONFIG, 0o644), "start": (START_SCRIPT, 0o755)}
    for name, (text, mode) in files.items():
        path = os.path.join(session.context_dir, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(path, mode)
    return os.path.join(session.context_dir, "Dockerfile")


def context_tar(directory: str) -> bytes:
    """The build context as a tar for ``docker build -``: files owned by root."""
    import io
    import tarfile

    def root_owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name in sorted(os.listdir(directory)):
            tar.add(os.path.join(directory, name), arcname=name, filter=root_owned)
    return out.getvalue()
