# SPDX-License-Identifier: MIT
"""Client.report() against a real flagd and gatekeeper: good batches are
accepted and counted, a replayed sequence and an out-of-scope rollout are
rejected with their reasons (a Verdict, not an exception), two bad batches
roll the rollout back (the deciding verdict says "rolled_back") and the
client sees the rollback; transport failures raise SluiceError subclasses;
arguments C would refuse are refused before the call.

gatekeeper runs on free loopback ports and is stopped by PID; every wait is
bounded."""

import math
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

import sluice
from conftest import it

GK_BIN = os.environ.get("GATEKEEPER_BIN",
                        str(Path(it.BUILD) / "gatekeeper"))
WAIT = 60  # seconds; generous for sanitizer builds

SPEC = """\
rollout: {name}
stages: [baseline, canary, full]
flags:
  {name}.new_path: [false, true, true]
gates:
  canary:
    conditions:
      - error_rate mean < 0.01
      - latency_ms p95 < 2000
    window: {{reports: 10}}
    min_samples: 1
    consecutive_failures: 2
    soak: {{reports: 50}}
    auto_promote: true
"""


class Gatekeeper:
    """One gatekeeper process on free loopback ports."""

    def __init__(self, workdir, flagd_url, key):
        self.workdir = Path(workdir)
        self.flagd_url = flagd_url
        self.key = key
        self.proc = None
        self.api = None
        self.log = self.workdir / "gatekeeper.log"

    def log_text(self):
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def start(self):
        data = self.workdir / "gkdata"
        data.mkdir(exist_ok=True)
        for _ in range(3):
            api, http = it.distinct_ports(2)
            self.api = "tcp://127.0.0.1:%d" % api
            with open(self.log, "wb") as logf:
                self.proc = subprocess.Popen(
                    [GK_BIN, "--api", self.api,
                     "--http", "http://127.0.0.1:%d" % http,
                     "--flagd", self.flagd_url, "--key", str(self.key),
                     "--data", str(data), "--tick-ms", "100"],
                    stdout=logf, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL)
            for _ in range(600):
                if self.proc.poll() is not None:
                    break
                if "gatekeeper ready" in self.log_text():
                    return
                time.sleep(0.05)
            self.stop()
            if "in use" not in self.log_text():
                break
        raise AssertionError("gatekeeper did not start:\n%s"
                             % self.log_text()[-3000:])

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout=it.STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=it.STOP_TIMEOUT)
            raise AssertionError("gatekeeper ignored SIGTERM")


@pytest.fixture
def gk(cluster, tmp_path):
    if not Path(GK_BIN).exists():
        pytest.skip("no gatekeeper binary at %s" % GK_BIN)
    opkey = cluster.new_key("gatekeeper", "operator")
    g = Gatekeeper(tmp_path, cluster.server, opkey)
    g.etl_key = cluster.new_key("etl-orders", "reporter", "orders*")
    g.start()
    try:
        yield g
    finally:
        code = g.stop()
        assert code in (0, None), "gatekeeper exited %s\n%s" % (
            code, g.log_text()[-3000:])


def apply(cluster, tmp_path, name):
    f = Path(tmp_path) / ("%s.yaml" % name)
    f.write_text(SPEC.format(name=name))
    cluster.ok("apply", "-f", f)


