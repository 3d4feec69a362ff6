// SPDX-License-Identifier: MIT
//
// client.c — libsluice's in-process client (sluice.h, "Client"): local
// evaluation on an immutable snapshot, an updater thread that keeps the
// snapshot current from flagd, pinned views, and the cache file.
//
// Reclamation: hazard pointers. The current snapshot is an atomic
// pointer (c->cur). Each evaluating thread owns one hazard slot (a
// cache-line-sized record in a process-wide, append-only list, claimed
// on the thread's first evaluation and released by a pthread key
// destructor when the thread exits). An evaluation
//
//     s = load(cur); do { hp = s; } while (s != (s = load(cur)));
//     ... read s ...;  hp = NULL
//
// publishes the snapshot it reads in its own slot, so readers never
// write a shared cache line and never take a lock. The updater, the only
// writer, swaps cur with an atomic exchange, puts the old snapshot on its
// retired list, and drops the list's reference to a retired snapshot
// only once no slot holds it (a scan of the slot list, O(threads)). All
// four operations are sequentially consistent, which is what makes the
// classic argument hold: a reader whose re-check saw s published its
// slot before the exchange, so the updater's later scan sees it. Views
// take a counted reference (the reference count is touched at open and
// close only, never per evaluation).

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <sodium.h>

#include "bucket.h"
#include "cache.h"
#include "report.h"
#include "codec.h"
#include "envelope.h"
#include "rpc.h"
#include "snapshot.h"
#include "sock.h"

#define DEF_MAX_STALE_MS (5u * 60u * 1000u)
#define DEF_CONNECT_TIMEOUT_MS 2000u
#define DEF_REQUEST_TIMEOUT_MS 2000u
#define DEF_HEARTBEAT_MS 1000u
#define DEF_HEARTBEAT_MISSES 3u
#define DEF_BACKOFF_MIN_MS 100u
#define DEF_BACKOFF_MAX_MS 5000u
#define DEF_ACK_INTERVAL_MS 5000u
#define CLIENT_ID_HEX 16u
#define HOST_MAX 256u
#define MAX_URL 256
// A stream is closed once its pipe has ended on a refused message, or
// after this long without one (sock.c): a heartbeat_ms, at most this.
#define SUB_CLOSE_GRACE_MS 250u

// ------------------------------------------------------------ hazards

typedef struct hazard {
	_Alignas(64) _Atomic(const sl_snapshot *) ptr;
	atomic_int               active;
	_Atomic(struct hazard *) next;
} hazard;

// The fallback slot serves threads whose own slot could not be
// allocated; it is shared, so it is used under a mutex. It heads the
// list from the start and is never claimed.
static hazard                hz_fallback     = { .active = 1 };
static pthread_mutex_t       hz_fallback_mtx = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(hazard *)     hz_head         = &hz_fallback;
static pthread_once_t        hz_once         = PTHREAD_ONCE_INIT;
static pthread_key_t         hz_key;
static bool                  hz_key_ok;
static _Thread_local hazard *hz_mine;

static void
hz_release(void *p)
{
	hazard *h = p;

	atomic_store(&h->ptr, NULL);
	atomic_store(&h->active, 0);
	hz_mine = NULL;
}

static void
hz_key_init(void)
{
	hz_key_ok = pthread_key_create(&hz_key, hz_release) == 0;
}

// First evaluation on this thread: reuse a slot an exited thread left,
// or add one. Out of memory, the shared fallback slot is returned with
// its mutex held; hz_clear() unlocks it.
static hazard *
hz_claim(void)
{
	hazard *h;

	(void) pthread_once(&hz_once, hz_key_init);
	for (h = atomic_load(&hz_head); h != NULL; h = atomic_load(&h->next)) {
		int expect = 0;
		if (atomic_compare_exchange_strong(&h->active, &expect, 1)) {
			break;
		}
	}
	if (h == NULL && (h = aligned_alloc(64, sizeof(*h))) != NULL) {
		hazard *head = atomic_load(&hz_head);
		atomic_init(&h->ptr, NULL);
		atomic_init(&h->active, 1);
		do {
			atomic_store(&h->next, head);
		} while (!atomic_compare_exchange_weak(&hz_head, &head, h));
	}
	if (h == NULL || !hz_key_ok || pthread_setspecific(hz_key, h) != 0) {
		if (h != NULL) {
			atomic_store(&h->active, 0);
		}
		pthread_mutex_lock(&hz_fallback_mtx);
		return (&hz_fallback);
	}
	hz_mine = h;
	return (h);
}

static inline hazard *
hz_get(void)
{
	hazard *h = hz_mine;

	if (__builtin_expect(h != NULL, 1)) {
		return (h);
	}
	return (hz_claim());
}

static inline const sl_snapshot *
hz_protect(hazard *h, _Atomic(sl_snapshot *) *cur)
{
	sl_snapshot *s = atomic_load(cur);
	sl_snapshot *t;

	for (;;) {
		atomic_store(&h->ptr, s);
		if ((t = atomic_load(cur)) == s) {
			return (s);
		}
		s = t;
	}
}

static inline void
hz_clear(hazard *h)
{
	atomic_store_explicit(&h->ptr, NULL, memory_order_release);
	if (__builtin_expect(h == &hz_fallback, 0)) {
		pthread_mutex_unlock(&hz_fallback_mtx);
	}
}

static bool
hz_holds(const sl_snapshot *s)
{
	for (hazard *h = atomic_load(&hz_head); h != NULL;
	     h         = atomic_load(&h->next)) {
		if (atomic_load(&h->ptr) == s) {
			return (true);
		}
	}
	return (false);
}

// ------------------------------------------------------------ client

struct sluice_client {
	_Atomic(sl_snapshot *) cur;
	// Client-clock time of the last contact with flagd; may be negative
	// (a cache older than the clock's epoch).
	_Atomic int64_t      contact_ms;
	atomic_uint_fast64_t rev;
	atomic_uint          refs; // 1 + open views
	atomic_bool          closed;
	uint64_t             max_stale_ms;
	sluice_clock_fn      clock;
	void                *clock_arg;

	// Settings.
	char           **eps;
	size_t           n_eps;
	char            *cache_file;
	uint32_t         request_timeout_ms;
	uint32_t         heartbeat_ms;
	uint32_t         heartbeat_misses;
	uint32_t         backoff_min_ms;
	uint32_t         backoff_max_ms;
	sluice_change_cb change_cb;
	void            *change_arg;

	// Acknowledgements (ClientAck): who this client is, and the key
	// that signs them (NULL: unsigned).
	char       client_id[CLIENT_ID_HEX + 1];
	char       host[HOST_MAX];
	uint32_t   pid;
	uint64_t   started_ms;
	uint32_t   ack_interval_ms; // 0 = no acks
	sl_secret *key;

	// Updater thread and its wake-ups. cv wakes sluice_wait_revision()
	// and sluice_client_open() (every applied revision broadcasts it);
	// ucv wakes the updater alone (stop, or the stream needs it).
	pthread_t       thread;
	bool            thread_started;
	pthread_mutex_t mtx;
	pthread_cond_t  cv;
	pthread_cond_t  ucv;
	bool            stopping;   // under mtx
	uint64_t        live_syncs; // under mtx
	bool            kicked;     // under mtx: the stream wants the updater
	atomic_bool     stop;

	// Updater-only state.
	sl_rpc **rpcs; // one per endpoint, opened lazily
	size_t   ep;   // endpoint in use or to try next
	sl_sock  sub;  // .open: following sub_url (changed while halted)
	char     sub_url[MAX_URL];
	bool     live; // applied revision came from a server
	bool     cache_failing;
	bool     outage_logged;
	int      ack_failing; // last ack error logged (0: none)

