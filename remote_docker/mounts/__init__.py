"""Reverse mounts: a workstation directory served to the docker-machine as a docker volume.

``reverse`` makes and releases them, ``registry`` remembers them (before
anything is made), ``keeper`` is the detached process that owns one, ``gc``
removes what a killed process left behind, and ``jail`` confines the
``sftp-server`` that serves the directory (``landlock``, and ``seccomp_guard`` or
``sftp_relay`` for what Landlock cannot stop).
"""
