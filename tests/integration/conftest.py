# SPDX-License-Identifier: MIT
"""Fixtures for the integration suite: real flagd processes on free
loopback ports, each with its own data directory under tmp_path, and a
small driver for flagctl.

Every subprocess runs with a timeout, every wait loop is bounded in count
and time, and every flagd is stopped by its PID (SIGTERM, or SIGKILL in the
crash test only). Timeouts are generous because CI also runs this suite
against ASan builds, which are several times slower; no test asserts on
timing.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("SLUICE_BUILD", ROOT / "build" / "release"))
FLAGD_BIN = os.environ.get("FLAGD_BIN", str(BUILD / "flagd"))
FLAGCTL_BIN = os.environ.get("FLAGCTL_BIN", str(BUILD / "flagctl"))

CMD_TIMEOUT = 60  # seconds, any single flagctl/flagd command
START_TIMEOUT = 60  # seconds until a started flagd answers
STOP_TIMEOUT = 60  # seconds for a SIGTERM'd flagd to exit

AUTHKEY_RE = re.compile(
    r"^(admin|operator|reporter|reader)\s+([A-Za-z0-9._@-]{1,63})\s+"
    r"([A-Za-z0-9+/=]{40,})(?:\s+(\S+))?\s*$"
)


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def distinct_ports(n):
    ports = set()
    for _ in range(50):
        ports.add(free_port())
        if len(ports) == n:
            return sorted(ports)
    raise RuntimeError("could not find %d distinct free ports" % n)


class CtlResult:
    """The outcome of one flagctl run."""

    def __init__(self, args, proc):
        self.args = args
        self.rc = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    @property
    def ok(self):
        return self.rc == 0

    def json(self):
        """stdout as one JSON document (or a list, for JSON lines)."""
        text = self.out.strip()
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return [json.loads(l) for l in text.splitlines() if l.strip()]

    def __repr__(self):
        return "flagctl %s -> exit %s\nstdout: %s\nstderr: %s" % (
            " ".join(self.args),
            self.rc,
            self.out.strip()[-2000:],
            self.err.strip()[-2000:],
        )


def run_flagctl(args, server=None, key=None, stdin=None, timeout=CMD_TIMEOUT):
    env = dict(os.environ)
    env.pop("SLUICE_SERVER", None)
    env.pop("SLUICE_KEY", None)
    if server is not None:
        env["SLUICE_SERVER"] = server
    if key is not None:
        env["SLUICE_KEY"] = str(key)
    proc = subprocess.run(
        [FLAGCTL_BIN] + [str(a) for a in args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    return CtlResult([str(a) for a in args], proc)


def parse_authkey_line(text):
    """The authorized-keys line in keygen's output: (line, role, id, b64)."""
    for line in text.splitlines():
        m = AUTHKEY_RE.match(line.strip())
        if m:
            return line.strip(), m.group(1), m.group(2), m.group(3)
    return None


def keygen(tmp_path, key_id, role=None):
    """Runs `flagctl keygen` and returns (key file, authorized-keys line).

    keygen prints the line that authorises the new key; with --json it may
    print an object instead, so both are understood.
    """
    path = Path(tmp_path) / ("%s.key" % key_id)
    res = run_flagctl(["keygen", "--out", path, "--id", key_id])
    assert res.ok, res
    assert path.exists(), res
    assert (path.stat().st_mode & 0o077) == 0, "secret key readable by others"
    found = parse_authkey_line(res.out)
    if found is None:
        doc = res.json()
        if isinstance(doc, dict):
            for k in ("authorized_key", "authorized_keys_line", "line"):
                if k in doc:
                    found = parse_authkey_line(doc[k])
                    break
            if found is None and "public_key" in doc:
                line = "%s %s %s" % (
                    doc.get("role", "admin"),
                    doc.get("id", key_id),
                    doc["public_key"],
                )
                found = parse_authkey_line(line)
    assert found is not None, "no authorized-keys line in keygen output: %r" % res
    line, _, kid, b64 = found
    assert kid == key_id, res
    if role is not None:
        line = "%s %s %s" % (role, kid, b64)
    return path, line, b64


