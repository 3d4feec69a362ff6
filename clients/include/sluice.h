/* SPDX-License-Identifier: MIT */
/**
 * sluice.h — the public API of libsluice, the sluice client library.
 *
 * ETL jobs, flagctl and gatekeeper use this header to evaluate flags and to
 * talk to flagd. It is the only public header. It also holds the error
 * codes of the whole project: they are part of the wire contract (an
 * error reply carries one of these numbers), and this header has no link
 * dependency, so every layer includes it for them.
 */
#ifndef SLUICE_H
#define SLUICE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define SLUICE_API __attribute__((visibility("default")))
#define SLUICE_NODISCARD __attribute__((warn_unused_result))
#else
#define SLUICE_API
#define SLUICE_NODISCARD
#endif

/**
 * Every error code, with its stable number and message. Numbers are never
 * reused or renumbered: they travel on the wire in Error.code.
 */
#define SLUICE_ERRORS(X)                                            \
	X(OK, 0, "success")                                         \
	X(EINVAL, 1, "invalid argument")                            \
	X(ENOMEM, 2, "out of memory")                               \
	X(ENOENT, 3, "not found")                                   \
	X(EEXIST, 4, "already exists")                              \
	X(EPROTO, 5, "malformed message")                           \
	X(ETOOBIG, 6, "message too large")                          \
	X(EBADSIG, 7, "bad signature")                              \
	X(EUNKNOWNKEY, 8, "unknown key")                            \
	X(EPERM, 9, "not permitted")                                \
	X(EREPLAY, 10, "replayed command")                          \
	X(EEXPIRED, 11, "timestamp outside the allowed clock skew") \
	X(ECONFLICT, 12, "conflicting change")                      \
	X(EPREREQ, 13, "prerequisite not met")                      \
	X(ESTATE, 14, "not allowed in the rollout's current state") \
	X(ETIMEDOUT, 15, "timed out")                               \
	X(EUNAVAIL, 16, "no server reachable")                      \
	X(EIO, 17, "I/O error")                                     \
	X(ECORRUPT, 18, "data corrupted")                           \
	X(EVERSION, 19, "unsupported protocol version")             \
	X(ENOTLEADER, 20, "not the leader")                         \
	X(EFULL, 21, "storage full")                                \
	X(EINTERNAL, 22, "internal error")                          \
	X(ECLOSED, 23, "closed")

enum sluice_error {
#define SLUICE_ERR_ENUM_(name, num, msg) SLUICE_##name = num,
	SLUICE_ERRORS(SLUICE_ERR_ENUM_)
#undef SLUICE_ERR_ENUM_
};

/**
 * The message of an error code.
 * @param code  a SLUICE_E* code (any int is accepted).
 * @return a static string; "unknown error" for unknown codes. Never NULL.
 */
SLUICE_API const char *sluice_strerror(int code);

/** The name of an error code, e.g. "EPERM"; "EUNKNOWN" if unknown. */
SLUICE_API const char *sluice_errname(int code);

/** Buckets per rollout: a unit's bucket is in [0, SLUICE_BUCKETS). */
#define SLUICE_BUCKETS 10000u
SLUICE_API unsigned sluice_buckets(void);

/**
 * The bucket of a unit within a rollout: SipHash-2-4 of the unit keyed by
 * the first 16 bytes of BLAKE2b-256(rollout), as a little-endian uint64,
 * mod SLUICE_BUCKETS. The same in every client and language; a unit is
 * on at p basis points when its bucket < p, so a unit on at 10 % stays on
 * at 50 %.
 * @param rollout  rollout name (NUL-terminated).
 * @param unit     unit bytes; may contain NUL.
 * @param unit_len length of unit.
 * @return the bucket. Pure; thread-safe; never blocks.
 */
SLUICE_API unsigned sluice_bucket(
    const char *rollout, const void *unit, size_t unit_len);

/** Ed25519 sizes, readable by bindings. */
#define SLUICE_PUBLICKEY_BYTES 32u
#define SLUICE_SECRETKEY_BYTES 64u
#define SLUICE_SIG_BYTES 64u
SLUICE_API size_t sluice_publickey_bytes(void);
SLUICE_API size_t sluice_secretkey_bytes(void);
SLUICE_API size_t sluice_sig_bytes(void);

