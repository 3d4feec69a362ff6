# SPDX-License-Identifier: MIT
"""sluice: feature flags for staged schema rollouts, evaluated in-process.

A thin ctypes binding over libsluice (clients/include/sluice.h). Every
evaluation, the bucketing of units, staleness, the cache file and the
update protocol are libsluice's; this package only converts arguments and
results and turns error codes into exceptions.

    import sluice
    with sluice.Client(["tcp://flagd-0:7400", "tcp://flagd-1:7400"],
                       cache_file="/var/lib/etl/sluice.cache") as c:
        with c.view() as run:                # one schema path per run
            for batch in batches:
                if run.rolled_back():
                    break                    # stop cleanly
                if run.bool("orders.dual_write", unit=batch.partition):
                    ...

See clients/python/README.md and docs/client.md.
"""

from __future__ import annotations

import atexit
import ctypes
import datetime
import enum
import logging
import math
import os
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Mapping, NamedTuple, Optional, Union

from . import _native
from ._errors import (
    ClosedError,
    CorruptError,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    OutOfMemoryError,
    SluiceError,
    TimedOutError,
    TooBigError,
    UnavailableError,
    errname,
    error,
    strerror,
)
from ._errors import code_of as _code_of

__all__ = [
    "Client", "View", "Detail", "Stage", "Reason", "Kind", "Verdict", "bucket",
    "BUCKETS", "MAX_NAME", "MAX_STRING", "lib_path", "errname", "strerror",
    "SluiceError", "InvalidArgumentError", "NotFoundError", "TooBigError",
    "TimedOutError", "UnavailableError", "ClosedError", "CorruptError",
    "OutOfMemoryError", "InternalError",
]

__version__ = "0.1.0"

_lib = _native.lib
#: The path of the libsluice that was loaded.
lib_path = _native.lib_path
#: Buckets per rollout: bucket() is in [0, BUCKETS).
BUCKETS = _lib.sluice_buckets()
#: Longest rollout or stage name, plus its NUL.
MAX_NAME = _native.MAX_NAME
#: Longest string flag value, without its NUL.
MAX_STRING = _native.MAX_STRING

_log = logging.getLogger("sluice")
_ECLOSED = _code_of("ECLOSED")
_ETIMEDOUT = _code_of("ETIMEDOUT")
_UINT32_MAX = 0xFFFFFFFF
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1

Unit = Union[str, bytes, None]


class Reason(str, enum.Enum):
    """Why an evaluation gave its value (sluice_reason). Compares equal to
    its name: ``d.reason == "STAGE"``."""

    STAGE = "STAGE"
    PERCENT_IN = "PERCENT_IN"
    PERCENT_OUT = "PERCENT_OUT"
    DEFAULT_UNKNOWN_FLAG = "DEFAULT_UNKNOWN_FLAG"
    STALE_BASELINE = "STALE_BASELINE"
    CACHE = "CACHE"
    STALE_KEEP = "STALE_KEEP"

    def __str__(self):
        return self.value


class Kind(str, enum.Enum):
    """The kind of a flag's value (sluice_kind)."""

    NONE = "NONE"
    BOOL = "BOOL"
    INT = "INT"
    STRING = "STRING"
    PERCENT = "PERCENT"

    def __str__(self):
        return self.value


# sluice_kind numbers (sluice.h); C has no name function for kinds.
_KINDS = {0: Kind.NONE, 1: Kind.BOOL, 2: Kind.INT, 3: Kind.STRING,
          4: Kind.PERCENT}


def _reason(code):
    name = _lib.sluice_reason_name(code).decode()
    try:
        return Reason(name)
    except ValueError:  # a reason newer than this package: keep its name
        return name if name != "UNKNOWN" else "UNKNOWN(%d)" % code


class Stage(NamedTuple):
    """A rollout's effective stage: ``name, index = c.stage(rollout)``."""

    name: str
    index: int


