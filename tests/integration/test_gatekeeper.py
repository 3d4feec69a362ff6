# SPDX-License-Identifier: MIT
"""gatekeeper end to end: a real flagd and gatekeeper on free loopback
ports, keys added with `flagctl key add` (gatekeeper reads them from
flagd), reports signed and sent through libsluice (`flagctl gate report`).

- good reports promote a rollout after the soak, by a CAS write whose
  audit entry carries the evidence digest, and `flagctl gate evidence`
  shows the reports and checks the digest;
- a gatekeeper restarted mid-window keeps its counted reports;
- every report acknowledged "accepted" survives a kill -9, also when
  reports from concurrent reporters were committed as a group;
- a bad batch rolls the rollout back and every subscribed client (20
  libsluice clients in one fleet helper process,
  tests/integration/helpers/fleet.c) has the rollback revision; the
  bad-report-to-all-clients time is printed (from starting `flagctl gate
  report` to the 20th client at the rollback revision: an upper bound, as
  it includes the flagctl process start), never asserted; the deciding
  verdict says "rolled_back";
- replayed, out-of-scope and unknown-rollout reports are rejected with
  their reason and counted per reason in /metrics;
- SIGTERM stops gatekeeper cleanly (exit 0).

Every process is stopped by PID; every wait is bounded.
"""

import os
import signal
import subprocess
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import BUILD, CMD_TIMEOUT, STOP_TIMEOUT, distinct_ports, \
    run_flagctl
from test_client_live import Fleet

GK_BIN = os.environ.get("GATEKEEPER_BIN", str(BUILD / "gatekeeper"))
N_CLIENTS = 20

ROLLOUT_YAML = """\
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
    min_samples: {min_samples}
    consecutive_failures: 2
    soak: {{reports: 3}}
    auto_promote: true
"""


class Gatekeeper:
    def __init__(self, workdir, flagd_url, key):
        self.workdir = Path(workdir)
        self.data = self.workdir / "gkdata"
        self.data.mkdir(exist_ok=True)
        self.flagd_url = flagd_url
        self.key = key
        self.proc = None
        self.n = 0
        self.api = self.http = None
        self.log = None

    def start(self):
        for _ in range(3):
            api, http = distinct_ports(2)
            self.api = "tcp://127.0.0.1:%d" % api
            self.http = "http://127.0.0.1:%d" % http
            self.log = self.workdir / ("gatekeeper.%d.log" % self.n)
            self.n += 1
            with open(self.log, "wb") as logf:
                self.proc = subprocess.Popen(
                    [GK_BIN, "--api", self.api, "--http", self.http,
                     "--flagd", self.flagd_url, "--key", str(self.key),
                     "--data", str(self.data), "--log-level", "info",
                     "--tick-ms", "100"],
                    stdout=logf, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL)
            for _ in range(300):
                if self.proc.poll() is not None:
                    break
                if "gatekeeper ready" in self.log_text():
                    return self
                time.sleep(0.05)
            if self.proc.poll() is None:
                self.stop()
            if "in use" not in self.log_text():
                break
        raise AssertionError("gatekeeper did not start:\n%s"
                             % self.log_text()[-3000:])

    def log_text(self):
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=STOP_TIMEOUT)
            raise AssertionError("gatekeeper ignored SIGTERM")
        return self.proc.returncode

    def metrics(self):
        with urllib.request.urlopen(self.http + "/metrics", timeout=10) as r:
            return r.read().decode()


@pytest.fixture
def gk(cluster, tmp_path):
    opkey = cluster.new_key("gatekeeper", "operator")
    g = Gatekeeper(tmp_path, cluster.server, opkey)
    g.etl_key = cluster.new_key("etl-orders", "reporter", "orders*")
    g.start()
    try:
        yield g
    finally:
        code = g.stop()
        assert code == 0, "gatekeeper exited %s on SIGTERM\n%s" % (
            code, g.log_text()[-3000:])