	// The change stream is received and applied on nng's callback
	// thread (rx_cb), not handed to the updater: one wake-up less per
	// change and client. smtx serialises those callbacks with the
	// updater's bookkeeping; the fields below are under it.
	pthread_mutex_t smtx;
	nng_aio        *rx;        // the stream's receive, re-armed by rx_cb
	nng_aio        *settle;    // timer: wakes the updater when an ack is due
	bool            settling;  // settle is armed
	bool            rx_on;     // receives are to be re-armed
	bool            rx_failed; // the stream ended: move to the next node
	bool            synced;    // following the stream
	uint64_t        seen_rev;  // highest revision announced by the stream
	uint64_t        last_event_ms; // real monotonic time of the last event
	bool            stale_logged;  // told the log the node is leaderless
	uint64_t        contact_wall_ms;
	bool            cache_dirty;
	bool            ack_due;     // a change was applied since the last ack
	uint64_t        applied_ms;  // real monotonic time of the last change
	uint64_t        last_ack_ms; // real monotonic time of the last ack
	sl_snapshot   **retired;
	size_t          n_retired;
	size_t          cap_retired;

	// Signed metric reports to gatekeeper (report.c); NULL = none.
	sl_reporter *reporter;
};

struct sluice_view {
	sluice_client *c;
	sl_snapshot   *s;
	uint8_t       *stale; // per rollout index, decided at pin time
	atomic_uchar  *seen;  // per rollout index
};

size_t
sluice_max_name(void)
{
	return (SLUICE_MAX_NAME);
}

size_t
sluice_max_string(void)
{
	return (SLUICE_MAX_STRING);
}

const char *
sluice_reason_name(int reason)
{
	switch (reason) {
	case SLUICE_REASON_STAGE:
		return ("STAGE");
	case SLUICE_REASON_PERCENT_IN:
		return ("PERCENT_IN");
	case SLUICE_REASON_PERCENT_OUT:
		return ("PERCENT_OUT");
	case SLUICE_REASON_DEFAULT_UNKNOWN_FLAG:
		return ("DEFAULT_UNKNOWN_FLAG");
	case SLUICE_REASON_STALE_BASELINE:
		return ("STALE_BASELINE");
	case SLUICE_REASON_CACHE:
		return ("CACHE");
	case SLUICE_REASON_STALE_KEEP:
		return ("STALE_KEEP");
	default:
		return ("UNKNOWN");
	}
}

void
sluice_client_opts_init(sluice_client_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->max_stale_ms       = DEF_MAX_STALE_MS;
	o->connect_timeout_ms = DEF_CONNECT_TIMEOUT_MS;
	o->request_timeout_ms = DEF_REQUEST_TIMEOUT_MS;
	o->heartbeat_ms       = DEF_HEARTBEAT_MS;
	o->heartbeat_misses   = DEF_HEARTBEAT_MISSES;
	o->backoff_min_ms     = DEF_BACKOFF_MIN_MS;
	o->backoff_max_ms     = DEF_BACKOFF_MAX_MS;
	o->ack_interval_ms    = DEF_ACK_INTERVAL_MS;
}

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (
	    (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u);
}

