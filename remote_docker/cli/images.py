"""``remote-docker push IMAGE…`` and ``remote-docker pull IMAGE…``.

Thin: the logic is in ``remote_docker.images``.  One summary line per image
on stdout, with the bytes that really crossed the connection; a progress bar
on stderr when it is a terminal.
"""

from __future__ import annotations

import os
import sys

from remote_docker.errors import ExitStatus, UsageError

USAGE = """usage: remote-docker {verb} [--quiet] IMAGE…

{what}
without a registry: only the layers the other side lacks are sent, and an
image already there is left alone.  --quiet: no progress bar.
"""
WHAT = {
    "push": "Send images from the workstation's own docker engine to the docker-machine,",
    "pull": "Bring images from the docker-machine to the workstation's own docker engine,",
}


def main_push(args: list[str]) -> int:
    return run("push", args)


def main_pull(args: list[str]) -> int:
    return run("pull", args)


def run(verb: str, args: list[str]) -> int:
    if any(a in ("-h", "--help") for a in args):
        sys.stdout.write(USAGE.format(verb=verb, what=WHAT[verb]))
        return ExitStatus.OK
    quiet = "--quiet" in args or "-q" in args
    names = [a for a in args if a not in ("--quiet", "-q")]
    unknown = [a for a in names if a.startswith("-")]
    if unknown:
        raise UsageError(f"unknown option {unknown[0]!r}; see 'remote-docker {verb} --help'")
    if not names:
        raise UsageError(f"'remote-docker {verb}' needs at least one image")
    names = list(dict.fromkeys(names))
    if verb == "push":  # its save first of all, before the imports below (~13 ms)
        from remote_docker.transport.local import start_save

        save = start_save(names[0])
    from remote_docker import images

    with progress_bar(enabled=not quiet and sys.stderr.isatty()) as progress:
        if verb == "push":
            outcomes = images.push(names, os.environ, progress, save)
        else:
            outcomes = images.pull(names, os.environ, progress)
    for outcome in outcomes:
        sys.stdout.write(summary(verb, outcome) + "\n")
    return ExitStatus.OK


def summary(verb: str, outcome) -> str:
    """One line a person reads and a test parses: `… N bytes …` is what was sent."""
    from remote_docker.build_context import human_size  # docker's own sizes, as `docker images`

    direction = "to the docker-machine" if verb == "push" else "to the workstation"
    if outcome.noop:
        return (f"{outcome.name}: already {direction.replace('to the ', 'on the ')} "
                f"({outcome.image_id[7:19]}), sent 0 bytes")
    kept = outcome.layers - outcome.layers_sent
    resumed = (f", resumed after the {outcome.resumed} bytes ({human_size(outcome.resumed)}) "
               f"a cut {verb} had sent" if outcome.resumed else "")
    return (f"{outcome.name}: {verb}ed {direction}, {outcome.layers_sent} of {outcome.layers} "
            f"layers sent ({kept} already there), {outcome.bytes_sent} bytes "
            f"({human_size(outcome.bytes_sent)}) in {outcome.seconds:.1f} s{resumed}")


def progress_bar(enabled: bool):
    """rich's transfer bar, one task per image; a no-op when stderr is not a terminal.
    (contextlib is imported here, not above: a push's save starts before it is needed.)"""
    from contextlib import contextmanager

    return contextmanager(_progress_bar)(enabled)


def _progress_bar(enabled: bool):
    if not enabled:
        yield lambda _name, _total: (lambda _n: None)
        return
    from remote_docker.deps import ensure_site_packages

    ensure_site_packages()  # the shims run python -IS
    from rich.console import Console
    from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn,
                               TimeElapsedColumn, TransferSpeedColumn)

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
               TransferSpeedColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        def start(name: str, total: int | None):
            task = bar.add_task(name, total=total)
            return lambda n: bar.advance(task, n)

        yield start