def setup_rollout(cluster, tmp_path, name, min_samples=2):
    f = Path(tmp_path) / ("%s.yaml" % name)
    f.write_text(ROLLOUT_YAML.format(name=name, min_samples=min_samples))
    cluster.ok("apply", "-f", f)
    cluster.ok("promote", name)
    assert cluster.status(name)["stage"] in ("canary", 1) or \
        cluster.status(name).get("stage_name") == "canary"


def stage_of(cluster, name):
    st = cluster.status(name)
    for k in ("stage_name", "stage"):
        if isinstance(st.get(k), str):
            return st[k]
    return st


def report(gk, cluster, rollout, key=None, seq=None, stage=None,
           job="load_orders", **metrics):
    args = ["gate", "report", rollout, "--job", job,
            "--gatekeeper", gk.api, "--json"]
    if stage is not None:
        args += ["--stage", stage]
    for k, v in metrics.items():
        args += ["--metric", "%s=%s" % (k, v)]
    if seq is not None:
        args += ["--seq", str(seq)]
    res = run_flagctl(args, server=cluster.server,
                      key=key if key is not None else gk.etl_key)
    try:
        return res.json(), res
    except ValueError:
        return None, res


def gate_status(gk, cluster, rollout):
    res = run_flagctl(["gate", "status", rollout, "--json", "--gatekeeper",
                       gk.api], server=cluster.server)
    assert res.ok, res
    return res.json()["gates"][0]


def wait_for(pred, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.05) + 1):
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    raise AssertionError("timed out waiting for %s" % what)


def gk_audit(cluster, rollout, action):
    return [e for e in cluster.audit(rollout)
            if e.get("actor") == "gatekeeper" and e.get("action") == action]


def test_good_reports_promote_after_soak(cluster, gk, tmp_path):
    setup_rollout(cluster, tmp_path, "orders_promote")
    verdicts = []
    for _ in range(3):
        v, res = report(gk, cluster, "orders_promote", error_rate=0.001,
                        latency_ms=250)
        assert v is not None and v["accepted"], res
        verdicts.append(v)
    assert verdicts[0]["gate"] == "pending"  # min_samples 2
    assert verdicts[0]["counted"]
    assert stage_of(cluster, "orders_promote") == "canary"
    v, res = report(gk, cluster, "orders_promote", error_rate=0.002,
                    latency_ms=300)
    assert v["accepted"], res
    wait_for(lambda: stage_of(cluster, "orders_promote") == "full",
             "the promotion")
    entries = wait_for(lambda: gk_audit(cluster, "orders_promote",
                                        "promote"), "the audit entry")
    assert len(entries) == 1
    e = entries[0]
    assert "passed" in e["reason"] and "error_rate" in e["reason"], e
    assert len(e.get("evidence_digest", "")) == 64, e
    res = run_flagctl(["gate", "evidence", "orders_promote",
                       str(e["revision"]), "--json", "--gatekeeper", gk.api],
                      server=cluster.server)
    assert res.ok, res
    ev = res.json()
    assert ev["digest_ok"] and ev["digest"] == e["evidence_digest"], ev
    assert ev["action"] == "promote" and len(ev["reports"]) == 4
    assert all(r["key"] == "etl-orders" for r in ev["reports"])


def test_restart_mid_window_keeps_counts(cluster, gk, tmp_path):
    setup_rollout(cluster, tmp_path, "orders_restart")
    for _ in range(2):
        v, res = report(gk, cluster, "orders_restart", error_rate=0.001,
                        latency_ms=100)
        assert v["accepted"], res
    before = gate_status(gk, cluster, "orders_restart")
    assert before["counted"] == 2 and before["state"] == "passing", before
    assert gk.stop() == 0
    assert "stopped cleanly" in gk.log_text()
    gk.start()
    after = gate_status(gk, cluster, "orders_restart")
    assert after["counted"] == 2, after
    assert after["window_reports"] == 2, after
    assert after["soak_reports"] == before["soak_reports"], after
    # Two more good reports finish the soak of 3 passing evaluations:
    # had the restart lost the window, the first would still be pending.
    v, _ = report(gk, cluster, "orders_restart", error_rate=0.001,
                  latency_ms=100)
    assert v["gate"] == "passing", v
    assert stage_of(cluster, "orders_restart") == "canary"
    v, _ = report(gk, cluster, "orders_restart", error_rate=0.001,
                  latency_ms=100)
    wait_for(lambda: stage_of(cluster, "orders_restart") == "full",
             "the promotion after the restart")
    # Replay marks survive the restart too.
    assert len(gk_audit(cluster, "orders_restart", "promote")) == 1


