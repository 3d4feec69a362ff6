# SPDX-License-Identifier: MIT
"""libsluice against a real flagd: a change reaching a fleet of clients,
a rollback seen by a pinned view, flagd killed and restarted under live
clients, a client started with flagd down serving its cache file, and the
client acknowledgements behind `flagctl clients` and `flagctl wait`.

The clients run in tests/integration/helpers/fleet.c (built into
$SLUICE_BUILD/tests/helpers/), N sluice_client instances in one process
answering line commands. Every wait is bounded; nothing asserts on time.
"""

import os
import shutil
import queue
import signal
import subprocess
import textwrap
import threading
import time

import pytest

from conftest import BUILD, ROOT, STOP_TIMEOUT, START_TIMEOUT, run_flagctl

FLEET_BIN = BUILD / "tests" / "helpers" / "fleet"
LINE_TIMEOUT = 90  # seconds for one helper answer (ASan is slow)

ROLLOUT = textwrap.dedent("""\
    rollout: orders_v2
    description: live client test
    owner: data-platform
    datasets: [warehouse.orders]
    stages: [off, shadow, full]
    flags:
      orders.dual_write: [false, true, true]
      orders.writer_version: [1, 1, 2]
    requires: []
    rollback_window: 1h
    gates: {}
    """)


def ensure_fleet_built():
    if FLEET_BIN.exists():
        return
    # The suite may be run after building only `all` and the test
    # programs: build the helper for the same variant.
    variant = BUILD.name
    subprocess.run(["make", "-s", "-C", str(ROOT), "VARIANT=%s" % variant,
                    "build/%s/tests/helpers/fleet" % variant],
                   check=False, timeout=600)
    assert FLEET_BIN.exists(), "no %s (make integration builds it)" % FLEET_BIN


def stacks_of(pid):
    """Every thread's backtrace of a hung process (gdb, if installed),
    for the test log: a hang is diagnosed from this."""
    gdb = shutil.which("gdb")
    if gdb is None:
        return "(no gdb: no backtrace)"
    try:
        out = subprocess.run(
            [gdb, "-p", str(pid), "-batch", "-ex", "thread apply all bt"],
            capture_output=True, text=True, timeout=60)
        return out.stdout[-20000:]
    except (subprocess.TimeoutExpired, OSError) as e:
        return "(gdb failed: %s)" % e


class Fleet:
    """N clients in one helper process, driven line by line."""

    def __init__(self, server, n=1, cache=None, key=None, ack_ms=500,
                 connect_ms=5000, log=None):
        ensure_fleet_built()
        argv = [str(FLEET_BIN), "--server", server, "--clients", str(n),
                "--ack-ms", str(ack_ms), "--connect-ms", str(connect_ms)]
        if cache is not None:
            argv += ["--cache", str(cache)]
        if key is not None:
            argv += ["--key", str(key)]
        self.n = n
        self.errf = open(log, "wb") if log else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self.errf, text=True, bufsize=1)
        self.lines = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        ready = self._line()
        assert ready == "ready %d" % n, ready

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def _line(self, timeout=LINE_TIMEOUT):
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("fleet helper did not answer in %ds"
                                 % timeout)
        assert line is not None, "fleet helper exited (%s)" % self.proc.poll()
        return line

    def cmd(self, *words):
        self.proc.stdin.write(" ".join(str(w) for w in words) + "\n")
        self.proc.stdin.flush()
        return self._line()

    def wait(self, rev, ms=30000):
        return self.cmd("wait", rev, ms)

    def eval(self, kind, flag, unit="u"):
        """{'value': int, 'reason': str, 'rev': int, 'cache': int}"""
        out = self.cmd(kind, flag, unit)
        d = dict(kv.split("=", 1) for kv in out.split())
        return {"value": int(d["value"]), "reason": d["reason"],
                "rev": int(d["rev"]), "cache": int(d["cache"])}

    def ids(self):
        return self.cmd("ids").split()

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
            except (BrokenPipeError, ValueError):
                pass
            try:
                self.proc.wait(timeout=LINE_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.hung_stacks = stacks_of(self.proc.pid)
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=STOP_TIMEOUT)
        if self.errf is not subprocess.DEVNULL:
            self.errf.close()
        return self.proc.returncode


@pytest.fixture
def fleets():
    started = []

    def make(*args, **kw):
        f = Fleet(*args, **kw)
        started.append(f)
        return f

    yield make
    for f in started:
        f.close()


def apply_rollout(c, tmp_path):
    f = tmp_path / "orders_v2.yaml"
    f.write_text(ROLLOUT)
    c.ok("apply", "-f", f)
    return c.revision()


