/* SPDX-License-Identifier: MIT */
/*
 * bench_util.h — helpers the benches share: monotonic time, naps,
 * nearest-rank percentiles, a signed write through sl_rpc, and the "fan"
 * that times a flip until the last of N clients has applied it. Header
 * only (static inline), since the Makefile builds each bench/bench_*.c
 * into a binary of its own; benches print, they never judge.
 */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rpc.h"
#include "sluice.h"

/* CLOCK_MONOTONIC in nanoseconds. */
static inline uint64_t
bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec);
}

static inline void
bench_nap_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* qsort comparator for doubles, ascending. */
static inline int
bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *) a;
	double y = *(const double *) b;

	return ((x > y) - (x < y));
}

/*
 * Nearest-rank percentile p (a fraction, 0.99 for p99) of the sorted
 * array v of n values; NAN when n is 0.
 */
static inline double
bench_pct(const double *v, size_t n, double p)
{
	size_t i;

	if (n == 0) {
		return (NAN);
	}
	i = (size_t) ceil(p * (double) n);
	i = i == 0 ? 0 : i - 1;
	return (v[i < n ? i : n - 1]);
}

/*
 * Sends one signed command; on success stores the revision in *revp
 * (when revp is not NULL). On failure prints "<prog>: write: <why>".
 */
static inline int
bench_write_cmd(const char *prog, sl_rpc *r, const sl_secret *k,
    Sluice__V1__Command *cmd, uint64_t *revp)
{
	Sluice__V1__Reply *rep = NULL;
	int                rv;

	rv = sl_rpc_write(r, k, cmd, &rep);
	if (rv == SLUICE_OK && revp != NULL) {
		*revp = rep->revision;
	} else if (rv != SLUICE_OK) {
		fprintf(stderr, "%s: write: %s\n", prog,
		    rep != NULL ? sl_reply_errmsg(rep) : sluice_strerror(rv));
	}
	if (rep != NULL) {
		sluice__v1__reply__free_unpacked(rep, NULL);
	}
	return (rv);
}

/*
 * Pause between two measured changes (flips, puts, gate trials), the same
 * in every fan-out bench so that sluice and etcd are compared alike: each
 * change is measured on a settled system (flips are rare events), and
 * libsluice's acks, sent once a stream has been quiet for 20 ms, land
 * between two changes rather than in the next one's fan-out.
 */
#define BENCH_GAP_MS 60u

/*
 * A fan times one flip across n clients: set target to the flip's
 * revision and done to 0; each client's change callback counts it once,
 * and the last one records t_last_ns and signals cv (whose clock is
 * CLOCK_MONOTONIC).
 */
typedef struct bench_fan {
	pthread_mutex_t  mtx;
	pthread_cond_t   cv;
	_Atomic uint64_t target; // revision of the flip in flight; 0: none
	atomic_size_t    done;   // clients at target
	size_t           n;
	uint64_t         t_last_ns;  // when the last client got there
	_Atomic uint64_t t_first_ns; // when the first one did
} bench_fan;

typedef struct bench_member {
	bench_fan *f;
	uint64_t   counted; // the target this client was counted for
} bench_member;

static inline void
bench_fan_init(bench_fan *f)
{
	pthread_condattr_t ca;

	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->mtx, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&f->cv, &ca);
	pthread_condattr_destroy(&ca);
}

static inline void
bench_fan_fini(bench_fan *f)
{
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->mtx);
}

/* sluice_client_opts.change_cb; arg is the client's bench_member. */
static inline void
bench_fan_change_cb(void *arg, uint64_t rev, const char *rollout)
{
	bench_member *m = arg;
	bench_fan    *f = m->f;
	uint64_t      t = atomic_load(&f->target);
	size_t        n;

	(void) rollout;
	if (t == 0 || rev < t || m->counted == t) {
		return;
	}
	m->counted = t;
	n          = atomic_fetch_add(&f->done, 1) + 1;
	if (n == 1) {
		atomic_store(&f->t_first_ns, bench_now_ns());
	}
	if (n == f->n) {
		// The clock first: the lock is the bench's, not the client's.
		uint64_t now = bench_now_ns();
		pthread_mutex_lock(&f->mtx);
		f->t_last_ns = now;
		pthread_cond_broadcast(&f->cv);
		pthread_mutex_unlock(&f->mtx);
	}
}

/*
 * Waits up to timeout_ms until every client is counted and the last one
 * has stamped t_last_ns at or after since_ns (the last callback counts,
 * then takes the lock to stamp: the count alone may run ahead of the
 * stamp). Returns whether it got there.
 */
static inline bool
bench_fan_wait(bench_fan *f, uint64_t since_ns, unsigned timeout_ms)
{
	struct timespec ts;
	bool            ok;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long) (timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&f->mtx);
	while (!(ok = atomic_load(&f->done) >= f->n &&
	             f->t_last_ns >= since_ns) &&
	    pthread_cond_timedwait(&f->cv, &f->mtx, &ts) == 0) { }
	ok = atomic_load(&f->done) >= f->n && f->t_last_ns >= since_ns;
	pthread_mutex_unlock(&f->mtx);
	return (ok);
}

/*
 * Opens n clients of api into cs[], each a member ms[i] of f, with 200 ms
 * heartbeats and no connect wait. Stops at the first that fails to open
 * (printing "<prog>: client i of n did not open"); sets f->n to, and
 * returns, the number opened.
 */
static inline size_t
bench_fan_clients_open(bench_fan *f, sluice_client **cs, bench_member *ms,
    size_t n, const char *api, const char *prog)
{
	sluice_client_opts o;
	size_t             i;

	for (i = 0; i < n; i++) {
		sluice_client_opts_init(&o);
		o.heartbeat_ms       = 200;
		o.connect_timeout_ms = 0;
		o.change_cb          = bench_fan_change_cb;
		o.change_arg         = &ms[i];
		ms[i].f              = f;
		if (sluice_client_open(&cs[i], api, &o) != SLUICE_OK) {
			fprintf(stderr, "%s: client %zu of %zu did not open\n",
			    prog, i, n);
			break;
		}
	}
	f->n = i;
	return (i);
}

#endif /* BENCH_UTIL_H */