def test_kill_9_after_ack_keeps_every_accepted_report(cluster, gk,
                                                      tmp_path):
    # min_samples above the count: no decision moves the stage.
    setup_rollout(cluster, tmp_path, "orders_kill", min_samples=100)
    jobs, per_job = 8, 3

    def reporter(i):
        out = []
        for seq in range(1, per_job + 1):
            v, res = report(gk, cluster, "orders_kill", seq=seq,
                            error_rate=0.001, latency_ms=10,
                            job="job%d" % i)
            out.append((v, res))
        return out

    # Eight reporters at once, so that reports share group commits.
    with ThreadPoolExecutor(max_workers=jobs) as ex:
        results = [r for rs in ex.map(reporter, range(jobs)) for r in rs]
    for v, res in results:
        assert v is not None and v["accepted"] and v["counted"], res
    m = gk.metrics()
    commits = [int(line.split()[1]) for line in m.splitlines()
               if line.startswith("sluice_gk_report_commits_total ")]
    assert commits and commits[0] <= jobs * per_job, m
    # Killed right after the last acknowledgement: no clean shutdown.
    os.kill(gk.proc.pid, signal.SIGKILL)
    gk.proc.wait(timeout=STOP_TIMEOUT)
    gk.start()
    after = gate_status(gk, cluster, "orders_kill")
    assert after["counted"] == jobs * per_job, after
    # The replay marks came back too: each job's last report is a replay.
    for i in range(jobs):
        v, res = report(gk, cluster, "orders_kill", seq=per_job,
                        error_rate=0.001, latency_ms=10, job="job%d" % i)
        assert v is not None and v["reason"] == "replay", res
    v, res = report(gk, cluster, "orders_kill", seq=per_job + 1,
                    error_rate=0.001, latency_ms=10, job="job0")
    assert v["accepted"] and v["counted"], res
    assert gate_status(gk, cluster, "orders_kill")["counted"] == \
        jobs * per_job + 1


def test_bad_batch_rolls_back_and_every_client_sees_it(cluster, gk,
                                                       tmp_path, capsys):
    setup_rollout(cluster, tmp_path, "orders_bad", min_samples=1)
    fleet = Fleet(cluster.server, n=N_CLIENTS, log=tmp_path / "fleet.log")
    try:
        rev = cluster.revision()
        # Every client has the canary revision: all are subscribed.
        assert fleet.wait(rev, 60000) == "ok %d" % N_CLIENTS
        assert fleet.eval("bool", "orders_bad.new_path")["value"] == 1
        v, res = report(gk, cluster, "orders_bad", error_rate=0.2,
                        latency_ms=100)
        assert v["accepted"] and v["gate"] == "breaching", (v, res)
        assert stage_of(cluster, "orders_bad") == "canary"  # damping
        # Nothing else writes: the rollback will be the next revision.
        # The fleet starts waiting for it before the report is sent.
        rollback_rev = cluster.revision() + 1
        fleet.proc.stdin.write("wait %d 60000\n" % rollback_rev)
        fleet.proc.stdin.flush()
        t0 = time.monotonic()
        # --stage: flagctl's client need not fetch the stage from flagd.
        v, res = report(gk, cluster, "orders_bad", stage="canary",
                        error_rate=0.3, latency_ms=100)
        t_verdict = time.monotonic()
        answer = fleet._line()
        t_all = time.monotonic()
        assert answer == "ok %d" % N_CLIENTS, answer
        assert v["accepted"], res
        # The reporter learns the decision its report caused.
        assert v["gate"] == "rolled_back" and v["stage"] == "canary", v
        with capsys.disabled():
            print("\ngatekeeper: bad report -> all %d libsluice clients at "
                  "the rollback revision %d: %.1f ms (flagctl gate report "
                  "round trip alone %.1f ms; upper bound, includes the "
                  "flagctl process start)"
                  % (N_CLIENTS, rollback_rev, (t_all - t0) * 1000,
                     (t_verdict - t0) * 1000))
        assert fleet.eval("bool", "orders_bad.new_path")["value"] == 0
        e = gk_audit(cluster, "orders_bad", "rollback")
        assert len(e) == 1 and e[0]["revision"] == rollback_rev, e
    finally:
        assert fleet.close() == 0
    assert stage_of(cluster, "orders_bad") == "baseline"
    e = gk_audit(cluster, "orders_bad", "rollback")
    assert len(e) == 1, e
    assert "failing" in e[0]["reason"] and "error_rate mean < 0.01" in \
        e[0]["reason"], e[0]
    # Decided: more bad reports for the old stage are recorded only.
    v, _ = report(gk, cluster, "orders_bad", error_rate=0.5, latency_ms=1,
                  **{})
    assert v["accepted"]
    assert len(gk_audit(cluster, "orders_bad", "rollback")) == 1


