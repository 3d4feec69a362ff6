# SPDX-License-Identifier: MIT
"""The audit chain and durability against a real flagd: `audit verify`
passes on an honest store and names the edited entry of a tampered one;
every acknowledged write survives a kill -9 in the middle of concurrent
writes."""

import re
import textwrap
import threading
import time

import pytest

import lmdb_tamper
from conftest import Cluster


def spec(name, prefix):
    return textwrap.dedent("""\
        rollout: %s
        description: audit test
        owner: tests
        stages: [off, canary, full]
        flags:
          %s.enabled: [false, true, true]
          %s.share: ["0%%", "10%%", "100%%"]
        rollback_window: 1h
        """ % (name, prefix, prefix))


@pytest.mark.skipif(not lmdb_tamper.tools_present(),
                    reason="needs mdb_dump/mdb_load (Debian lmdb-utils)")
def test_audit_verify_detects_tampered_entry(cluster, tmp_path):
    c = cluster
    f = tmp_path / "a.yaml"
    f.write_text(spec("audit_walk", "audit.walk"))
    c.ok("apply", "-f", f)
    c.ok("promote", "audit_walk", "--reason", "tamper-target-reason")
    target = c.revision()
    c.ok("promote", "audit_walk", "--reason", "after the target")
    c.ok("rollback", "audit_walk", "--reason", "and another one")
    last = c.revision()

    entries = c.audit()
    revs = [e["revision"] for e in entries]
    assert revs == list(range(1, last + 1)), revs
    assert [e for e in entries if e["revision"] == target][0]["reason"] == \
        "tamper-target-reason"
    for a, b in zip(entries, entries[1:]):
        assert b["prev_hash"] == a["hash"], (a, b)
    res = c.ok("audit", "verify")
    assert res.rc == 0

    assert c.stop() == 0
    lmdb_tamper.tamper_audit(c.flagd.data, target,
                             b"tamper-target-reason", b"tamper-TARGET-reason")
    c.flagd.start()

    # The edited entry is served as stored...
    e = [e for e in c.audit() if e["revision"] == target][0]
    assert e["reason"] == "tamper-TARGET-reason", e
    # ...and verify refuses the chain, naming that entry's revision.
    res = c.ctl("audit", "verify")
    assert res.rc != 0, res
    text = res.out + res.err
    assert re.search(r"revision %d\b" % target, text), res
    # Entries before it are still fine: it must not blame an earlier one.
    for r in range(1, target):
        assert not re.search(r"(entry|revision) %d\b" % r, text), res


@pytest.mark.skipif(not lmdb_tamper.tools_present(),
                    reason="needs mdb_dump/mdb_load (Debian lmdb-utils)")
@pytest.mark.parametrize("where", ["middle", "tail"])
def test_audit_verify_detects_removed_entry(cluster, tmp_path, where):
    c = cluster
    f = tmp_path / "a.yaml"
    f.write_text(spec("audit_cut", "audit.cut"))
    c.ok("apply", "-f", f)
    for k in range(4):
        c.ok("promote" if k % 2 == 0 else "rollback", "audit_cut")
    last = c.revision()
    c.ok("audit", "verify")
    victim = last - 2 if where == "middle" else last

    assert c.stop() == 0
    lmdb_tamper.remove_audit(c.flagd.data, victim)
    c.flagd.start()
    revs = [e["revision"] for e in c.audit()]
    assert victim not in revs, revs

    res = c.ctl("audit", "verify")
    assert res.rc == 1, res
    text = res.out + res.err
    # The gap is found where it is: at the removed revision, or at the
    # entry after it in the middle case.
    near = (victim, victim + 1) if where == "middle" else (victim, victim - 1)
    assert any(re.search(r"revision %d\b" % r, text) for r in near), res


