"""docker.x11's pure parts: the Xauthority it writes, its run options, the mux forward message."""

import pytest

from remote_docker.cli import docker_x11
from remote_docker.errors import UsageError
from remote_docker.transport import mux
from remote_docker.x11 import display


def cookie_display() -> display.WorkstationDisplay:
    return display.WorkstationDisplay(":42", 42, ("/tmp/.X11-unix/X42", mux.PORT_STREAMLOCAL),
                                      b"MIT-MAGIC-COOKIE-1", bytes(range(16)))


def test_container_xauthority_reads_back_with_python_xlib(tmp_path) -> None:
    from Xlib import xauth

    path = tmp_path / "Xauthority"
    path.write_bytes(display.container_xauthority(cookie_display(), ["box"]))
    entries = xauth.Xauthority(str(path)).entries
    assert entries == [(display.FAMILY_WILD, b"", b"0", b"MIT-MAGIC-COOKIE-1", bytes(range(16))),
                       (xauth.FamilyLocal, b"box", b"0", b"MIT-MAGIC-COOKIE-1", bytes(range(16)))]
    # python-xlib skips FamilyWild: the FamilyLocal entry is what it finds for that host
    assert xauth.Xauthority(str(path)).get_best_auth(xauth.FamilyLocal, b"box", 0)[1] == \
        bytes(range(16))


def test_no_cookie_no_entries() -> None:
    plain = display.WorkstationDisplay(":1", 1, ("/tmp/.X11-unix/X1", mux.PORT_STREAMLOCAL),
                                       b"", b"")
    assert display.container_xauthority(plain, []) == b""


def test_user_cookie_found_for_the_local_display(tmp_path) -> None:
    import socket

    host = socket.gethostname().encode()
    path = tmp_path / "xa"
    path.write_bytes(display._entry(display.FAMILY_LOCAL, host, b"42", b"MIT-MAGIC-COOKIE-1",
                                    b"k" * 16))
    env = {"XAUTHORITY": str(path)}
    assert display.user_cookie(env, display.FAMILY_LOCAL, host, 42) == \
        (b"MIT-MAGIC-COOKIE-1", b"k" * 16)
    assert display.user_cookie(env, display.FAMILY_LOCAL, host, 7) == (b"", b"")


def test_no_display_is_an_error() -> None:
    with pytest.raises(display.X11Error, match="DISPLAY is not set"):
        display.find({})
    with pytest.raises(display.X11Error, match="not an X display name"):
        display.find({"DISPLAY": "nonsense"})


def test_run_options_give_a_socket_and_no_host_network() -> None:
    options = docker_x11.x11_options("/tmp/rd-x11-1/s/X0", "/tmp/rd-x11-1/s/Xauthority", "@")
    argv = docker_x11.run_argv(["img", "xeyes"], options, interactive=False)
    assert argv[:4] == ["run", "--rm", "-i", "--init"] and argv[-2:] == ["img", "xeyes"]
    assert "@/tmp/rd-x11-1/s/X0:/tmp/.X11-unix/X0" in argv
    assert "DISPLAY=:0" in argv and "QT_X11_NO_MITSHM=1" in argv
    assert not any("host" in word for word in argv)


def test_detached_is_refused_and_hostnames_are_found() -> None:
    with pytest.raises(UsageError, match="foreground"):
        docker_x11.check_args(["-d", "img"])
    assert docker_x11.check_args(["--hostname", "box", "img"]) == ["box"]
    with pytest.raises(UsageError, match="no image"):
        docker_x11.check_args(["--rm"])


def test_forward_request_is_encoded_as_openssh_does() -> None:
    body = mux.forward_request(mux.MUX_C_OPEN_FWD, 3, "/r/X0", ("/tmp/.X11-unix/X42",
                                                               mux.PORT_STREAMLOCAL))
    reader = mux.Reader(body)
    assert [reader.u32(), reader.u32(), reader.u32()] == [mux.MUX_C_OPEN_FWD, 3, 2]
    assert (reader.string(), reader.u32()) == (b"/r/X0", 0xFFFFFFFE)
    assert (reader.string(), reader.u32()) == (b"/tmp/.X11-unix/X42", 0xFFFFFFFE)
    assert reader.pos == len(body)
