"""Fixtures shared by the suite.

`bed` brings the local test bed up once per session (as root; it is quick
when already up). It never skips: a suite that cannot reach its bed fails
loudly with the one line that says why.
"""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def bed():
    """The remote_docker.testbed module, with the bed up."""
    from remote_docker import testbed

    try:
        testbed.up()
    except testbed.TestbedError as error:
        pytest.fail(f"the test bed did not come up: {error}", pytrace=False)
    return testbed


@pytest.fixture
def ws_dir():
    """A scratch directory the workstation user owns (pytest's tmp_path is root-only)."""
    import pwd
    import shutil
    import tempfile

    from remote_docker.testbed import layout

    path = tempfile.mkdtemp(prefix="rd-ws-", dir="/tmp")
    user = pwd.getpwnam(layout.WS_USER)
    os.chown(path, user.pw_uid, user.pw_gid)
    yield path
    shutil.rmtree(path, ignore_errors=True)