@dataclass(frozen=True)
class Detail:
    """One evaluation, explained (struct sluice_detail).

    value      bool for bool and percentage flags (in or out), int, str;
               None when the flag is unknown (kind NONE)
    kind       Kind
    reason     Reason (or the C name of a reason newer than this package)
    rollout    the rollout that owns the flag; None when unknown
    stage      the effective stage's name; None when unknown
    stage_index  the effective stage's index
    revision   of the snapshot evaluated; 0 = no state
    bucket     the unit's bucket (percentage flags only, else None)
    percent    the percentage in basis points (percentage flags, else None)
    stale      past max_stale without contact
    from_cache the snapshot was loaded from the cache file
    """

    value: object
    kind: Kind
    reason: Union[Reason, str]
    rollout: Optional[str]
    stage: Optional[str]
    stage_index: int
    revision: int
    bucket: Optional[int]
    percent: Optional[int]
    stale: bool
    from_cache: bool


def _text(b):
    return b.decode("utf-8", "replace")


def _detail(d):
    kind = _KINDS.get(d.kind, Kind.NONE)
    if kind is Kind.BOOL or kind is Kind.PERCENT:
        value = bool(d.on)
    elif kind is Kind.INT:
        value = int(d.int_value)
    elif kind is Kind.STRING:
        value = _text(d.string_value)
    else:
        value = None
    pct = kind is Kind.PERCENT
    return Detail(
        value=value,
        kind=kind,
        reason=_reason(d.reason),
        rollout=_text(d.rollout) or None,
        stage=_text(d.stage_name) or None,
        stage_index=int(d.stage),
        revision=int(d.revision),
        bucket=int(d.bucket) if pct else None,
        percent=int(d.percent_bp) if pct else None,
        stale=bool(d.stale),
        from_cache=bool(d.from_cache),
    )


@dataclass(frozen=True)
class Verdict:
    """gatekeeper's answer to one report (struct sluice_verdict).

    accepted   the report was verified and stored
    counted    it counts toward the gate of the rollout's current stage
               (False for a report of another stage: recorded only)
    code       0 when accepted, else the SLUICE_E* code of the rejection
    code_name  "EREPLAY", ... (None when accepted)
    reason     the rejection reason ("replay", "scope", "stale_time", ...;
               docs/gatekeeper.md), None when accepted
    gate       the gate's state after this report: pending, passing,
               breaching, failing, inconclusive, promoted, rolled_back
               (this report's evaluation decided), or none (no gate for
               the stage); None when gatekeeper did not say
    stage      the stage gatekeeper evaluated, None when unknown
    window_reports  reports in the gate's window
    sequence   the sequence number the report was sent with
    """

    accepted: bool
    counted: bool
    code: int
    code_name: Optional[str]
    reason: Optional[str]
    gate: Optional[str]
    stage: Optional[str]
    window_reports: int
    sequence: int

    @property
    def decided(self):
        """True when this report's evaluation rolled back or promoted."""
        return self.gate in ("rolled_back", "promoted")


def _verdict(v):
    code = int(v.code)
    return Verdict(
        accepted=bool(v.accepted),
        counted=bool(v.counted),
        code=code,
        code_name=errname(code) if code != 0 else None,
        reason=_text(v.reason) or None,
        gate=_text(v.gate) or None,
        stage=_text(v.stage) or None,
        window_reports=int(v.window_reports),
        sequence=int(v.sequence),
    )


# ------------------------------------------------------------- conversions


def _cstr(s, what):
    """str (UTF-8) or bytes, without NUL, as bytes for a C string."""
    if isinstance(s, str):
        b = s.encode("utf-8")
    elif isinstance(s, (bytes, bytearray, memoryview)):
        b = bytes(s)
    else:
        raise TypeError("sluice: %s must be str or bytes, not %s"
                        % (what, type(s).__name__))
    if b"\0" in b:
        raise ValueError("sluice: %s contains a NUL byte (C strings cannot;"
                         " sluice.bucket() accepts it)" % what)
    return b


