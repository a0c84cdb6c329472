"""``remote-docker dev VERB`` and ``dodo``: dev sessions (logic in ``remote_docker.dev``).

``dodo CMD…`` is ``remote-docker dev exec CMD…``.  Prose goes to stderr; what
a script may want (a path, an image id, the history) to stdout.
"""

from __future__ import annotations

import os
import sys

from remote_docker.cli import guarded
from remote_docker.errors import ExitStatus, UsageError

USAGE = """usage: remote-docker dev VERB [-s NAME] [ARGS…]

A dev session: a container with an sshd on the docker-machine, reached by ssh
through it, with the work dir mounted at the same path.
  init [NAME] --image IMAGE [--host MACHINE] [--env VAR]…  new session for this dir
  overlay [--distro apt|apk|dnf|yum|bundle] [--builder IMAGE]  the Dockerfile adding sshd
  build                  build the session image on the docker-machine
  push                   send an image built here (layer-only; dev build builds there)
  run [--port N] [--recreate] [-- DOCKER-RUN-OPTIONS…]  start the container (again)
  exec [-w DIR] CMD…     run CMD in the container (alias: dodo CMD…)
  mount [DIR] / umount   the container's filesystem on this workstation (sshfs)
  export [--tag IMAGE] [--push]               commit the container to an image
  status / list / env [VAR…]
  history [-l] [--files] the commands run (--files: what changed in the container)
  stop                   unmount, disconnect, stop the container (it stays)
  rm [--keep-image]      remove the container, volume, image and session dir
  gc [--host MACHINE]    remove what sessions whose directory is gone left there
The session: -s NAME, else $REMOTE_DOCKER_DEV, else the one whose work dir
holds the current directory, else the only one.
"""

EXEC_USAGE = "usage: dodo [-s NAME] [-w DIR] [--] CMD [ARG…]   (no CMD: a login shell)\n"


def parser(args: list[str]):
    """The verbs' grammar; argparse is imported here, off dodo's path."""
    import argparse

    class Parser(argparse.ArgumentParser):
        """Errors are one line and status 125, like the rest of remote-docker."""

        def error(self, message: str):  # type: ignore[override]
            if "unrecognized arguments" in message and args[:1] in (["run"], ["start"]):
                message += " (docker run options go after --)"
            raise UsageError(f"{self.prog.removeprefix('remote-docker ')}: {message}")

    top = Parser(prog="remote-docker dev", add_help=False)
    verbs = top.add_subparsers(dest="verb")

    def verb(name: str) -> argparse.ArgumentParser:
        sub = verbs.add_parser(name, prog=f"remote-docker dev {name}")
        if name not in ("init", "list", "gc"):
            sub.add_argument("-s", "--session")
        return sub

    init = verb("init")
    init.add_argument("name", nargs="?")
    init.add_argument("--image", required=True)
    init.add_argument("--host")
    init.add_argument("--env", action="append", default=[])
    init.add_argument("--dir")
    overlay_verb = verb("overlay")
    overlay_verb.add_argument("--distro", choices=("apt", "apk", "dnf", "yum", "bundle"))
    overlay_verb.add_argument("--builder", default="debian:stable-slim",
                              help="where --distro bundle takes sshd and its libraries from")
    verb("build")
    verb("push")
    for name in ("run", "start"):
        run = verb(name)
        run.add_argument("--port", type=int)
        run.add_argument("--recreate", action="store_true")
        run.add_argument("docker_args", nargs="*")
    verb("mount").add_argument("dir", nargs="?")
    verb("umount")
    export = verb("export")
    export.add_argument("--tag")
    export.add_argument("--push", action="store_true")
    verb("status")
    verb("list")
    history = verb("history")
    history.add_argument("-l", "--long", action="store_true")
    history.add_argument("--files", action="store_true")
    verb("env").add_argument("names", nargs="*")
    verb("stop")
    verb("rm").add_argument("--keep-image", action="store_true")
    verb("gc").add_argument("--host")
    return top


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    return _run(args)  # the remote-docker boundary (main in remote_docker.py) catches errors


