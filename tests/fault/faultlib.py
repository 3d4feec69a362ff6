# SPDX-License-Identifier: MIT
"""Shared plumbing of the fault suite (tests/fault/): it reuses the
integration suite's helpers instead of copying them.

tests/integration/conftest.py (free ports, flagctl, timeouts) and the
cluster and fleet classes of tests/integration/test_cluster.py and
test_client_live.py are loaded *by path* under private module names, so
that

- pytest never collects their tests a second time (only the module
  objects are used, never their test functions), and
- this directory needs no conftest.py of its own (pytest would otherwise
  swap the top-level name "conftest" between the two directories when
  both are run in one session).

Those modules do `from conftest import ...`; while they are executed the
name "conftest" is pointed at the integration conftest and restored
afterwards.
"""

import importlib.util
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
INTEGRATION = ROOT / "tests" / "integration"


def load_module(name, path):
    """Executes the file at path as a fresh module called name."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, str(path))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        del sys.modules[name]
        raise
    return mod


# The integration conftest: BUILD, FLAGD_BIN, FLAGCTL_BIN, run_flagctl,
# distinct_ports, the timeouts.
itc = load_module("sluice_fault_itc", INTEGRATION / "conftest.py")


def load_integration(name, filename):
    """Loads tests/integration/<filename> under the private name
    `name`, with its `from conftest import ...` resolved to itc."""
    if name in sys.modules:
        return sys.modules[name]
    missing = object()
    saved = sys.modules.get("conftest", missing)
    sys.modules["conftest"] = itc
    try:
        return load_module(name, INTEGRATION / filename)
    finally:
        if saved is missing:
            del sys.modules["conftest"]
        else:
            sys.modules["conftest"] = saved


def tail(text, n=3000):
    return text[-n:] if text else ""


class Phases:
    """When each phase ended, printed (shown by pytest on failure or
    with -rP) and kept in tmp_path/phases.log; nothing asserts on it."""

    def __init__(self, path):
        self.path = path
        self.t0 = time.monotonic()

    def mark(self, what):
        line = "%7.2fs %s" % (time.monotonic() - self.t0, what)
        print(line)
        with open(self.path, "a") as f:
            f.write(line + "\n")
