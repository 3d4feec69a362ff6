# SPDX-License-Identifier: MIT
"""A rollout's life through flagctl against a real flagd: the full stage
walk, rollbacks, pause and resume, idempotent apply, --force, prerequisites
and revert to an earlier revision."""

import textwrap

from conftest import bucket

# A copy of examples/orders_discount_v2.yaml, so that the expectations
# below do not move when the example does.
ORDERS = textwrap.dedent("""\
    rollout: orders_discount_v2
    description: add orders.discount_cents; dual-write, switch readers, drop legacy column
    owner: data-platform
    datasets: [warehouse.orders, marts.revenue_daily]
    stages: [off, shadow, canary, half, full]
    flags:
      orders.dual_write:     [false, true, true, true, true]
      orders.read_new:       ["0%", "0%", "10%", "50%", "100%"]
      orders.writer_version: [1, 1, 2, 2, 2]
    requires: []
    rollback_window: 24h
    gates: {}
    """)

# A copy of examples/marts_revenue_v2.yaml: requires orders at half.
MARTS = textwrap.dedent("""\
    rollout: marts_revenue_v2
    description: revenue_daily net of orders.discount_cents
    owner: analytics
    datasets: [marts.revenue_daily]
    stages: [off, shadow, full]
    flags:
      marts.revenue_net_of_discount: [false, true, true]
      marts.read_new:                ["0%", "0%", "100%"]
    requires: ["orders_discount_v2 >= half"]
    rollback_window: 1h
    gates: {}
    """)

STAGES = ["off", "shadow", "canary", "half", "full"]
DUAL = [False, True, True, True, True]
PCT = [0, 0, 1000, 5000, 10000]  # basis points
WRITER = [1, 1, 2, 2, 2]



def pick_units(per_band=4):
    """Units on both sides of the 10 % and 50 % lines: the first few
    candidates whose buckets fall below 10 %, in 10-50 % and above 50 %."""
    bands = {0: [], 1: [], 2: []}
    for i in range(2000):
        u = "orders/2026-11-%02d/part-%04d" % (i % 28 + 1, i)
        b = bucket("orders_discount_v2", u)
        band = 0 if b < 1000 else (1 if b < 5000 else 2)
        if len(bands[band]) < per_band:
            bands[band].append(u)
        if all(len(v) == per_band for v in bands.values()):
            break
    return bands[0] + bands[1] + bands[2]


UNITS = pick_units() + ["2026-11-01", "", "unit with spaces"]


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def get_flag(c, flag, unit):
    """`flagctl get FLAG --unit U --json` as a dict."""
    doc = c.okj("get", flag, "--unit", unit)
    assert isinstance(doc, dict), doc
    return doc


def on_of(doc):
    """Whether a `get` answer says the flag is on for the unit."""
    for k in ("on", "enabled"):
        if k in doc:
            return doc[k]
    v = doc["value"]
    assert isinstance(v, bool), doc
    return v


def check_stage(c, idx, last_good_idx, state):
    st = c.status("orders_discount_v2")
    assert st["rollout"] == "orders_discount_v2"
    assert st["stage"] == STAGES[idx], st
    assert st["stage_index"] == idx, st
    assert st["last_good"] == STAGES[last_good_idx], st
    assert st["last_good_index"] == last_good_idx, st
    assert st["state"] == state, st
    assert isinstance(st["revision"], int) and st["revision"] > 0, st

    # Every flag at this stage, for several units.
    dual = get_flag(c, "orders.dual_write", "2026-11-01")
    assert dual["value"] is DUAL[idx], dual
    wv = get_flag(c, "orders.writer_version", "2026-11-01")
    assert wv["value"] == WRITER[idx], wv
    for unit in UNITS:
        want = bucket("orders_discount_v2", unit) < PCT[idx]
        got = get_flag(c, "orders.read_new", unit)
        assert on_of(got) is want, (unit, idx, got)
        # DESIGN.md's bucket, computed independently here in Python.
        assert got["bucket"] == bucket("orders_discount_v2", unit), got
    return st


