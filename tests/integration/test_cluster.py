# SPDX-License-Identifier: MIT
"""A replicated flagd cluster: three real flagd processes on free loopback
ports, each with its own data directory, bootstrapped with --peers. Writes
go through each node (followers forward to the leader), the leader is
killed with SIGKILL during a stream of acknowledged writes from four
writers, the killed node is restarted and must catch up, and with two of
three nodes stopped writes must be refused with a clear error while reads
still answer, marked stale.

The cluster is driven by tests/tools/sldrive (libsluice's rpc plus JSON
output), so the tests do not depend on flagctl. Every wait is bounded in
count and time; every flagd is stopped by PID. No test asserts on timing.
"""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import (BUILD, FLAGD_BIN, STOP_TIMEOUT, distinct_ports,
                      run_flagctl)

SLDRIVE = str(BUILD / "tests" / "tools" / "sldrive")
CALL_TIMEOUT = 60
# Generous bounds: CI runs this again under ASan on two cores.
CONVERGE_S = 60
LEADER_S = 60


def sldrive(*args, timeout=CALL_TIMEOUT):
    proc = subprocess.run([SLDRIVE] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=timeout)
    lines = [l for l in proc.stdout.splitlines() if l.strip()]
    docs = [json.loads(l) for l in lines]
    return proc.returncode, docs, proc.stderr


def call(api, *args):
    rc, docs, err = sldrive("call", api, *args)
    assert docs, "sldrive call %s %s: rc %s, stderr %s" % (api, args, rc, err)
    return docs[-1]


class Node:
    def __init__(self, cluster, nid, api, pub, raft):
        self.cluster = cluster
        self.id = nid
        self.api = api
        self.pub = pub
        self.raft = raft
        self.data = cluster.tmp / ("node%d" % nid)
        self.proc = None
        self.logs = []
        self.peers = None   # default: the cluster's --peers
        self.extra = []     # flags for this node only

    def start(self):
        log = self.cluster.tmp / ("flagd-%d.%d.log" % (self.id, len(self.logs)))
        self.logs.append(log)
        argv = [
            FLAGD_BIN, "--id", str(self.id), "--data", str(self.data),
            "--api", self.api, "--publish", self.pub, "--raft", self.raft,
            "--peers", self.peers or self.cluster.peers,
            "--authorized-keys", str(self.cluster.authorized_keys),
            "--log-level", "info", "--nosync", "--segment-kb", "1024",
            "--heartbeat-ms", "200",
        ] + self.cluster.extra + self.extra
        with open(log, "wb") as f:
            self.proc = subprocess.Popen(argv, stdout=f,
                                         stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.running():
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=STOP_TIMEOUT)
                raise AssertionError("flagd %d ignored SIGTERM" % self.id)
        return self.proc.returncode if self.proc else None

    def kill9(self):
        if self.running():
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=STOP_TIMEOUT)

    def log_text(self):
        return "".join(p.read_text(errors="replace") for p in self.logs
                       if p.exists())