// The staleness clock. The coarse clock is a vDSO read of a value the
// kernel updates every tick (1-4 ms): plenty for limits of seconds to
// minutes, and several times cheaper than CLOCK_MONOTONIC.
static inline int64_t
client_now(const sluice_client *c)
{
	struct timespec ts;

	if (c->clock != NULL) {
		return ((int64_t) c->clock(c->clock_arg));
	}
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return ((int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

static inline bool
rollout_stale(const sluice_client *c, const sl_snap_rollout *ro)
{
	uint64_t lim =
	    ro->max_stale_ms != 0 ? ro->max_stale_ms : c->max_stale_ms;
	int64_t contact;

	if (lim == 0) {
		return (false);
	}
	contact = atomic_load_explicit(&c->contact_ms, memory_order_relaxed);
	return (client_now(c) - contact > (int64_t) lim);
}

// Under smtx (contact_wall_ms; contact_ms is read lock-free).
static void
mark_contact(sluice_client *c)
{
	atomic_store_explicit(
	    &c->contact_ms, client_now(c), memory_order_relaxed);
	c->contact_wall_ms = sl_now_ms();
}

// ------------------------------------------------------------ evaluation

// One flag resolved against one snapshot and staleness decision.
typedef struct resolved {
	const sl_snap_flag          *f;
	const Sluice__V1__FlagValue *v;
	uint32_t                     stage;
	sluice_reason                reason;
	bool                         stale;
} resolved;

static inline void
resolve(const sl_snapshot *s, const sl_snap_flag *f, bool stale, resolved *r)
{
	r->f     = f;
	r->stale = stale;
	if (stale && !f->ro->keep) {
		r->v      = f->base;
		r->stage  = 0;
		r->reason = SLUICE_REASON_STALE_BASELINE;
		return;
	}
	r->v      = f->cur;
	r->stage  = f->ro->stage;
	r->reason = stale   ? SLUICE_REASON_STALE_KEEP
	    : s->from_cache ? SLUICE_REASON_CACHE
	                    : SLUICE_REASON_STAGE;
}

static inline unsigned
unit_bucket(const resolved *r, const char *unit)
{
	if (unit == NULL) {
		unit = "";
	}
	return (sl_bucket_keyed(r->f->ro->bucket_key, unit, strlen(unit)));
}

static inline bool
value_bool(const resolved *r, const char *unit, bool def)
{
	const Sluice__V1__FlagValue *v = r->v;

	if (v == NULL) {
		return (def);
	}
	switch (v->kind_case) {
	case SLUICE__V1__FLAG_VALUE__KIND_BOOL_VALUE:
		return (v->bool_value != 0);
	case SLUICE__V1__FLAG_VALUE__KIND_PERCENT_BP:
		if (v->percent_bp == 0) {
			return (false);
		}
		if (v->percent_bp >= SLUICE_BUCKETS) {
			return (true);
		}
		return (unit_bucket(r, unit) < v->percent_bp);
	case SLUICE__V1__FLAG_VALUE__KIND_INT_VALUE:
	case SLUICE__V1__FLAG_VALUE__KIND_STRING_VALUE:
	case SLUICE__V1__FLAG_VALUE__KIND__NOT_SET:
	case _SLUICE__V1__FLAG_VALUE__KIND__CASE_IS_INT_SIZE:
		break;
	}
	return (def);
}

static inline int64_t
value_int(const resolved *r, int64_t def)
{
	if (r->v != NULL &&
	    r->v->kind_case == SLUICE__V1__FLAG_VALUE__KIND_INT_VALUE) {
		return (r->v->int_value);
	}
	return (def);
}

// snprintf-like copy: SLUICE_ETOOBIG when truncated.
static int
copy_str(char *buf, size_t len, const char *s)
{
	size_t n = strlen(s);

	if (n < len) {
		memcpy(buf, s, n + 1);
		return (SLUICE_OK);
	}
	if (len > 0) {
		memcpy(buf, s, len - 1);
		buf[len - 1] = '\0';
	}
	return (SLUICE_ETOOBIG);
}

static inline const char *
value_string(const resolved *r, const char *def)
{
	if (r->v != NULL &&
	    r->v->kind_case == SLUICE__V1__FLAG_VALUE__KIND_STRING_VALUE &&
	    r->v->string_value != NULL) {
		return (r->v->string_value);
	}
	return (def);
}

static const char *
stage_name(const sl_snap_rollout *ro, uint32_t stage)
{
	const Sluice__V1__RolloutSpec *sp = ro->msg->spec;

	if (stage < sp->n_stages && sp->stages[stage] != NULL) {
		return (sp->stages[stage]);
	}
	return ("");
}

static void
fill_detail(const sl_snapshot *s, const resolved *r, const char *unit,
    sluice_detail *d)
{
	const Sluice__V1__FlagValue *v;

	memset(d, 0, offsetof(sluice_detail, string_value));
	d->string_value[0] = '\0';
	d->revision        = s->revision;
	d->from_cache      = s->from_cache;
	d->reason          = SLUICE_REASON_DEFAULT_UNKNOWN_FLAG;
	d->kind            = SLUICE_KIND_NONE;
	if (r == NULL || r->v == NULL) {
		return;
	}
	v        = r->v;
	d->stale = r->stale;
	d->stage = r->stage;
	(void) copy_str(d->rollout, sizeof(d->rollout), r->f->ro->name);
	(void) copy_str(d->stage_name, sizeof(d->stage_name),
	    stage_name(r->f->ro, r->stage));
	d->reason = r->reason;
	switch (v->kind_case) {
	case SLUICE__V1__FLAG_VALUE__KIND_BOOL_VALUE:
		d->kind = SLUICE_KIND_BOOL;
		d->on   = v->bool_value != 0;
		break;
	case SLUICE__V1__FLAG_VALUE__KIND_INT_VALUE:
		d->kind      = SLUICE_KIND_INT;
		d->int_value = v->int_value;
		d->on        = v->int_value != 0;
		break;
	case SLUICE__V1__FLAG_VALUE__KIND_STRING_VALUE:
		d->kind = SLUICE_KIND_STRING;
		(void) copy_str(d->string_value, sizeof(d->string_value),
		    v->string_value != NULL ? v->string_value : "");
		d->on = d->string_value[0] != '\0';
		break;
	case SLUICE__V1__FLAG_VALUE__KIND_PERCENT_BP:
		d->kind       = SLUICE_KIND_PERCENT;
		d->percent_bp = v->percent_bp;
		d->bucket     = unit_bucket(r, unit);
		d->on         = d->bucket < v->percent_bp;
		if (r->reason == SLUICE_REASON_STAGE) {
			d->reason = d->on ? SLUICE_REASON_PERCENT_IN
			                  : SLUICE_REASON_PERCENT_OUT;
		}
		break;
	case SLUICE__V1__FLAG_VALUE__KIND__NOT_SET:
	case _SLUICE__V1__FLAG_VALUE__KIND__CASE_IS_INT_SIZE:
		d->reason = SLUICE_REASON_DEFAULT_UNKNOWN_FLAG;
		break;
	}
}

bool
sluice_bool(sluice_client *c, const char *flag, const char *unit, bool def)
{
	hazard             *h;
	const sl_snapshot  *s;
	const sl_snap_flag *f;
	resolved            r;

	if (c == NULL || flag == NULL) {
		return (def);
	}
	h = hz_get();
	s = hz_protect(h, &c->cur);
	if ((f = sl_snapshot_flag(s, flag)) != NULL) {
		resolve(s, f, rollout_stale(c, f->ro), &r);
		def = value_bool(&r, unit, def);
	}
	hz_clear(h);
	return (def);
}

int64_t
sluice_int(sluice_client *c, const char *flag, const char *unit, int64_t def)
{
	hazard             *h;
	const sl_snapshot  *s;
	const sl_snap_flag *f;
	resolved            r;

	(void) unit;
	if (c == NULL || flag == NULL) {
		return (def);
	}
	h = hz_get();
	s = hz_protect(h, &c->cur);
	if ((f = sl_snapshot_flag(s, flag)) != NULL) {
		resolve(s, f, rollout_stale(c, f->ro), &r);
		def = value_int(&r, def);
	}
	hz_clear(h);
	return (def);
}

int
sluice_string(sluice_client *c, const char *flag, const char *unit,
    const char *def, char *buf, size_t len)
{
	hazard             *h;
	const sl_snapshot  *s;
	const sl_snap_flag *f;
	resolved            r;
	int                 rv;

	(void) unit;
	if (buf == NULL || len == 0) {
		return (SLUICE_EINVAL);
	}
	if (def == NULL) {
		def = "";
	}
	if (c == NULL || flag == NULL) {
		return (copy_str(buf, len, def));
	}
	h = hz_get();
	s = hz_protect(h, &c->cur);
	if ((f = sl_snapshot_flag(s, flag)) != NULL) {
		resolve(s, f, rollout_stale(c, f->ro), &r);
		def = value_string(&r, def);
	}
	// The copy happens before the hazard is cleared: def may point
	// into the snapshot.
	rv = copy_str(buf, len, def);
	hz_clear(h);
	return (rv);
}

int
sluice_eval_detail(
    sluice_client *c, const char *flag, const char *unit, sluice_detail *dp)
{
	hazard             *h;
	const sl_snapshot  *s;
	const sl_snap_flag *f;
	resolved            r;

	if (c == NULL || flag == NULL || dp == NULL) {
		return (SLUICE_EINVAL);
	}
	h = hz_get();
	s = hz_protect(h, &c->cur);
	if ((f = sl_snapshot_flag(s, flag)) != NULL) {
		resolve(s, f, rollout_stale(c, f->ro), &r);
	}
	fill_detail(s, f != NULL ? &r : NULL, unit, dp);
	hz_clear(h);
	return (SLUICE_OK);
}

static int
stage_of(const sl_snap_rollout *ro, bool stale, char *buf, size_t len,
    uint32_t *indexp)
{
	uint32_t stage = stale && !ro->keep ? 0 : ro->stage;
	int      rv    = SLUICE_OK;

	if (len > 0) {
		rv = copy_str(buf, len, stage_name(ro, stage));
	}
	if (indexp != NULL) {
		*indexp = stage;
	}
	return (rv);
}

int
sluice_stage(sluice_client *c, const char *rollout, char *buf, size_t len,
    uint32_t *indexp)
{
	hazard                *h;
	const sl_snapshot     *s;
	const sl_snap_rollout *ro;
	int                    rv = SLUICE_ENOENT;

	if (c == NULL || rollout == NULL || (buf == NULL && len > 0)) {
		return (SLUICE_EINVAL);
	}
	h = hz_get();
	s = hz_protect(h, &c->cur);
	if ((ro = sl_snapshot_rollout(s, rollout, NULL)) != NULL) {
		rv = stage_of(ro, rollout_stale(c, ro), buf, len, indexp);
	}
	hz_clear(h);
	return (rv);
}

uint64_t
sluice_client_revision(sluice_client *c)
{
	if (c == NULL) {
		return (0);
	}
	return (atomic_load(&c->rev));
}

const char *
sluice_client_id(const sluice_client *c)
{
	return (c != NULL ? c->client_id : "");
}

// Deadline for pthread_cond_timedwait on the monotonic clock.
static void
deadline_in(struct timespec *ts, uint64_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += (time_t) (ms / 1000u);
	ts->tv_nsec += (long) (ms % 1000u) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

int
sluice_wait_revision(sluice_client *c, uint64_t rev, uint32_t timeout_ms)
{
	struct timespec ts;
	int             rv = SLUICE_OK;

	if (c == NULL) {
		return (SLUICE_EINVAL);
	}
	deadline_in(&ts, timeout_ms);
	pthread_mutex_lock(&c->mtx);
	while (atomic_load(&c->rev) < rev) {
		if (c->stopping) {
			rv = SLUICE_ECLOSED;
			break;
		}
		if (pthread_cond_timedwait(&c->cv, &c->mtx, &ts) != 0 &&
		    atomic_load(&c->rev) < rev) {
			rv = SLUICE_ETIMEDOUT;
			break;
		}
	}
	pthread_mutex_unlock(&c->mtx);
	return (rv);
}

// ------------------------------------------------------------ views

int
sluice_view_open(sluice_client *c, sluice_view **vp)
{
	sluice_view       *v;
	hazard            *h;
	const sl_snapshot *s;
	size_t             n;

	if (c == NULL || vp == NULL) {
		return (SLUICE_EINVAL);
	}
	if ((v = calloc(1, sizeof(*v))) == NULL) {
		return (SLUICE_ENOMEM);
	}
	h = hz_get();
	s = hz_protect(h, &c->cur);
	// The hazard keeps s alive until it holds a reference of its own.
	sl_snapshot_ref((sl_snapshot *) (uintptr_t) s);
	hz_clear(h);
	v->s = (sl_snapshot *) (uintptr_t) s;
	n    = s->n_rollouts;
	if ((v->stale = calloc(n + 1, 1)) == NULL ||
	    (v->seen = calloc(n + 1, sizeof(*v->seen))) == NULL) {
		free(v->stale);
		sl_snapshot_unref(v->s);
		free(v);
		return (SLUICE_ENOMEM);
	}
	for (size_t i = 0; i < n; i++) {
		v->stale[i] = rollout_stale(c, s->rollouts[i]) ? 1 : 0;
	}
	atomic_fetch_add(&c->refs, 1);
	v->c = c;
	*vp  = v;
	return (SLUICE_OK);
}

static inline void
view_saw(sluice_view *v, uint32_t ri)
{
	// A relaxed load first: threads sharing a view do not keep writing
	// the same byte once it is set.
	if (atomic_load_explicit(&v->seen[ri], memory_order_relaxed) == 0) {
		atomic_store_explicit(&v->seen[ri], 1, memory_order_relaxed);
	}
}

static inline const sl_snap_flag *
view_resolve(sluice_view *v, const char *flag, resolved *r)
{
	const sl_snap_flag *f;

	if (v == NULL || flag == NULL ||
	    (f = sl_snapshot_flag(v->s, flag)) == NULL) {
		return (NULL);
	}
	view_saw(v, f->ri);
	resolve(v->s, f, v->stale[f->ri] != 0, r);
	return (f);
}

bool
sluice_view_bool(sluice_view *v, const char *flag, const char *unit, bool def)
{
	resolved r;

	if (view_resolve(v, flag, &r) == NULL) {
		return (def);
	}
	return (value_bool(&r, unit, def));
}

int64_t
sluice_view_int(
    sluice_view *v, const char *flag, const char *unit, int64_t def)
{
	resolved r;

	(void) unit;
	if (view_resolve(v, flag, &r) == NULL) {
		return (def);
	}
	return (value_int(&r, def));
}

int
sluice_view_string(sluice_view *v, const char *flag, const char *unit,
    const char *def, char *buf, size_t len)
{
	resolved r;

	(void) unit;
	if (buf == NULL || len == 0) {
		return (SLUICE_EINVAL);
	}
	if (def == NULL) {
		def = "";
	}
	if (view_resolve(v, flag, &r) != NULL) {
		def = value_string(&r, def);
	}
	return (copy_str(buf, len, def));
}

int
sluice_view_stage(sluice_view *v, const char *rollout, char *buf, size_t len,
    uint32_t *indexp)
{
	const sl_snap_rollout *ro;
	size_t                 i;

	if (v == NULL || rollout == NULL || (buf == NULL && len > 0)) {
		return (SLUICE_EINVAL);
	}
	if ((ro = sl_snapshot_rollout(v->s, rollout, &i)) == NULL) {
		return (SLUICE_ENOENT);
	}
	view_saw(v, (uint32_t) i);
	return (stage_of(ro, v->stale[i] != 0, buf, len, indexp));
}

int
sluice_view_eval_detail(
    sluice_view *v, const char *flag, const char *unit, sluice_detail *dp)
{
	resolved r;

	if (v == NULL || flag == NULL || dp == NULL) {
		return (SLUICE_EINVAL);
	}
	fill_detail(
	    v->s, view_resolve(v, flag, &r) != NULL ? &r : NULL, unit, dp);
	return (SLUICE_OK);
}

uint64_t
sluice_view_revision(const sluice_view *v)
{
	return (v != NULL ? v->s->revision : 0);
}

bool
sluice_view_rolled_back(sluice_view *v)
{
	hazard            *h;
	const sl_snapshot *cur;
	bool               back = false;

	if (v == NULL || atomic_load(&v->c->closed)) {
		return (false);
	}
	h   = hz_get();
	cur = hz_protect(h, &v->c->cur);
	for (size_t i = 0; i < v->s->n_rollouts && !back; i++) {
		const sl_snap_rollout *was = v->s->rollouts[i];
		const sl_snap_rollout *now;

		if (atomic_load_explicit(&v->seen[i], memory_order_relaxed) ==
		    0) {
			continue;
		}
		if ((now = sl_snapshot_rollout(cur, was->name, NULL)) ==
		    NULL) {
			continue;
		}
		back = now->stage < was->stage ||
		    now->rollback_rev > v->s->revision;
	}
	hz_clear(h);
	return (back);
}

static void client_unref(sluice_client *c);

void
sluice_view_close(sluice_view *v)
{
	if (v == NULL) {
		return;
	}
	sl_snapshot_unref(v->s);
	free(v->stale);
	free(v->seen);
	client_unref(v->c);
	free(v);
}

// ------------------------------------------------------------ swapping

// Drops the retired list's reference to every snapshot no reader holds.
static void
reclaim(sluice_client *c)
{
	size_t j = 0;

	for (size_t i = 0; i < c->n_retired; i++) {
		if (hz_holds(c->retired[i])) {
			c->retired[j++] = c->retired[i];
		} else {
			sl_snapshot_unref(c->retired[i]);
		}
	}
	c->n_retired = j;
}

static void
retire(sluice_client *c, sl_snapshot *old)
{
	if (c->n_retired == c->cap_retired) {
		size_t cap = c->cap_retired == 0 ? 8 : 2 * c->cap_retired;
		sl_snapshot **grown =
		    realloc(c->retired, cap * sizeof(*grown));
		if (grown == NULL) {
			// No room to defer: wait out the readers, whose
			// hazards last one evaluation each.
			while (hz_holds(old)) {
				sched_yield();
			}
			sl_snapshot_unref(old);
			return;
		}
		c->retired     = grown;
		c->cap_retired = cap;
	}
	c->retired[c->n_retired++] = old;
}

// Makes ns (its reference taken over) the current snapshot. Under smtx.
static void
install(sluice_client *c, sl_snapshot *ns)
{
	sl_snapshot *old = atomic_exchange(&c->cur, ns);

	retire(c, old);
	reclaim(c);
	pthread_mutex_lock(&c->mtx);
	atomic_store(&c->rev, ns->revision);
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mtx);
}

static void
client_unref(sluice_client *c)
{
	if (atomic_fetch_sub(&c->refs, 1) != 1) {
		return;
	}
	for (size_t i = 0; i < c->n_retired; i++) {
		sl_snapshot_unref(c->retired[i]);
	}
	free(c->retired);
	sl_snapshot_unref(atomic_load(&c->cur));
	nng_aio_free(c->settle); // before the mutexes its callback takes
	nng_aio_free(c->rx);
	sl_sock_fini(&c->sub);
	pthread_mutex_destroy(&c->mtx);
	pthread_mutex_destroy(&c->smtx);
	pthread_cond_destroy(&c->cv);
	pthread_cond_destroy(&c->ucv);
	free(c);
}

// ------------------------------------------------------------ cache

// Updater only (or after it stopped): takes its own reference, since
// the stream may install a newer snapshot while the file is written.
static void
write_cache(sluice_client *c)
{
	Sluice__V1__Snapshot m;
	sl_snapshot         *s;
	uint64_t             contact;
	int                  rv;

	pthread_mutex_lock(&c->smtx);
	c->cache_dirty = false;
	s              = atomic_load(&c->cur);
	contact        = c->contact_wall_ms;
	if (c->cache_file != NULL) {
		sl_snapshot_ref(s);
	}
	pthread_mutex_unlock(&c->smtx);
	if (c->cache_file == NULL) {
		return;
	}
	if ((rv = sl_snapshot_message(s, &m)) == SLUICE_OK) {
		rv = sl_cache_write(c->cache_file, &m, contact);
		free(m.rollouts);
	}
	sl_snapshot_unref(s);
	if (rv != SLUICE_OK && !c->cache_failing) {
		sl_log_warn("client-cache", "cannot write cache %s: %s",
		    c->cache_file, sluice_strerror(rv));
	} else if (rv == SLUICE_OK && c->cache_failing) {
		sl_log_notice(
		    "client-cache", "cache %s written again", c->cache_file);
	}
	c->cache_failing = rv != SLUICE_OK;
}

// Steals the rollouts of snap into a new snapshot (snap is left with
// none, to be freed by the caller).
static int
build_from(sluice_client *c, Sluice__V1__Snapshot *snap, bool from_cache,
    sl_snapshot **sp)
{
	sl_snapshot *s;
	int          rv;

	rv = sl_snapshot_build(&s, snap->revision, snap->rollouts,
	    snap->n_rollouts, atomic_load(&c->cur));
	// Built or not, the rollouts now belong to the snapshot code.
	snap->n_rollouts = 0;
	if (rv != SLUICE_OK) {
		return (rv);
	}
	s->from_cache = from_cache;
	*sp           = s;
	return (SLUICE_OK);
}

static void
load_cache(sluice_client *c)
{
	Sluice__V1__Snapshot *snap;
	sl_snapshot          *s;
	uint64_t              contact_wall;
	uint64_t              now_wall;
	int64_t               age;
	int                   rv;

	if ((rv = sl_cache_load(c->cache_file, &snap, &contact_wall)) !=
	    SLUICE_OK) {
		if (rv == SLUICE_ENOENT) {
			sl_log_info("client-cache", "no cache file %s yet",
			    c->cache_file);
		}
		return;
	}
	rv = build_from(c, snap, true, &s);
	sluice__v1__snapshot__free_unpacked(snap, NULL);
	if (rv != SLUICE_OK) {
		sl_log_warn("client-cache", "cannot use cache %s: %s",
		    c->cache_file, sluice_strerror(rv));
		return;
	}
	// The file's age counts against max_stale: a job started on an old
	// cache must not treat it as fresh.
	now_wall = sl_now_ms();
	age =
	    now_wall > contact_wall ? (int64_t) (now_wall - contact_wall) : 0;
	atomic_store(&c->contact_ms, client_now(c) - age);
	pthread_mutex_lock(&c->smtx);
	c->contact_wall_ms = contact_wall;
	install(c, s);
	pthread_mutex_unlock(&c->smtx);
	sl_log_notice("client-cache",
	    "loaded cache %s: revision %llu, %zu rollouts, %lld s old",
	    c->cache_file, (unsigned long long) s->revision, s->n_rollouts,
	    (long long) (age / 1000));
}

// ------------------------------------------------------------ updater

static bool
stopping(sluice_client *c)
{
	return (atomic_load(&c->stop));
}

static void
notify(sluice_client *c, uint64_t rev, const char *rollout)
{
	if (c->change_cb != NULL) {
		c->change_cb(c->change_arg, rev, rollout);
	}
}

static void
sub_close(sluice_client *c)
{
	uint32_t grace = c->heartbeat_ms < SUB_CLOSE_GRACE_MS
	    ? c->heartbeat_ms
	    : SUB_CLOSE_GRACE_MS;

	// Not a plain nng_close(): closing a busy stream can hang every
	// later close in the process on nng 1.5.2 (sock.c).
	sl_sock_close(&c->sub, grace);
	c->sub_url[0] = '\0';
}

static int
sub_open(sluice_client *c, const char *url)
{
	nng_socket s;
	int        nrv;

	// Receive timeouts are per receive (pump's reused aio).
	sub_close(c);
	if ((nrv = nng_sub0_open(&s)) != 0) {
		return (nrv == NNG_ENOMEM ? SLUICE_ENOMEM : SLUICE_EINTERNAL);
	}
	if ((nrv = nng_socket_set(s, NNG_OPT_SUB_SUBSCRIBE, "", 0)) != 0 ||
	    (nrv = nng_socket_set_size(
	         s, NNG_OPT_RECVMAXSZ, SL_MAX_EVENT_BYTES)) != 0 ||
	    (nrv = nng_socket_set_int(s, NNG_OPT_RECVBUF, SL_STREAM_QUEUE)) !=
	        0) {
		nng_close(s);
		return (SLUICE_EINTERNAL);
	}
	// A synchronous dial: the stream is connected before the snapshot
	// is read, so no change falls between the two unnoticed (a change
	// lost anyway shows as a gap or in the next heartbeat).
	if ((nrv = sl_sock_dial(&c->sub, s, url)) != 0) {
		sl_log_debug("client-sub", "%s: %s", url, nng_strerror(nrv));
		return (SLUICE_EUNAVAIL);
	}
	snprintf(c->sub_url, sizeof(c->sub_url), "%s", url);
	return (SLUICE_OK);
}

// Tells the node we follow which revision we have applied. Synchronous on
// the updater thread: one ack in flight at most, and evaluation never
// waits for it. A refused or lost ack is logged once per cause and
// otherwise ignored: the next one (at most ack_interval_ms later) makes
// up for it. The caller has taken the ack (ack_take) or is the last word.
static void
send_ack_as(sluice_client *c, bool leaving)
{
	Sluice__V1__Request   req;
	Sluice__V1__ClientAck ack;
	Sluice__V1__SignedAck sa;
	Sluice__V1__Reply    *rep = NULL;
	int                   rv;

	if (c->ack_interval_ms == 0 || c->rpcs[c->ep] == NULL) {
		return;
	}
	sluice__v1__client_ack__init(&ack);
	sluice__v1__signed_ack__init(&sa);
	ack.client_id        = c->client_id;
	ack.host             = c->host;
	ack.pid              = c->pid;
	ack.applied_revision = atomic_load(&c->rev);
	ack.started_ms       = c->started_ms;
	ack.time_ms          = sl_now_ms();
	ack.leaving          = leaving;
	if ((rv = sl_ack_seal(c->key, &ack, &sa)) == SLUICE_OK) {
		sluice__v1__request__init(&req);
		req.op_case = SLUICE__V1__REQUEST__OP_ACK;
		req.ack     = &sa;
		rv          = sl_rpc_call(c->rpcs[c->ep], &req, &rep);
		sl_signed_ack_clear(&sa);
	}
	if (rv != SLUICE_OK && rv != c->ack_failing) {
		sl_log_warn("client-ack",
		    "%s did not take the ack of revision %llu: %s",
		    c->eps[c->ep], (unsigned long long) ack.applied_revision,
		    rep != NULL ? sl_reply_errmsg(rep) : sluice_strerror(rv));
	} else if (rv == SLUICE_OK && c->ack_failing != 0) {
		sl_log_notice(
		    "client-ack", "%s takes acks again", c->eps[c->ep]);
	}
	c->ack_failing = rv;
	if (rep != NULL) {
		sluice__v1__reply__free_unpacked(rep, NULL);
	}
}

static void
send_ack(sluice_client *c)
{
	send_ack_as(c, false);
}

// An ack for applied changes once the stream has been quiet for
// ACK_SETTLE_MS (so a burst costs one, and the acks of a fleet of clients
// do not compete with the same change's fan-out to the others: an ack is
// bookkeeping for `flagctl wait`, the change itself is already applied),
// and one every ack interval whatever happens.
#define ACK_SETTLE_MS 20u

// Whether an ack is due now; if so, it is taken (the next one counts from
// now). force: due whatever the timers say. Under smtx.
static bool
ack_take(sluice_client *c, bool force)
{
	uint64_t now = mono_ms();

	if (c->ack_interval_ms == 0) {
		return (false);
	}
	if (force || (c->ack_due && now - c->applied_ms >= ACK_SETTLE_MS) ||
	    now - c->last_ack_ms >= c->ack_interval_ms) {
		c->ack_due     = false;
		c->last_ack_ms = now;
		return (true);
	}
	return (false);
}

// How long the updater may sleep before the pending ack is due (poll
// when none is). Under smtx.
static uint64_t
ack_wait(sluice_client *c, uint64_t poll)
{
	uint64_t since;

	if (!c->ack_due || c->ack_interval_ms == 0) {
		return (poll);
	}
	since = mono_ms() - c->applied_ms;
	if (since >= ACK_SETTLE_MS) {
		return (1);
	}
	return (ACK_SETTLE_MS - since < poll ? ACK_SETTLE_MS - since : poll);
}

// GetInfo, then the change stream, then GetSnapshot, on endpoint i. Runs
// while the stream is halted (no rx_cb can run).
static int
sync_from(sluice_client *c, size_t i, uint64_t min_rev)
{
	Sluice__V1__Request     req;
	Sluice__V1__GetInfo     gi;
	Sluice__V1__GetSnapshot gs;
	Sluice__V1__Reply      *rep = NULL;
	sl_snapshot            *s;
	char                    url[MAX_URL];
	bool                    ack;
	int                     rv;

	if (c->rpcs[i] == NULL &&
	    (rv = sl_rpc_open(&c->rpcs[i], c->eps[i],
	         c->request_timeout_ms)) != SLUICE_OK) {
		return (rv);
	}
	sluice__v1__request__init(&req);
	sluice__v1__get_info__init(&gi);
	req.op_case = SLUICE__V1__REQUEST__OP_INFO;
	req.info    = &gi;
	if ((rv = sl_rpc_call(c->rpcs[i], &req, &rep)) != SLUICE_OK) {
		goto done;
	}
	if (rep->result_case != SLUICE__V1__REPLY__RESULT_INFO ||
	    rep->info == NULL || rep->info->publish_url == NULL ||
	    rep->info->publish_url[0] == '\0' ||
	    strlen(rep->info->publish_url) >= sizeof(url)) {
		rv = SLUICE_EPROTO;
		goto done;
	}
	snprintf(url, sizeof(url), "%s", rep->info->publish_url);
	sluice__v1__reply__free_unpacked(rep, NULL);
	rep = NULL;
	if ((!c->sub.open || strcmp(url, c->sub_url) != 0) &&
	    (rv = sub_open(c, url)) != SLUICE_OK) {
		goto done;
	}

	sluice__v1__request__init(&req);
	sluice__v1__get_snapshot__init(&gs);
	req.op_case      = SLUICE__V1__REQUEST__OP_SNAPSHOT;
	req.snapshot     = &gs;
	req.min_revision = min_rev;
	if ((rv = sl_rpc_call(c->rpcs[i], &req, &rep)) != SLUICE_OK) {
		goto done;
	}
	if (rep->result_case != SLUICE__V1__REPLY__RESULT_SNAPSHOT ||
	    rep->snapshot == NULL) {
		rv = SLUICE_EPROTO;
		goto done;
	}
	if ((rv = build_from(c, rep->snapshot, false, &s)) != SLUICE_OK) {
		goto done;
	}
	if (c->live && s->revision < atomic_load(&c->rev)) {
		sl_log_notice("client-sync",
		    "%s is at revision %llu, behind the %llu applied here",
		    c->eps[i], (unsigned long long) s->revision,
		    (unsigned long long) atomic_load(&c->rev));
	}
	pthread_mutex_lock(&c->smtx);
	if (!rep->stale) {
		mark_contact(c);
	}
	install(c, s);
	c->synced        = true;
	c->rx_failed     = false;
	c->seen_rev      = s->revision;
	c->last_event_ms = mono_ms();
	ack              = ack_take(c, true);
	pthread_mutex_unlock(&c->smtx);
	c->live          = true;
	c->ep            = i;
	c->outage_logged = false;
	sl_log_info("client-sync",
	    "synced from %s at revision %llu (%zu "
	    "rollouts)",
	    c->eps[i], (unsigned long long) s->revision, s->n_rollouts);
	write_cache(c);
	pthread_mutex_lock(&c->mtx);
	c->live_syncs++;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mtx);
	notify(c, s->revision, NULL);
	if (ack) {
		send_ack(c);
	}
	rv = SLUICE_OK;
done:
	if (rep != NULL) {
		sluice__v1__reply__free_unpacked(rep, NULL);
	}
	if (rv != SLUICE_OK) {
		sl_log_debug(
		    "client-sync", "%s: %s", c->eps[i], sluice_strerror(rv));
	}
	return (rv);
}

// What a change callback is told once smtx is released.
typedef struct change_done {
	uint64_t rev;    // 0: nothing applied
	bool     settle; // arm the settle timer
	char     rollout[SLUICE_MAX_NAME];
} change_done;

// Stops following the stream (under smtx): the updater re-syncs, from
// the next endpoint if this one is gone (move_on).
static void
resync(sluice_client *c, bool move_on)
{
	c->synced = false;
	if (move_on) {
		c->rx_failed = true;
	}
}

// Under smtx.
static void
apply_change(sluice_client *c, Sluice__V1__Change *ch, change_done *out)
{
	const sl_snapshot *s       = atomic_load(&c->cur);
	uint64_t           applied = atomic_load(&c->rev);
	sl_snapshot       *ns;
	int                rv;

	if (ch->revision > c->seen_rev) {
		c->seen_rev = ch->revision;
	}
	if (ch->revision <= applied) {
		return; // already in the snapshot
	}
	if (ch->rollout == NULL && ch->audit == NULL) {
		// Every write carries its audit entry; a change without one
		// says the node's whole state was replaced (a snapshot was
		// installed), so what it changed is unknown: fetch it all.
		sl_log_notice("client-reset",
		    "revision %llu replaced the node's state; re-syncing",
		    (unsigned long long) ch->revision);
		resync(c, false);
		return;
	}
	if (ch->revision != applied + 1) {
		sl_log_notice("client-gap",
		    "revision gap: applied %llu, received %llu; re-syncing",
		    (unsigned long long) applied,
		    (unsigned long long) ch->revision);
		resync(c, false);
		return;
	}
	out->rollout[0] = '\0';
	if (ch->rollout != NULL) {
		Sluice__V1__Rollout *r = ch->rollout;
		ch->rollout            = NULL; // taken over by the snapshot
		if (r->spec != NULL && r->spec->name != NULL) {
			(void) copy_str(
			    out->rollout, sizeof(out->rollout), r->spec->name);
		}
		rv = sl_snapshot_replace(&ns, s, ch->revision, r);
	} else {
		// A write that is not about a rollout (a key) still moves
		// the revision.
		rv = sl_snapshot_replace(&ns, s, ch->revision, NULL);
	}
	if (rv != SLUICE_OK) {
		sl_log_warn("client-apply",
		    "cannot apply revision %llu: %s; re-syncing",
		    (unsigned long long) ch->revision, sluice_strerror(rv));
		resync(c, false);
		return;
	}
	mark_contact(c);
	install(c, ns);
	c->cache_dirty = true;
	c->ack_due     = true;
	c->applied_ms  = mono_ms();
	out->rev       = ch->revision;
	if (!c->settling && c->ack_interval_ms != 0) {
		c->settling = true;
		out->settle = true;
	}
}

// Under smtx.
static void
handle_event(sluice_client *c, const void *buf, size_t len, change_done *out)
{
	Sluice__V1__Event *ev;
	int                rv;

	if ((rv = sl_event_decode(buf, len, &ev)) != SLUICE_OK) {
		sl_log_warn("client-event",
		    "bad event from %s: %s; re-syncing", c->sub_url,
		    sluice_strerror(rv));
		resync(c, false);
		return;
	}
	switch (ev->kind_case) {
	case SLUICE__V1__EVENT__KIND_CHANGE:
		c->last_event_ms = mono_ms();
		if (ev->change != NULL) {
			apply_change(c, ev->change, out);
		}
		break;
	case SLUICE__V1__EVENT__KIND_HEARTBEAT:
		if (ev->heartbeat == NULL) {
			break;
		}
		// A node cut off from its leader still beats, at a revision
		// that may be behind: that is no contact, and after the
		// silence limit the client moves to another endpoint.
		if (ev->heartbeat->stale) {
			if (!c->stale_logged) {
				sl_log_notice("client-stale",
				    "%s has no leader; looking for another "
				    "endpoint",
				    c->sub_url);
				c->stale_logged = true;
			}
			break;
		}
		c->stale_logged  = false;
		c->last_event_ms = mono_ms();
		mark_contact(c);
		if (ev->heartbeat->revision > c->seen_rev) {
			c->seen_rev = ev->heartbeat->revision;
		}
		// Heartbeats follow the changes they count on the same
		// stream, so a heartbeat ahead of us means a lost change.
		if (ev->heartbeat->revision > atomic_load(&c->rev)) {
			sl_log_notice("client-gap",
			    "heartbeat at revision %llu, applied %llu; "
			    "re-syncing",
			    (unsigned long long) ev->heartbeat->revision,
			    (unsigned long long) atomic_load(&c->rev));
			resync(c, false);
		}
		break;
	case SLUICE__V1__EVENT__KIND__NOT_SET:
	case _SLUICE__V1__EVENT__KIND__CASE_IS_INT_SIZE:
		break;
	}
	sluice__v1__event__free_unpacked(ev, NULL);
}

// Wakes the updater (not the threads waiting for revisions).
static void
kick(sluice_client *c)
{
	pthread_mutex_lock(&c->mtx);
	c->kicked = true;
	pthread_cond_broadcast(&c->ucv);
	pthread_mutex_unlock(&c->mtx);
}

static bool
rx_is_on(sluice_client *c)
{
	bool on;

	pthread_mutex_lock(&c->smtx);
	on = c->rx_on;
	pthread_mutex_unlock(&c->smtx);
	return (on);
}

static void
rx_set(sluice_client *c, bool on)
{
	pthread_mutex_lock(&c->smtx);
	c->rx_on = on;
	pthread_mutex_unlock(&c->smtx);
}

// The settle timer went off (or was cancelled at close): the updater
// sends the ack if the stream stayed quiet, else waits out the rest.
static void
settle_cb(void *arg)
{
	sluice_client *c = arg;

	pthread_mutex_lock(&c->smtx);
	c->settling = false;
	pthread_mutex_unlock(&c->smtx);
	kick(c);
}

// Arms the next receive unless the stream is halted. A halt (rx_on
// cleared, then a cancel) may land between the check and the arming;
// the second check cancels such a receive itself, so the halt's wait
// ends at once instead of at the next message.
static void
rx_arm(sluice_client *c)
{
	if (!rx_is_on(c)) {
		return;
	}
	nng_recv_aio(c->sub.s, c->rx);
	if (!rx_is_on(c)) {
		nng_aio_cancel(c->rx);
	}
}

// One event of the stream, on nng's callback thread: decoded and applied
// here (the change callback runs here too), then the next receive.
static void
rx_cb(void *arg)
{
	sluice_client *c   = arg;
	int            nrv = nng_aio_result(c->rx);
	nng_msg       *msg = nrv == 0 ? nng_aio_get_msg(c->rx) : NULL;
	change_done    done;
	bool           halted;

	done.rev    = 0;
	done.settle = false;
	pthread_mutex_lock(&c->smtx);
	if (c->rx_on && msg != NULL) {
		handle_event(c, nng_msg_body(msg), nng_msg_len(msg), &done);
	} else if (c->rx_on && nrv != NNG_ECANCELED) {
		sl_log_notice("client-sub", "stream %s: %s; re-syncing",
		    c->sub_url, nng_strerror(nrv));
		resync(c, true);
	}
	if (!c->synced) {
		c->rx_on = false;
	}
	halted = !c->rx_on;
	pthread_mutex_unlock(&c->smtx);
	if (msg != NULL) {
		nng_msg_free(msg);
	}
	if (done.settle) {
		// The updater sleeps up to its poll interval and would ack
		// late, in the middle of whatever comes next: nng's timer
		// thread (one for the process) wakes it when the ack is due
		// instead of this callback waking it now.
		nng_sleep_aio(ACK_SETTLE_MS, c->settle);
	}
	if (done.rev != 0) {
		notify(c, done.rev,
		    done.rollout[0] != '\0' ? done.rollout : NULL);
	}
	if (halted) {
		kick(c);
		return;
	}
	rx_arm(c);
}

static void
stream_start(sluice_client *c)
{
	rx_set(c, true);
	rx_arm(c);
}

// Returns once no receive is pending and no rx_cb runs.
static void
stream_halt(sluice_client *c)
{
	rx_set(c, false);
	nng_aio_cancel(c->rx);
	nng_aio_wait(c->rx);
}

// Sleeps up to ms on the updater's own condition, unless the client is
// closed or the stream kicks it meanwhile.
static void
nap(sluice_client *c, uint64_t ms)
{
	struct timespec ts;

	deadline_in(&ts, ms);
	pthread_mutex_lock(&c->mtx);
	while (!c->stopping && !c->kicked &&
	    pthread_cond_timedwait(&c->ucv, &c->mtx, &ts) == 0) { }
	c->kicked = false;
	pthread_mutex_unlock(&c->mtx);
}

// Follows the stream until a re-sync is due or the client stops. The
// changes themselves are applied by rx_cb; the updater writes the cache
// after a burst, frees snapshots, sends acks and watches for silence.
static void
follow(sluice_client *c)
{
	uint64_t silence = (uint64_t) c->heartbeat_ms * c->heartbeat_misses;
	uint64_t poll    = c->heartbeat_ms / 2;
	bool     moved   = false;

	poll = poll < 10 ? 10 : poll > 100 ? 100 : poll;
	stream_start(c);
	while (!stopping(c)) {
		uint64_t wait;
		bool     synced, dirty, ack, quiet;

		pthread_mutex_lock(&c->smtx);
		reclaim(c);
		synced = c->synced;
		dirty  = c->cache_dirty;
		ack    = synced && ack_take(c, false);
		quiet  = mono_ms() - c->last_event_ms > silence;
		wait   = ack_wait(c, poll);
		pthread_mutex_unlock(&c->smtx);
		if (!synced) {
			break;
		}
		if (dirty) {
			write_cache(c);
		}
		if (ack) {
			send_ack(c);
		}
		if (quiet) {
			sl_log_notice("client-silent",
			    "no heartbeat from %s for %llu ms; re-syncing",
			    c->sub_url, (unsigned long long) silence);
			moved = true;
			break;
		}
		nap(c, wait);
	}
	stream_halt(c);
	pthread_mutex_lock(&c->smtx);
	if (moved || c->rx_failed) {
		c->synced = false;
		moved     = true;
	}
	pthread_mutex_unlock(&c->smtx);
	if (moved) {
		sub_close(c);
		c->ep = (c->ep + 1) % c->n_eps;
	}
}

static void *
updater_main(void *arg)
{
	sluice_client *c        = arg;
	uint64_t       backoff  = c->backoff_min_ms;
	size_t         failures = 0;
	bool           min_rev  = true;

	while (!stopping(c)) {
		if (c->synced) {
			follow(c);
			continue;
		}
		// Ask for at least what the stream announced, so a lagging
		// node cannot take the client back in time; after a whole
		// round of failures, take what any node has.
		if (sync_from(c, c->ep,
		        min_rev && c->live ? c->seen_rev : 0) == SLUICE_OK) {
			backoff  = c->backoff_min_ms;
			failures = 0;
			min_rev  = true;
			continue;
		}
		c->ep = (c->ep + 1) % c->n_eps;
		if (++failures < c->n_eps) {
			continue;
		}
		if (!c->outage_logged) {
			sl_log_warn("client-unavail",
			    "no flagd reachable (%zu endpoints); serving %s "
			    "revision %llu and retrying",
			    c->n_eps, c->live ? "last applied" : "cached",
			    (unsigned long long) atomic_load(&c->rev));
			c->outage_logged = true;
		}
		failures = 0;
		min_rev  = false;
		// Full jitter on the upper half keeps a fleet of clients
		// from reconnecting in step after an outage.
		nap(c,
		    backoff / 2 +
		        randombytes_uniform((uint32_t) backoff / 2 + 1));
		backoff = backoff * 2 > c->backoff_max_ms ? c->backoff_max_ms
		                                          : backoff * 2;
	}
	return (NULL);
}

// ------------------------------------------------------------ open/close

// Who the acks say we are: a fresh random id per open (two clients in
// one process are two clients), the host name and the pid.
static void
client_identity(sluice_client *c)
{
	uint8_t raw[CLIENT_ID_HEX / 2];

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(c->client_id, sizeof(c->client_id), raw, sizeof(raw));
	if (gethostname(c->host, sizeof(c->host)) != 0) {
		snprintf(c->host, sizeof(c->host), "unknown");
	}
	c->host[sizeof(c->host) - 1] = '\0';
	c->pid                       = (uint32_t) getpid();
	c->started_ms                = sl_now_ms();
}

static void
free_settings(sluice_client *c)
{
	for (size_t i = 0; i < c->n_eps; i++) {
		sl_rpc_close(c->rpcs != NULL ? c->rpcs[i] : NULL);
	}
	free(c->rpcs);
	sl_endpoints_free(c->eps, c->n_eps);
	free(c->cache_file);
	sl_reporter_close(c->reporter);
	c->reporter = NULL;
	sl_secret_free(c->key);
	c->key        = NULL;
	c->rpcs       = NULL;
	c->eps        = NULL;
	c->n_eps      = 0;
	c->cache_file = NULL;
}

static void
stop_updater(sluice_client *c)
{
	pthread_mutex_lock(&c->mtx);
	c->stopping = true;
	atomic_store(&c->stop, true);
	pthread_cond_broadcast(&c->cv);
	pthread_cond_broadcast(&c->ucv);
	pthread_mutex_unlock(&c->mtx);
	if (c->thread_started) {
		pthread_join(c->thread, NULL);
		c->thread_started = false;
		// Say goodbye, so that `flagctl wait` does not wait for a
		// job that has ended; only to a node that answered us.
		if (c->synced) {
			send_ack_as(c, true);
		}
	}
	// Changes applied in the last burst are not lost to the cache.
	if (c->cache_dirty) {
		write_cache(c);
	}
	sub_close(c);
}

void
sluice_client_close(sluice_client *c)
{
	if (c == NULL) {
		return;
	}
	stop_updater(c);
	free_settings(c);
	atomic_store(&c->closed, true);
	client_unref(c);
}

int
sluice_client_open(
    sluice_client **cp, const char *endpoints, const sluice_client_opts *opts)
{
	sluice_client_opts o;
	sluice_client     *c;
	sl_snapshot       *empty;
	pthread_condattr_t ca;
	struct timespec    ts;
	int                rv;

	if (cp == NULL) {
		return (SLUICE_EINVAL);
	}
	if (opts == NULL) {
		sluice_client_opts_init(&o);
	} else {
		o = *opts;
	}
	if (o.heartbeat_ms == 0 || o.heartbeat_misses == 0 ||
	    o.backoff_min_ms == 0 || o.backoff_max_ms < o.backoff_min_ms ||
	    (o.cache_file != NULL && o.cache_file[0] == '\0')) {
		return (SLUICE_EINVAL);
	}
	if ((rv = sl_crypto_init()) != SLUICE_OK) {
		return (rv);
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		return (SLUICE_ENOMEM);
	}
	if ((rv = sl_snapshot_empty(&empty)) != SLUICE_OK) {
		free(c);
		return (rv);
	}
	atomic_init(&c->cur, empty);
	atomic_init(&c->contact_ms, 0);
	atomic_init(&c->rev, 0);
	atomic_init(&c->refs, 1);
	atomic_init(&c->closed, false);
	atomic_init(&c->stop, false);
	pthread_mutex_init(&c->mtx, NULL);
	pthread_mutex_init(&c->smtx, NULL);
	sl_sock_init(&c->sub);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cv, &ca);
	pthread_cond_init(&c->ucv, &ca);
	pthread_condattr_destroy(&ca);
	c->max_stale_ms       = o.max_stale_ms;
	c->clock              = o.clock;
	c->clock_arg          = o.clock_arg;
	c->request_timeout_ms = o.request_timeout_ms;
	c->heartbeat_ms       = o.heartbeat_ms;
	c->heartbeat_misses   = o.heartbeat_misses;
	c->backoff_min_ms     = o.backoff_min_ms;
	c->backoff_max_ms     = o.backoff_max_ms;
	c->change_cb          = o.change_cb;
	c->change_arg         = o.change_arg;
	c->ack_interval_ms    = o.ack_interval_ms;
	client_identity(c);

	if (endpoints != NULL &&
	    (rv = sl_endpoints_split(endpoints, &c->eps, &c->n_eps)) !=
	        SLUICE_OK) {
		goto fail;
	}
	if (o.cache_file != NULL &&
	    (c->cache_file = strdup(o.cache_file)) == NULL) {
		rv = SLUICE_ENOMEM;
		goto fail;
	}
	if (o.gatekeeper != NULL &&
	    (rv = sl_reporter_open(&c->reporter, o.gatekeeper, o.key_file,
	         o.request_timeout_ms)) != SLUICE_OK) {
		goto fail;
	}
	if (c->n_eps > 0 &&
	    (c->rpcs = calloc(c->n_eps, sizeof(*c->rpcs))) == NULL) {
		rv = SLUICE_ENOMEM;
		goto fail;
	}
	if (o.key_file != NULL) {
		char err[256];
		if ((rv = sl_secret_load(&c->key, o.key_file, err,
		         sizeof(err))) != SLUICE_OK) {
			sl_log_err("client-key", "cannot use key file %s: %s",
			    o.key_file,
			    rv == SLUICE_EINVAL ? err : sluice_strerror(rv));
			goto fail;
		}
	}
	if (c->cache_file != NULL) {
		load_cache(c);
	}
	if (c->n_eps == 0) {
		*cp = c;
		return (SLUICE_OK);
	}
	if (nng_aio_alloc(&c->rx, rx_cb, c) != 0 ||
	    nng_aio_alloc(&c->settle, settle_cb, c) != 0) {
		rv = SLUICE_ENOMEM;
		goto fail;
	}
	nng_aio_set_timeout(c->rx, NNG_DURATION_INFINITE);
	if (pthread_create(&c->thread, NULL, updater_main, c) != 0) {
		rv = SLUICE_EINTERNAL;
		goto fail;
	}
	c->thread_started = true;
	if (o.connect_timeout_ms > 0) {
		deadline_in(&ts, o.connect_timeout_ms);
		pthread_mutex_lock(&c->mtx);
		while (c->live_syncs == 0 &&
		    pthread_cond_timedwait(&c->cv, &c->mtx, &ts) == 0) { }
		pthread_mutex_unlock(&c->mtx);
	}
	*cp = c;
	return (SLUICE_OK);
fail:
	stop_updater(c);
	free_settings(c);
	client_unref(c);
	return (rv);
}

sl_reporter *
sl_client_reporter(sluice_client *c)
{
	return (c != NULL ? c->reporter : NULL);
}