def dodo(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    return guarded("dodo", lambda: run_exec(args))


def _run(args: list[str]) -> int:
    if not args or args[0] in ("-h", "--help", "help"):
        sys.stdout.write(USAGE)
        return ExitStatus.OK if args else ExitStatus.USAGE
    if args[0] == "exec":
        return run_exec(args[1:])
    opts = parser(args).parse_args(args)
    return VERBS[opts.verb](opts)


def parse_exec(args: list[str]) -> tuple[str | None, str | None, list[str]]:
    """(session, workdir, argv): our options end at the first word that is not one."""
    session = workdir = None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            i += 1
            break
        if arg in ("-s", "--session", "-w", "--workdir"):
            if i + 1 >= len(args):
                raise UsageError(f"dodo: {arg} needs a value")
            if arg in ("-s", "--session"):
                session = args[i + 1]
            else:
                workdir = args[i + 1]
            i += 2
        elif arg.startswith("-"):
            raise UsageError(f"dodo: unknown option {arg!r} (put CMD after --)")
        else:
            break
    return session, workdir, args[i:]


def _cwd() -> str:
    try:
        return os.getcwd()
    except OSError:
        raise UsageError("the current directory no longer exists") from None


def _find(name: str | None):
    from remote_docker.dev import session

    return session.find(name, _cwd())


def run_exec(args: list[str]) -> int:
    from remote_docker.dev import execute

    if args[:1] in (["-h"], ["--help"]):
        sys.stdout.write(EXEC_USAGE)
        return ExitStatus.OK
    name, workdir, argv = parse_exec(args)
    session = _find(name)
    tty = sys.stdin.isatty() and sys.stdout.isatty()
    ssh = execute.prepare(session, argv, _cwd(), workdir, tty or not argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvp(ssh[0], ssh)
    return ExitStatus.ERROR  # not reached


def _say(text: str) -> None:
    sys.stderr.write(text + "\n")


def do_init(opts) -> int:
    from remote_docker import config
    from remote_docker.dev import keys, session

    machine = opts.host or config.machine_spec(os.environ)
    if machine == config.LOCAL:
        raise UsageError("dev sessions need a docker-machine (the container is reached "
                         "through it): use --host MACHINE")
    config.parse_machine(machine)
    work_dir = os.path.realpath(opts.dir or _cwd())
    if not os.path.isdir(work_dir):
        raise UsageError(f"{work_dir}: not a directory")
    for var in opts.env:
        if not var.isidentifier():
            raise UsageError(f"--env {var!r}: give a variable's name (its value is read at "
                             "each dodo, never stored)")
    name = session.check_name(opts.name or session.default_name(work_dir))
    made = session.create(name, machine, opts.image, work_dir, opts.env)
    try:
        keys.make(made)
    except BaseException:
        import shutil

        shutil.rmtree(made.directory, ignore_errors=True)
        raise
    _say(f"session {name}: {opts.image} on {machine}, work dir {work_dir}")
    sys.stdout.write(made.directory + "\n")
    return ExitStatus.OK


def do_overlay(opts) -> int:
    from remote_docker.dev import lifecycle, link, overlay

    s = _find(opts.session)
    distro = opts.distro or lifecycle.probe(link.machine_master(s), s)
    s.distro = distro
    s.save()
    path = overlay.write_context(s, distro, opts.builder)
    _say(f"overlay for {s.base_image} ({distro}): edit it freely before 'dev build'")
    sys.stdout.write(path + "\n")
    return ExitStatus.OK


def do_build(opts) -> int:
    from remote_docker.dev import lifecycle, overlay

    s = _find(opts.session)
    if not os.path.exists(os.path.join(s.context_dir, "Dockerfile")):
        from types import SimpleNamespace

        do_overlay(SimpleNamespace(session=s.name, distro=None, builder=overlay.BUILDER_IMAGE))
    lifecycle.build(s)
    _say(f"built {s.image} on {s.machine}")
    return ExitStatus.OK


def do_push(opts) -> int:
    """Send the session image from the workstation's own engine, only the layers missing there.

    ``dev build`` builds on the docker-machine, so usually there is nothing to
    send; an image built here (``remote-docker local build -t IMAGE …``) goes
    by the layer-only ``remote-docker push``.
    """
    from remote_docker import images
    from remote_docker.cli.images import summary
    from remote_docker.dev import lifecycle, link

    s = _find(opts.session)
    if lifecycle.image_exists(link.machine_master(s), s):
        _say(f"{s.image} is on {s.machine} already: 'dev build' builds it there, "
             "nothing to push")
        return ExitStatus.OK
    try:
        outcomes = images.push([s.image])
    except UsageError as exc:
        raise UsageError(f"{exc.message}: 'remote-docker dev build' builds the session image "
                         "on the docker-machine, or build it here and push again") from None
    for outcome in outcomes:
        _say(summary("push", outcome))
    return ExitStatus.OK


def do_run(opts) -> int:
    from remote_docker.dev import lifecycle

    s = _find(opts.session)
    lifecycle.run(s, opts.docker_args, opts.port, recreate=opts.recreate)
    _say(f"session {s.name} is running: dodo CMD…, or "
         f"ssh -F {s.ssh_config} {s.host_alias}")
    return ExitStatus.OK


def do_mount(opts) -> int:
    from remote_docker.dev import fsmount

    path = fsmount.mount(_find(opts.session), opts.dir)
    sys.stdout.write(path + "\n")
    return ExitStatus.OK


def do_umount(opts) -> int:
    from remote_docker.dev import fsmount

    fsmount.umount(_find(opts.session))
    return ExitStatus.OK


def do_export(opts) -> int:
    from remote_docker.dev import lifecycle

    s = _find(opts.session)
    tag = opts.tag or f"{s.tag}:export"
    image_id = lifecycle.export(s, tag, opts.push)
    _say(f"committed {s.container} to {tag}{' and pushed it' if opts.push else ''}")
    sys.stdout.write(image_id + "\n")
    return ExitStatus.OK


def do_status(opts) -> int:
    from remote_docker.dev import lifecycle

    rows = lifecycle.status(_find(opts.session))
    width = max(len(k) for k in rows)
    sys.stdout.write("".join(f"{k.ljust(width)}  {v}\n" for k, v in rows.items()))
    return ExitStatus.OK


def do_list(opts) -> int:
    from remote_docker.dev import session

    for name in session.names():
        s = session.load(name)
        sys.stdout.write(f"{name}  {s.base_image}  {s.machine}  {s.work_dir}\n")
    return ExitStatus.OK


def do_history(opts) -> int:
    import time

    from remote_docker.dev import execute
    from remote_docker.transport import quoting

    if opts.files:
        from remote_docker.dev import lifecycle

        sys.stdout.write("".join(f"{line}\n" for line in
                                 lifecycle.changed_files(_find(opts.session))))
        return ExitStatus.OK
    for entry in execute.read_history(_find(opts.session)):
        line = quoting.join([str(a) for a in entry.get("argv", [])])
        if opts.long:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry.get("time", 0)))
            line = f"{when}  {entry.get('dir', '?')}  {line}"
        sys.stdout.write(line + "\n")
    return ExitStatus.OK


