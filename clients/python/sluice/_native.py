# SPDX-License-Identifier: MIT
"""Loading libsluice and declaring its C API for ctypes.

This module holds no flag logic: it finds the shared library, mirrors the
structs of clients/include/sluice.h that cross the boundary
(sluice_client_opts, sluice_detail, and for metric reports sluice_metric,
sluice_report and sluice_verdict), and declares the prototypes. The
layouts are checked against the C compiler by tests/test_abi.py.
"""

import ctypes
import ctypes.util
import os
from pathlib import Path

__all__ = ["lib", "lib_path", "ClientOpts", "Detail", "Metric", "Report",
           "Verdict", "report_send", "CHANGE_CB", "CLOCK_FN"]

_SONAME = "libsluice.so.0"


def _candidates():
    """Where to look, in order: $SLUICE_LIB, the source tree's release
    build (when the package runs from clients/python/ in a checkout), then
    the system's library search path."""
    env = os.environ.get("SLUICE_LIB")
    if env:
        # An explicit choice is the only candidate: falling back to another
        # library would test or run something other than what was asked.
        return [("SLUICE_LIB", env)]
    out = []
    # clients/python/sluice/_native.py -> repository root is parents[3].
    here = Path(__file__).resolve()
    if len(here.parents) > 3 and here.parents[1].name == "python" and \
            here.parents[2].name == "clients":
        tree = here.parents[3] / "build" / "release" / _SONAME
        if tree.exists():
            out.append(("source tree", str(tree)))
    found = ctypes.util.find_library("sluice")
    if found:
        out.append(("find_library", found))
    return out


def _load():
    tried = []
    for how, path in _candidates():
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            tried.append("%s %s: %s" % (how, path, e))
    if not tried:
        tried.append("no SLUICE_LIB, no build/release/%s in the source "
                     "tree, and find_library('sluice') found nothing"
                     % _SONAME)
    raise ImportError("sluice: cannot load libsluice (" + "; ".join(tried)
                      + "). Build it with `make`, install it with `make "
                      "install`, or set SLUICE_LIB to its path.")


lib, lib_path = _load()

# Every function of sluice.h that the binding calls; a library without
# them is older than this package (e.g. a stale build directory).
_REQUIRED = (
    "sluice_strerror", "sluice_errname", "sluice_reason_name",
    "sluice_buckets", "sluice_bucket", "sluice_max_name", "sluice_max_string",
    "sluice_client_opts_init", "sluice_client_open", "sluice_client_close",
    "sluice_bool", "sluice_int", "sluice_string", "sluice_stage",
    "sluice_eval_detail", "sluice_client_revision", "sluice_wait_revision",
    "sluice_view_open", "sluice_view_bool", "sluice_view_int",
    "sluice_view_string", "sluice_view_stage", "sluice_view_eval_detail",
    "sluice_view_revision", "sluice_view_rolled_back", "sluice_view_close",
)
_missing = [n for n in _REQUIRED if not hasattr(lib, n)]
if _missing:
    raise ImportError("sluice: %s lacks %s: it is older than this package; "
                      "rebuild it with `make` or point SLUICE_LIB at a "
                      "current libsluice.so.0" % (lib_path, ", ".join(_missing)))

# ------------------------------------------------------------------ types

# typedef void (*sluice_change_cb)(void *arg, uint64_t revision,
#                                  const char *rollout);
CHANGE_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint64,
                             ctypes.c_char_p)
# typedef uint64_t (*sluice_clock_fn)(void *arg);
CLOCK_FN = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_void_p)


# Bytes of slack after each mirrored struct (see ClientOpts._reserve).
RESERVE = 256


