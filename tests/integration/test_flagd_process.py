# SPDX-License-Identifier: MIT
"""flagd as a process: options, signals, HTTP endpoints; and the change
stream as `flagctl watch` sees it."""

import json
import re
import signal
import socket
import struct
import subprocess
import textwrap
import time
import urllib.error
import urllib.request

import pytest

from conftest import CMD_TIMEOUT, FLAGCTL_BIN, FLAGD_BIN, Cluster


def spec(name, prefix):
    return textwrap.dedent("""\
        rollout: %s
        description: process test
        owner: tests
        stages: [off, on]
        flags:
          %s.enabled: [false, true]
        """ % (name, prefix))


def test_flagd_help_exits_0():
    res = subprocess.run([FLAGD_BIN, "--help"], capture_output=True,
                         text=True, timeout=CMD_TIMEOUT)
    assert res.returncode == 0, res
    for opt in ("--data", "--api", "--publish", "--authorized-keys",
                "--http", "--skew-ms", "--heartbeat-ms", "--nosync"):
        assert opt in res.stdout, (opt, res.stdout)


@pytest.mark.parametrize("argv", [
    ["--no-such-option"],
    ["--skew-ms", "not-a-number"],
    ["--heartbeat-ms", "0"],
    ["--nosync=maybe"],
    ["stray-argument"],
    ["--log-level", "loud"],
])
def test_flagd_bad_options_exit_2(argv, tmp_path):
    res = subprocess.run([FLAGD_BIN, "--data", str(tmp_path / "d")] + argv,
                         capture_output=True, text=True, timeout=CMD_TIMEOUT)
    assert res.returncode == 2, res
    assert res.stderr.startswith("flagd: "), res
    # A usage error starts nothing.
    assert not (tmp_path / "d").exists()


def test_sigterm_exits_0_and_logs_clean_stop(cluster):
    c = cluster
    assert c.flagd.running()
    code = c.stop()
    assert code == 0
    log = c.flagd.log_text()
    assert re.search(r"signal %d" % signal.SIGTERM, log), log
    assert "stopped cleanly" in log, log


def http_get(url):
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def metric(text, name):
    total = 0
    found = False
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"^%s(\{[^}]*\})?\s+([0-9.e+]+)$" % re.escape(name),
                     line)
        if m:
            total += float(m.group(2))
            found = True
    assert found, "no %s in /metrics:\n%s" % (name, text)
    return total


def sp_request(url, payload):
    """One request over nng's SP/TCP wire protocol (REQ, protocol 0x30)
    with an arbitrary body; returns the reply body. Lets the test send
    bytes no sluice client would."""
    host, port = url[len("tcp://"):].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(b"\x00SP\x00\x00\x30\x00\x00")
        hs = b""
        while len(hs) < 8:
            chunk = s.recv(8 - len(hs))
            assert chunk, "peer closed during the SP handshake"
            hs += chunk
        assert hs[:4] == b"\x00SP\x00" and hs[4:6] == b"\x00\x31", hs
        body = b"\x80\x00\x00\x07" + payload  # request id with the top bit
        s.sendall(struct.pack(">Q", len(body)) + body)
        head = b""
        while len(head) < 8:
            chunk = s.recv(8 - len(head))
            assert chunk, "peer closed instead of replying"
            head += chunk
        n = struct.unpack(">Q", head)[0]
        assert n < 1 << 20
        data = b""
        while len(data) < n:
            chunk = s.recv(n - len(data))
            assert chunk
            data += chunk
        assert data[:4] == b"\x80\x00\x00\x07", data[:4]
        return data[4:]


def pb_fields(buf):
    """Top-level protobuf fields: {number: [value]} (varints and bytes)."""
    out = {}
    i = 0

    def varint():
        nonlocal i
        v = shift = 0
        while True:
            b = buf[i]
            i += 1
            v |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return v

    while i < len(buf):
        key = varint()
        num, wt = key >> 3, key & 7
        if wt == 0:
            val = varint()
        elif wt == 2:
            n = varint()
            val = buf[i:i + n]
            i += n
        elif wt == 1:
            val = buf[i:i + 8]
            i += 8
        elif wt == 5:
            val = buf[i:i + 4]
            i += 4
        else:
            raise ValueError("wire type %d" % wt)
        out.setdefault(num, []).append(val)
    return out


