"""Published ports, transparently: a container's ``-p 8080:80`` on the workstation's localhost.

A port docker publishes is on the docker-machine; a detached per-machine
*watcher* (``watcher``) follows ``docker events`` over the ControlMaster and
adds a local forward on that master (``ssh -O forward -L``, spoken through
``transport.mux``) when a container with published ports starts, and cancels
it when the container stops.  ``state`` holds its record and liveness (a
flock), ``publish`` the cheap checks the ``docker`` shim makes on the hot
path, ``bindings`` what docker says a container publishes.
"""
