# SPDX-License-Identifier: MIT
"""A node cut off by a network partition (issue 3, item 7; DESIGN.md
"Failure behaviour": "minority partitioned").

Topology, created by the test and deleted afterwards (even on failure):

    netns slPID<n>a  eth0 10.200.X.1 ─┐
    netns slPID<n>b  eth0 10.200.X.2 ─┼─ veth ─ br0 in netns slPID<n>br
    netns slPID<n>c  eth0 10.200.X.3 ─┘

One flagd per node namespace, started with `ip netns exec` (so its PID is
flagd's own), its API, change stream and raft transport bound to the
namespace's address; --peers names those addresses. The addresses exist
only inside namespaces this test created, and each namespace is new, so
the fixed ports used there (7400-7402) are free by construction. The test
process reaches a node with `ip netns exec NS sldrive ...`
(tests/tools/sldrive, libsluice's rpc).

The cut: the bridge-side end of one node's veth is set down, so the node
can reach nobody (and still reaches its own address, for the test's
reads). Heal: set it up again. Cases: the cut node is a follower, or the
leader (the old leader must step down; a write it took after the cut
can never commit and must be gone after healing).

Asserted:
- the minority: once it has had no leader contact for an election
  timeout, its reads still answer but are marked stale (Reply.stale,
  not leader) and reflect the revision it had at the cut; writes are
  refused at once with EUNAVAIL and a reason naming the missing leader
  and majority; a refused ("no leader") write never shows up later;
- the majority: elects (or keeps) a leader among its two nodes and
  commits a stream of acknowledged writes, reads not stale;
- after healing: all three nodes converge (same revision, same rollouts,
  same audit count and audit head), every write the majority
  acknowledged is present, the minority's reads are no longer stale and
  it takes a write again; a follower back from the partition does not
  depose the leader (pre-vote): same leader, same term.

Namespaces need root and iproute2; where they cannot be made the test is
skipped with the reason (printed by pytest -rs), never silently.
"""

import itertools
import json
import os
import shutil
import signal
import subprocess
import time

import pytest

import faultlib

itc = faultlib.itc
# A private copy of test_cluster.py: its RaftCluster logic is reused with
# its sldrive() replaced by one that enters the namespace of the node
# addressed (this copy only; the integration suite's module is untouched).
tcn = faultlib.load_integration("sluice_fault_netns_cluster",
                                "test_cluster.py")

API_PORT, PUB_PORT, RAFT_PORT = 7400, 7401, 7402
CMD_S = 30  # any `ip` command
PHASE_S = 60  # bound of each wait (ASan, 2 cores)
MAJORITY_WRITES = 20
HOLD_S = 3.0  # how long the minority is probed while cut off
_serial = itertools.count()

# address -> namespace, for ns_sldrive()
NS_OF_ADDR = {}


def ip_bin():
    for p in (shutil.which("ip"), "/usr/sbin/ip", "/sbin/ip", "/bin/ip"):
        if p and os.access(p, os.X_OK):
            return p
    return None


def ns_of(servers):
    host = servers.split(",")[0].split("://", 1)[-1].rsplit(":", 1)[0]
    return NS_OF_ADDR[host]


def ns_sldrive(*args, timeout=tcn.CALL_TIMEOUT):
    """test_cluster.sldrive, run inside the namespace of the node named by
    its SERVER argument (args[1])."""
    argv = [ip_bin(), "netns", "exec", ns_of(str(args[1])), tcn.SLDRIVE]
    proc = subprocess.run(argv + [str(a) for a in args],
                          capture_output=True, text=True, timeout=timeout)
    lines = [l for l in proc.stdout.splitlines() if l.strip()]
    docs = [json.loads(l) for l in lines]
    return proc.returncode, docs, proc.stderr


tcn.sldrive = ns_sldrive


