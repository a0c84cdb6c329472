"""``docker compose`` and ``docker-compose`` with the compose file on the workstation.

Compose runs *here*, on the workstation, so it reads the compose file, ``.env``,
``env_file`` and build contexts where the user keeps them, exactly as it would
with a local engine; only its Engine API calls travel, through the docker
socket the ControlMaster forwards (``transport.docker_socket``).  What compose
cannot know is that a bind source on the workstation does not exist on the
engine's host: for the commands that create containers, the project's model
(``compose config``) is rewritten so that each such source is a reverse mount
(an external ``rd-<uuid>`` volume), made before compose starts and released by
its keeper once the last container that uses it is gone (``down``, ``rm``,
``run --rm``), whoever removes it, even after compose itself was killed.

Why not compose on the docker-machine with a rewritten file: ``env_file``,
``.env``, ``extends``, build contexts and secrets' files would all have to be
found and shipped first; here they are simply read by compose.
"""
