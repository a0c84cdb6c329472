"""Which engine socket on the docker-machine the forward goes to (``docker_socket``)."""

import pytest

from remote_docker.errors import ConfigError
from remote_docker.transport.docker_socket import REMOTE_SOCKET, endpoint_socket


@pytest.mark.parametrize("status, printed, socket", [
    (0, "unix:///var/run/docker.sock\n", "/var/run/docker.sock"),
    (0, "unix:///run/user/1000/docker.sock\n", "/run/user/1000/docker.sock"),  # rootless
    (0, "", REMOTE_SOCKET),  # a client without `context inspect`'s current context
    (127, "", REMOTE_SOCKET),  # no docker client there: the default, as before
    (1, "unix:///elsewhere.sock", REMOTE_SOCKET),  # a failed inspect says nothing certain
])
def test_the_client_s_unix_endpoint_is_the_socket(status, printed, socket) -> None:
    assert endpoint_socket(status, printed, "dm@host") == socket


@pytest.mark.parametrize("host", ["tcp://10.0.0.5:2375", "ssh://other@box", "unix://"])
def test_an_endpoint_that_is_no_socket_is_one_clear_error(host) -> None:
    with pytest.raises(ConfigError) as caught:
        endpoint_socket(0, host + "\n", "dm@host")
    message = str(caught.value)
    assert "dm@host" in message and host in message
    assert "REMOTE_DOCKER_REMOTE_SOCKET" in message and "\n" not in message
