"""``make demo``: the main job end to end, as a user on the workstation sees it.

Runs against the built-in local docker-machine (the test bed): every command
below is run as the workstation user ``ws`` through the ``docker`` shim, and
is printed before it runs, so the reader can type the same thing later with
``remote-docker testbed exec -- …``.
"""

import shlex
import statistics
import subprocess
import sys
import time

from remote_docker import testbed
from remote_docker.testbed import layout

EXAMPLE = layout.SRC_DIR / "examples" / "compose-demo"  # ws may read the bed's copy
BOLD, DIM, RESET = ("\033[1m", "\033[2m", "\033[0m") if sys.stdout.isatty() else ("", "", "")


def as_ws(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """ws's command and environment: in ws's own network namespace (the bed's workstation,
    whose localhost is not the docker-machine's), with published ports forwarded."""
    return testbed.ws_command(argv, netns=True), testbed.ws_env(ports=True)


def show(title: str, argv: list[str], stdin: bytes | None = None) -> subprocess.CompletedProcess:
    typed = argv[2] if argv[:2] == ["sh", "-c"] else shlex.join(argv)  # what one would type
    print(f"\n{BOLD}{title}{RESET}\n{DIM}ws$ {typed}{RESET}", flush=True)
    command, env = as_ws(argv)
    proc = subprocess.run(command, env=env, input=stdin,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    sys.stdout.write(proc.stdout.decode(errors="replace"))
    if proc.returncode:
        print(f"{DIM}(exit status {proc.returncode}){RESET}")
    return proc


def median_ms(argv: list[str], env_prefix: list[str], runs: int = 7) -> float:
    """Median wall time of ``argv`` as ws, in ms (after one warm-up run)."""
    cmd, env = as_ws([*env_prefix, *argv])
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> int:
    print(f"{BOLD}remote-docker demo{RESET}: the workstation user 'ws' uses the Docker engine "
          "of the docker-machine dm@127.0.0.2 over ssh, as if it were local.")
    # a connection left by something run outside ws's network namespace (bench/) would
    # listen for published ports on the machine's localhost, not ws's: start afresh
    subprocess.run(as_ws(["remote-docker", "disconnect"])[0], env=as_ws([])[1],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    show("Which docker answers? (client and server are the docker-machine's)",
         ["docker", "version", "--format", "client {{.Client.Version}}, server "
          "{{.Server.Version}} on {{.Server.Os}}/{{.Server.Arch}}"])
    show("Images on the docker-machine", ["docker", "images"])
    show("Run a container there; output, exit status and stdin are local",
         ["docker", "run", "--rm", "busybox", "sh", "-c",
          "echo hello from $(hostname); echo to stderr >&2; exit 3"])
    show("Pipe workstation data through a remote container",
         ["docker", "run", "-i", "--rm", "busybox", "wc", "-c"], stdin=b"x" * 1_000_000)
    show("Workstation files stay workstation files: save -o writes ws's own disk",
         ["sh", "-c", "docker save -o /tmp/busybox.tar busybox && ls -l /tmp/busybox.tar"])
    show("docker-run: this workstation directory, mounted where it is, in a remote container",
         ["sh", "-c", "mkdir -p ~/demo && cd ~/demo && echo 'from the workstation' > note.txt "
          "&& docker-run busybox sh -c 'pwd; cat note.txt; echo from the container > reply.txt' "
          "&& ls -l ~/demo && remote-docker mounts && echo '(no mounts left)'"])
    show("docker build: the context is the workstation's directory, streamed",
         ["sh", "-c", "mkdir -p ~/demo/app && cd ~/demo/app && echo 'built from ws' > note.txt "
          "&& printf 'FROM busybox\\nCOPY note.txt /\\nCMD cat /note.txt\\n' > Dockerfile "
          "&& docker build -q -t rd-demo-app . >/dev/null && docker run --rm rd-demo-app "
          "&& docker rmi -f rd-demo-app >/dev/null"])
    show("Images travel between the workstation's engine and the docker-machine, "
         "no registry: only the layers the other side lacks",
         ["sh", "-c", "mkdir -p ~/demo/img && cd ~/demo/img "
          "&& printf 'FROM busybox\\nRUN head -c 5000000 /dev/urandom > /data\\n' > Dockerfile "
          "&& remote-docker local build -q -t rd-demo-img:1 . >/dev/null 2>&1 "
          "&& remote-docker push rd-demo-img:1 "
          "&& printf 'FROM rd-demo-img:1\\nRUN echo two > /version\\n' > Dockerfile "
          "&& remote-docker local build -q -t rd-demo-img:2 . >/dev/null 2>&1 "
          "&& remote-docker push rd-demo-img:2; "
          "docker rmi rd-demo-img:1 rd-demo-img:2 >/dev/null; "
          "remote-docker local rmi rd-demo-img:1 rd-demo-img:2 >/dev/null"])
    show("docker compose with the project on the workstation: its bind mounts, env files "
         "and build context are the workstation's",
         ["sh", "-c", f"rm -rf ~/demo/compose && cp -r {EXAMPLE} ~/demo/compose "
          "&& cd ~/demo/compose && docker compose up -d >/dev/null 2>&1 "
          "&& for i in 1 2 3 4 5 6 7 8 9 10; do [ -s data/greeting.txt ] && break; sleep 0.5; "
          "done; cat data/greeting.txt && docker compose ps && remote-docker mounts "
          "&& docker compose down >/dev/null 2>&1 && remote-docker mounts "
          "&& echo '(down: no mounts left)'"])
    show("Published ports reach the workstation's own localhost",
         ["sh", "-c", "docker run -d --rm --name rd-demo-web -p 8080:80 busybox sh -c "
          "'echo served by a remote container > /tmp/index.html; httpd -f -p 80 -h /tmp' "
          ">/dev/null && python3 -c \"import urllib.request as u; "
          "print(u.urlopen('http://localhost:8080/').read().decode(), end='')\" "
          "&& remote-docker ports; docker rm -f rd-demo-web >/dev/null"])

    print(f"\n{BOLD}How fast is one command?{RESET} (median of 7 'docker ps', warm)")
    ours = median_ms(["docker", "ps"], [])
    theirs = median_ms(["/usr/local/bin/docker" if _exists("/usr/local/bin/docker")
                        else "/usr/bin/docker", "ps"],
                       ["env", "DOCKER_HOST=ssh://dm@127.0.0.2"])
    print(f"  remote-docker shim          {ours:7.1f} ms")
    print(f"  DOCKER_HOST=ssh:// (docker) {theirs:7.1f} ms   -> ours is {theirs / ours:.1f}x faster")

    print(f"\n{BOLD}Try next{RESET}")
    print("  remote-docker testbed exec -- bash      # a shell as ws, shims on PATH")
    print("  docker run -it --rm busybox sh          # inside it: a remote container, local TTY")
    print("  docker run --rm -v .:/w busybox ls /w   # workstation directories in containers")
    print("  remote-docker status                    # machine, connection, remote docker")
    print("  make test / make bench                  # the test suite / the benchmark table")
    print("  remote-docker use me@my-server          # your own docker-machine (see README)")
    return 0


def _exists(path: str) -> bool:
    import os

    return os.access(path, os.X_OK)


if __name__ == "__main__":
    raise SystemExit(main())
