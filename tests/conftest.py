"""Fixtures shared by the suite.

`bed` brings the local test bed up once per session (as root; it is quick
when already up). It never skips: a suite that cannot reach its bed fails
loudly with the one line that says why.
"""

from __future__ import annotations

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
