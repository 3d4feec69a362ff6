# SPDX-License-Identifier: MIT
"""bench/repl.py — the replication bench: a 3-node flagd cluster on loopback
(deploy/local/cluster.sh, fsync on, data under build/) and, in the same run,
a 3-member etcd cluster (Debian's etcd-server 3.4) on free loopback ports.
For each: write latency p50/p99 with 1 and 8 concurrent writers and
writes/s; leader kill -9 -> first successful write on the new leader
(several trials, median); change -> last of 100 watchers p50/p99. Then the
ratios, and (sluice) the elections seen on an idle cluster over a bounded
window. It prints; it never judges the numbers.

Clients. sluice is driven by tests/tools/sldrive (libsluice's rpc, the path
flagctl uses) and bench_flagd (nng subscribers in C). etcd is driven through
its v3 HTTP/JSON gateway by this script: the put loop is Python
(http.client, keep-alive), which adds tens of microseconds per put that a
C client would not; the watchers are raw sockets read by one select loop.
Every wait is bounded; every process is stopped by PID.

usage: repl.py BUILD RUNDIR   (environment: BENCH_TRIALS, BENCH_IDLE_S,
                               BENCH_WRITES, BENCH_CHANGES)
"""

import base64
import http.client
import json
import os
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRIALS = int(os.environ.get("BENCH_TRIALS", "5"))
IDLE_S = float(os.environ.get("BENCH_IDLE_S", "60"))
WRITES = int(os.environ.get("BENCH_WRITES", "1000"))
CHANGES = int(os.environ.get("BENCH_CHANGES", "200"))
SUBS = 100


def log(msg):
    print("bench: " + msg, flush=True)