def restart_same_ports(flagd):
    """Starts the stopped flagd again with the same argv (ports, data)."""
    argv = flagd.proc.args
    flagd.log = flagd.workdir / ("flagd.%d.log" % len(flagd.logs))
    flagd.logs.append(flagd.log)
    with open(flagd.log, "wb") as logf:
        flagd.proc = subprocess.Popen(argv, stdout=logf,
                                      stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert flagd.proc.poll() is None, flagd.log_text()[-3000:]
        if run_flagctl(["list"], server=flagd.api, timeout=15).ok:
            return
        time.sleep(0.1)
    raise AssertionError("flagd did not come back:\n" +
                         flagd.log_text()[-3000:])


def clients_json(c):
    return c.okj("clients")


# ---------------------------------------------------------------- tests


def test_change_reaches_50_clients(cluster, tmp_path, fleets):
    c = cluster
    apply_rollout(c, tmp_path)
    fleet = fleets(c.server, n=50, log=tmp_path / "fleet.log")
    c.ok("promote", "orders_v2", "--reason", "to shadow")
    rev = c.revision()
    assert fleet.wait(rev) == "ok 50"
    assert fleet.eval("bool", "orders.dual_write")["value"] == 1
    # Every one of them says so to flagd.
    ids = set(fleet.ids())
    res = c.ctl("wait", "--revision", rev, "--clients", 50,
                "--timeout", "60s", "--json")
    assert res.ok, res
    doc = res.json()
    assert doc["ok"] is True and doc["at"] >= 50, doc
    seen = {x["client_id"] for x in doc["clients"]
            if x["applied_revision"] >= rev}
    assert ids <= seen, (ids - seen)


def test_rollback_during_pinned_run_is_reported_by_view(cluster, tmp_path,
                                                        fleets):
    c = cluster
    apply_rollout(c, tmp_path)
    c.ok("promote", "orders_v2")
    rev = c.revision()
    fleet = fleets(c.server, n=1)
    assert fleet.wait(rev) == "ok 1"
    assert fleet.cmd("view_open") == "ok %d" % rev
    assert fleet.cmd("view_bool", "orders.dual_write", "p1") == \
        "value=1 rev=%d" % rev
    assert fleet.cmd("view_rolled_back") == "no"
    c.ok("rollback", "orders_v2", "--reason", "null ratio spiked")
    back = c.revision()
    assert fleet.wait(back) == "ok 1"
    # The run is told, and its pinned answers do not change under it.
    assert fleet.cmd("view_rolled_back") == "yes"
    assert fleet.cmd("view_bool", "orders.dual_write", "p1") == \
        "value=1 rev=%d" % rev
    assert fleet.eval("bool", "orders.dual_write")["value"] == 0
    assert fleet.cmd("view_close") == "ok"
    # A fresh view pinned after the rollback sees no rollback.
    assert fleet.cmd("view_open") == "ok %d" % back
    assert fleet.cmd("view_bool", "orders.dual_write", "p1") == \
        "value=0 rev=%d" % back
    assert fleet.cmd("view_rolled_back") == "no"


def test_flagd_killed_and_restarted_clients_keep_evaluating(
        cluster, tmp_path, fleets):
    c = cluster
    apply_rollout(c, tmp_path)
    c.ok("promote", "orders_v2")
    rev = c.revision()
    fleet = fleets(c.server, n=3, log=tmp_path / "fleet.log")
    assert fleet.wait(rev) == "ok 3"

    c.flagd.kill9()
    # Last known values, from memory, while nothing answers.
    for _ in range(5):
        e = fleet.eval("bool", "orders.dual_write")
        assert e["value"] == 1 and e["rev"] == rev, e
        assert fleet.eval("int", "orders.writer_version")["value"] == 1
        time.sleep(0.2)

    restart_same_ports(c.flagd)
    c.ok("promote", "orders_v2", "--reason", "after restart")
    rev2 = c.revision()
    assert rev2 > rev
    # They re-sync on their own and follow the stream again.
    assert fleet.wait(rev2, 60000) == "ok 3"
    assert fleet.eval("int", "orders.writer_version")["value"] == 2
    # And they re-acknowledge to the restarted node (its registry is
    # in memory only).
    res = c.ctl("wait", "--revision", rev2, "--clients", 3,
                "--timeout", "60s")
    assert res.ok, res


def test_client_started_with_flagd_down_serves_cache(cluster, tmp_path,
                                                    fleets):
    c = cluster
    cache = tmp_path / "sluice.cache"
    apply_rollout(c, tmp_path)
    c.ok("promote", "orders_v2")
    rev = c.revision()
    first = fleets(c.server, n=1, cache=cache)
    assert first.wait(rev) == "ok 1"
    assert first.close() == 0
    assert cache.exists()

    assert c.stop() == 0
    job = fleets(c.server, n=1, cache=cache, connect_ms=300)
    e = job.eval("bool", "orders.dual_write")
    assert e == {"value": 1, "reason": "CACHE", "rev": rev, "cache": 1}, e

    # flagd back: the job moves from its cache to the live state.
    restart_same_ports(c.flagd)
    c.ok("rollback", "orders_v2")
    back = c.revision()
    assert job.wait(back, 60000) == "ok 1"
    e = job.eval("bool", "orders.dual_write")
    assert e["value"] == 0 and e["cache"] == 0 and e["rev"] == back, e


def test_flagctl_wait_returns_only_after_all_clients_applied(
        cluster, tmp_path, fleets):
    c = cluster
    apply_rollout(c, tmp_path)
    fleet = fleets(c.server, n=5)
    ids = set(fleet.ids())
    c.ok("promote", "orders_v2")
    rev = c.revision()

    res = c.ctl("wait", "--revision", rev, "--timeout", "60s")
    assert res.ok, res
    assert "5/5 clients at revision >= %d" % rev in res.err + res.out, res
    # Once wait returned, every client does evaluate at rev.
    assert fleet.cmd("revs") == "min=%d max=%d n=5" % (rev, rev)

    doc = clients_json(c)
    listed = {x["client_id"]: x for x in doc["clients"]}
    assert ids == set(listed), doc
    for x in listed.values():
        assert x["pid"] == fleet.proc.pid and x["host"], x
        assert x["verified"] is False and x["key_id"] is None, x

    # A stalled client (an ack at an old revision) holds the wait, and
    # the timeout names it.
    assert fleet.cmd("fakeack", "stalledclient001", rev - 1) == "ok"
    res = c.ctl("wait", "--revision", rev, "--timeout", "1500ms")
    assert res.rc == 1, res
    assert "5/6 clients at revision >= %d" % rev in res.err, res
    assert "stalledclient001" in res.err, res
    res = c.ctl("wait", "--revision", rev, "--timeout", "1s", "--json")
    assert res.rc == 1, res
    doc = res.json()
    assert doc["ok"] is False and doc["live"] == 6 and doc["at"] == 5, doc
    assert [x["client_id"] for x in doc["behind"]] == ["stalledclient001"]
    # --clients N: enough when N have it.
    res = c.ctl("wait", "--revision", rev, "--clients", 5, "--timeout", "30")
    assert res.ok, res

    # A revision nobody has yet: times out (exit 1), bounded.
    res = c.ctl("wait", "--revision", rev + 100, "--timeout", "1s")
    assert res.rc == 1 and "behind" in res.err, res


def test_signed_acks_are_verified_and_closed_clients_leave(cluster,
                                                          tmp_path, fleets):
    c = cluster
    key = c.new_key("etl-orders", "reader")
    fleet = fleets(c.server, n=2, key=key)
    ids = set(fleet.ids())
    doc = clients_json(c)
    mine = [x for x in doc["clients"] if x["client_id"] in ids]
    assert len(mine) == 2, doc
    for x in mine:
        assert x["verified"] is True and x["key_id"] == "etl-orders", x
    text = c.ok("clients").out
    assert "etl-orders (verified)" in text, text
    # Nobody else may speak for a verified client.
    victim = sorted(ids)[0]
    assert fleet.cmd("fakeack", victim, 0).startswith("error"), victim

    # Closing a client tells flagd at once; no liveness wait.
    assert fleet.close() == 0
    doc = clients_json(c)
    assert not ids & {x["client_id"] for x in doc["clients"]}, doc


def test_clients_and_wait_usage(cluster):
    c = cluster
    for verb in ("clients", "wait"):
        res = c.ctl(verb, "--help")
        assert res.ok and "usage: flagctl %s" % verb in res.out, res
    res = c.ctl("wait")
    assert res.rc == 2 and "--revision" in res.err, res
    res = c.ctl("wait", "--revision", "x")
    assert res.rc == 2, res
    res = c.ctl("wait", "--revision", 1, "--timeout", "soon")
    assert res.rc == 2, res
    # No client at all: wait does not succeed vacuously.
    res = c.ctl("wait", "--revision", 0, "--timeout", "500ms")
    assert res.rc == 1 and "no live client" in res.err, res
    res = run_flagctl(["wait", "--revision", 1, "--timeout", "1s"],
                      server="tcp://127.0.0.1:1")
    assert res.rc == 1 and "no server reachable" in res.err, res
    doc = c.okj("clients")
    assert doc["clients"] == [] and doc["liveness_ms"] > 0, doc