def test_full_stage_walk_rollback_pause_resume(cluster, tmp_path):
    c = cluster
    # The chosen units must actually tell 10 % from 50 % from 100 %.
    bs = [bucket("orders_discount_v2", u) for u in UNITS]
    assert any(b < 1000 for b in bs) and any(1000 <= b < 5000 for b in bs)
    assert any(b >= 5000 for b in bs)

    f = write(tmp_path, "orders.yaml", ORDERS)
    c.ok("apply", "-f", f)
    st = check_stage(c, 0, 0, "active")
    revs = [st["revision"]]

    # off -> shadow -> canary -> half -> full, one revision each.
    for idx in range(1, 5):
        c.ok("promote", "orders_discount_v2", "--reason", "walk %d" % idx)
        st = check_stage(c, idx, idx - 1,
                         "completed" if idx == 4 else "active")
        assert st["revision"] == revs[-1] + 1, st
        revs.append(st["revision"])

    # Nothing after full.
    res = c.ctl("promote", "orders_discount_v2")
    assert res.rc == 1, res
    assert res.err.startswith("flagctl: "), res
    assert c.status("orders_discount_v2")["revision"] == revs[-1]

    # Back to the last good stage (half), in one revision.
    c.ok("rollback", "orders_discount_v2", "--reason", "null ratio spiked")
    st = check_stage(c, 3, 3, "rolled_back")
    assert st["revision"] == revs[-1] + 1

    # Further back, to a named stage.
    c.ok("rollback", "orders_discount_v2", "--to", "shadow")
    st = check_stage(c, 1, 1, "rolled_back")
    rev = st["revision"]

    # Paused: promote is refused and changes nothing.
    c.ok("pause", "orders_discount_v2")
    st = check_stage(c, 1, 1, "paused")
    rev = st["revision"]
    res = c.ctl("promote", "orders_discount_v2")
    assert res.rc == 1, res
    assert "paused" in res.err, res
    st = check_stage(c, 1, 1, "paused")
    assert st["revision"] == rev

    # Resumed: promote works again.
    c.ok("resume", "orders_discount_v2")
    st = c.status("orders_discount_v2")
    assert st["state"] == "active" and st["stage"] == "shadow", st
    c.ok("promote", "orders_discount_v2", "--to", "half")
    check_stage(c, 3, 1, "active")

    # Each of those writes is one audit entry, in order.
    actions = [e["action"] for e in c.audit("orders_discount_v2")]
    assert actions == ["apply"] + ["promote"] * 4 + ["rollback"] * 2 + \
        ["pause", "resume", "promote"], actions


def test_apply_is_idempotent_and_live_changes_need_force(cluster, tmp_path):
    c = cluster
    f = write(tmp_path, "orders.yaml", ORDERS)
    c.ok("apply", "-f", f)
    rev = c.revision()
    n_audit = len(c.audit())

    # The same file again: no new revision, no audit entry.
    res = c.ok("apply", "-f", f, "--json")
    doc = res.json()
    assert doc["result"] == "unchanged" and doc["revision"] == rev, doc
    assert c.revision() == rev
    assert len(c.audit()) == n_audit
    assert c.status("orders_discount_v2")["revision"] == rev

    # Through stdin, too; and what export prints applies as a no-op.
    c.ok("apply", "-f", "-", stdin=ORDERS)
    assert c.revision() == rev
    exported = c.ok("export", "orders_discount_v2").out
    doc = c.okj("apply", "-f", "-", stdin=exported)
    assert doc["result"] == "unchanged", (doc, exported)
    assert c.revision() == rev

    c.ok("promote", "orders_discount_v2")  # now at shadow
    rev = c.revision()

    # A change of a value at the current stage (shadow: dual_write true
    # -> false) is refused without --force, clearly, and changes nothing.
    changed = ORDERS.replace(
        "orders.dual_write:     [false, true, true, true, true]",
        "orders.dual_write:     [false, false, true, true, true]")
    assert changed != ORDERS
    g = write(tmp_path, "orders-changed.yaml", changed)
    res = c.ctl("apply", "-f", g)
    assert res.rc == 1, res
    assert res.err.startswith("flagctl: "), res
    assert "orders.dual_write" in res.err and "--force" in res.err, res
    assert c.revision() == rev
    assert get_flag(c, "orders.dual_write", "u1")["value"] is True

    # A change at a later stage only is fine without --force.
    later = ORDERS.replace(
        "orders.writer_version: [1, 1, 2, 2, 2]",
        "orders.writer_version: [1, 1, 2, 3, 3]")
    c.ok("apply", "-f", write(tmp_path, "later.yaml", later))
    assert c.revision() == rev + 1
    rev += 1

    # With --force the live change goes through, as one revision.
    c.ok("apply", "-f", g, "--force")
    assert c.revision() == rev + 1
    st = c.status("orders_discount_v2")
    assert st["stage"] == "shadow" and st["revision"] == rev + 1, st
    assert get_flag(c, "orders.dual_write", "u1")["value"] is False


