"""``python -m remote_docker`` is ``remote-docker``: usable before any install step."""

from remote_docker.cli.remote_docker import main

raise SystemExit(main())
