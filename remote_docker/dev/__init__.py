"""Dev sessions: a container with an sshd, reached by ssh through the docker-machine.

What dockerdo does, made robust: a session directory on the workstation
(``session``), an image derived from any base with an sshd added (``overlay``),
per-session keys with a host key pinned once (``keys``), the ssh link through
the docker-machine's ControlMaster (``link``), the engine-side life cycle
(``lifecycle``), commands run in the container (``execute``) and its
filesystem mounted on the workstation (``fsmount``).
"""