def test_report_verdicts_and_rollback(cluster, gk, tmp_path):
    name = "orders_py_gate"
    apply(cluster, tmp_path, name)
    apply(cluster, tmp_path, "payments_py")
    cluster.ok("promote", name)
    rev = cluster.status(name)["revision"]
    with sluice.Client([cluster.server], key_file=gk.etl_key,
                       gatekeeper=gk.api, connect_timeout=10,
                       request_timeout=10) as c:
        c.wait_revision(rev, timeout=WAIT)
        assert c.stage(name) == ("canary", 1)

        v = c.report(name, job="load_orders", run_id="run-1",
                     metrics={"error_rate": 0.001, "latency_ms": 250},
                     units=["2026-11-01", "2026-11-02"])
        assert isinstance(v, sluice.Verdict)
        assert v.accepted and v.counted and v.code == 0, v
        assert v.reason is None and v.code_name is None, v
        assert v.gate == "passing" and v.stage == "canary", v
        assert v.window_reports == 1 and v.sequence > 0, v
        assert not v.decided

        # An explicit sequence, then the same again: a replay, refused
        # with its reason and changing nothing.
        v = c.report(name, job="replay_job", sequence=5, time=time.time(),
                     metrics={"error_rate": 0.002, "latency_ms": 300})
        assert v.accepted and v.sequence == 5, v
        v = c.report(name, job="replay_job", sequence=5,
                     metrics={"error_rate": 0.002, "latency_ms": 300})
        assert not v.accepted and not v.counted, v
        assert v.reason == "replay" and v.code_name == "EREPLAY", v
        assert v.code == sluice._code_of("EREPLAY"), v

        # The reporter key's scope is orders*.
        v = c.report("payments_py", stage="baseline", job="load_orders",
                     metrics={"error_rate": 0.0})
        assert not v.accepted and v.reason == "scope", v

        # A report for another stage is recorded, not counted.
        v = c.report(name, stage="full", job="load_orders",
                     metrics={"error_rate": 0.9})
        assert v.accepted and not v.counted, v

        # Two bad batches (consecutive_failures: 2): breaching, then the
        # rollback, which the deciding verdict reports.
        v = c.report(name, job="load_orders",
                     metrics={"error_rate": 0.2, "latency_ms": 100})
        assert v.accepted and v.gate == "breaching", v
        v = c.report(name, job="load_orders",
                     metrics={"error_rate": 0.3, "latency_ms": 100})
        assert v.accepted and v.counted, v
        assert v.gate == "rolled_back" and v.decided, v
        assert v.stage == "canary", v  # the gate that decided
        st = cluster.status(name)
        assert st["stage"] in ("baseline", 0) or \
            st.get("stage_name") == "baseline", st
        c.wait_revision(st["revision"], timeout=WAIT)
        assert c.stage(name) == ("baseline", 0)


def test_report_errors(cluster, gk, tmp_path):
    name = "orders_py_err"
    apply(cluster, tmp_path, name)
    rev = cluster.status(name)["revision"]
    # No gatekeeper configured: refused before C is asked.
    with sluice.Client([cluster.server], connect_timeout=10) as c:
        with pytest.raises(sluice.InvalidArgumentError):
            c.report(name, job="j", metrics={"x": 1})
    # Nothing listens there: a transport error, as an exception.
    dead = "tcp://127.0.0.1:%d" % it.free_port()
    with sluice.Client([cluster.server], key_file=gk.etl_key,
                       gatekeeper=dead, connect_timeout=10,
                       request_timeout=0.3) as c:
        c.wait_revision(rev, timeout=WAIT)
        with pytest.raises((sluice.TimedOutError,
                            sluice.UnavailableError)) as ei:
            c.report(name, job="j", metrics={"error_rate": 0.0})
        assert isinstance(ei.value, sluice.SluiceError)
    with sluice.Client([cluster.server], key_file=gk.etl_key,
                       gatekeeper=gk.api, connect_timeout=10) as c:
        c.wait_revision(rev, timeout=WAIT)
        with pytest.raises(ValueError):
            c.report(name, job="j", metrics={"x": math.nan})
        with pytest.raises(ValueError):
            c.report(name, job="j", metrics={"x": math.inf})
        with pytest.raises(TypeError):
            c.report(name, job="j", metrics={"x": "1"})
        with pytest.raises(TypeError):
            c.report(name, job="j", metrics=[("x", 1.0)])
        with pytest.raises(ValueError):
            c.report(name, job="", metrics={"x": 1})
        with pytest.raises(ValueError):
            c.report(name, job="j", sequence=0, metrics={"x": 1})
        with pytest.raises(ValueError):
            c.report(name, job="j\0", metrics={"x": 1})
        # A rollout unknown to the client and no stage given: EINVAL.
        with pytest.raises(sluice.InvalidArgumentError):
            c.report("orders_nope", job="j", metrics={"x": 1})
        # With a stage, gatekeeper answers: unknown rollout.
        v = c.report("orders_nope", stage="canary", job="j",
                     metrics={"x": 1})
        assert not v.accepted and v.reason == "unknown_rollout", v
    c.close()
    with pytest.raises(sluice.ClosedError):
        c.report(name, job="j", metrics={"x": 1})