def test_rejections_are_counted_per_reason(cluster, gk, tmp_path):
    setup_rollout(cluster, tmp_path, "orders_rej")
    v, res = report(gk, cluster, "orders_rej", seq=10, error_rate=0.001,
                    latency_ms=1)
    assert v["accepted"], res
    v, res = report(gk, cluster, "orders_rej", seq=10, error_rate=0.001,
                    latency_ms=1)
    assert not v["accepted"] and v["reason"] == "replay", res
    v, res = report(gk, cluster, "orders_rej", seq=9, error_rate=0.001,
                    latency_ms=1)
    assert v["reason"] == "replay", res
    # The reporter's scope is orders*; payments is out of it.
    f = Path(tmp_path) / "pay.yaml"
    f.write_text(ROLLOUT_YAML.format(name="payments_x", min_samples=1))
    cluster.ok("apply", "-f", f)
    v, res = report(gk, cluster, "payments_x", error_rate=0.001)
    assert v["reason"] == "scope", res
    # The admin key may report; an operator key may not.
    v, res = report(gk, cluster, "orders_rej", key=gk.key, error_rate=0.1)
    assert v["reason"] == "role", res
    v, res = report(gk, cluster, "orders_nope", stage="canary",
                    error_rate=0.1)
    assert v["reason"] == "unknown_rollout", res
    m = gk.metrics()
    assert 'sluice_gk_reports_rejected_total{reason="replay"} 2' in m, m
    assert 'sluice_gk_reports_rejected_total{reason="scope"} 1' in m, m
    assert 'sluice_gk_reports_rejected_total{reason="role"} 1' in m, m
    assert 'sluice_gk_reports_rejected_total{reason="unknown_rollout"} 1' \
        in m, m
    st = gate_status(gk, cluster, "orders_rej")
    assert st["counted"] == 1, st
    with urllib.request.urlopen(gk.http + "/readyz", timeout=10) as r:
        assert r.status == 200


def test_key_added_after_start_is_fetched_on_its_first_report(
        cluster, gk, tmp_path):
    # gatekeeper fetched the keys at start; this one comes later. Its
    # first report is refused as unknown_key by the first check, then
    # the keys are fetched again (aside from the API's callbacks, at most
    # once a second) and the report is verified and accepted.
    setup_rollout(cluster, tmp_path, "orders_late")
    late = cluster.new_key("etl-late", "reporter", "orders*")
    time.sleep(1.1)  # past the once-a-second bound of key refreshes
    v, res = report(gk, cluster, "orders_late", key=late, job="late_job",
                    error_rate=0.001, latency_ms=1)
    assert v is not None and v["accepted"], res
    # Not counted as a rejection: the report was accepted in the end.
    assert 'sluice_gk_reports_rejected_total{reason="unknown_key"} 0' \
        in gk.metrics()