class Net:
    """Three node namespaces joined by a bridge in a fourth."""

    def __init__(self):
        self.ip = ip_bin()
        tag = "sl%d%d" % (os.getpid(), next(_serial))
        self.br = tag + "br"
        self.nodes = [tag + l for l in "abc"]
        self.subnet = "10.200.%d" % (os.getpid() % 256)
        self.addrs = ["%s.%d" % (self.subnet, i + 1) for i in range(3)]
        self.made = []  # namespaces created, deleted in reverse order

    def run(self, *args, check=True):
        proc = subprocess.run([self.ip] + list(args), capture_output=True,
                              text=True, timeout=CMD_S)
        if check and proc.returncode != 0:
            raise RuntimeError("ip %s: exit %d: %s" % (
                " ".join(args), proc.returncode, proc.stderr.strip()))
        return proc

    def create(self):
        for ns in [self.br] + self.nodes:
            self.run("netns", "add", ns)
            self.made.append(ns)
        self.run("-n", self.br, "link", "add", "br0", "type", "bridge")
        self.run("-n", self.br, "link", "set", "br0", "up")
        for i, ns in enumerate(self.nodes):
            self.run("-n", self.br, "link", "add", self.veth(i), "type",
                     "veth", "peer", "name", "eth0", "netns", ns)
            self.run("-n", self.br, "link", "set", self.veth(i), "master",
                     "br0", "up")
            self.run("-n", ns, "addr", "add", self.addrs[i] + "/24", "dev",
                     "eth0")
            self.run("-n", ns, "link", "set", "eth0", "up")
            self.run("-n", ns, "link", "set", "lo", "up")
            NS_OF_ADDR[self.addrs[i]] = ns

    @staticmethod
    def veth(i):
        return "v%d" % i

    def cut(self, i):
        self.run("-n", self.br, "link", "set", self.veth(i), "down")

    def heal(self, i):
        self.run("-n", self.br, "link", "set", self.veth(i), "up")

    def destroy(self):
        errors = []
        for addr in self.addrs:
            NS_OF_ADDR.pop(addr, None)
        for ns in reversed(self.made):
            proc = self.run("netns", "del", ns, check=False)
            if proc.returncode != 0:
                errors.append("ip netns del %s: %s" % (ns, proc.stderr))
        self.made = []
        return errors


