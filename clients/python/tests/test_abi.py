# SPDX-License-Identifier: MIT
"""The ctypes mirrors of sluice_client_opts, sluice_detail, sluice_metric,
sluice_report and sluice_verdict match the C compiler's layout of
clients/include/sluice.h (skipped without a C compiler)."""

import ctypes
import os
import shutil
import subprocess

import pytest

from conftest import ROOT
from sluice import _native

STRUCTS = {
    "sluice_client_opts": _native.ClientOpts,
    "sluice_detail": _native.Detail,
    "sluice_metric": _native.Metric,
    "sluice_report": _native.Report,
    "sluice_verdict": _native.Verdict,
}


def test_layout(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.skip("no C compiler")
    lines = ['#include <stdio.h>', '#include <stddef.h>',
             '#include "sluice.h"', "int main(void) {"]
    for cname, py in STRUCTS.items():
        lines.append('printf("%s size %%zu\\n", sizeof(%s));'
                     % (cname, cname))
        for field, _ in py._fields_:
            if field == "_reserve":
                continue
            lines.append('printf("%s %s %%zu\\n", offsetof(%s, %s));'
                         % (cname, field, cname, field))
    lines.append("return 0; }")
    src = tmp_path / "abi.c"
    src.write_text("\n".join(lines) + "\n")
    exe = tmp_path / "abi"
    # Under a sanitizer build the tests run with the sanitizer runtime in
    # LD_PRELOAD; the compiler and the probe must not inherit it.
    env = {k: v for k, v in os.environ.items()
           if k not in ("LD_PRELOAD", "ASAN_OPTIONS", "TSAN_OPTIONS")}
    subprocess.run([cc, "-std=c11", "-I", str(ROOT / "clients" / "include"),
                    "-o", str(exe), str(src)], check=True, timeout=120,
                   env=env)
    out = subprocess.run([str(exe)], check=True, capture_output=True,
                         text=True, timeout=60, env=env).stdout
    want = {}
    for line in out.splitlines():
        cname, field, n = line.split()
        want[(cname, field)] = int(n)
    for cname, py in STRUCTS.items():
        # Every C field is mirrored: the struct without its reserve has
        # C's size (trailing padding included).
        core = type("Core", (ctypes.Structure,), {"_fields_": [
            f for f in py._fields_ if f[0] != "_reserve"]})
        assert want[(cname, "size")] == ctypes.sizeof(core), (
            "%s: C has fields the binding does not mirror (C size %d, "
            "mirrored %d)" % (cname, want[(cname, "size")],
                              ctypes.sizeof(core)))
        for field, _ in py._fields_:
            if field == "_reserve":
                continue
            assert want[(cname, field)] == getattr(py, field).offset, \
                (cname, field)
