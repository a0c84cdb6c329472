"""remote-docker: a Docker engine on another machine, used as if it were local.

Kept empty of imports on purpose: the ``docker`` shim imports this package on
every call, and each import here would be paid by every forwarded command.
"""

__version__ = "0.1.0"