def simulate_machine_crash(data):
    """What a power loss can leave of a store LMDB never fsync'd: its
    marker names another boot of the machine, and its file holds torn
    pages (here: garbage over the meta pages and half the file gone)."""
    import os
    state = os.path.join(data, "store.state")
    with open(state) as f:
        line = f.read()
    assert line.startswith("open "), line
    with open(state, "w") as f:
        f.write("open 00000000-0000-0000-0000-000000000000\n")
    db = os.path.join(data, "data.mdb")
    size = os.path.getsize(db)
    with open(db, "r+b") as f:
        f.write(os.urandom(8192))
        f.truncate(max(8192, size // 2))


@pytest.mark.parametrize("crash", ["process", "machine"])
def test_acknowledged_writes_survive_kill_9(tmp_path, crash):
    """kill -9 during 4 concurrent writers. "process": the store is kept
    (its pages were in the page cache). "machine": the store is left as a
    power loss could leave it; flagd must notice, discard it and rebuild
    it from the raft log, losing no acknowledged write."""
    # Durability is under test: no --nosync.
    c = Cluster(tmp_path, nosync=False)
    c.flagd.start()
    writers = 4
    per_writer = 12  # promote/rollback pairs are 2 writes
    names = ["crash_%d" % i for i in range(writers)]
    try:
        for i, n in enumerate(names):
            f = tmp_path / ("%s.yaml" % n)
            f.write_text(spec(n, "crash.w%d" % i))
            c.ok("apply", "-f", f)
        base = c.revision()

        acked = []  # (revision, rollout, action)
        lock = threading.Lock()
        total = [0]
        stop_at = writers * per_writer // 2  # kill once half are acked

        errors = []

        def writer(name):
            try:
                write_loop(name)
            except Exception as e:  # reported on the test thread
                errors.append(repr(e))

        def write_loop(name):
            failures = 0
            for k in range(per_writer):
                action = "promote" if k % 2 == 0 else "rollback"
                try:
                    res = c.ctl(action, name, "--json", timeout=30)
                except Exception:  # flagctl hung past its timeout
                    failures += 1
                    if failures >= 2:
                        return
                    continue
                if res.rc != 0:
                    failures += 1
                    if failures >= 2:  # flagd is gone
                        return
                    continue
                doc = res.json()
                rev = doc.get("write_revision", doc["revision"])
                with lock:
                    acked.append((rev, name, action))
                    total[0] += 1

        threads = [threading.Thread(target=writer, args=(n,), daemon=True)
                   for n in names]
        for t in threads:
            t.start()
        # Kill in the middle of the stream; bounded wait.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with lock:
                if total[0] >= stop_at:
                    break
            if not any(t.is_alive() for t in threads):
                break
            time.sleep(0.01)
        c.flagd.kill9()
        for t in threads:
            t.join(timeout=120)
            assert not t.is_alive(), "writer thread did not finish"
        print("kill -9 after %d acknowledged writes of %d attempted "
              "(revisions %d..%d)" % (len(acked), writers * per_writer,
                                      base + 1, max(r for r, _, _ in acked)))
        assert not errors, errors
        assert len(acked) >= stop_at, acked
        assert len(acked) < writers * per_writer, \
            "the kill came after every write: nothing was in flight"

        if crash == "machine":
            simulate_machine_crash(c.flagd.data)
        c.flagd.start()  # same data dir, new ports
        if crash == "machine":
            assert "store.rebuild" in c.flagd.log_text(), \
                "flagd did not discard the unsynced store"
        max_acked = max(r for r, _, _ in acked)
        assert c.revision() >= max_acked
        entries = {e["revision"]: e for e in c.audit()}
        assert sorted(entries) == list(range(1, max(entries) + 1))
        for rev, name, action in acked:
            assert rev > base
            assert rev in entries, (rev, name, action)
            assert entries[rev]["rollout"] == name, entries[rev]
            assert entries[rev]["action"] == action, entries[rev]
        # Each rollout holds at least its last acknowledged write, and
        # its state is the one its last audit entry describes.
        for n in names:
            mine = [r for r, name, _ in acked if name == n]
            st = c.status(n)
            if mine:
                assert st["revision"] >= max(mine), (st, mine)
            last = max(r for r, e in entries.items() if e["rollout"] == n)
            assert st["revision"] == last, (st, entries[last])
            assert "stage=%s(%d)" % (st["stage"], st["stage_index"]) in \
                entries[last]["after"], (st, entries[last])
        c.ok("audit", "verify")
        if crash == "machine":
            # Its answers were marked stale until it had caught up.
            assert "caught up at index" in c.flagd.log_text()
    finally:
        if c.flagd.running():
            c.stop()