def _unit(u):
    return None if u is None else _cstr(u, "unit")


def _path(p, what):
    if p is None:
        return None
    b = os.fsencode(p)
    if b"\0" in b:
        raise ValueError("sluice: %s contains a NUL byte" % what)
    return b


def _ms(v, what, limit=_UINT32_MAX):
    """A duration as milliseconds: seconds (int or float), a timedelta, or
    a string in the rollout file's syntax ("90s", "5m", "1h30m"), parsed
    by libsluice."""
    if isinstance(v, bool):
        raise TypeError("sluice: %s must be seconds, a timedelta or a "
                        "duration string, not a bool" % what)
    if isinstance(v, datetime.timedelta):
        secs = v.total_seconds()
    elif isinstance(v, (int, float)):
        secs = v
    elif isinstance(v, (str, bytes)):
        if _native.duration_parse is None:
            raise TypeError("sluice: this libsluice has no duration parser;"
                            " give %s in seconds" % what)
        out = ctypes.c_uint64()
        rc = _native.duration_parse(_cstr(v, what), ctypes.byref(out))
        if rc != 0:
            raise InvalidArgumentError(rc, "%s %r is not a duration (like "
                                       "90s, 5m, 1h30m)" % (what, v))
        secs = out.value
    else:
        raise TypeError("sluice: %s must be seconds, a timedelta or a "
                        "duration string, not %s" % (what, type(v).__name__))
    if secs != secs or secs < 0:
        raise ValueError("sluice: %s must be >= 0, not %r" % (what, v))
    ms = int(round(secs * 1000))
    if ms > limit:
        raise ValueError("sluice: %s %r is too long" % (what, v))
    return ms


def _endpoints(eps):
    if eps is None:
        return None
    if isinstance(eps, (str, bytes)):
        return _cstr(eps, "endpoints")
    return b",".join(_cstr(e, "endpoint") for e in eps)


def bucket(rollout, unit):
    """The bucket of unit within rollout, in [0, BUCKETS): libsluice's
    sluice_bucket(), the one bucketing implementation. A unit is on at p
    basis points when its bucket < p. unit is str (UTF-8) or bytes and may
    contain NUL bytes."""
    r = _cstr(rollout, "rollout")
    if isinstance(unit, str):
        u = unit.encode("utf-8")
    elif isinstance(unit, (bytes, bytearray, memoryview)):
        u = bytes(unit)
    else:
        raise TypeError("sluice: unit must be str or bytes, not %s"
                        % type(unit).__name__)
    return _lib.sluice_bucket(r, u, len(u))


# ------------------------------------------------------------- evaluation


