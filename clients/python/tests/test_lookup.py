# SPDX-License-Identifier: MIT
"""How the package finds libsluice: $SLUICE_LIB, else the source tree's
release build, else the system's search path; clear ImportErrors."""

import os
import subprocess
import sys

from conftest import PKG, ROOT


def run_import(env_lib, code="import sluice; print(sluice.lib_path)"):
    env = dict(os.environ)
    env.pop("SLUICE_LIB", None)
    if env_lib is not None:
        env["SLUICE_LIB"] = env_lib
    env["PYTHONPATH"] = str(PKG)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return subprocess.run([sys.executable, "-c", code], env=env,
                          capture_output=True, text=True, timeout=60)


def test_sluice_lib_env_is_used():
    import sluice
    want = os.environ.get("SLUICE_LIB")
    if want:
        assert sluice.lib_path == want
    res = run_import(sluice.lib_path)
    assert res.returncode == 0, res
    assert res.stdout.strip() == sluice.lib_path


def test_missing_sluice_lib_is_a_clear_import_error(tmp_path):
    res = run_import(str(tmp_path / "libsluice.so.0"))
    assert res.returncode != 0
    assert "ImportError: sluice: cannot load libsluice (SLUICE_LIB" \
        in res.stderr, res.stderr
    # No silent fallback to another library.
    assert "source tree" not in res.stderr


def test_not_a_libsluice(tmp_path):
    # A loadable library without the client API: refused by name.
    res = run_import("libc.so.6")
    assert res.returncode != 0
    assert "lacks sluice_strerror" in res.stderr, res.stderr


def test_source_tree_build_without_env():
    tree = ROOT / "build" / "release" / "libsluice.so.0"
    res = run_import(None)
    if tree.exists():
        assert res.returncode == 0, res
        assert res.stdout.strip() == str(tree)