class ClientOpts(ctypes.Structure):
    """struct sluice_client_opts; fill with sluice_client_opts_init()."""

    _fields_ = [
        ("key_file", ctypes.c_char_p),
        ("cache_file", ctypes.c_char_p),
        ("max_stale_ms", ctypes.c_uint64),
        ("connect_timeout_ms", ctypes.c_uint32),
        ("request_timeout_ms", ctypes.c_uint32),
        ("heartbeat_ms", ctypes.c_uint32),
        ("heartbeat_misses", ctypes.c_uint32),
        ("backoff_min_ms", ctypes.c_uint32),
        ("backoff_max_ms", ctypes.c_uint32),
        ("change_cb", CHANGE_CB),
        ("change_arg", ctypes.c_void_p),
        ("clock", CLOCK_FN),
        ("clock_arg", ctypes.c_void_p),
        ("ack_interval_ms", ctypes.c_uint32),
        ("gatekeeper", ctypes.c_char_p),
        # Not in C: room for fields a newer libsluice appends, so that
        # sluice_client_opts_init() on a bigger struct never writes past
        # this one. tests/test_abi.py checks that every C field is
        # mirrored above (C's sizeof == offset of _reserve).
        ("_reserve", ctypes.c_uint8 * RESERVE),
    ]


def _max_name():
    f = lib.sluice_max_name
    f.restype, f.argtypes = ctypes.c_size_t, []
    return f()


def _max_string():
    f = lib.sluice_max_string
    f.restype, f.argtypes = ctypes.c_size_t, []
    return f()


MAX_NAME = _max_name()      # SLUICE_MAX_NAME, with the NUL
MAX_STRING = _max_string()  # SLUICE_MAX_STRING, without the NUL


class Detail(ctypes.Structure):
    """struct sluice_detail. C enums are int-sized on this ABI."""

    _fields_ = [
        ("reason", ctypes.c_int),
        ("kind", ctypes.c_int),
        ("on", ctypes.c_bool),
        ("stale", ctypes.c_bool),
        ("from_cache", ctypes.c_bool),
        ("int_value", ctypes.c_int64),
        ("percent_bp", ctypes.c_uint32),
        ("bucket", ctypes.c_uint32),
        ("stage", ctypes.c_uint32),
        ("revision", ctypes.c_uint64),
        ("rollout", ctypes.c_char * MAX_NAME),
        ("stage_name", ctypes.c_char * MAX_NAME),
        ("string_value", ctypes.c_char * (MAX_STRING + 1)),
        ("_reserve", ctypes.c_uint8 * RESERVE),  # as in ClientOpts
    ]


class Metric(ctypes.Structure):
    """struct sluice_metric: one metric of a report. An array element, so
    no reserve (C reads exactly n_metrics of them)."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        ("value", ctypes.c_double),
    ]


class Report(ctypes.Structure):
    """struct sluice_report. Strings are borrowed for the call."""

    _fields_ = [
        ("rollout", ctypes.c_char_p),
        ("stage", ctypes.c_char_p),
        ("job", ctypes.c_char_p),
        ("run_id", ctypes.c_char_p),
        ("sequence", ctypes.c_uint64),
        ("time_ms", ctypes.c_uint64),
        ("units", ctypes.POINTER(ctypes.c_char_p)),
        ("n_units", ctypes.c_size_t),
        ("metrics", ctypes.POINTER(Metric)),
        ("n_metrics", ctypes.c_size_t),
        # Zeros (every field's "default") for fields a newer libsluice
        # appends, so that it never reads past this struct.
        ("_reserve", ctypes.c_uint8 * RESERVE),
    ]


class Verdict(ctypes.Structure):
    """struct sluice_verdict: gatekeeper's answer to one report."""

    _fields_ = [
        ("accepted", ctypes.c_bool),
        ("counted", ctypes.c_bool),
        ("code", ctypes.c_int),
        ("reason", ctypes.c_char * 32),
        ("gate", ctypes.c_char * 16),
        ("stage", ctypes.c_char * MAX_NAME),
        ("window_reports", ctypes.c_uint32),
        ("sequence", ctypes.c_uint64),
        ("_reserve", ctypes.c_uint8 * RESERVE),  # as in ClientOpts
    ]


# ------------------------------------------------------------- prototypes

_c = ctypes
_P = _c.c_void_p  # sluice_client * and sluice_view *, opaque