/* ==================================================================
 * Client: in-process flag evaluation with live updates
 * ==================================================================
 *
 * A sluice_client holds the whole flag state of a flagd cluster in memory
 * as an immutable snapshot and keeps it current from flagd's change
 * stream, on a background thread of its own (the updater) and on nng's
 * callback threads (changes are applied where they arrive). Evaluations
 * read the snapshot: no network, no lock, no allocation. See
 * docs/client.md for the update protocol, the cache file, staleness and
 * the reclamation scheme.
 *
 * Units are NUL-terminated strings (a table, a partition, a run id); NULL
 * means "". Units containing NUL bytes can be bucketed with
 * sluice_bucket() but not evaluated through the client.
 *
 * Thread-safety, for every function below unless it says otherwise: any
 * number of threads may evaluate on one client (and on its views) at the
 * same time as the updater swaps snapshots. sluice_client_close() and
 * sluice_view_close() must not race with other calls on the same handle.
 */
#include <stdbool.h>

typedef struct sluice_client sluice_client;
typedef struct sluice_view   sluice_view;

/** Longest rollout or stage name plus its NUL. */
#define SLUICE_MAX_NAME 64u
/** Longest string flag value, without its NUL. */
#define SLUICE_MAX_STRING 1024u
SLUICE_API size_t sluice_max_name(void);
SLUICE_API size_t sluice_max_string(void);

/**
 * A monotonic clock in milliseconds, injectable for tests. It decides
 * staleness only; the updater's own timers use the real clock.
 */
typedef uint64_t (*sluice_clock_fn)(void *arg);

/**
 * Called after each applied revision, in revision order, never twice at
 * once for one client: rollout is the rollout that changed (borrowed,
 * valid during the call), or NULL after a full snapshot (initial sync or
 * re-sync; not the cache load at open, which happens before
 * sluice_client_open() returns). It runs on a library thread: the
 * updater's after a full snapshot, one of nng's for a change from the
 * stream (shared by every client in the process). It may evaluate and
 * open views; it must not close the client, and it must return quickly
 * and never block on I/O, since no update is applied while it runs (on
 * nng's thread, other clients' updates may wait too).
 */
typedef void (*sluice_change_cb)(
    void *arg, uint64_t revision, const char *rollout);

/** Options of sluice_client_open(). Fill with sluice_client_opts_init(). */
typedef struct sluice_client_opts {
	/** Secret key file (flagctl keygen) that signs the client's
	 *  acknowledgements (and, later, metric reports). NULL: acks are
	 *  sent unsigned and flagd lists the client as unverified. */
	const char *key_file;
	/** Cache file path, or NULL for none. Written after every applied
	 *  revision (atomically); loaded at open when present. */
	const char *cache_file;
	/** Staleness limit for rollouts whose spec says max_stale 0.
	 *  Default 300000 (5 min); 0 = never stale. */
	uint64_t max_stale_ms;
	/** How long sluice_client_open() waits for the first snapshot
	 *  from a server. Default 2000; 0 = do not wait. */
	uint32_t connect_timeout_ms;
	/** Per request to flagd. Default 2000. */
	uint32_t request_timeout_ms;
	/** flagd's heartbeat interval. Default 1000. */
	uint32_t heartbeat_ms;
	/** Heartbeats missed before a re-sync. Default 3. */
	uint32_t heartbeat_misses;
	/** Re-connect backoff bounds, doubling from min to max with
	 *  jitter. Defaults 100 and 5000. */
	uint32_t backoff_min_ms;
	uint32_t backoff_max_ms;
	/** Optional change callback and its argument. */
	sluice_change_cb change_cb;
	void            *change_arg;
	/** Optional clock (tests); NULL = CLOCK_MONOTONIC_COARSE. */
	sluice_clock_fn clock;
	void           *clock_arg;
	/** How often the client tells flagd the revision it has applied
	 *  (ClientAck), besides at connect and after applied changes.
	 *  Default 5000; 0 = never acknowledge (the client then does not
	 *  appear in `flagctl clients`). flagd forgets a client after
	 *  its liveness window (default 15 s = 3 intervals). Added after
	 *  the fields above: bindings that mirror this struct must
	 *  include it. */
	uint32_t ack_interval_ms;
	/** gatekeeper's report API URL (tcp://host:7500) for
	 *  sluice_report(); NULL = reports disabled. Needs key_file. */
	const char *gatekeeper;
} sluice_client_opts;