def test_prerequisites_enforced_on_promote(cluster, tmp_path):
    c = cluster
    c.ok("apply", "-f", write(tmp_path, "orders.yaml", ORDERS))
    c.ok("apply", "-f", write(tmp_path, "marts.yaml", MARTS))
    rev = c.revision()

    # orders is at off; marts needs orders >= half.
    res = c.ctl("promote", "marts_revenue_v2")
    assert res.rc == 1, res
    assert "orders_discount_v2" in res.err and "half" in res.err, res
    assert c.revision() == rev
    assert c.status("marts_revenue_v2")["stage"] == "off"

    c.ok("promote", "orders_discount_v2", "--to", "canary")
    res = c.ctl("promote", "marts_revenue_v2")
    assert res.rc == 1, res
    assert c.status("marts_revenue_v2")["stage"] == "off"

    c.ok("promote", "orders_discount_v2")  # half
    c.ok("promote", "marts_revenue_v2")
    st = c.status("marts_revenue_v2")
    assert st["stage"] == "shadow" and st["stage_index"] == 1, st


def test_revert_to_revision_restores_exactly(cluster, tmp_path):
    c = cluster
    c.ok("apply", "-f", write(tmp_path, "orders.yaml", ORDERS))
    c.ok("promote", "orders_discount_v2", "--to", "canary")
    r = c.status("orders_discount_v2")["revision"]
    export_r = c.ok("export", "orders_discount_v2").out
    status_r = c.status("orders_discount_v2")
    assert "orders_discount_v2" in export_r

    # Move on: a new spec, and further stages.
    later = ORDERS.replace(
        "orders.writer_version: [1, 1, 2, 2, 2]",
        "orders.writer_version: [1, 1, 2, 3, 3]").replace(
        "owner: data-platform", "owner: someone-else")
    c.ok("apply", "-f", write(tmp_path, "later.yaml", later))
    c.ok("promote", "orders_discount_v2", "--to", "full")
    assert c.ok("export", "orders_discount_v2").out != export_r
    before = c.revision()

    c.ok("revert", "orders_discount_v2", "--to-revision", str(r))
    after = c.revision()
    assert after == before + 1  # a new revision, not a rewrite of history
    st = c.status("orders_discount_v2")
    assert st["revision"] == after
    for k in ("stage", "stage_index", "last_good", "last_good_index",
              "state", "stages"):
        assert st[k] == status_r[k], (k, st, status_r)
    assert c.ok("export", "orders_discount_v2").out == export_r
    entries = c.audit("orders_discount_v2")
    assert entries[-1]["action"] == "revert", entries[-1]
    assert entries[-1]["revision"] == after

    # The same command again gives the same state (deterministic).
    c.ok("revert", "orders_discount_v2", "--to-revision", str(r))
    st2 = c.status("orders_discount_v2")
    for k in ("stage", "last_good", "state"):
        assert st2[k] == st[k]
    assert c.ok("export", "orders_discount_v2").out == export_r

    # A revision that does not exist yet is refused.
    res = c.ctl("revert", "orders_discount_v2", "--to-revision",
                str(c.revision() + 100))
    assert res.rc == 1, res