_PROTOS = {
    # name: (restype, argtypes)
    "sluice_strerror": (_c.c_char_p, [_c.c_int]),
    "sluice_errname": (_c.c_char_p, [_c.c_int]),
    "sluice_reason_name": (_c.c_char_p, [_c.c_int]),
    "sluice_buckets": (_c.c_uint, []),
    "sluice_bucket": (_c.c_uint, [_c.c_char_p, _c.c_char_p, _c.c_size_t]),
    "sluice_client_opts_init": (None, [_c.POINTER(ClientOpts)]),
    "sluice_client_open": (_c.c_int, [_c.POINTER(_P), _c.c_char_p,
                                      _c.POINTER(ClientOpts)]),
    "sluice_client_close": (None, [_P]),
    "sluice_bool": (_c.c_bool, [_P, _c.c_char_p, _c.c_char_p, _c.c_bool]),
    "sluice_int": (_c.c_int64, [_P, _c.c_char_p, _c.c_char_p, _c.c_int64]),
    "sluice_string": (_c.c_int, [_P, _c.c_char_p, _c.c_char_p,
                                 _c.c_char_p, _c.c_char_p, _c.c_size_t]),
    "sluice_stage": (_c.c_int, [_P, _c.c_char_p, _c.c_char_p, _c.c_size_t,
                                _c.POINTER(_c.c_uint32)]),
    "sluice_eval_detail": (_c.c_int, [_P, _c.c_char_p, _c.c_char_p,
                                      _c.POINTER(Detail)]),
    "sluice_client_revision": (_c.c_uint64, [_P]),
    "sluice_wait_revision": (_c.c_int, [_P, _c.c_uint64, _c.c_uint32]),
    "sluice_view_open": (_c.c_int, [_P, _c.POINTER(_P)]),
    "sluice_view_bool": (_c.c_bool, [_P, _c.c_char_p, _c.c_char_p,
                                     _c.c_bool]),
    "sluice_view_int": (_c.c_int64, [_P, _c.c_char_p, _c.c_char_p,
                                     _c.c_int64]),
    "sluice_view_string": (_c.c_int, [_P, _c.c_char_p, _c.c_char_p,
                                      _c.c_char_p, _c.c_char_p,
                                      _c.c_size_t]),
    "sluice_view_stage": (_c.c_int, [_P, _c.c_char_p, _c.c_char_p,
                                     _c.c_size_t, _c.POINTER(_c.c_uint32)]),
    "sluice_view_eval_detail": (_c.c_int, [_P, _c.c_char_p, _c.c_char_p,
                                           _c.POINTER(Detail)]),
    "sluice_view_revision": (_c.c_uint64, [_P]),
    "sluice_view_rolled_back": (_c.c_bool, [_P]),
    "sluice_view_close": (None, [_P]),
}

for _name, (_res, _args) in _PROTOS.items():
    _f = getattr(lib, _name)
    _f.restype = _res
    _f.argtypes = _args

# Newer than the first client API: bound when the library has it.
try:
    client_id = lib.sluice_client_id
    client_id.restype = _c.c_char_p
    client_id.argtypes = [_P]
except AttributeError:
    client_id = None

# Not in sluice.h: the rollout file's duration parser ("90s", "5m", "1h30m",
# plain seconds), exported by libsluice's proto objects. Used, when present,
# so that Client(max_stale="5m") parses exactly as a rollout file does; if a
# future build stops exporting it, string durations are refused clearly.
try:
    duration_parse = lib.sl_duration_parse
    duration_parse.restype = _c.c_int
    duration_parse.argtypes = [_c.c_char_p, _c.POINTER(_c.c_uint64)]
except AttributeError:
    duration_parse = None

# Metric reports (newer than the first client API): bound when the library
# has them; Client.report() says so clearly otherwise.
try:
    report_send = lib.sluice_report_send
    report_send.restype = _c.c_int
    report_send.argtypes = [_P, _c.POINTER(Report), _c.POINTER(Verdict)]
except AttributeError:
    report_send = None