def do_env(opts) -> int:
    s = _find(opts.session)
    if opts.names:
        bad = [n for n in opts.names if not n.isidentifier()]
        if bad:
            raise UsageError(f"dev env: {bad[0]!r} is not a variable name")
        s.env_names = list(dict.fromkeys(opts.names))
        s.save()
    sys.stdout.write("".join(n + "\n" for n in s.env_names))
    return ExitStatus.OK


def do_stop(opts) -> int:
    from remote_docker.dev import lifecycle

    s = _find(opts.session)
    lifecycle.stop(s)
    _say(f"session {s.name} stopped ('dev run' starts it again, same host key)")
    return ExitStatus.OK


def do_rm(opts) -> int:
    from remote_docker.dev import lifecycle

    s = _find(opts.session)
    lifecycle.remove(s, opts.keep_image)
    _say(f"session {s.name} removed" + (f" (image {s.image} kept)" if opts.keep_image else ""))
    return ExitStatus.OK


def do_gc(opts) -> int:
    from remote_docker import config
    from remote_docker.dev import orphans
    from remote_docker.transport.openssh import ControlMaster

    spec = opts.host or config.machine_spec(os.environ)
    for line in orphans.collect(ControlMaster(config.parse_machine(spec), os.environ)):
        sys.stdout.write(f"removed {line}\n")
    return ExitStatus.OK


VERBS = {"gc": do_gc, "init": do_init, "overlay": do_overlay, "build": do_build, "push": do_push,
         "run": do_run, "start": do_run, "mount": do_mount, "umount": do_umount,
         "export": do_export, "status": do_status, "list": do_list, "history": do_history,
         "env": do_env, "stop": do_stop, "rm": do_rm}