/**
 * Fills o with the defaults listed in sluice_client_opts.
 * @param o OUT: the options. Never fails; thread-safe; never blocks.
 */
SLUICE_API void sluice_client_opts_init(sluice_client_opts *o);

/**
 * Opens a client: loads the cache file if one is configured and valid,
 * starts the updater thread, and waits up to opts->connect_timeout_ms
 * for a first snapshot from a server. The client keeps trying to reach
 * a server in the background whatever the outcome, so success does not
 * mean connected: sluice_client_revision() is 0 while the client has
 * neither server nor cache, and evaluations then return the caller's
 * default (reason SLUICE_REASON_DEFAULT_UNKNOWN_FLAG).
 * @param cp        OUT: the client, written on success only; close it
 *                  with sluice_client_close().
 * @param endpoints comma-separated flagd API URLs ("tcp://h1:7400,
 *                  tcp://h2:7400"), tried in order with failover. NULL
 *                  or "" opens an offline client that serves the cache
 *                  file only and starts no thread.
 * @param opts      options (copied; strings are copied too), or NULL
 *                  for the defaults.
 * @return SLUICE_OK; SLUICE_EINVAL (bad option or endpoint list, or
 *         a malformed key file); SLUICE_ENOENT / SLUICE_EIO (key file
 *         missing / unreadable); SLUICE_ENOMEM; SLUICE_EINTERNAL
 *         (thread or libsodium initialisation failed).
 * Blocks up to connect_timeout_ms. Thread-safe.
 */
SLUICE_API int sluice_client_open(sluice_client **cp, const char *endpoints,
    const sluice_client_opts *opts) SLUICE_NODISCARD;

/**
 * Stops the updater thread and frees the client. Views still open keep
 * their snapshot alive and stay usable for evaluation, but
 * sluice_view_rolled_back() on them then returns false; close them too.
 * @param c the client; NULL is a no-op.
 * Blocks until the updater thread has stopped: at most about
 * request_timeout_ms. Must not be called from the change callback, nor
 * while another thread evaluates on c.
 */
SLUICE_API void sluice_client_close(sluice_client *c);

/**
 * The value of a bool or percentage flag for unit.
 * @param c    the client.
 * @param flag flag key.
 * @param unit the unit (NUL-terminated; NULL = ""); used by percentage
 *             flags only.
 * @param def  returned when the flag is unknown or not a bool or a
 *             percentage.
 * @return the value. Never blocks; no allocation; no lock.
 */
SLUICE_API bool sluice_bool(
    sluice_client *c, const char *flag, const char *unit, bool def);

/**
 * The value of an int flag; def when the flag is unknown or not an int.
 * unit is accepted for symmetry and ignored. Never blocks.
 */
SLUICE_API int64_t sluice_int(
    sluice_client *c, const char *flag, const char *unit, int64_t def);

/**
 * Copies the value of a string flag (or def, when the flag is unknown or
 * not a string) into buf, NUL-terminated.
 * @param buf OUT: at least len bytes; len >= SLUICE_MAX_STRING + 1
 *            always suffices.
 * @param def default (NULL = "").
 * @return SLUICE_OK; SLUICE_ETOOBIG when the value did not fit (buf then
 *         holds a truncated prefix); SLUICE_EINVAL (buf NULL or len 0).
 * Never blocks; no allocation.
 */
SLUICE_API int sluice_string(sluice_client *c, const char *flag,
    const char *unit, const char *def, char *buf, size_t len);

/**
 * The stage a rollout is evaluated at (after the staleness policy: a
 * stale rollout with on_stale baseline reports stage 0).
 * @param buf    OUT: the stage name, NUL-terminated (may be NULL when
 *               len is 0); SLUICE_MAX_NAME always suffices.
 * @param indexp OUT: the stage index; may be NULL.
 * @return SLUICE_OK; SLUICE_ENOENT (unknown rollout, or no state yet);
 *         SLUICE_ETOOBIG (name truncated; *indexp still written);
 *         SLUICE_EINVAL.
 * Never blocks.
 */
SLUICE_API int sluice_stage(sluice_client *c, const char *rollout, char *buf,
    size_t len, uint32_t *indexp);