class RaftCluster:
    def __init__(self, tmp, n=3, extra=(), peer_host="127.0.0.1"):
        self.tmp = Path(tmp)
        self.extra = list(extra)
        self.key = self.tmp / "admin.key"
        out = subprocess.run([SLDRIVE, "keygen", self.key, "admin"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        line = out.stdout.strip()
        self.authorized_keys = self.tmp / "authorized_keys"
        self.authorized_keys.write_text(line + "\n")
        ports = distinct_ports(3 * n)
        self.nodes = []
        for i in range(n):
            api, pub, raft = ports[3 * i:3 * i + 3]
            self.nodes.append(Node(self, i + 1, "tcp://127.0.0.1:%d" % api,
                                   "tcp://127.0.0.1:%d" % pub,
                                   "127.0.0.1:%d" % raft))
            # --raft (the bind address) stays a literal; --peers may
            # name the peers by host name.
            self.nodes[-1].peer_raft = "%s:%d" % (peer_host, raft)
        self.peers = ",".join("%d=%s@%s" % (nd.id, nd.peer_raft, nd.api)
                              for nd in self.nodes)

    @property
    def servers(self):
        return ",".join(nd.api for nd in self.nodes)

    def node(self, nid):
        return self.nodes[nid - 1]

    def live(self):
        return [nd for nd in self.nodes if nd.running()]

    def start(self):
        for nd in self.nodes:
            nd.start()
        return self.wait_leader()

    def leader(self, nodes=None):
        """The leader id all of `nodes` agree on, or 0."""
        ids = set()
        for nd in nodes or self.live():
            doc = call(nd.api, "cluster")
            if not doc["ok"]:
                return 0
            ids.add(doc["cluster"]["leader_id"])
        return ids.pop() if len(ids) == 1 else 0

    def wait_leader(self, nodes=None):
        deadline = time.monotonic() + LEADER_S
        for _ in range(600):
            for nd in self.nodes:
                assert nd.running() or nd not in (nodes or self.live()), \
                    "flagd %d exited:\n%s" % (nd.id, nd.log_text()[-3000:])
            lid = self.leader(nodes)
            if lid:
                return lid
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        raise AssertionError("no leader agreed on:\n" + "\n".join(
            nd.log_text()[-2000:] for nd in self.nodes))

    def state(self, nd):
        doc = call(nd.api, "state")
        assert doc["ok"], doc
        return doc

    def wait_converged(self, nodes=None):
        """Waits until every node in `nodes` reports the same revision,
        rollouts and audit head; returns that state."""
        nodes = nodes or self.live()
        deadline = time.monotonic() + CONVERGE_S
        states = []
        for _ in range(600):
            # A node that is still starting does not answer yet.
            states = [call(nd.api, "state") for nd in nodes]
            keys = {(s["revision"], s["audit_head"], s["audit_count"],
                     tuple(sorted(s["rollouts"]))) if s["ok"] else None
                    for s in states}
            if len(keys) == 1 and None not in keys:
                return states[0]
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        raise AssertionError("nodes did not converge: %r" % [
            (s.get("node_id"), s.get("revision"), s.get("audit_count"),
             s.get("error")) for s in states])

    def write(self, api, name):
        rc, docs, err = sldrive("write", api, self.key, name)
        assert docs, err
        return docs[-1]

    def stop(self):
        codes = {}
        for nd in self.nodes:
            codes[nd.id] = nd.stop()
        return codes


@pytest.fixture
def raft_cluster(tmp_path):
    c = RaftCluster(tmp_path)
    c.start()
    try:
        yield c
    finally:
        for nd in c.nodes:
            if nd.running():
                code = nd.stop()
                assert code == 0, "flagd %d exited %s on SIGTERM\n%s" % (
                    nd.id, code, nd.log_text()[-3000:])


def test_cluster_bootstrap_and_write_through_each_node(raft_cluster):
    c = raft_cluster
    first = c.wait_converged()
    # The keys were seeded once, through the log: one bootstrap revision,
    # the same audit chain on every node.
    assert first["revision"] == 1 and first["audit_count"] == 1, first
    revs = []
    for nd in c.nodes:
        doc = c.write(nd.api, "via-node-%d" % nd.id)
        assert doc["ok"], doc
        # The answer comes from the leader, forwarded or not.
        assert doc["leader"] is True, doc
        revs.append(doc["revision"])
    assert revs == sorted(revs) and len(set(revs)) == 3, revs
    final = c.wait_converged()
    assert final["revision"] == revs[-1]
    assert set(final["rollouts"]) == {"via-node-%d" % nd.id
                                      for nd in c.nodes}
    # Read-your-writes on any node: min_revision waits for the revision.
    for nd in c.nodes:
        doc = call(nd.api, "get", "via-node-3", revs[-1])
        assert doc["ok"] and doc["revision"] >= revs[-1], doc
        assert doc["stale"] is False, doc
    info = call(c.nodes[0].api, "cluster")["cluster"]
    assert [n["id"] for n in info["nodes"]] == [1, 2, 3]
    assert info["leader_id"] in (1, 2, 3)
    # flagctl --min-revision: a read waits until the answering node has
    # applied it, and says so when it does not within the timeout.
    for nd in c.nodes:
        res = run_flagctl(["--min-revision", str(revs[-1]), "list",
                           "--json"], server=nd.api, key=c.key)
        assert res.rc == 0, res
        assert "via-node-3" in res.out, res
    res = run_flagctl(["--min-revision", str(revs[-1] + 100), "--timeout",
                       "300", "list"], server=c.nodes[1].api, key=c.key)
    assert res.rc == 1 and "not reached" in res.err, res


def test_leader_killed_during_writes_loses_no_acknowledged_write(raft_cluster):
    c = raft_cluster
    lid = c.wait_leader()
    out = c.tmp / "load.jsonl"
    with open(out, "w") as f:
        load = subprocess.Popen(
            [SLDRIVE, "load", c.servers, c.key, "w", "4", "1000", "240"],
            stdout=f, stderr=subprocess.DEVNULL)
    try:
        # Kill the leader once a quarter of the writes are acknowledged.
        deadline = time.monotonic() + 120
        acked = 0
        for _ in range(12000):
            acked = out.read_text().count('"ok":true')
            if acked >= 250 or load.poll() is not None or \
                    time.monotonic() > deadline:
                break
            time.sleep(0.01)
        assert load.poll() is None, "the load ended before the kill"
        c.node(lid).kill9()
        load.wait(timeout=300)
    finally:
        if load.poll() is None:
            load.kill()
            load.wait()
    docs = [json.loads(l) for l in out.read_text().splitlines() if l.strip()]
    summary = docs[-1]
    assert summary.get("done") and summary["acked"] == 1000, summary
    acked = {d["name"]: d["revision"] for d in docs[:-1] if d["ok"]}
    assert len(acked) == 1000
    # Acknowledged revisions are distinct: no two writes share one.
    assert len(set(acked.values())) == 1000

    live = c.live()
    assert len(live) == 2
    new = c.wait_leader(live)
    assert new != lid
    state = c.wait_converged(live)
    missing = set(acked) - set(state["rollouts"])
    assert not missing, "acknowledged writes lost: %s" % sorted(missing)[:20]
    for name, rev in list(acked.items())[:50]:
        doc = call(live[0].api, "get", name)
        assert doc["ok"], doc
    # The cluster takes writes again.
    doc = c.write(live[0].api, "after-failover")
    assert doc["ok"], doc

    # The killed node restarts from its data directory and catches up.
    c.node(lid).start()
    final = c.wait_converged(c.nodes)
    assert "after-failover" in final["rollouts"]
    assert not set(acked) - set(final["rollouts"])


def test_minority_refuses_writes_and_marks_reads_stale(raft_cluster):
    c = raft_cluster
    c.wait_converged()
    assert c.write(c.nodes[0].api, "before")["ok"]
    c.wait_converged()
    survivor = c.nodes[2]
    for nd in c.nodes[:2]:
        assert nd.stop() == 0
    # Once the survivor has lost its leader for longer than an election
    # timeout, writes are refused with a reason and reads are stale.
    deadline = time.monotonic() + LEADER_S
    doc = None
    ambiguous = []
    for _ in range(600):
        # A write the survivor took while it still led fails when it
        # steps down; then it has no leader at all.
        doc = c.write(survivor.api, "during-outage")
        if not doc["ok"] and "no leader" in doc["error"]:
            break
        assert not doc["ok"], "a minority committed a write: %r" % doc
        if "may or may not" in doc["error"]:
            # The survivor appended it while it still led: a later
            # leader may commit it (Raft commits a previous term's
            # entries with its own), as the error says.
            ambiguous.append(doc)
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert doc["errname"] in ("EUNAVAIL", "ENOTLEADER"), doc
    assert "leader" in doc["error"] and "majority" in doc["error"], doc
    read = call(survivor.api, "get", "before")
    assert read["ok"] and read["stale"] is True and read["leader"] is False, \
        read
    # The survivor still refuses writes while a second node returns, then
    # the pair elects a leader and accepts writes again.
    c.nodes[0].start()
    c.wait_leader([c.nodes[0], survivor])
    deadline = time.monotonic() + LEADER_S
    for _ in range(600):
        doc = c.write(survivor.api, "after-outage")
        if doc["ok"] or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert doc["ok"], doc
    if not ambiguous:
        assert "during-outage" not in c.state(survivor)["rollouts"]


def test_cluster_with_host_name_peers(tmp_path):
    # DESIGN.md: peers are named by host name (a StatefulSet's stable DNS
    # names); flagd's transport resolves each name on connect and the raft
    # configuration keeps the names.
    c = RaftCluster(tmp_path, peer_host="localhost")
    assert "localhost:" in c.peers and "127.0.0.1:" not in c.peers.split(
        "@")[0]
    c.start()
    try:
        c.wait_converged()
        for nd in c.nodes:
            doc = c.write(nd.api, "named-%d" % nd.id)
            assert doc["ok"], doc
        state = c.wait_converged()
        assert {"named-1", "named-2", "named-3"} <= set(state["rollouts"])
        info = call(c.nodes[0].api, "cluster")["cluster"]
        assert all(n["raft_address"].startswith("localhost:")
                   for n in info["nodes"]), info
        # The raft configuration on disk (the bootstrap entry) holds the
        # names, never a resolved address.
        for nd in c.nodes:
            port = nd.raft.rsplit(":", 1)[1].encode()
            blob = b"".join(f.read_bytes() for f in
                            (nd.data / "raft").iterdir() if f.is_file())
            assert b"localhost:" + port in blob
            assert b"127.0.0.1:" + port not in blob
        # The leader dies; the others reconnect by name and elect anew.
        lid = c.wait_leader()
        c.node(lid).kill9()
        live = c.live()
        new = lid
        deadline = time.monotonic() + LEADER_S
        for _ in range(600):
            # The followers name the dead leader until they time out.
            new = c.wait_leader(live)
            if new != lid or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert new != lid
        deadline = time.monotonic() + LEADER_S
        for _ in range(600):
            doc = c.write(live[0].api, "named-after")
            if doc["ok"] or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert doc["ok"], doc
        c.node(lid).start()
        final = c.wait_converged(c.nodes)
        assert "named-after" in final["rollouts"]
        logs = "".join(nd.log_text() for nd in c.nodes)
        assert "cannot resolve" not in logs
    finally:
        c.stop()


def test_snapshot_compaction_and_restore_from_snapshot(tmp_path):
    # A small threshold so that the log is compacted during the test, and
    # a node that was down catches up from a snapshot.
    c = RaftCluster(tmp_path, extra=["--snapshot-threshold", "64",
                                     "--snapshot-trailing", "8"])
    c.start()
    try:
        c.wait_converged()
        lagging = c.nodes[2]
        assert lagging.stop() == 0
        rc, docs, err = sldrive("load", ",".join(nd.api for nd in
                                                 c.nodes[:2]),
                                c.key, "s", "2", "300", "120",
                                timeout=300)
        assert rc == 0, (docs[-1:], err)
        lagging.start()
        state = c.wait_converged(c.nodes)
        assert len([r for r in state["rollouts"] if r.startswith("s-")]) \
            == 300
        logs = "".join(nd.log_text() for nd in c.nodes)
        assert "store snapshot at index" in logs, logs[-3000:]
        assert "store replaced by a snapshot" in lagging.log_text(), \
            lagging.log_text()[-3000:]
        # A restart now restores from its own snapshot and log.
        assert c.nodes[0].stop() == 0
        c.nodes[0].start()
        c.wait_converged(c.nodes)
    finally:
        c.stop()


def members(api):
    info = call(api, "cluster")
    assert info["ok"], info
    return {n["id"]: n for n in info["cluster"]["nodes"]}


def wait_for(what, pred, secs=CONVERGE_S):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def test_membership_add_a_voter_then_remove_one(raft_cluster, tmp_path):
    """flagctl cluster add: a fourth node started with --join becomes a
    voter, catches up and takes writes; flagctl cluster remove: a removed
    voter no longer counts, so with it and one more node stopped, the two
    left of the three voters still commit. Both are audited; a reader key
    may do neither; adding a voter twice or removing a stranger is refused
    and changes nothing."""
    c = raft_cluster
    c.wait_leader()
    for i in range(3):
        assert c.write(c.nodes[i].api, "before-add-%d" % i)["ok"]

    api, pub, raft = distinct_ports(3)
    n4 = Node(c, 4, "tcp://127.0.0.1:%d" % api, "tcp://127.0.0.1:%d" % pub,
              "127.0.0.1:%d" % raft)
    spec = "127.0.0.1:%d@%s" % (raft, n4.api)
    n4.peers = c.peers + ",4=" + spec
    n4.extra = ["--join"]
    c.nodes.append(n4)
    n4.start()
    wait_for("node 4 to answer", lambda: call(n4.api, "cluster")["ok"])
    # Not a member yet: it never bootstrapped a cluster of its own.
    assert 4 not in members(c.nodes[0].api)

    res = run_flagctl(["cluster", "add", "4", spec, "--reason", "grow",
                       "--json"], server=c.servers, key=c.key, timeout=120)
    assert res.rc == 0, res
    assert res.json()["result"] == "voter", res
    # Every node sees four voters; node 4 serves the whole state.
    for nd in c.nodes:
        wait_for("node %d to list 4 voters" % nd.id,
                 lambda nd=nd: len(members(nd.api)) == 4)
    assert members(c.nodes[0].api)[4]["api_url"] == n4.api
    assert c.write(n4.api, "through-node-4")["ok"]
    c.wait_converged()

    # Refused, changing nothing: a second add, a stranger's removal, and
    # a reader key.
    rev = c.state(c.nodes[0])["revision"]
    again = run_flagctl(["cluster", "add", "4", spec], server=c.servers,
                        key=c.key)
    assert again.rc == 1 and "already a voter" in again.err, again
    stranger = run_flagctl(["cluster", "remove", "9"], server=c.servers,
                           key=c.key)
    assert stranger.rc == 1 and "not a member" in stranger.err, stranger
    rkey = tmp_path / "reader.key"
    out = subprocess.run([SLDRIVE, "keygen", rkey, "reader1"],
                         capture_output=True, text=True, timeout=60)
    pub64 = out.stdout.split()[2]
    assert run_flagctl(["key", "add", "reader", "reader1", pub64],
                       server=c.servers, key=c.key).rc == 0
    denied = run_flagctl(["cluster", "remove", "4"], server=c.servers,
                         key=rkey)
    assert denied.rc == 1 and "may not member_remove" in denied.err, denied
    assert len(members(c.nodes[0].api)) == 4
    assert c.state(c.nodes[0])["revision"] == rev + 1  # the key add only

    # Remove the leader: it hands leadership on and asks for a retry
    # (nothing written), then the retry removes it. Three voters left.
    lid = c.wait_leader()
    victim = c.node(lid)
    rev = c.state(c.nodes[0])["revision"]
    first = run_flagctl(["cluster", "remove", str(lid)], server=c.servers,
                        key=c.key, timeout=120)
    assert first.rc == 1 and "run the command again" in first.err, first
    wait_for("a new leader", lambda: c.leader() not in (0, lid))
    assert c.state(c.nodes[0])["revision"] == rev
    res = run_flagctl(["cluster", "remove", str(lid), "--json"],
                      server=c.servers, key=c.key, timeout=120)
    assert res.rc == 0, res
    for nd in c.live():
        if nd is not victim:
            wait_for("node %d to drop node %d" % (nd.id, victim.id),
                     lambda nd=nd: victim.id not in members(nd.api))
    victim.stop()
    # Stop one more non-leader: 2 of the 3 remaining voters still commit
    # (with the removal undone they would be 2 of 4, and could not).
    lid = c.wait_leader([nd for nd in c.live()])
    other = [nd for nd in c.live() if nd.id != lid][0]
    other.stop()
    left = c.live()
    assert len(left) == 2
    doc = c.write(",".join(nd.api for nd in left), "after-remove")
    assert doc["ok"], doc

    audit = run_flagctl(["audit", "--json"], server=",".join(
        nd.api for nd in left), key=c.key).json()
    actions = [(e["action"], e["rollout"]) for e in audit["entries"]]
    assert ("member_add", "node 4") in actions, actions
    assert ("member_remove", "node %d" % victim.id) in actions, actions
