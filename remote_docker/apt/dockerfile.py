"""What ``make_dockerfile`` prints and ``apt-docker`` builds: a Dockerfile, and a launcher per program.

The package layer comes first and depends only on the package names, so
images of the same packages share it (docker's build cache), whoever builds
them; the user's uid only shapes the app's home directory after it, so that
the per-app home volume, which docker fills from the image on first use,
belongs to the user who runs the launcher.
"""

from __future__ import annotations

from remote_docker.transport.quoting import join, quote

BASE_IMAGE = "debian:stable-slim"
APP_HOME = "/home/app"
LABEL = "remote-docker.apt"  # its value: the package names, space-separated


def dockerfile(packages: list[str], uid: int, gid: int) -> str:
    names = " ".join(packages)
    return "\n".join([
        f"# Made by apt-docker (remote-docker) for: {names}",
        f"FROM {BASE_IMAGE}",
        "RUN apt-get update \\",
        " && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\",
        f"    {names} \\",
        " && rm -rf /var/lib/apt/lists/*",
        f"RUN mkdir -p {APP_HOME} && cp -a /etc/skel/. {APP_HOME}/ \\",
        f" && chown -R {uid}:{gid} {APP_HOME}",
        f"ENV HOME={APP_HOME}",
        f"LABEL {LABEL}={quote(names)}",
        "",
    ])


def home_volume(prefix: str, app: str) -> str:
    """The app's persistent home: a docker volume on the docker-machine."""
    return f"{prefix.replace('/', '-')}-home-{app}"


def launcher(program: str, path: str, image: str, volume: str, graphical: bool) -> str:
    """A shell script that runs ``path`` in ``image`` as if it were installed here.

    docker-run gives the current directory (reverse-mounted where it is, as
    the working directory), ``-i``/``-t`` as a local program would have; the
    graphical ones go through docker.x11 with the same mount.  ``exec``: the
    launcher's exit status and signals are the app's.
    """
    common = ["--user", "@UID@", "-v", f"{volume}:{APP_HOME}", "--entrypoint", path]
    if graphical:
        runner = ["docker.x11", "-v", "@PWD@:@PWD@", "-w", "@PWD@", *common, image]
    else:
        runner = ["docker-run", *common, image]
    line = join(runner).replace("@UID@", '"$(id -u):$(id -g)"').replace("@PWD@", '"$PWD"')
    return "\n".join([
        "#!/bin/sh",
        f"# apt-docker launcher: {program} from image {image}",
        "# ('apt-docker remove' deletes it; edit freely, or see 'make_dockerfile').",
        f'exec {line} "$@"',
        "",
    ])
