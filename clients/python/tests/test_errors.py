# SPDX-License-Identifier: MIT
"""Errors: names and messages from libsluice, exception classes, and the
binding's argument checks."""

import ctypes

import pytest

import sluice
from sluice import _native


def test_names_and_messages_come_from_c():
    lib = _native.lib
    for code in range(0, 24):
        assert sluice.errname(code) == lib.sluice_errname(code).decode()
        assert sluice.strerror(code) == lib.sluice_strerror(code).decode()
    assert sluice.errname(9) == "EPERM"
    assert sluice.errname(12345) == "EUNKNOWN"
    assert sluice.strerror(12345) == "unknown error"


@pytest.mark.parametrize("code,cls,builtin", [
    (1, sluice.InvalidArgumentError, ValueError),
    (3, sluice.NotFoundError, LookupError),
    (6, sluice.TooBigError, ValueError),
    (15, sluice.TimedOutError, TimeoutError),
    (16, sluice.UnavailableError, ConnectionError),
    (23, sluice.ClosedError, None),
    (18, sluice.CorruptError, None),
    (22, sluice.InternalError, None),
])
def test_error_classes(code, cls, builtin):
    e = sluice._errors.error(code, "doing x")
    assert type(e) is cls and isinstance(e, sluice.SluiceError)
    if builtin is not None:
        assert isinstance(e, builtin)
    assert e.code == code
    assert e.name == sluice.errname(code)
    assert e.message == sluice.strerror(code)
    assert str(e) == "doing x: %s (%s %d)" % (e.message, e.name, code)


def test_other_codes_are_plain_sluice_error():
    e = sluice._errors.error(9)
    assert type(e) is sluice.SluiceError
    assert (e.code, e.name, e.message) == (9, "EPERM", "not permitted")
    e = sluice._errors.error(999)
    assert type(e) is sluice.SluiceError and e.name == "EUNKNOWN"


def test_open_einval_from_c():
    # libsluice refuses a backoff whose max is below its min.
    with pytest.raises(sluice.InvalidArgumentError) as ei:
        sluice.Client(None, backoff=(5, 1))
    assert ei.value.code == 1 and ei.value.name == "EINVAL"
    with pytest.raises(sluice.InvalidArgumentError):
        sluice.Client(None, heartbeat=0)


def test_bad_key_file(tmp_path):
    with pytest.raises(sluice.SluiceError):
        sluice.Client(None, key_file=tmp_path / "no-such.key")


def test_durations():
    # Strings are parsed by libsluice, as in a rollout file.
    sluice.Client(None, max_stale="1h30m").close()
    sluice.Client(None, max_stale=0).close()
    sluice.Client(None, max_stale=2.5, connect_timeout=0).close()
    with pytest.raises(sluice.InvalidArgumentError):
        sluice.Client(None, max_stale="5 minutes")
    with pytest.raises(ValueError):
        sluice.Client(None, max_stale=-1)
    with pytest.raises(TypeError):
        sluice.Client(None, max_stale=True)
    with pytest.raises(ValueError):
        sluice.Client(None, request_timeout=10 ** 9)


def test_argument_checks():
    with sluice.Client(None) as c:
        with pytest.raises(ValueError):
            c.bool("a\0b")
        with pytest.raises(ValueError):
            c.bool("f", unit=b"a\0b")  # evaluate: C strings only
        with pytest.raises(TypeError):
            c.bool(7)
        with pytest.raises(TypeError):
            c.int("f", unit=3)
        with pytest.raises(OverflowError):
            c.int("f", default=1 << 63)
        assert c.int("f", default=(1 << 63) - 1) == (1 << 63) - 1
        assert c.int("f", default=-(1 << 63)) == -(1 << 63)
        # A default longer than a string flag can be: ETOOBIG from C.
        with pytest.raises(sluice.TooBigError):
            c.string("f", default="x" * (sluice.MAX_STRING + 1))
        assert c.string("f", default="x" * sluice.MAX_STRING) == \
            "x" * sluice.MAX_STRING


def test_use_after_close_raises():
    c = sluice.Client(None)
    v = c.view()
    v.close()
    v.close()  # idempotent
    with pytest.raises(sluice.ClosedError):
        v.bool("f")
    with pytest.raises(sluice.ClosedError):
        v.rolled_back()
    c.close()
    c.close()
    for call in (lambda: c.bool("f"), lambda: c.int("f"),
                 lambda: c.string("f"), lambda: c.stage("r"),
                 lambda: c.detail("f"), lambda: c.revision,
                 lambda: c.wait_revision(1, timeout=0), c.view):
        with pytest.raises(sluice.ClosedError) as ei:
            call()
        assert ei.value.name == "ECLOSED"


def test_wait_revision_times_out_bounded():
    import time
    with sluice.Client(None) as c:
        t0 = time.monotonic()
        with pytest.raises(sluice.TimedOutError) as ei:
            c.wait_revision(1, timeout=0.3)
        took = time.monotonic() - t0
        assert 0.25 <= took < 10, took
        assert ei.value.code == 15
        with pytest.raises(sluice.TimedOutError):
            c.wait_revision(1, timeout=0)
        assert c.wait_revision(0, timeout=0) == 0
