# SPDX-License-Identifier: MIT
"""A client with neither server nor cache: every evaluation returns the
caller's default with reason DEFAULT_UNKNOWN_FLAG; views, context
managers and garbage collection close safely."""

import gc
import threading

import pytest

import sluice
from conftest import it


def check_defaults(e):
    assert e.bool("orders.dual_write", unit="2026-11-01") is False
    assert e.bool("orders.dual_write", unit="2026-11-01", default=True) is True
    assert e.int("orders.writer_version", default=7) == 7
    assert e.int("orders.writer_version") == 0
    assert e.string("orders.schema", default="v1") == "v1"
    assert e.string("orders.schema", unit=b"p1") == ""
    assert e.string("orders.schema", default="ünï") == "ünï"
    d = e.detail("orders.read_new", unit="p1")
    assert isinstance(d, sluice.Detail)
    assert d.reason is sluice.Reason.DEFAULT_UNKNOWN_FLAG
    assert d.reason == "DEFAULT_UNKNOWN_FLAG"
    assert d.kind is sluice.Kind.NONE
    assert d.value is None and d.rollout is None and d.stage is None
    assert d.revision == 0 and d.bucket is None and d.percent is None
    assert d.from_cache is False
    with pytest.raises(sluice.NotFoundError) as ei:
        e.stage("orders_discount_v2")
    assert (ei.value.code, ei.value.name) == (3, "ENOENT")


def test_offline_no_cache_defaults():
    for eps in (None, [], ""):
        with sluice.Client(eps) as c:
            assert c.revision == 0
            check_defaults(c)
            with c.view() as v:
                assert v.revision == 0
                check_defaults(v)
                assert v.rolled_back() is False
        assert c.closed and v.closed


def test_missing_cache_file(tmp_path):
    with sluice.Client(None, cache_file=tmp_path / "none.cache") as c:
        assert c.revision == 0
        check_defaults(c)


def test_corrupt_cache_is_not_used(tmp_path, capfd):
    cache = tmp_path / "bad.cache"
    cache.write_bytes(b"SLUICEC\n" + b"\x01" * 200)
    with sluice.Client(None, cache_file=str(cache)) as c:
        assert c.revision == 0
        check_defaults(c)
    assert "cache-corrupt" in capfd.readouterr().err


def test_server_down_no_cache_defaults():
    """An endpoint where nobody listens: open returns after the connect
    timeout, evaluations give defaults, close is bounded."""
    port = it.free_port()
    with sluice.Client(["tcp://127.0.0.1:%d" % port], connect_timeout=0.3,
                       request_timeout=0.5, backoff=(0.05, 0.2)) as c:
        assert c.revision == 0
        check_defaults(c)


def test_gc_closes_clients_and_views():
    c = sluice.Client(None)
    v = c.view()
    del c
    gc.collect()
    # The view keeps its client (and snapshot) alive.
    assert v.bool("f", default=True) is True
    assert v.rolled_back() is False
    del v
    gc.collect()
    for _ in range(50):
        sluice.Client(None).view()
        sluice.Client(None, cache_file="/nonexistent/dir/c").close()
    gc.collect()


def test_view_outlives_explicit_client_close():
    c = sluice.Client(None)
    with c.view() as v:
        c.close()
        assert v.int("f", default=3) == 3
        assert v.rolled_back() is False  # client closed: always False


def test_threads_evaluate_at_once():
    errors = []
    with sluice.Client(None) as c:
        def work():
            try:
                for i in range(2000):
                    assert c.bool("f", unit="u%d" % i, default=i % 2 == 0) \
                        is (i % 2 == 0)
            except BaseException as e:  # reported below
                errors.append(e)
        ts = [threading.Thread(target=work) for _ in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in ts)
    assert errors == []


def test_repr():
    c = sluice.Client(["tcp://127.0.0.1:1", "tcp://127.0.0.1:2"],
                      connect_timeout=0)
    assert "tcp://127.0.0.1:1,tcp://127.0.0.1:2" in repr(c)
    c.close()
    assert "closed" in repr(c)


def test_unclosed_clients_at_exit(tmp_path):
    """Clients and views left open (module globals, a running updater
    thread with a callback) do not hang or crash the interpreter's exit."""
    import os
    import subprocess
    import sys
    from conftest import PKG
    port = it.free_port()
    code = (
        "import sluice\n"
        "c = sluice.Client(['tcp://127.0.0.1:%d'], connect_timeout=0.1,\n"
        "                  request_timeout=0.3, backoff=(0.05, 0.1),\n"
        "                  on_change=lambda r, n: None)\n"
        "v = c.view(); v.bool('f')\n"
        "d = sluice.Client(None).view()\n"
        "print('ok')\n" % port)
    env = dict(os.environ, PYTHONPATH=str(PKG), PYTHONDONTWRITEBYTECODE="1")
    res = subprocess.run([sys.executable, "-c", code], env=env,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res
    assert res.stdout.strip() == "ok", res
