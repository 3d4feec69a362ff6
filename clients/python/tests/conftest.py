# SPDX-License-Identifier: MIT
"""Fixtures for the sluice Python package's tests.

The package is imported from the source tree (clients/python), so no
install is needed; the library is $SLUICE_LIB when set (run-tests.sh sets
it to the variant under test), else the release build. The live tests
reuse the flagd/flagctl helpers of tests/integration/conftest.py (free
loopback ports, bounded waits, flagd stopped by PID), loaded by path under
a name of its own so that it does not clash with this conftest.
"""

import importlib.util
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1]  # clients/python
ROOT = PKG.parents[1]
sys.path.insert(0, str(PKG))

import sluice  # noqa: E402


def _integration_helpers():
    path = ROOT / "tests" / "integration" / "conftest.py"
    spec = importlib.util.spec_from_file_location("_sluice_it_helpers", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


it = _integration_helpers()


def pytest_report_header(config):
    return "sluice: %s" % sluice.lib_path


@pytest.fixture
def cluster(tmp_path):
    """A running flagd on free ports with an admin key (see
    tests/integration/conftest.py); stopped by PID afterwards."""
    c = it.Cluster(tmp_path)
    c.flagd.start()
    try:
        yield c
    finally:
        if c.flagd.running():
            code = c.flagd.stop()
            assert code == 0, "flagd exited %s on SIGTERM\n%s" % (
                code, c.flagd.log_text()[-3000:])