/**
 * Why an evaluation gave its value. Numbers are stable. When several
 * apply, the first in this order wins: DEFAULT_UNKNOWN_FLAG,
 * STALE_BASELINE, STALE_KEEP, CACHE, PERCENT_IN/PERCENT_OUT, STAGE; the
 * other fields of sluice_detail still say the rest (from_cache, bucket).
 */
typedef enum sluice_reason {
	SLUICE_REASON_STAGE       = 0, /* the current stage's value */
	SLUICE_REASON_PERCENT_IN  = 1, /* unit's bucket < percent */
	SLUICE_REASON_PERCENT_OUT = 2, /* unit's bucket >= percent */
	SLUICE_REASON_DEFAULT_UNKNOWN_FLAG =
	    3,                            /* no such flag (or no state) */
	SLUICE_REASON_STALE_BASELINE = 4, /* stale: stage 0's value */
	SLUICE_REASON_CACHE          = 5, /* from the cache file */
	SLUICE_REASON_STALE_KEEP     = 6, /* stale: last known value */
} sluice_reason;

/** "STAGE", "PERCENT_IN", ...; "UNKNOWN" otherwise. Never NULL. */
SLUICE_API const char *sluice_reason_name(int reason);

/** The kind of a flag's value. */
typedef enum sluice_kind {
	SLUICE_KIND_NONE    = 0,
	SLUICE_KIND_BOOL    = 1,
	SLUICE_KIND_INT     = 2,
	SLUICE_KIND_STRING  = 3,
	SLUICE_KIND_PERCENT = 4,
} sluice_kind;

/** One evaluation, explained. Everything is copied: no lifetime rules. */
typedef struct sluice_detail {
	sluice_reason reason;
	sluice_kind   kind;
	bool          on;         /* bool value, or percentage in/out */
	bool          stale;      /* past max_stale without contact */
	bool          from_cache; /* snapshot loaded from the cache file */
	int64_t       int_value;
	uint32_t      percent_bp; /* percentage, basis points */
	uint32_t      bucket;     /* the unit's bucket (percentage only) */
	uint32_t      stage;      /* effective stage index */
	uint64_t      revision;   /* of the snapshot evaluated; 0 = none */
	char          rollout[SLUICE_MAX_NAME];
	char          stage_name[SLUICE_MAX_NAME];
	char          string_value[SLUICE_MAX_STRING + 1];
} sluice_detail;

/**
 * Evaluates flag for unit and says why.
 * @param dp OUT: filled in full on SLUICE_OK, also for an unknown flag
 *           (reason DEFAULT_UNKNOWN_FLAG, kind NONE).
 * @return SLUICE_OK; SLUICE_EINVAL (c, flag or dp NULL).
 * Never blocks; no allocation.
 */
SLUICE_API int sluice_eval_detail(
    sluice_client *c, const char *flag, const char *unit, sluice_detail *dp);

/**
 * The revision of the snapshot being evaluated (live or from the cache);
 * 0 before any. Never blocks.
 */
SLUICE_API uint64_t sluice_client_revision(sluice_client *c);

/**
 * The client's id in its acknowledgements: 16 hex characters, random
 * per sluice_client_open(), as `flagctl clients` lists it.
 * @return a NUL-terminated string owned by c, valid until
 *         sluice_client_close(c); "" for NULL. Never blocks.
 */
SLUICE_API const char *sluice_client_id(const sluice_client *c);

/**
 * Blocks until the client evaluates at revision >= rev. It may return
 * just before the change callback for that revision has run.
 * @param timeout_ms how long to wait at most.
 * @return SLUICE_OK; SLUICE_ETIMEDOUT; SLUICE_EINVAL.
 * Blocks up to timeout_ms; thread-safe.
 */
SLUICE_API int sluice_wait_revision(
    sluice_client *c, uint64_t rev, uint32_t timeout_ms);

/**
 * Pins the current snapshot for a whole run: evaluations through the
 * view never change, whatever the updater applies, and the staleness
 * policy is decided once, at pin time. The view keeps the snapshot alive
 * until sluice_view_close().
 * @param vp OUT: the view, written on success only.
 * @return SLUICE_OK; SLUICE_ENOMEM; SLUICE_EINVAL.
 * Never blocks. A view may be used by several threads at once.
 */
SLUICE_API int sluice_view_open(
    sluice_client *c, sluice_view **vp) SLUICE_NODISCARD;