def test_http_health_ready_metrics_and_bad_input_counter(tmp_path):
    c = Cluster(tmp_path, http=True)
    c.flagd.start()
    try:
        base = c.flagd.http_url
        assert http_get(base + "/healthz") == (200, "ok\n")
        status, body = http_get(base + "/readyz")
        assert status == 200 and "ready" in body
        status, text = http_get(base + "/metrics")
        assert status == 200
        bad0 = metric(text, "sluice_flagd_bad_input_total")

        # Garbage in a well-framed SP request: a clear EPROTO reply...
        reply = pb_fields(sp_request(c.server, b"\xff" * 16 + b"garbage"))
        assert 10 in reply, reply  # Reply.error
        err = pb_fields(reply[10][0])
        assert err[1] == [5], err  # SLUICE_EPROTO
        assert err.get(2) and err[2][0], err  # a message

        # ...counted as bad input...
        _, text = http_get(base + "/metrics")
        assert metric(text, "sluice_flagd_bad_input_total") == bad0 + 1

        # ...and flagd still works.
        w0 = metric(text, "sluice_flagd_writes_committed_total")
        rev0 = metric(text, "sluice_flagd_revision")
        f = tmp_path / "h.yaml"
        f.write_text(spec("http_check", "http.check"))
        c.ok("apply", "-f", f)
        _, text = http_get(base + "/metrics")
        assert metric(text, "sluice_flagd_writes_committed_total") == w0 + 1
        assert metric(text, "sluice_flagd_revision") == rev0 + 1
        assert metric(text, "sluice_flagd_bad_input_total") == bad0 + 1
        status, page = http_get(base + "/")
        assert status == 200 and "revision" in page
    finally:
        assert c.stop() == 0


def test_watch_receives_changes_made_while_it_runs(cluster, tmp_path):
    c = cluster
    f = tmp_path / "w.yaml"
    f.write_text(spec("watched", "watched.x"))
    c.ok("apply", "-f", f)
    count = 3
    env = {"SLUICE_SERVER": c.server}
    import os
    full_env = dict(os.environ, **env)
    full_env.pop("SLUICE_KEY", None)
    out = tmp_path / "watch.out"
    with open(out, "w") as fo:
        w = subprocess.Popen([FLAGCTL_BIN, "watch", "--count", str(count),
                              "--timeout-s", "90", "--json"], stdout=fo, stderr=subprocess.PIPE,
                             text=True, env=full_env)
    try:
        # A subscriber may miss what is published before it has joined,
        # so keep writing (bounded) until watch has seen `count` changes.
        acked = []
        deadline = time.monotonic() + 90
        for k in range(60):
            if w.poll() is not None or time.monotonic() > deadline:
                break
            action = "promote" if k % 2 == 0 else "rollback"
            res = c.ctl(action, "watched", "--json")
            assert res.ok, res
            doc = res.json()
            acked.append((doc.get("write_revision", doc["revision"]),
                          action))
            time.sleep(0.2)
        _, err = w.communicate(timeout=60)
    finally:
        if w.poll() is None:
            w.kill()
            w.wait(timeout=30)
    assert w.returncode == 0, err
    lines = [json.loads(l) for l in out.read_text().splitlines() if l.strip()]
    changes = [l for l in lines if "revision" in l and
               l.get("type", l.get("kind", "change")) == "change"]
    assert len(changes) == count, lines
    revs = [ch["revision"] for ch in changes]
    assert revs == list(range(revs[0], revs[0] + count)), revs
    by_rev = dict(acked)
    for ch in changes:
        assert ch["revision"] in by_rev, (ch, acked)
        assert ch["rollout"] == "watched", ch
        assert ch["action"] == by_rev[ch["revision"]], (ch, by_rev)
        assert ch["actor"] == "admin", ch
