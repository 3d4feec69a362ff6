# SPDX-License-Identifier: MIT
"""The Python client against a real flagd: a change made with flagctl is
seen (wait_revision), percentages follow libsluice's buckets, a pinned
view keeps its answers and reports a rollback, the change callback runs,
and the cache file written by the live client serves an offline one."""

import threading
import time

import sluice

ROLLOUT = "py_orders_schema"
SPEC = """\
rollout: py_orders_schema
description: the Python client's live test
owner: data-platform
datasets: [warehouse.orders]
stages: [off, shadow, canary, full]
flags:
  py.dual_write:     [false, true, true, true]
  py.read_new:       ["0%", "0%", "50%", "100%"]
  py.writer_version: [1, 1, 2, 2]
  py.schema:         ["v1", "v1", "v2", "v2"]
requires: []
rollback_window: 24h
gates: {}
"""

WAIT = 60  # seconds; generous for sanitizer builds, never hit normally
UNITS = ["2026-11-%02d" % d for d in range(1, 29)] + ["p1", "ünï", ""]


def rev_of(cluster):
    st = cluster.status(ROLLOUT)
    assert isinstance(st["revision"], int) and st["revision"] > 0, st
    return st["revision"]


def wait_for(pred, what, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.02)


def test_live_change_view_rollback_cache(cluster, tmp_path):
    spec = tmp_path / "py.yaml"
    spec.write_text(SPEC)
    cluster.ok("apply", "-f", spec)
    rev0 = rev_of(cluster)

    seen = []
    lock = threading.Lock()

    def on_change(revision, rollout):
        with lock:
            seen.append((revision, rollout))

    cache = tmp_path / "client.cache"
    with sluice.Client([cluster.server], cache_file=cache,
                       connect_timeout=10, max_stale="5m",
                       on_change=on_change) as c:
        assert c.wait_revision(rev0, timeout=WAIT) >= rev0
        assert c.stage(ROLLOUT) == ("off", 0)
        assert c.bool("py.dual_write", unit="2026-11-01", default=True) \
            is False
        assert c.int("py.writer_version") == 1
        assert c.string("py.schema") == "v1"
        d = c.detail("py.dual_write", unit="2026-11-01")
        assert d.reason is sluice.Reason.STAGE, d
        assert (d.kind, d.value, d.rollout, d.stage, d.stage_index) == \
            (sluice.Kind.BOOL, False, ROLLOUT, "off", 0)
        assert d.revision >= rev0 and not d.stale and not d.from_cache

        # A change made with flagctl reaches the client.
        cluster.ok("promote", ROLLOUT, "--to", "canary")
        rev1 = rev_of(cluster)
        assert rev1 > rev0
        assert c.wait_revision(rev1, timeout=WAIT) >= rev1
        assert c.revision >= rev1
        assert c.stage(ROLLOUT) == sluice.Stage("canary", 2)
        assert c.int("py.writer_version") == 2
        assert c.string("py.schema", unit="p1") == "v2"
        ins = 0
        for u in UNITS:
            b = sluice.bucket(ROLLOUT, u)
            want = b < 5000
            ins += want
            assert c.bool("py.read_new", unit=u) is want, (u, b)
            assert c.bool("py.read_new", unit=u.encode()) is want
            d = c.detail("py.read_new", unit=u)
            assert d.kind is sluice.Kind.PERCENT and d.percent == 5000, d
            assert d.bucket == b and d.value is want, (u, d)
            assert d.reason == ("PERCENT_IN" if want else "PERCENT_OUT")
        assert 0 < ins < len(UNITS)  # both sides of the line are covered
        # flagctl's bucket (libsluice too) agrees with the Python view.
        got = cluster.okj("get", "py.read_new", "--unit", "2026-11-01")
        assert got["bucket"] == sluice.bucket(ROLLOUT, "2026-11-01"), got

        # The callback saw the change (it may run just after the wait).
        wait_for(lambda: any(r == rev1 for r, _ in list(seen)),
                 "on_change(%d)" % rev1)
        with lock:
            assert (rev1, ROLLOUT) in seen, seen

        # A pinned run: its answers never change; it reports a rollback.
        with c.view() as run:
            assert run.revision >= rev1
            assert run.bool("py.dual_write") is True
            assert run.string("py.schema") == "v2"
            assert run.stage(ROLLOUT) == ("canary", 2)
            assert run.rolled_back() is False

            cluster.ok("rollback", ROLLOUT, "--to", "shadow",
                       "--reason", "python client test")
            rev2 = rev_of(cluster)
            assert rev2 > rev1
            assert c.wait_revision(rev2, timeout=WAIT) >= rev2

            assert run.rolled_back() is True
            assert run.string("py.schema") == "v2"
            assert run.int("py.writer_version") == 2
            assert run.stage(ROLLOUT) == ("canary", 2)
            d = run.detail("py.read_new", unit="p1")
            assert d.revision == run.revision < rev2 and d.percent == 5000

            # The client itself is already on the old path.
            assert c.stage(ROLLOUT) == ("shadow", 1)
            assert c.string("py.schema") == "v1"
            assert c.bool("py.read_new", unit="p1") is False
            with c.view() as fresh:
                assert fresh.revision >= rev2
                assert fresh.string("py.schema") == "v1"
                assert fresh.rolled_back() is False
        assert run.closed
        final = c.revision
        assert final >= rev2

    # flagd is still up, but this client reads the cache only: it serves
    # the last revision the live client applied.
    assert cache.exists()
    with sluice.Client(None, cache_file=cache) as off:
        assert off.revision == final
        assert off.stage(ROLLOUT) == ("shadow", 1)
        d = off.detail("py.schema")
        assert d.value == "v1" and d.from_cache is True, d
        assert d.reason is sluice.Reason.CACHE, d