def pct(v, p):
    """Nearest-rank percentile."""
    if not v:
        return float("nan")
    s = sorted(v)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def free_ports(n):
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def kill9(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def wait_gone(pid, timeout=15):
    """Waits until pid is gone or a zombie (its sockets are closed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open("/proc/%d/stat" % pid) as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return
        except (FileNotFoundError, ProcessLookupError):
            return
        time.sleep(0.01)


def term_pid(proc, timeout=15):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)


# ------------------------------------------------------------------ sluice

class Sluice:
    def __init__(self, build, run):
        self.build = build
        self.run = os.path.join(run, "sluice")
        self.sldrive = os.path.join(build, "tests", "tools", "sldrive")
        self.bench = os.path.join(build, "bench", "bench_flagd")
        self.local = os.path.join(ROOT, "deploy", "local", "cluster.sh")
        self.env = None
        self.procs = {}  # node -> Popen of a node this script restarted

    def up(self):
        env = dict(os.environ, FLAGD_NOSYNC="false", FLAGD_HEARTBEAT_MS="200",
                   FLAGD_LOG_LEVEL="notice", SLUICE_BUILD=self.build)
        self.flagd_env = env
        subprocess.run([self.local, "up", self.run], env=env, check=True,
                       stdout=subprocess.DEVNULL, timeout=120)
        self.load_env()

    def load_env(self):
        e = {}
        with open(os.path.join(self.run, "env")) as f:
            for line in f:
                if "=" in line and not line.startswith(("#", "export")):
                    k, v = line.rstrip("\n").split("=", 1)
                    e[k] = v.strip('"')
        self.env = e
        self.n = int(e["FLAGD_NODES"])
        self.key = e["SLUICE_KEY"]
        self.pids = {i: int(e["FLAGD_PID_%d" % i])
                     for i in range(1, self.n + 1)}

    def api(self, i):
        return self.env["FLAGD_API_%d" % i]

    def pub(self, i):
        return self.env["FLAGD_PUBLISH_%d" % i]

    def call(self, i, *args, timeout=10):
        p = subprocess.run([self.sldrive, "call", self.api(i)] + list(args),
                           capture_output=True, text=True, timeout=timeout)
        lines = [l for l in p.stdout.splitlines() if l.strip()]
        return json.loads(lines[-1]) if lines else {"ok": False}

    def alive(self, i):
        try:
            os.kill(self.pids[i], 0)
            return True
        except ProcessLookupError:
            return False

    def leader(self, nodes=None, timeout=30):
        """(leader id, term) all given live nodes agree on."""
        nodes = nodes or [i for i in self.pids if self.alive(i)]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ids, terms = set(), set()
            for i in nodes:
                try:
                    d = self.call(i, "cluster", timeout=5)
                except subprocess.TimeoutExpired:
                    d = {"ok": False}
                if not d.get("ok"):
                    ids.add(0)
                    break
                ids.add(d["cluster"]["leader_id"])
                terms.add(d["cluster"]["term"])
            if len(ids) == 1 and 0 not in ids:
                lid = ids.pop()
                if lid in nodes:
                    return lid, max(terms)
            time.sleep(0.05)
        raise RuntimeError("sluice: no leader agreed on by %s" % nodes)

    def load(self, servers, prefix, writers, count, secs=120):
        """Runs sldrive load; returns (per-write docs, wall seconds)."""
        t0 = time.monotonic()
        p = subprocess.run([self.sldrive, "load", servers, self.key, prefix,
                            str(writers), str(count), str(secs)],
                           capture_output=True, text=True, timeout=secs + 60)
        wall = time.monotonic() - t0
        docs = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
        return [d for d in docs if "us" in d], wall

    def writes(self, writers, count):
        lid, _ = self.leader()
        # Warm the connection and the leader's caches.
        self.load(self.api(lid), "warm%d" % writers, writers, 8 * writers)
        docs, wall = self.load(self.api(lid), "w%d" % writers, writers, count)
        ok = [d["us"] / 1000.0 for d in docs if d.get("ok")]
        return {"p50": pct(ok, 50), "p99": pct(ok, 99), "n": len(ok),
                "errors": len(docs) - len(ok), "wps": len(ok) / wall}

    def restart(self, i, argv):
        log_path = self.env["FLAGD_LOG_%d" % i]
        with open(log_path, "ab") as f:
            p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL,
                                 env=self.flagd_env)
        self.procs[i] = p
        self.pids[i] = p.pid
        self.write_pids()

    def write_pids(self):
        # cluster.sh down stops what DIR/env lists.
        path = os.path.join(self.run, "env")
        with open(path) as f:
            lines = f.readlines()
        out = []
        for line in lines:
            if line.startswith("FLAGD_PIDS="):
                line = 'FLAGD_PIDS="%s"\n' % " ".join(
                    str(self.pids[i]) for i in sorted(self.pids))
            elif line.startswith("FLAGD_PID="):
                line = "FLAGD_PID=%d\n" % self.pids[1]
            for i in self.pids:
                if line.startswith("FLAGD_PID_%d=" % i):
                    line = "FLAGD_PID_%d=%d\n" % (i, self.pids[i])
            out.append(line)
        with open(path + ".tmp", "w") as f:
            f.writelines(out)
        os.replace(path + ".tmp", path)

    def failover_trial(self):
        lid, term = self.leader()
        others = [i for i in sorted(self.pids) if i != lid]
        with open("/proc/%d/cmdline" % self.pids[lid], "rb") as f:
            argv = [a.decode() for a in f.read().split(b"\0") if a]
        out = os.path.join(self.run, "failover.jsonl")
        servers = ",".join(self.api(i) for i in others)
        with open(out, "w") as f:
            load = subprocess.Popen(
                [self.sldrive, "load", servers, self.key,
                 "f%d" % int(time.monotonic() * 1000), "1", "1000000", "30"],
                stdout=f, stderr=subprocess.DEVNULL)
        try:
            time.sleep(1.0)
            t_kill = time.monotonic()
            kill9(self.pids[lid])
            first = None
            deadline = t_kill + 20
            while first is None and time.monotonic() < deadline:
                time.sleep(0.02)
                with open(out) as f:
                    for line in f:
                        try:
                            d = json.loads(line)
                        except ValueError:
                            continue
                        # The first acknowledged write *begun* after
                        # the kill (as etcd's puts below all are): one
                        # that the dead leader committed and a survivor
                        # relayed later says nothing about failover.
                        begun = (d.get("t_us", 0) - d.get("us", 0)) / 1e6
                        if d.get("ok") and begun > t_kill:
                            first = d["t_us"] / 1e6 - t_kill
                            break
        finally:
            load.kill()
            load.wait()
        try:
            os.waitpid(self.pids[lid], os.WNOHANG)
        except ChildProcessError:
            pass
        if lid in self.procs:
            self.procs[lid].wait(timeout=10)
        wait_gone(self.pids[lid])
        self.restart(lid, argv)
        self.leader(timeout=60)
        # The restarted node has caught up before the next trial.
        time.sleep(0.5)
        return first

    def changes(self, lid):
        # Writes go to the leader; the 100 subscribers listen on a
        # follower's change stream, so each change is replicated, applied
        # there and published before it counts.
        follower = [i for i in sorted(self.pids) if i != lid][0]
        p = subprocess.run(
            [self.bench, "--api", self.api(lid), "--publish",
             self.pub(follower), "--key", self.key, "--flips", "0",
             "--applies", "0", "--read-secs", "0.2", "--threads", "1",
             "--subs", str(SUBS), "--changes", str(CHANGES)],
            capture_output=True, text=True, timeout=300)
        return p.stdout, p.stderr

    def idle_elections(self, secs):
        _, t0 = self.leader()
        leaders = set()
        end = time.monotonic() + secs
        while time.monotonic() < end:
            time.sleep(min(1.0, max(0.0, end - time.monotonic())))
        lid, t1 = self.leader()
        return t1 - t0, lid

    def down(self):
        for p in self.procs.values():
            pass
        if self.env is not None:
            subprocess.run([self.local, "down", self.run], timeout=120,
                           stdout=subprocess.DEVNULL)
        for p in self.procs.values():
            if p.poll() is None:
                term_pid(p)


# ------------------------------------------------------------------ etcd

def http_post(port, path, body, timeout=5.0):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("POST", path, json.dumps(body),
                  {"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        if r.status != 200:
            raise IOError("HTTP %d %s" % (r.status, data[:200]))
        return json.loads(data)
    finally:
        c.close()


def b64(s):
    return base64.b64encode(s.encode()).decode()


class Etcd:
    def __init__(self, run):
        self.run = os.path.join(run, "etcd")
        os.makedirs(self.run, exist_ok=True)
        ports = free_ports(6)
        self.client = ports[:3]
        self.peer = ports[3:]
        self.names = ["e1", "e2", "e3"]
        self.initial = ",".join("%s=http://127.0.0.1:%d" % (n, p)
                                for n, p in zip(self.names, self.peer))
        self.procs = [None] * 3
        self.ids = {}

    def argv(self, i):
        return ["etcd", "--name", self.names[i],
                "--data-dir", os.path.join(self.run, self.names[i]),
                "--listen-client-urls", "http://127.0.0.1:%d" % self.client[i],
                "--advertise-client-urls",
                "http://127.0.0.1:%d" % self.client[i],
                "--listen-peer-urls", "http://127.0.0.1:%d" % self.peer[i],
                "--initial-advertise-peer-urls",
                "http://127.0.0.1:%d" % self.peer[i],
                "--initial-cluster", self.initial,
                "--initial-cluster-state", "new",
                "--initial-cluster-token", "sluice-bench",
                "--logger", "zap", "--log-level", "error"]

    def start(self, i):
        log_path = os.path.join(self.run, "%s.log" % self.names[i])
        with open(log_path, "ab") as f:
            self.procs[i] = subprocess.Popen(
                self.argv(i), stdout=f, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL)

    def up(self):
        for i in range(3):
            self.start(i)
        self.leader(timeout=60)

    def status(self, i, timeout=1.0):
        return http_post(self.client[i], "/v3/maintenance/status", {},
                         timeout=timeout)

    def leader(self, live=None, timeout=30):
        """(index of the leader member, raft term)."""
        live = live if live is not None else [
            i for i in range(3) if self.procs[i] and
            self.procs[i].poll() is None]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                sts = [self.status(i) for i in live]
                for i, s in zip(live, sts):
                    self.ids[s["header"]["member_id"]] = i
                leaders = {s.get("leader") for s in sts}
                if len(leaders) == 1:
                    lid = leaders.pop()
                    if lid in self.ids and self.ids[lid] in live:
                        return self.ids[lid], int(sts[0]["raftTerm"])
            except (OSError, ValueError, KeyError, http.client.HTTPException):
                pass
            time.sleep(0.05)
        raise RuntimeError("etcd: no leader")

    def put_conn(self, i, timeout=5.0):
        return http.client.HTTPConnection("127.0.0.1", self.client[i],
                                          timeout=timeout)

    @staticmethod
    def put(conn, key, value):
        conn.request("POST", "/v3/kv/put",
                     json.dumps({"key": b64(key), "value": b64(value)}),
                     {"Content-Type": "application/json"})
        r = conn.getresponse()
        data = r.read()
        if r.status != 200:
            raise IOError("HTTP %d" % r.status)
        return data

    def writes(self, writers, count):
        lid, _ = self.leader()
        lat = []
        errors = [0]
        lock = threading.Lock()

        def writer(w, n):
            c = self.put_conn(lid)
            mine = []
            for k in range(8):
                self.put(c, "warm/%d/%d" % (w, k), "x")
            for k in range(n):
                t0 = time.monotonic()
                try:
                    self.put(c, "w%d/%d/%d" % (writers, w, k), "value-%d" % k)
                    mine.append((time.monotonic() - t0) * 1000.0)
                except (OSError, http.client.HTTPException):
                    errors[0] += 1
                    c.close()
                    c = self.put_conn(lid)
            c.close()
            with lock:
                lat.extend(mine)

        th = [threading.Thread(target=writer,
                               args=(w, count // writers +
                                     (w < count % writers)))
              for w in range(writers)]
        t0 = time.monotonic()
        for t in th:
            t.start()
        for t in th:
            t.join(timeout=300)
        wall = time.monotonic() - t0
        return {"p50": pct(lat, 50), "p99": pct(lat, 99), "n": len(lat),
                "errors": errors[0], "wps": len(lat) / wall}

    def failover_trial(self, attempt_s=0.1):
        lid, _ = self.leader()
        others = [i for i in range(3) if i != lid]
        time.sleep(0.5)
        t_kill = time.monotonic()
        kill9(self.procs[lid].pid)
        first = None
        k = 0
        conns = {}
        # Puts to the survivors, alternating, each bounded by attempt_s
        # (a put stuck on a dead leader would otherwise wait for etcd's
        # request timeout, which measures the timeout, not the failover).
        while first is None and time.monotonic() < t_kill + 30:
            i = others[k % 2]
            k += 1
            c = conns.get(i) or self.put_conn(i, timeout=attempt_s)
            conns[i] = c
            try:
                self.put(c, "failover/%d" % k, "x")
                first = time.monotonic() - t_kill
            except (OSError, http.client.HTTPException, socket.timeout):
                c.close()
                conns.pop(i, None)
                time.sleep(0.02)
        for c in conns.values():
            c.close()
        self.procs[lid].wait(timeout=10)
        self.start(lid)
        self.leader(timeout=60)
        time.sleep(0.5)
        return first

    def changes(self, lid):
        follower = [i for i in range(3) if i != lid][0]
        # The C watcher (bench_etcd_watch.c: one libcurl multi, jansson),
        # also used for run.sh's single-node figure: no interpreter cost
        # per socket in etcd's figure. The Python loop below is the
        # fallback when it is not built.
        exe = os.path.join(sys.argv[1], "bench", "bench_etcd_watch")
        if os.access(exe, os.X_OK):
            out = subprocess.run(
                [exe, "--watch", "127.0.0.1:%d" % self.client[follower],
                 "--put", "127.0.0.1:%d" % self.client[lid],
                 "--watchers", str(SUBS), "--changes", str(CHANGES),
                 "--label", "etcd 3 members"],
                capture_output=True, text=True, timeout=600)
            for line in out.stdout.splitlines():
                if line.startswith("{"):
                    d = json.loads(line)
                    return {"p50": d["p50"], "p99": d["p99"], "n": d["n"],
                            "connected": SUBS, "watcher": "C"}
            log("etcd: C watcher failed (%s); Python watcher" %
                out.stderr.strip()[-200:])
        key = "bench/watch"
        sel = selectors.DefaultSelector()
        watchers = []
        body = json.dumps({"create_request": {"key": b64(key)}}).encode()
        req = (b"POST /v3/watch HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               b"Content-Type: application/json\r\nContent-Length: %d\r\n"
               b"\r\n" % len(body)) + body
        for w in range(SUBS):
            s = socket.create_connection(("127.0.0.1", self.client[follower]),
                                         timeout=5)
            s.sendall(req)
            s.setblocking(False)
            st = {"sock": s, "buf": b"", "seen": None}
            watchers.append(st)
            sel.register(s, selectors.EVENT_READ, st)
        # Every watcher has its "created" answer before the first change.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(
                b'"created":true' in w["buf"] for w in watchers):
            for k, _ in sel.select(timeout=0.5):
                k.data["buf"] += k.data["sock"].recv(65536)
        connected = sum(b'"created":true' in w["buf"] for w in watchers)
        for w in watchers:
            w["buf"] = b""
        lat = []
        putc = [None]
        lock = threading.Lock()

        def do_put(value):
            try:
                if putc[0] is None:
                    putc[0] = self.put_conn(self.leader_idx)
                self.put(putc[0], key, value)
            except (OSError, http.client.HTTPException):
                putc[0] = None

        self.leader_idx = lid
        for n in range(CHANGES):
            value = "chg-%06d" % n
            needle = b64(value).encode()
            for w in watchers:
                w["seen"] = None
            t0 = time.monotonic()
            th = threading.Thread(target=do_put, args=(value,))
            th.start()
            left = connected
            end = t0 + 5
            while left > 0 and time.monotonic() < end:
                for k, _ in sel.select(timeout=0.2):
                    st = k.data
                    try:
                        chunk = st["sock"].recv(65536)
                    except BlockingIOError:
                        continue
                    now = time.monotonic()
                    st["buf"] = (st["buf"] + chunk)[-4096:]
                    if st["seen"] is None and needle in st["buf"]:
                        st["seen"] = now
                        left -= 1
            th.join(timeout=10)
            if left == 0:
                lat.append((max(w["seen"] for w in watchers
                                if w["seen"] is not None) - t0) * 1000.0)
        for w in watchers:
            sel.unregister(w["sock"])
            w["sock"].close()
        if putc[0] is not None:
            putc[0].close()
        return {"p50": pct(lat, 50), "p99": pct(lat, 99), "n": len(lat),
                "connected": connected}

    def down(self):
        for p in self.procs:
            if p is not None:
                term_pid(p)


# ------------------------------------------------------------------ main

def fmt(st):
    return "p50 %7.3f ms  p99 %7.3f ms  (%d ok, %d errors)  %7.0f writes/s" % (
        st["p50"], st["p99"], st["n"], st["errors"], st["wps"])


def ratio(a, b):
    if not b or b != b or a != a:
        return "n/a"
    return "%.2f" % (a / b)


def main():
    build, run = sys.argv[1], sys.argv[2]
    res = {"sluice": {}, "etcd": {}}
    s = Sluice(build, run)
    try:
        log("sluice: 3-node cluster (fsync on) ...")
        s.up()
        for w, n in ((1, WRITES // 2), (8, WRITES * 2)):
            res["sluice"]["w%d" % w] = s.writes(w, n)
            log("sluice: write, %d writer(s): %s" % (w, fmt(res["sluice"]["w%d" % w])))
        lid, _ = s.leader()
        out, err = s.changes(lid)
        ch = None
        for line in out.splitlines():
            if line.startswith("{"):
                try:
                    ch = json.loads(line)
                except ValueError:
                    pass
        res["sluice"]["changes"] = ch
        log("sluice: change -> last of %d subscribers: %s" % (SUBS, json.dumps(ch.get("change_to_last_sub_ms") if ch else err[-300:])))
        fo = []
        for t in range(TRIALS):
            r = s.failover_trial()
            fo.append(r)
            log("sluice: failover trial %d: %s" % (
                t + 1, "%.3f s" % r if r is not None else "no write within 20 s"))
        res["sluice"]["failover"] = fo
        if IDLE_S > 0:
            log("sluice: idle cluster for %.0f s, counting elections ..." % IDLE_S)
            dterm, _ = s.idle_elections(IDLE_S)
            res["sluice"]["idle_term_changes"] = dterm
            log("sluice: term changes while idle for %.0f s: %d" % (IDLE_S, dterm))
    finally:
        s.down()

    e = Etcd(run)
    try:
        log("etcd: 3-member cluster (%s) ..." % subprocess.run(
            ["etcd", "--version"], capture_output=True, text=True
        ).stdout.splitlines()[0])
        e.up()
        for w, n in ((1, WRITES // 2), (8, WRITES * 2)):
            res["etcd"]["w%d" % w] = e.writes(w, n)
            log("etcd: put, %d writer(s): %s" % (w, fmt(res["etcd"]["w%d" % w])))
        lid, _ = e.leader()
        res["etcd"]["changes"] = e.changes(lid)
        log("etcd: put -> last of %d watchers: %s" % (SUBS, json.dumps(res["etcd"]["changes"])))
        fo = []
        for t in range(TRIALS):
            r = e.failover_trial()
            fo.append(r)
            log("etcd: failover trial %d: %s" % (
                t + 1, "%.3f s" % r if r is not None else "no put within 30 s"))
        res["etcd"]["failover"] = fo
    finally:
        e.down()

    S, E = res["sluice"], res["etcd"]

    def med(v):
        v = [x for x in v if x is not None]
        return statistics.median(v) if v else float("nan")

    sch = (S.get("changes") or {}).get("change_to_last_sub_ms") or {}
    ech = E.get("changes") or {}
    print()
    print("replication bench (3 nodes, loopback, fsync on)      sluice        etcd    ratio  target")
    rows = [
        ("write p50, 1 writer (ms)", S["w1"]["p50"], E["w1"]["p50"], "<= 0.5"),
        ("write p99, 1 writer (ms)", S["w1"]["p99"], E["w1"]["p99"], ""),
        ("write p50, 8 writers (ms)", S["w8"]["p50"], E["w8"]["p50"], ""),
        ("write p99, 8 writers (ms)", S["w8"]["p99"], E["w8"]["p99"], ""),
        ("writes/s, 1 writer", S["w1"]["wps"], E["w1"]["wps"], ""),
        ("writes/s, 8 writers", S["w8"]["wps"], E["w8"]["wps"], ""),
        ("change -> last of 100 p50 (ms)", (sch.get("p50") or float("nan")), ech["p50"], ""),
        ("change -> last of 100 p99 (ms)", (sch.get("p99") or float("nan")), ech["p99"], "<= 0.5"),
        ("leader kill -> next write, median (s)", med(S["failover"]), med(E["failover"]), "<= 0.6"),
    ]
    for name, a, b, tgt in rows:
        print("%-44s %10.3f  %10.3f  %7s  %s" % (name, a, b, ratio(a, b), tgt))
    print("failover trials (s): sluice %s; etcd %s" % (
        ["%.3f" % x if x is not None else "-" for x in S["failover"]],
        ["%.3f" % x if x is not None else "-" for x in E["failover"]]))
    if "idle_term_changes" in S:
        print("sluice idle: %d term change(s) in %.0f s" % (S["idle_term_changes"], IDLE_S))
    print("notes: etcd's put loop is Python http.client (adds client overhead "
          "a C client would not); its failover puts are bounded to 100 ms "
          "each; sluice's writes go through libsluice's rpc (sldrive), "
          "failover writes to the two survivors (a follower forwards).")
    with open(os.path.join(run, "repl.json"), "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