class _Evaluator:
    """The evaluation methods shared by Client and View; subclasses set
    the C functions and _h (the handle, None once closed)."""

    __slots__ = ()
    _kind = "handle"

    def _closed(self):
        return ClosedError(_ECLOSED, "sluice %s is closed" % self._kind)

    def bool(self, flag, unit: Unit = None, default=False):
        """The value of a bool or percentage flag for unit; default when
        the flag is unknown or of another kind."""
        h = self._h
        if h is None:
            raise self._closed()
        return self._f_bool(h, _cstr(flag, "flag"), _unit(unit),
                            bool(default))

    def int(self, flag, unit: Unit = None, default=0):
        """The value of an int flag; default when unknown or not an int."""
        h = self._h
        if h is None:
            raise self._closed()
        default = int(default)
        if not _INT64_MIN <= default <= _INT64_MAX:
            raise OverflowError("sluice: default does not fit in int64")
        return self._f_int(h, _cstr(flag, "flag"), _unit(unit), default)

    def string(self, flag, unit: Unit = None, default=""):
        """The value of a string flag; default when unknown or not a
        string."""
        h = self._h
        if h is None:
            raise self._closed()
        buf = ctypes.create_string_buffer(MAX_STRING + 1)
        rc = self._f_string(h, _cstr(flag, "flag"), _unit(unit),
                            _cstr(default, "default"), buf, len(buf))
        if rc != 0:
            raise error(rc, "string(%r)" % (flag,))
        return _text(buf.value)

    def stage(self, rollout):
        """The rollout's effective stage (after the staleness policy), as
        Stage(name, index). Raises NotFoundError for an unknown rollout or
        when there is no state yet."""
        h = self._h
        if h is None:
            raise self._closed()
        buf = ctypes.create_string_buffer(MAX_NAME)
        idx = ctypes.c_uint32()
        rc = self._f_stage(h, _cstr(rollout, "rollout"), buf, len(buf),
                           ctypes.byref(idx))
        if rc != 0:
            raise error(rc, "stage(%r)" % (rollout,))
        return Stage(_text(buf.value), idx.value)

    def detail(self, flag, unit: Unit = None):
        """Evaluates flag for unit and says why, as a Detail."""
        h = self._h
        if h is None:
            raise self._closed()
        d = _native.Detail()
        rc = self._f_detail(h, _cstr(flag, "flag"), _unit(unit),
                            ctypes.byref(d))
        if rc != 0:
            raise error(rc, "detail(%r)" % (flag,))
        return _detail(d)


# Change callbacks run on libsluice's updater thread. A client must not be
# closed from there (close joins that thread), so __del__ on that thread
# hands the close to a short-lived thread instead.
_cb_state = threading.local()


def _trampoline(fn):
    def call(_arg, revision, rollout):
        _cb_state.active = True
        try:
            fn(int(revision), None if rollout is None else _text(rollout))
        except BaseException:  # never unwind into C
            _log.exception("sluice: exception in on_change callback")
        finally:
            _cb_state.active = False
    return _native.CHANGE_CB(call)


def _in_callback():
    return getattr(_cb_state, "active", False)


_live_clients = weakref.WeakSet()


@atexit.register
def _close_all():
    # Join every updater thread before the interpreter finalises, so that
    # no change callback runs into a half-torn-down Python.
    for c in list(_live_clients):
        try:
            c.close()
        except Exception:
            pass