def test_live_unknown_flag_and_view_of_other_rollout(cluster, tmp_path):
    spec = tmp_path / "py.yaml"
    spec.write_text(SPEC)
    cluster.ok("apply", "-f", spec)
    rev0 = rev_of(cluster)
    with sluice.Client(cluster.server, connect_timeout=10) as c:
        c.wait_revision(rev0, timeout=WAIT)
        d = c.detail("no.such.flag", unit="p1")
        assert d.reason is sluice.Reason.DEFAULT_UNKNOWN_FLAG
        assert d.revision >= rev0 and d.value is None
        assert c.bool("no.such.flag", default=True) is True
        # Typed getters are strict: an int flag read as bool gives the
        # default.
        assert c.bool("py.writer_version", default=True) is True
        # A view that never evaluated the rollout does not report its
        # rollback.
        with c.view() as run:
            cluster.ok("promote", ROLLOUT)
            cluster.ok("rollback", ROLLOUT)
            c.wait_revision(rev_of(cluster), timeout=WAIT)
            assert run.rolled_back() is False
            run.bool("py.dual_write")  # now it has seen the rollout
            # promote then rollback: went down after the pin.
            assert run.rolled_back() is True


def test_live_client_is_listed_and_waited_for(cluster, tmp_path):
    """With a flagd and libsluice that support client acknowledgements,
    the Python client shows up in `flagctl clients` under its id, and
    `flagctl wait --revision R` returns once it has applied R."""
    import os

    import pytest

    probe = cluster.ctl("clients", "--json")
    if not probe.ok:
        pytest.skip("flagctl/flagd without client acks: %r" % probe)
    spec = tmp_path / "py.yaml"
    spec.write_text(SPEC)
    cluster.ok("apply", "-f", spec)
    rev0 = rev_of(cluster)
    with sluice.Client([cluster.server], connect_timeout=10,
                       ack_interval=0.2) as c:
        if c.id is None:
            pytest.skip("libsluice without sluice_client_id")
        assert len(c.id) == 16
        c.wait_revision(rev0, timeout=WAIT)

        def listed():
            doc = cluster.okj("clients")
            for e in doc.get("clients", []):
                if e.get("client_id") == c.id:
                    return e
            return None
        wait_for(lambda: listed() is not None, "client %s listed" % c.id)
        e = listed()
        assert e["pid"] == os.getpid(), e
        cluster.ok("promote", ROLLOUT)
        rev1 = rev_of(cluster)
        res = cluster.ctl("wait", "--revision", rev1, "--clients", "1",
                          "--timeout", "60s")
        assert res.ok, res
        assert c.revision >= rev1
        wait_for(lambda: (listed() or {}).get("applied_revision", 0) >= rev1,
                 "applied_revision >= %d" % rev1)
