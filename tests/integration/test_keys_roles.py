# SPDX-License-Identifier: MIT
"""Keys and roles against a real flagd: what operator, reader, reporter
and scoped keys may and may not do, and that key management is audited."""

import textwrap


def spec(name, prefix):
    return textwrap.dedent("""\
        rollout: %s
        description: roles test
        owner: tests
        stages: [off, on, full]
        flags:
          %s.enabled: [false, true, true]
        """ % (name, prefix))


def refused(res, *words):
    """A write refused with exit 1, one clear line, naming the reason."""
    assert res.rc == 1, res
    assert res.err.startswith("flagctl: "), res
    low = res.err.lower()
    for w in words:
        assert w.lower() in low, (w, res)


def test_operator_may_promote_but_not_apply(cluster, tmp_path):
    c = cluster
    f = tmp_path / "orders.yaml"
    f.write_text(spec("orders_roles", "orders.roles"))
    c.ok("apply", "-f", f)
    op = c.new_key("ops-1", "operator")

    rev = c.revision()
    c.ok("promote", "orders_roles", key=op)
    assert c.status("orders_roles")["stage"] == "on"
    assert c.revision() == rev + 1
    c.ok("rollback", "orders_roles", key=op)
    c.ok("pause", "orders_roles", key=op)
    c.ok("resume", "orders_roles", key=op)
    assert c.audit("orders_roles")[-1]["actor"] == "ops-1"

    rev = c.revision()
    g = tmp_path / "other.yaml"
    g.write_text(spec("other_roles", "other.roles"))
    refused(c.ctl("apply", "-f", g, key=op), "ops-1")
    assert c.revision() == rev
    assert c.ctl("status", "other_roles").rc == 1

    # Nor manage keys.
    refused(c.ctl("key", "remove", "admin", key=op))
    assert c.revision() == rev


def test_reader_and_reporter_may_not_write(cluster, tmp_path):
    c = cluster
    f = tmp_path / "orders.yaml"
    f.write_text(spec("orders_ro", "orders.ro"))
    c.ok("apply", "-f", f)
    rd = c.new_key("reader-1", "reader")
    rp = c.new_key("reporter-1", "reporter")
    rev = c.revision()

    for k, kid in ((rd, "reader-1"), (rp, "reporter-1")):
        refused(c.ctl("promote", "orders_ro", key=k), kid)
        refused(c.ctl("pause", "orders_ro", key=k), kid)
        refused(c.ctl("apply", "-f", f, "--force", key=k), kid)
        assert c.revision() == rev
        assert c.status("orders_ro")["stage"] == "off"
    # Reads need no write role.
    res = c.ctl("status", "orders_ro", "--json", key=rd)
    assert res.ok, res


def test_scoped_key_may_not_touch_other_rollouts(cluster, tmp_path):
    c = cluster
    for name, prefix in (("orders_scoped", "orders.scoped"),
                         ("customers_scoped", "customers.scoped")):
        f = tmp_path / (name + ".yaml")
        f.write_text(spec(name, prefix))
        c.ok("apply", "-f", f)
    sc = c.new_key("orders-ops", "operator", scope="orders_*")
    keys = c.okj("key", "list")
    if isinstance(keys, dict):
        keys = keys.get("keys", keys)
    mine = [k for k in keys if k["id"] == "orders-ops"]
    assert mine and mine[0]["scope"] == "orders_*" and \
        mine[0]["role"] == "operator", keys

    c.ok("promote", "orders_scoped", key=sc)
    assert c.status("orders_scoped")["stage"] == "on"
    rev = c.revision()
    refused(c.ctl("promote", "customers_scoped", key=sc), "customers_scoped")
    refused(c.ctl("pause", "customers_scoped", key=sc), "customers_scoped")
    assert c.revision() == rev
    assert c.status("customers_scoped")["stage"] == "off"
    assert c.status("customers_scoped")["state"] == "active"

    # A scoped admin may apply inside its scope only, and may not manage
    # keys (that would let it widen its own scope).
    sa = c.new_key("orders-admin", "admin", scope="orders_*")
    g = tmp_path / "orders_new.yaml"
    g.write_text(spec("orders_new", "orders.new"))
    c.ok("apply", "-f", g, key=sa)
    assert c.status("orders_new")["stage"] == "off"
    rev = c.revision()
    h = tmp_path / "billing.yaml"
    h.write_text(spec("billing_new", "billing.new"))
    refused(c.ctl("apply", "-f", h, key=sa), "billing_new")
    refused(c.ctl("key", "remove", "orders-ops", key=sa))
    assert c.revision() == rev
    assert c.ctl("status", "billing_new").rc == 1


def test_key_add_remove_list_are_audited(cluster, tmp_path):
    c = cluster
    rev0 = c.revision()
    k = c.new_key("temp-op", "operator")
    ids = {x["id"]: x for x in _keys(c)}
    assert "temp-op" in ids and ids["temp-op"]["role"] == "operator", ids
    assert "admin" in ids and ids["admin"]["role"] == "admin", ids

    entries = c.audit()
    add = [e for e in entries if e["action"] == "key_add"]
    assert len(add) == 1, entries
    assert add[0]["actor"] == "admin" and "temp-op" in add[0]["rollout"] + \
        add[0]["after"], add[0]
    assert add[0]["revision"] == rev0 + 1

    # The same id twice is refused.
    res = c.ctl("key", "add", "reader", "temp-op", "A" * 43 + "=")
    assert res.rc == 1, res
    assert c.revision() == rev0 + 1

    c.ok("key", "remove", "temp-op")
    assert "temp-op" not in {x["id"] for x in _keys(c)}
    entries = c.audit()
    assert entries[-1]["revision"] == rev0 + 2, entries[-1]
    assert entries[-1]["action"] == "key_remove", entries[-1]
    assert entries[-1]["actor"] == "admin", entries[-1]
    assert "temp-op" in entries[-1]["rollout"] + entries[-1]["before"]

    # A removed key can no longer write.
    f = tmp_path / "x.yaml"
    f.write_text(spec("orders_gone", "orders.gone"))
    c.ok("apply", "-f", f)
    rev = c.revision()
    res = c.ctl("promote", "orders_gone", key=k)
    assert res.rc == 1, res
    assert c.revision() == rev

    # The last admin key cannot be removed.
    res = c.ctl("key", "remove", "admin")
    assert res.rc == 1, res
    assert "admin" in {x["id"] for x in _keys(c)}
    c.ok("audit", "verify")


def _keys(c):
    keys = c.okj("key", "list")
    if isinstance(keys, dict):
        keys = keys.get("keys", keys)
    return keys