class Client(_Evaluator):
    """A libsluice client: the whole flag state in memory, kept current
    from flagd by a background thread; every evaluation is local.

    endpoints   flagd API URLs, a list or one comma-separated string,
                tried in order with failover. None or [] opens an offline
                client that serves the cache file only.
    cache_file  path of the cache file (loaded at open, written after
                every applied revision), or None.
    max_stale   staleness limit for rollouts whose spec says max_stale 0:
                seconds, a timedelta or "5m"; 0 = never stale. Default 5m.
    key_file    secret key file (flagctl keygen) that signs the client's
                acknowledgements; None: acks are sent unsigned.
    connect_timeout  how long the constructor waits for a first snapshot
                (seconds; default 2; 0 = do not wait).
    request_timeout, heartbeat (seconds), heartbeat_misses, backoff
                ((min, max) seconds), ack_interval (seconds; 0 = never
                acknowledge): as sluice_client_opts.
    on_change   callable(revision, rollout) run on the updater thread
                after each applied revision; rollout is None after a full
                snapshot. Keep it short; it must not close the client.

    The constructor succeeds without a server: check .revision (0 = no
    state; evaluations then return the caller's defaults).
    Any number of threads may evaluate at once; close() must not race with
    evaluations on the same client.
    """

    __slots__ = ("_h", "_cb", "_lock", "_endpoints", "_gk", "__weakref__")
    _kind = "client"
    _f_bool = staticmethod(_lib.sluice_bool)
    _f_int = staticmethod(_lib.sluice_int)
    _f_string = staticmethod(_lib.sluice_string)
    _f_stage = staticmethod(_lib.sluice_stage)
    _f_detail = staticmethod(_lib.sluice_eval_detail)

    def __init__(self, endpoints=None, *, cache_file=None, max_stale=None,
                 key_file=None, connect_timeout=None, request_timeout=None,
                 heartbeat=None, heartbeat_misses=None, backoff=None,
                 ack_interval=None, gatekeeper=None, on_change=None):
        self._h = None
        self._cb = None
        self._gk = gatekeeper is not None
        self._lock = threading.Lock()
        eps = _endpoints(endpoints)
        self._endpoints = "" if eps is None else eps.decode()
        o = _native.ClientOpts()
        _lib.sluice_client_opts_init(ctypes.byref(o))
        o.key_file = _path(key_file, "key_file")
        o.cache_file = _path(cache_file, "cache_file")
        # The gatekeeper URL is copied by sluice_client_open.
        if gatekeeper is not None:
            o.gatekeeper = str(gatekeeper).encode()
        if max_stale is not None:
            o.max_stale_ms = _ms(max_stale, "max_stale", (1 << 64) - 1)
        if connect_timeout is not None:
            o.connect_timeout_ms = _ms(connect_timeout, "connect_timeout")
        if request_timeout is not None:
            o.request_timeout_ms = _ms(request_timeout, "request_timeout")
        if heartbeat is not None:
            o.heartbeat_ms = _ms(heartbeat, "heartbeat")
        if heartbeat_misses is not None:
            n = int(heartbeat_misses)
            if not 0 <= n <= _UINT32_MAX:
                raise ValueError("sluice: heartbeat_misses out of range")
            o.heartbeat_misses = n
        if backoff is not None:
            lo, hi = backoff
            o.backoff_min_ms = _ms(lo, "backoff min")
            o.backoff_max_ms = _ms(hi, "backoff max")
        if ack_interval is not None:
            o.ack_interval_ms = _ms(ack_interval, "ack_interval")
        if on_change is not None:
            if not callable(on_change):
                raise TypeError("sluice: on_change must be callable")
            self._cb = _trampoline(on_change)
            o.change_cb = self._cb
        h = ctypes.c_void_p()
        rc = _lib.sluice_client_open(ctypes.byref(h), eps, ctypes.byref(o))
        if rc != 0:
            raise error(rc, "sluice_client_open(%r)" % self._endpoints)
        self._h = h.value
        _live_clients.add(self)

    @property
    def revision(self):
        """The revision being evaluated (live or from the cache); 0 before
        any."""
        h = self._h
        if h is None:
            raise self._closed()
        return _lib.sluice_client_revision(h)

    @property
    def closed(self):
        return self._h is None

    @property
    def id(self):
        """The client's id in its acknowledgements (as `flagctl clients`
        lists it); None with a libsluice that has no sluice_client_id."""
        h = self._h
        if h is None:
            raise self._closed()
        if _native.client_id is None:
            return None
        return _native.client_id(h).decode()

    def wait_revision(self, revision, timeout=5.0):
        """Blocks until the client evaluates at revision >= revision, for
        at most timeout seconds; returns the client's revision. Raises
        TimedOutError. Waits in short slices, so Ctrl-C is honoured."""
        h = self._h
        if h is None:
            raise self._closed()
        rev = int(revision)
        if not 0 <= rev < (1 << 64):
            raise ValueError("sluice: revision out of range")
        deadline = time.monotonic() + _ms(timeout, "timeout") / 1000.0
        while True:
            left = deadline - time.monotonic()
            step = int(max(0.0, min(left, 0.25)) * 1000)
            rc = _lib.sluice_wait_revision(h, rev, step)
            if rc == 0:
                return _lib.sluice_client_revision(h)
            if rc != _ETIMEDOUT or left <= 0.25:
                raise error(rc, "wait_revision(%d) after %ss, at revision %d"
                            % (rev, timeout, _lib.sluice_client_revision(h)))

    def report(self, rollout, *, job, metrics, stage=None, run_id=None,
               sequence=None, units=(), time=None):
        """Signs a batch's metric report with the client's key_file and
        sends it to gatekeeper (sluice_report_send); returns its Verdict.

        rollout   the rollout the batch ran under
        job       the job's name (replay protection is per key and job)
        metrics   mapping of metric name -> finite number
        stage     the stage the batch ran at; None = the stage this
                  client evaluates the rollout at now
        run_id    the run's id (str), or None
        sequence  strictly increasing per (key, job); None = libsluice
                  picks one (wall-clock microseconds, kept increasing)
        units     partitions or tables the batch covered (str each)
        time      when the batch ran: seconds since the epoch (int or
                  float) or an aware datetime; None = now

        A rejected report is a Verdict with accepted False and its reason,
        not an exception. Raises InvalidArgumentError (no gatekeeper or
        key_file configured, no stage known for the rollout),
        UnavailableError / TimedOutError (gatekeeper not reached),
        TooBigError, SluiceError (EPROTO: a reply it cannot read), and
        ValueError / TypeError for arguments refused before calling C.
        Blocks up to request_timeout; calls on one client are serialised.
        """
        h = self._h
        if h is None:
            raise self._closed()
        if _native.report_send is None:
            raise TypeError("sluice: this libsluice has no "
                            "sluice_report_send; rebuild it")
        if not self._gk:
            raise InvalidArgumentError(
                _code_of("EINVAL"), "report() needs a client opened with "
                "gatekeeper= (and key_file=)")
        r = _native.Report()
        keep = []  # every buffer C borrows, alive for the call
        r.rollout = _cstr(rollout, "rollout")
        r.job = _cstr(job, "job")
        if not r.job:
            raise ValueError("sluice: job must not be empty")
        r.stage = None if stage is None else _cstr(stage, "stage")
        r.run_id = None if run_id is None else _cstr(run_id, "run_id")
        if sequence is not None:
            if isinstance(sequence, bool) or not isinstance(sequence, int):
                raise TypeError("sluice: sequence must be an int")
            if not 0 < sequence < (1 << 64):
                raise ValueError("sluice: sequence must be in [1, 2**64)")
            r.sequence = sequence
        if time is not None:
            if isinstance(time, datetime.datetime):
                if time.tzinfo is None:
                    raise ValueError("sluice: time must be an aware "
                                     "datetime (with tzinfo)")
                secs = time.timestamp()
            elif isinstance(time, (int, float)) and \
                    not isinstance(time, bool):
                secs = time
            else:
                raise TypeError("sluice: time must be seconds since the "
                                "epoch or a datetime")
            if not math.isfinite(secs) or secs <= 0:
                raise ValueError("sluice: time out of range: %r" % (time,))
            r.time_ms = int(round(secs * 1000))
        if isinstance(units, (str, bytes)):
            units = [units]
        ulist = [_cstr(u, "unit") for u in units]
        if ulist:
            arr = (ctypes.c_char_p * len(ulist))(*ulist)
            keep.append(arr)
            r.units = ctypes.cast(arr, ctypes.POINTER(ctypes.c_char_p))
            r.n_units = len(ulist)
        if not isinstance(metrics, Mapping):
            raise TypeError("sluice: metrics must be a mapping of name -> "
                            "number")
        items = []
        for name, value in metrics.items():
            b = _cstr(name, "metric name")
            if not b:
                raise ValueError("sluice: a metric name is empty")
            if isinstance(value, bool) or \
                    not isinstance(value, (int, float)):
                raise TypeError("sluice: metric %r must be a number, not "
                                "%s" % (name, type(value).__name__))
            value = float(value)
            if not math.isfinite(value):
                raise ValueError("sluice: metric %r is not finite: %r"
                                 % (name, value))
            items.append((b, value))
        if items:
            arr = (_native.Metric * len(items))(*items)
            keep.append(arr)
            r.metrics = arr
            r.n_metrics = len(items)
        v = _native.Verdict()
        rc = _native.report_send(h, ctypes.byref(r), ctypes.byref(v))
        if rc != 0:
            raise error(rc, "report(%r) to gatekeeper" % (rollout,))
        del keep
        return _verdict(v)

    def view(self):
        """Pins the current snapshot for a whole run: a View (a context
        manager). Its answers never change while it is open."""
        return View(self)

    def close(self):
        """Stops the updater thread and frees the client (blocks up to
        about request_timeout). Idempotent. Open views stay usable for
        evaluation; their rolled_back() then returns False."""
        if _in_callback():
            raise RuntimeError("sluice: a client cannot be closed from its "
                               "own on_change callback")
        with self._lock:
            h, self._h = self._h, None
        if h is not None:
            _lib.sluice_client_close(h)
        self._cb = None  # the updater is joined: nothing calls it now
        _live_clients.discard(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        h = getattr(self, "_h", None)
        if h is None:
            return
        try:
            if _in_callback():
                # On the updater thread (the last reference was dropped in
                # a callback): closing here would join this very thread.
                cb = self._cb
                self._h = None
                threading.Thread(target=_close_later, args=(h, cb),
                                 daemon=True).start()
            else:
                self._h = None
                _lib.sluice_client_close(h)
        except Exception:  # interpreter shutdown: best effort
            pass

    def __repr__(self):
        if self._h is None:
            return "<sluice.Client %r closed>" % self._endpoints
        return "<sluice.Client %r revision %d>" % (
            self._endpoints, _lib.sluice_client_revision(self._h))


def _close_later(h, cb):
    _lib.sluice_client_close(h)
    del cb  # kept alive until the updater thread has stopped


class View(_Evaluator):
    """A pinned snapshot (sluice_view): evaluations through it never change
    while it is open, whatever the client applies. Use it for one ETL run
    and check rolled_back() between batches. Keeps its client alive."""

    __slots__ = ("_h", "_client", "_lock")
    _kind = "view"
    _f_bool = staticmethod(_lib.sluice_view_bool)
    _f_int = staticmethod(_lib.sluice_view_int)
    _f_string = staticmethod(_lib.sluice_view_string)
    _f_stage = staticmethod(_lib.sluice_view_stage)
    _f_detail = staticmethod(_lib.sluice_view_eval_detail)

    def __init__(self, client):
        self._h = None
        self._lock = threading.Lock()
        if not isinstance(client, Client):
            raise TypeError("sluice: View needs a sluice.Client")
        ch = client._h
        if ch is None:
            raise client._closed()
        h = ctypes.c_void_p()
        rc = _lib.sluice_view_open(ch, ctypes.byref(h))
        if rc != 0:
            raise error(rc, "sluice_view_open")
        self._h = h.value
        self._client = client

    @property
    def revision(self):
        """The revision the view pinned (0: no state at pin time)."""
        h = self._h
        if h is None:
            raise self._closed()
        return _lib.sluice_view_revision(h)

    def rolled_back(self):
        """Whether any rollout this view has evaluated was rolled back in
        the client's current snapshot since the pin (also a rollback then
        a re-promotion). False once the client is closed."""
        h = self._h
        if h is None:
            raise self._closed()
        return bool(_lib.sluice_view_rolled_back(h))

    @property
    def closed(self):
        return self._h is None

    def close(self):
        """Releases the view and its snapshot. Idempotent."""
        with self._lock:
            h, self._h = self._h, None
        if h is not None:
            _lib.sluice_view_close(h)
        self._client = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        h = getattr(self, "_h", None)
        if h is None:
            return
        self._h = None
        try:
            _lib.sluice_view_close(h)
        except Exception:  # interpreter shutdown: best effort
            pass

    def __repr__(self):
        if self._h is None:
            return "<sluice.View closed>"
        return "<sluice.View revision %d>" % _lib.sluice_view_revision(
            self._h)