class Flagd:
    """One flagd process on free loopback ports."""

    def __init__(self, workdir, authorized_keys, nosync=True, http=False,
                 extra=()):
        self.workdir = Path(workdir)
        self.data = self.workdir / "data"
        self.authorized_keys = authorized_keys
        self.nosync = nosync
        self.http = http
        self.extra = list(extra)
        self.proc = None
        self.logs = []
        self.log = None
        self.api = self.publish = self.http_url = None

    def argv(self):
        # A cluster of one still runs consensus: a free port for it too.
        if self.http:
            api, pub, raft, http = distinct_ports(4)
            self.http_url = "http://127.0.0.1:%d" % http
        else:
            api, pub, raft = distinct_ports(3)
        self.api = "tcp://127.0.0.1:%d" % api
        self.publish = "tcp://127.0.0.1:%d" % pub
        argv = [
            FLAGD_BIN,
            "--data", str(self.data),
            "--api", self.api,
            "--publish", self.publish,
            "--raft", "127.0.0.1:%d" % raft,
            "--authorized-keys", str(self.authorized_keys),
            "--heartbeat-ms", "200",
            "--log-level", "info",
        ]
        if self.http:
            argv += ["--http", self.http_url]
        if self.nosync:
            argv.append("--nosync")
        return argv + self.extra

    def start(self):
        """Starts flagd and waits until `flagctl list` answers."""
        last = None
        for attempt in range(3):  # a picked port may be taken meanwhile
            self.log = self.workdir / ("flagd.%d.log" % len(self.logs))
            self.logs.append(self.log)
            with open(self.log, "wb") as logf:
                self.proc = subprocess.Popen(
                    self.argv(), stdout=logf, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL)
            deadline = time.monotonic() + START_TIMEOUT
            for _ in range(600):
                if self.proc.poll() is not None:
                    break
                try:
                    last = run_flagctl(["list"], server=self.api,
                                       timeout=15)
                except subprocess.TimeoutExpired:
                    last = None
                if last is not None and last.ok:
                    return self
                if time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            if self.proc.poll() is None:
                self.kill9()
            if "Address in use" not in self.log_text() and \
                    "in use" not in self.log_text():
                break
        raise AssertionError(
            "flagd did not come up (exit %s); last flagctl list: %r\nlog:\n%s"
            % (self.proc.returncode, last, self.log_text()[-4000:]))

    def log_text(self):
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def all_logs(self):
        return "".join(p.read_text(errors="replace") for p in self.logs
                       if p.exists())

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGTERM by PID; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=STOP_TIMEOUT)
                raise AssertionError("flagd ignored SIGTERM for %ds"
                                     % STOP_TIMEOUT)
        return self.proc.returncode

    def kill9(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=STOP_TIMEOUT)


class Cluster:
    """A flagd plus the admin key that the tests drive it with."""

    def __init__(self, tmp_path, nosync=True, http=False):
        self.tmp = Path(tmp_path)
        self.keydir = self.tmp / "keys"
        self.keydir.mkdir(exist_ok=True)
        self.admin_key, line, _ = keygen(self.keydir, "admin")
        self.authorized_keys = self.tmp / "authorized_keys"
        self.authorized_keys.write_text(
            "# written by tests/integration/conftest.py\n%s\n" % line)
        self.flagd = Flagd(self.tmp, self.authorized_keys, nosync=nosync,
                           http=http)

    @property
    def server(self):
        return self.flagd.api

    def ctl(self, *args, key=None, stdin=None, timeout=CMD_TIMEOUT):
        """flagctl with the admin key unless another is given."""
        return run_flagctl(list(args), server=self.server,
                           key=key if key is not None else self.admin_key,
                           stdin=stdin, timeout=timeout)

    def ok(self, *args, key=None, stdin=None):
        res = self.ctl(*args, key=key, stdin=stdin)
        assert res.ok, res
        return res

    def okj(self, *args, key=None, stdin=None):
        res = self.ok(*(list(args) + ["--json"]), key=key, stdin=stdin)
        return res.json()

    def status(self, rollout):
        return self.okj("status", rollout)

    def audit(self, rollout=None):
        args = ["audit", "--limit", "0"]
        if rollout:
            args += ["--rollout", rollout]
        doc = self.okj(*args)
        if isinstance(doc, dict):
            for k in ("entries", "audit"):
                if k in doc:
                    return doc[k]
        return doc

    def revision(self):
        """The store's revision: the last audit entry's (one per write)."""
        entries = self.audit()
        return max((e["revision"] for e in entries), default=0)

    def new_key(self, key_id, role, scope=None):
        """Generates a key and adds it with `flagctl key add` (as admin)."""
        path, _, b64 = keygen(self.keydir, key_id)
        args = ["key", "add", role, key_id, b64]
        if scope is not None:
            args.append(scope)
        res = self.ctl(*args)
        assert res.ok, res
        return path

    def stop(self):
        return self.flagd.stop()


@pytest.fixture
def cluster(tmp_path):
    """A running flagd (nosync: durability is not under test) and its
    admin key; stopped by SIGTERM afterwards."""
    c = Cluster(tmp_path)
    c.flagd.start()
    try:
        yield c
    finally:
        if c.flagd.running():
            code = c.flagd.stop()
            assert code == 0, "flagd exited %s on SIGTERM\n%s" % (
                code, c.flagd.log_text()[-3000:])


# ----------------------------------------------------------------- bucketing

# One Python SipHash-2-4 for the whole tree: tests/vectors/gen_bucket.py,
# which checks itself against the SipHash paper's reference vector when it
# is imported and has no other side effects.
sys.path.insert(0, str(ROOT / "tests" / "vectors"))
import gen_bucket  # noqa: E402

siphash24 = gen_bucket.siphash24


def bucket(rollout, unit):
    """DESIGN.md's bucket: SipHash-2-4 of the unit keyed by the first 16
    bytes of BLAKE2b-256(rollout), little-endian, mod 10000. unit may be
    str (UTF-8) or bytes."""
    if isinstance(unit, str):
        unit = unit.encode()
    return gen_bucket.bucket(rollout, unit)