/** As sluice_bool() etc., on the pinned snapshot. */
SLUICE_API bool sluice_view_bool(
    sluice_view *v, const char *flag, const char *unit, bool def);
SLUICE_API int64_t sluice_view_int(
    sluice_view *v, const char *flag, const char *unit, int64_t def);
SLUICE_API int sluice_view_string(sluice_view *v, const char *flag,
    const char *unit, const char *def, char *buf, size_t len);
SLUICE_API int sluice_view_stage(sluice_view *v, const char *rollout,
    char *buf, size_t len, uint32_t *indexp);
SLUICE_API int sluice_view_eval_detail(
    sluice_view *v, const char *flag, const char *unit, sluice_detail *dp);
/** The revision the view pinned (0: no state at pin time). */
SLUICE_API uint64_t sluice_view_revision(const sluice_view *v);

/**
 * Whether any rollout this view has evaluated (through any sluice_view_*
 * call) has since been rolled back in the client's current snapshot: its
 * stage is now lower than when pinned, or it went through a lower stage
 * after the pin (a rollback then a re-promotion also counts). A job
 * checks this between batches and stops cleanly when true.
 * @return true or false; false for a view whose client is closed.
 * Never blocks; no allocation.
 */
SLUICE_API bool sluice_view_rolled_back(sluice_view *v);

/** Releases the view and its snapshot. NULL is a no-op. */
SLUICE_API void sluice_view_close(sluice_view *v);

/* ==================================================================
 * Metric reports to gatekeeper
 * ==================================================================
 *
 * An ETL job reports each batch's metrics; gatekeeper verifies the
 * report (signed with the client's key_file), counts it toward the
 * gate of the rollout's current stage, and may roll the rollout back or
 * promote it. See docs/gatekeeper.md.
 */

/** One metric of a report: name (NUL-terminated) and a finite value. */
typedef struct sluice_metric {
	const char *name;
	double      value;
} sluice_metric;

/** A batch's report. Strings are borrowed for the call. */
typedef struct sluice_report {
	const char *rollout;
	/** Stage the batch ran at; NULL = the stage the client evaluates
	 *  the rollout at now. */
	const char *stage;
	const char *job;    /** the job's name; replay is per job */
	const char *run_id; /** NULL = "" */
	/** Strictly increasing per (key, job); 0 = the client picks one
	 *  (microseconds of the wall clock, kept increasing). */
	uint64_t             sequence;
	uint64_t             time_ms; /** 0 = now */
	const char *const   *units;   /** partitions or tables covered */
	size_t               n_units;
	const sluice_metric *metrics;
	size_t               n_metrics;
} sluice_report;

/** gatekeeper's answer. */
typedef struct sluice_verdict {
	bool accepted;
	bool counted;    /* for the rollout's current stage */
	int  code;       /* SLUICE_E* of a rejection; 0 = accepted */
	char reason[32]; /* rejection reason ("replay", ...); "" */
	char gate[16];   /* gate state: pending passing breaching
	                    failing inconclusive promoted rolled_back
	                    none; "" when unknown */
	char     stage[SLUICE_MAX_NAME]; /* the stage gatekeeper sees */
	uint32_t window_reports;
	uint64_t sequence; /* the sequence sent */
} sluice_verdict;

/**
 * Signs report with the client's key and sends it to gatekeeper.
 * @param c  a client opened with opts.gatekeeper and opts.key_file.
 * @param vp OUT: the verdict, written whenever gatekeeper answered (a
 *           rejection is SLUICE_OK with vp->accepted false).
 * @return SLUICE_OK; SLUICE_EINVAL (no gatekeeper configured, missing
 *         rollout or job, no stage known); SLUICE_ETOOBIG (report above
 *         64 KiB); SLUICE_EUNAVAIL / SLUICE_ETIMEDOUT (gatekeeper not
 *         reached); SLUICE_EPROTO; SLUICE_ENOMEM.
 * Blocks up to request_timeout_ms. Thread-safe (calls are serialised).
 */
SLUICE_API int sluice_report_send(sluice_client *c,
    const sluice_report *report, sluice_verdict *vp) SLUICE_NODISCARD;

/** Same as sluice_report_send (the name the issue and docs use). */
#define sluice_report(c, r, vp) sluice_report_send((c), (r), (vp))

#ifdef __cplusplus
}
#endif

#endif /* SLUICE_H */