class NsNode(tcn.Node):
    """test_cluster's Node, started inside a namespace."""

    def __init__(self, cluster, nid, ns, addr):
        super().__init__(cluster, nid, "tcp://%s:%d" % (addr, API_PORT),
                         "tcp://%s:%d" % (addr, PUB_PORT),
                         "%s:%d" % (addr, RAFT_PORT))
        self.ns = ns
        self.peer_raft = self.raft

    def start(self):
        log = self.cluster.tmp / ("flagd-%d.%d.log" % (self.id,
                                                      len(self.logs)))
        self.logs.append(log)
        # `ip netns exec` execs flagd in place: self.proc.pid is flagd.
        argv = [
            ip_bin(), "netns", "exec", self.ns,
            itc.FLAGD_BIN, "--id", str(self.id), "--data", str(self.data),
            "--api", self.api, "--publish", self.pub, "--raft", self.raft,
            "--peers", self.cluster.peers,
            "--authorized-keys", str(self.cluster.authorized_keys),
            "--log-level", "info", "--nosync", "--segment-kb", "1024",
            "--heartbeat-ms", "200",
        ]
        with open(log, "wb") as f:
            self.proc = subprocess.Popen(argv, stdout=f,
                                         stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        return self


class NsCluster(tcn.RaftCluster):
    def __init__(self, tmp, net):
        # RaftCluster's own __init__ picks loopback ports; this one puts
        # node i in net.nodes[i] at net.addrs[i].
        from pathlib import Path
        self.tmp = Path(tmp)
        self.extra = []
        self.key = self.tmp / "admin.key"
        out = subprocess.run([tcn.SLDRIVE, "keygen", self.key, "admin"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        self.authorized_keys = self.tmp / "authorized_keys"
        self.authorized_keys.write_text(out.stdout.strip() + "\n")
        self.nodes = [NsNode(self, i + 1, net.nodes[i], net.addrs[i])
                      for i in range(3)]
        self.peers = ",".join("%d=%s@%s" % (nd.id, nd.peer_raft, nd.api)
                              for nd in self.nodes)


def stop_by_pid(nd):
    """SIGTERM by PID, SIGKILL if ignored; returns the exit code."""
    if nd.proc is None:
        return None
    if nd.proc.poll() is None:
        os.kill(nd.proc.pid, signal.SIGTERM)
        try:
            nd.proc.wait(timeout=itc.STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.kill(nd.proc.pid, signal.SIGKILL)
            nd.proc.wait(timeout=itc.STOP_TIMEOUT)
            return "ignored SIGTERM"
    return nd.proc.returncode


@pytest.fixture
def netns_cluster(tmp_path):
    ip = ip_bin()
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (euid %d): partition "
                    "test not run" % os.geteuid())
    if ip is None:
        pytest.skip("no `ip` (iproute2) binary: partition test not run")
    net = Net()
    c = None
    try:
        try:
            net.create()
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
            pytest.skip("cannot create network namespaces / veth / "
                        "bridge here (%s): partition test not run" % e)
        c = NsCluster(tmp_path, net)
        c.start()
        yield net, c
    finally:
        problems = []
        if c is not None:
            for nd in c.nodes:
                try:
                    code = stop_by_pid(nd)
                except Exception as e:  # still delete the namespaces
                    code = repr(e)
                if code not in (0, None):
                    problems.append("flagd %d exited %s on SIGTERM\n%s" % (
                        nd.id, code, faultlib.tail(nd.log_text())))
        problems += net.destroy()
        assert not problems, "\n".join(problems)


def until(what, fn, bound=PHASE_S, pause=0.1):
    """fn() until it returns something true, at most `bound` seconds."""
    deadline = time.monotonic() + bound
    last = None
    for _ in range(int(bound / pause) * 4 + 10):
        last = fn()
        if last:
            return last
        if time.monotonic() > deadline:
            break
        time.sleep(pause)
    raise AssertionError("%s: not within %ds (last: %r)" % (what, bound,
                                                             last))


def leader_among(c, nodes):
    """The leader id every node in `nodes` names, if it is one of them."""
    lid = c.leader(nodes)
    return lid if lid in [nd.id for nd in nodes] else 0


@pytest.mark.parametrize("victim", ["follower", "leader"])
def test_minority_refuses_writes_reads_stale_and_converges_after_heal(
        netns_cluster, victim, tmp_path):
    net, c = netns_cluster
    phases = faultlib.Phases(tmp_path / "phases.log")
    lid = c.wait_leader()
    assert c.write(c.nodes[0].api, "before")["ok"]
    before = c.wait_converged()
    term0 = tcn.call(c.node(lid).api, "cluster")["cluster"]["term"]

    cut = c.node(lid) if victim == "leader" else \
        next(nd for nd in c.nodes if nd.id != lid)
    majority = [nd for nd in c.nodes if nd is not cut]
    net.cut(cut.id - 1)
    phases.mark("cut node %d (%s) off" % (cut.id, victim))

    ambiguous = []  # writes answered "may or may not have been committed"
    if victim == "leader":
        # The cut leader takes this write into its log but can never
        # commit it; the answer comes once it steps down.
        doc = c.write(cut.api, "cut-leader-write")
        assert not doc["ok"], "a cut-off leader committed: %r" % doc
        ambiguous.append("cut-leader-write")
        phases.mark("the cut leader answered: %s" % doc["error"])

    # The majority has a leader of its own (or keeps it) and commits.
    new_lid = until("a leader among the majority",
                    lambda: leader_among(c, majority))
    if victim == "follower":
        assert new_lid == lid
    phases.mark("node %d leads the majority" % new_lid)
    acked = {}
    refused_majority = []
    deadline = time.monotonic() + PHASE_S
    for i in range(10 * MAJORITY_WRITES + 200):
        if len(acked) >= MAJORITY_WRITES or time.monotonic() > deadline:
            break
        name = "maj-%d" % i
        doc = c.write(majority[i % 2].api, name)
        if doc["ok"]:
            assert doc["leader"] is True and doc["stale"] is False, doc
            acked[name] = doc["revision"]
        else:
            refused_majority.append((name, doc))
            time.sleep(0.05)
    assert len(acked) == MAJORITY_WRITES, refused_majority[-5:]
    revs = list(acked.values())
    assert all(a < b for a, b in zip(revs, revs[1:])), acked
    phases.mark("majority committed %d writes (%d refused)" % (
        len(acked), len(refused_majority)))
    maj_state = c.wait_converged(majority)
    assert set(acked) <= set(maj_state["rollouts"])
    for nd in majority:
        doc = tcn.call(nd.api, "get", "before")
        assert doc["ok"] and doc["stale"] is False, doc

    # The minority: reads answer, stale, at the revision of the cut.
    read = until("node %d marking its reads stale" % cut.id,
                 lambda: (lambda d: d if d["ok"] and d["stale"] else None)(
                     tcn.call(cut.api, "get", "before")))
    phases.mark("node %d reads stale" % cut.id)
    assert read["leader"] is False, read
    assert read["revision"] < revs[0], (read, revs[0])
    assert read["revision"] >= before["revision"], (read, before)
    # ... and writes are refused at once, saying why; so it stays for a
    # few election timeouts (the cut node runs pre-vote rounds meanwhile).
    refused = []
    hold_until = time.monotonic() + HOLD_S
    for i in range(int(HOLD_S / 0.2) + 3):
        name = "minority-%d" % i
        doc = c.write(cut.api, name)
        assert not doc["ok"], "the minority committed a write: %r" % doc
        assert doc["errname"] == "EUNAVAIL", doc
        assert "no leader" in doc["error"] and "majority" in doc["error"], \
            doc
        refused.append(name)
        doc = tcn.call(cut.api, "get", "before")
        assert doc["ok"] and doc["stale"] and not doc["leader"], doc
        assert doc["revision"] == read["revision"], (doc, read)
        if time.monotonic() > hold_until and i >= 2:
            break
        time.sleep(0.2)
    minority_state = c.state(cut)
    assert not set(acked) & set(minority_state["rollouts"])
    assert not set(refused) & set(minority_state["rollouts"])
    # It does not claim to lead. (Its leader_id may still name the last
    # leader it heard from until libraft's randomised election timer,
    # 1-2x, runs out; reads go stale after 1x.)
    info = tcn.call(cut.api, "cluster")
    assert info["ok"], info
    me = [n for n in info["cluster"]["nodes"] if n["self"]]
    assert len(me) == 1 and me[0]["role"] != "leader", info

    # Heal: the minority converges with the majority.
    phases.mark("minority probed %d times" % len(refused))
    net.heal(cut.id - 1)
    final = c.wait_converged(c.nodes)
    phases.mark("healed; converged at revision %d" % final["revision"])
    assert final["revision"] == revs[-1], (final["revision"], revs[-1])
    names = set(final["rollouts"])
    missing = set(acked) - names
    assert not missing, "acknowledged writes lost: %s" % sorted(missing)
    assert not set(refused) & names, "a refused write was committed"
    # The cut leader's write was only ever in its own log.
    assert not set(ambiguous) & names, \
        "an entry only the cut-off leader had was committed"
    assert "before" in names
    until("node %d reads no longer stale" % cut.id,
          lambda: (lambda d: d["ok"] and not d["stale"])(
              tcn.call(cut.api, "get", "before", revs[-1])))
    after = c.wait_leader()
    assert after == new_lid, (after, new_lid)
    if victim == "follower":
        # Pre-vote: the returning follower did not depose the leader.
        term = tcn.call(c.node(lid).api, "cluster")["cluster"]["term"]
        assert term == term0, (term0, term)
    # The healed node takes writes again (forwarded to the leader).
    doc = until("a write through node %d after healing" % cut.id,
                lambda: (lambda d: d if d["ok"] else None)(
                    c.write(cut.api, "after-heal")))
    assert doc["revision"] == revs[-1] + 1, doc
    final = c.wait_converged(c.nodes)
    assert "after-heal" in final["rollouts"]
    phases.mark("write through node %d after healing" % cut.id)
