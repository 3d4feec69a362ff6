// SPDX-License-Identifier: MIT
//
// bench_flagd.c — measures one running flagd and prints the figures; it
// never asserts on them. Three measurements, each bounded in count and in
// time: the latency of signed writes (promote/rollback round trips and
// applies of changing specs), read throughput over REQ/REP with 1 and 16
// client threads each on its own socket, and the latency from sending a
// write to the moment the last of 100 change-stream subscribers has the
// Change event of that revision. bench/run.sh starts the flagd.

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/req.h>

#include "bench_util.h"
#include "codec.h"
#include "envelope.h"
#include "keys.h"
#include "sl.h"

#define BENCH_ROLLOUT "bench.flip"
#define BENCH_APPLY_ROLLOUT "bench.apply"
#define BENCH_MAX_THREADS 64
#define BENCH_MAX_SUBS 1000
#define BENCH_LAT_CAP 200000 // latency samples kept per read thread

// protobuf-c's message structs lack const; the packer never writes.
#define UNCONST(s) ((char *) (uintptr_t) (s))

typedef struct opts {
	const char *api;
	const char *publish; // NULL: ask flagd (GetInfo)
	const char *key;
	const char *disk;
	unsigned    flips;      // promote/rollback writes
	unsigned    applies;    // applies of a changing spec
	double      read_secs;  // per read run
	unsigned    threads_hi; // second read run
	unsigned    subs;
	unsigned    changes;
	double      phase_secs; // bound on each write phase
} opts;

typedef struct stats {
	double   p50;
	double   p99;
	double   max;
	size_t   n;
	unsigned errors;
} stats;

// ------------------------------------------------------------- helpers

static double
now_s(void)
{
	return ((double) sl_mono_ns() / 1e9);
}

static stats
summarize(double *v, size_t n, unsigned errors)
{
	stats s = { NAN, NAN, NAN, n, errors };

	if (n > 0) {
		qsort(v, n, sizeof(*v), bench_cmp_double);
		s.p50 = bench_pct(v, n, 0.50);
		s.p99 = bench_pct(v, n, 0.99);
		s.max = v[n - 1];
	}
	return (s);
}

static int
req_open(nng_socket *sp, const char *url)
{
	nng_socket s;
	int        rv;

	if ((rv = nng_req0_open(&s)) != 0) {
		fprintf(stderr, "bench: req socket: %s\n", nng_strerror(rv));
		return (-1);
	}
	(void) nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 10000);
	(void) nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 10000);
	if ((rv = nng_dial(s, url, NULL, 0)) != 0) {
		fprintf(stderr, "bench: dial %s: %s\n", url, nng_strerror(rv));
		nng_close(s);
		return (-1);
	}
	*sp = s;
	return (0);
}

// One request/reply. Returns the reply's error code (SLUICE_OK if none)
// and, when a reply arrived, *repp (caller frees); -1 on transport errors.
static int
call(nng_socket s, Sluice__V1__Request *req, Sluice__V1__Reply **repp)
{
	static _Atomic uint64_t next_id = 1;
	Sluice__V1__Header      hdr     = SLUICE__V1__HEADER__INIT;
	Sluice__V1__Reply      *rep;
	uint8_t                *buf;
	size_t                  len;
	void                   *in;
	size_t                  inlen;
	int                     rv;

	hdr.api_version = SL_API_VERSION;
	hdr.request_id  = atomic_fetch_add(&next_id, 1);
	hdr.deadline_ms = 10000;
	req->header     = &hdr;
	if (sl_pack(&req->base, &buf, &len) != SLUICE_OK) {
		req->header = NULL;
		return (-1);
	}
	req->header = NULL;
	if ((rv = nng_send(s, buf, len, 0)) != 0) {
		free(buf);
		fprintf(stderr, "bench: send: %s\n", nng_strerror(rv));
		return (-1);
	}
	free(buf);
	if ((rv = nng_recv(s, &in, &inlen, NNG_FLAG_ALLOC)) != 0) {
		fprintf(stderr, "bench: recv: %s\n", nng_strerror(rv));
		return (-1);
	}
	rv = sl_reply_decode(in, inlen, &rep);
	nng_free(in, inlen);
	if (rv != SLUICE_OK) {
		fprintf(stderr, "bench: undecodable reply\n");
		return (-1);
	}
	rv = SLUICE_OK;
	if (rep->result_case == SLUICE__V1__REPLY__RESULT_ERROR &&
	    rep->error != NULL) {
		rv = (int) rep->error->code;
		if (rv == SLUICE_OK) {
			rv = SLUICE_EINTERNAL;
		}
	}
	*repp = rep;
	return (rv);
}

// Seals cmd with k and sends it. *revp: the reply's revision.
static int
write_cmd(nng_socket s, const sl_secret *k, Sluice__V1__Command *cmd,
    uint64_t *revp, char *err, size_t errlen)
{
	Sluice__V1__SignedCommand sc;
	Sluice__V1__Request       req = SLUICE__V1__REQUEST__INIT;
	Sluice__V1__Reply        *rep = NULL;
	int                       rv;

	sluice__v1__signed_command__init(&sc);

	cmd->timestamp_ms = 0;
	sl_command_clear_nonce(cmd);
	if ((rv = sl_command_seal(k, cmd, &sc)) != SLUICE_OK) {
		(void) snprintf(err, errlen, "seal: %s", sluice_strerror(rv));
		return (rv);
	}
	req.op_case = SLUICE__V1__REQUEST__OP_WRITE;
	req.write   = &sc;
	rv          = call(s, &req, &rep);
	sl_signed_command_clear(&sc);
	sl_command_clear_nonce(cmd);
	if (rep != NULL) {
		if (rv != SLUICE_OK) {
			(void) snprintf(err, errlen, "%s: %s",
			    sluice_strerror(rv),
			    rep->error != NULL && rep->error->message != NULL
			        ? rep->error->message
			        : "");
		}
		*revp = rep->revision;
		sluice__v1__reply__free_unpacked(rep, NULL);
	} else {
		(void) snprintf(err, errlen, "transport error");
	}
	return (rv);
}

// ------------------------------------------------------------- specs

static Sluice__V1__FlagValue  v_bool[3];
static Sluice__V1__FlagValue  v_pct[3];
static Sluice__V1__FlagValue *vals_bool[3] = { &v_bool[0], &v_bool[1],
	&v_bool[2] };
static Sluice__V1__FlagValue *vals_pct[3]  = { &v_pct[0], &v_pct[1],
	 &v_pct[2] };
static char *stages[3] = { UNCONST("off"), UNCONST("on"), UNCONST("full") };

// A three-stage spec with one bool and one percentage flag. The strings
// it points at are static or the caller's; nothing is freed.
static void
spec_init(Sluice__V1__RolloutSpec *sp, Sluice__V1__Flag *f,
    Sluice__V1__Flag **fp, char keys[2][96], const char *name,
    const char *desc)
{
	static const uint32_t bp[3] = { 0, 1000, 10000 };

	for (size_t i = 0; i < 3; i++) {
		sluice__v1__flag_value__init(&v_bool[i]);
		v_bool[i].kind_case  = SLUICE__V1__FLAG_VALUE__KIND_BOOL_VALUE;
		v_bool[i].bool_value = i > 0;
		sluice__v1__flag_value__init(&v_pct[i]);
		v_pct[i].kind_case  = SLUICE__V1__FLAG_VALUE__KIND_PERCENT_BP;
		v_pct[i].percent_bp = bp[i];
	}
	sluice__v1__flag__init(&f[0]);
	// Flag keys are global across rollouts: name them after theirs.
	(void) snprintf(keys[0], 96, "%s.dual_write", name);
	(void) snprintf(keys[1], 96, "%s.read_new", name);
	f[0].key      = keys[0];
	f[0].n_values = 3;
	f[0].values   = vals_bool;
	sluice__v1__flag__init(&f[1]);
	f[1].key      = keys[1];
	f[1].n_values = 3;
	f[1].values   = vals_pct;
	fp[0]         = &f[0];
	fp[1]         = &f[1];

	sluice__v1__rollout_spec__init(sp);
	sp->name        = (char *) (uintptr_t) name;
	sp->description = (char *) (uintptr_t) desc;
	sp->owner       = UNCONST("bench");
	sp->n_stages    = 3;
	sp->stages      = stages;
	sp->n_flags     = 2;
	sp->flags       = fp;
}

static int
apply_spec(nng_socket s, const sl_secret *k, const char *name,
    const char *desc, uint64_t *revp, char *err, size_t errlen)
{
	Sluice__V1__Command      cmd;
	Sluice__V1__ApplyRollout ap = SLUICE__V1__APPLY_ROLLOUT__INIT;
	Sluice__V1__RolloutSpec  spec;
	Sluice__V1__Flag         f[2];
	Sluice__V1__Flag        *fp[2];
	char                     keys[2][96];

	sluice__v1__command__init(&cmd);
	spec_init(&spec, f, fp, keys, name, desc);
	ap.spec         = &spec;
	cmd.reason      = UNCONST("bench");
	cmd.action_case = SLUICE__V1__COMMAND__ACTION_APPLY;
	cmd.apply       = &ap;
	return (write_cmd(s, k, &cmd, revp, err, errlen));
}

// Promote to "on" (even i) or roll back to "off" (odd i).
static int
flip(nng_socket s, const sl_secret *k, unsigned i, uint64_t *revp, char *err,
    size_t errlen)
{
	Sluice__V1__Command  cmd;
	Sluice__V1__Promote  pr;
	Sluice__V1__Rollback rb;

	// The generated init functions, not the __INIT macros: the macros
	// cast away const from protobuf_c_empty_string (-Wcast-qual).
	sluice__v1__command__init(&cmd);
	sluice__v1__promote__init(&pr);
	sluice__v1__rollback__init(&rb);
	cmd.reason = UNCONST("bench");
	if (i % 2 == 0) {
		pr.rollout      = UNCONST(BENCH_ROLLOUT);
		pr.to_stage     = UNCONST("on");
		cmd.action_case = SLUICE__V1__COMMAND__ACTION_PROMOTE;
		cmd.promote     = &pr;
	} else {
		rb.rollout      = UNCONST(BENCH_ROLLOUT);
		rb.to_stage     = UNCONST("off");
		cmd.action_case = SLUICE__V1__COMMAND__ACTION_ROLLBACK;
		cmd.rollback    = &rb;
	}
	return (write_cmd(s, k, &cmd, revp, err, errlen));
}

// Brings BENCH_ROLLOUT to stage "off" whatever state a previous run left.
static int
flip_reset(nng_socket s, const sl_secret *k, unsigned *nextp)
{
	char     err[256];
	uint64_t rev;
	int      rv;

	if ((rv = apply_spec(s, k, BENCH_ROLLOUT, "bench flip", &rev, err,
	         sizeof(err))) != SLUICE_OK) {
		fprintf(stderr, "bench: apply %s: %s\n", BENCH_ROLLOUT, err);
		return (-1);
	}
	// A rollback to "off" fails with ESTATE when already at "off".
	(void) flip(s, k, 1, &rev, err, sizeof(err));
	*nextp = 0;
	return (0);
}

// ------------------------------------------------------------- writes

static void
bench_writes(const opts *o, nng_socket s, const sl_secret *k, stats *flipsp,
    stats *appliesp)
{
	double  *lat    = calloc(o->flips + o->applies + 1, sizeof(double));
	size_t   n      = 0;
	unsigned errors = 0;
	unsigned next;
	double   end;
	char     err[256];
	char     desc[64];
	uint64_t rev;

	if (lat == NULL || flip_reset(s, k, &next) != 0) {
		free(lat);
		*flipsp = *appliesp = summarize(NULL, 0, 1);
		return;
	}
	end = now_s() + o->phase_secs;
	for (unsigned i = 0; i < o->flips && now_s() < end; i++) {
		double t0 = now_s();
		if (flip(s, k, next++, &rev, err, sizeof(err)) != SLUICE_OK) {
			if (errors++ < 3) {
				fprintf(
				    stderr, "bench: flip %u: %s\n", i, err);
			}
			continue;
		}
		lat[n++] = (now_s() - t0) * 1e3;
	}
	*flipsp = summarize(lat, n, errors);

	n      = 0;
	errors = 0;
	end    = now_s() + o->phase_secs;
	for (unsigned i = 0; i < o->applies && now_s() < end; i++) {
		double t0 = now_s();
		(void) snprintf(desc, sizeof(desc), "bench apply %u", i);
		if (apply_spec(s, k, BENCH_APPLY_ROLLOUT, desc, &rev, err,
		        sizeof(err)) != SLUICE_OK) {
			if (errors++ < 3) {
				fprintf(
				    stderr, "bench: apply %u: %s\n", i, err);
			}
			continue;
		}
		lat[n++] = (now_s() - t0) * 1e3;
	}
	*appliesp = summarize(lat, n, errors);
	free(lat);
}

// ------------------------------------------------------------- reads

typedef struct reader {
	const char *url;
	double      end;
	uint64_t    ops;
	unsigned    errors;
	double     *lat;
	size_t      nlat;
	bool        ok;
} reader;

static void *
reader_main(void *arg)
{
	reader                *r   = arg;
	Sluice__V1__Request    req = SLUICE__V1__REQUEST__INIT;
	Sluice__V1__GetRollout get;
	nng_socket             s;

	sluice__v1__get_rollout__init(&get);
	if (req_open(&s, r->url) != 0) {
		return (NULL);
	}
	r->ok       = true;
	get.name    = UNCONST(BENCH_ROLLOUT);
	req.op_case = SLUICE__V1__REQUEST__OP_GET;
	req.get     = &get;
	// Bounded by time, and by count in case the clock misbehaves.
	for (uint64_t i = 0; i < 100000000u; i++) {
		Sluice__V1__Reply *rep = NULL;
		double             t0  = now_s();
		int                rv;

		if (t0 >= r->end) {
			break;
		}
		rv = call(s, &req, &rep);
		if (rep != NULL) {
			sluice__v1__reply__free_unpacked(rep, NULL);
		}
		if (rv != SLUICE_OK) {
			if (r->errors++ > 100) {
				break;
			}
			continue;
		}
		r->ops++;
		if (r->nlat < BENCH_LAT_CAP) {
			r->lat[r->nlat++] = (now_s() - t0) * 1e3;
		}
	}
	nng_close(s);
	return (NULL);
}

typedef struct read_result {
	unsigned threads;
	double   ops_s;
	stats    lat;
	double   secs;
} read_result;

static read_result
bench_reads(const opts *o, unsigned nthreads)
{
	reader      rs[BENCH_MAX_THREADS];
	pthread_t   th[BENCH_MAX_THREADS];
	read_result res    = { nthreads, 0, { NAN, NAN, NAN, 0, 0 }, 0 };
	uint64_t    ops    = 0;
	unsigned    errors = 0;
	size_t      nlat   = 0;
	double     *all;
	double      t0;

	memset(rs, 0, sizeof(rs));
	t0 = now_s();
	for (unsigned i = 0; i < nthreads; i++) {
		rs[i].url = o->api;
		rs[i].end = t0 + o->read_secs;
		if ((rs[i].lat = calloc(BENCH_LAT_CAP, sizeof(double))) ==
		        NULL ||
		    pthread_create(&th[i], NULL, reader_main, &rs[i]) != 0) {
			fprintf(stderr, "bench: cannot start reader %u\n", i);
			free(rs[i].lat);
			nthreads = i;
			break;
		}
	}
	for (unsigned i = 0; i < nthreads; i++) {
		pthread_join(th[i], NULL);
		ops += rs[i].ops;
		errors += rs[i].errors + (rs[i].ok ? 0u : 1u);
		nlat += rs[i].nlat;
	}
	res.secs  = now_s() - t0;
	res.ops_s = (double) ops / res.secs;
	if ((all = calloc(nlat + 1, sizeof(double))) != NULL) {
		size_t k = 0;
		for (unsigned i = 0; i < nthreads; i++) {
			memcpy(
			    all + k, rs[i].lat, rs[i].nlat * sizeof(double));
			k += rs[i].nlat;
		}
		res.lat = summarize(all, nlat, errors);
		free(all);
	}
	res.lat.n = (size_t) ops;
	for (unsigned i = 0; i < nthreads; i++) {
		free(rs[i].lat);
	}
	return (res);
}

// ------------------------------------------------------------- changes

// Arrivals are indexed by revision - base; a slot counts the subscribers
// that have the Change of that revision and keeps the latest arrival.
typedef struct arrivals {
	uint64_t          base;
	size_t            nslots;
	_Atomic uint32_t *got;
	_Atomic uint64_t *last_ns;
} arrivals;

typedef struct sub {
	nng_socket       sock;
	nng_aio         *aio;
	arrivals        *arr;
	_Atomic bool     heard; // anything at all: the dial is up
	_Atomic uint64_t events;
	_Atomic bool     stopping;
} sub;

static void
sub_cb(void *arg)
{
	sub               *s = arg;
	nng_msg           *msg;
	Sluice__V1__Event *ev;
	uint64_t           t = sl_mono_ns();
	int                rv;

	if ((rv = nng_aio_result(s->aio)) != 0) {
		// Closed or stopped; anything else is retried.
		if (rv == NNG_ECLOSED || atomic_load(&s->stopping)) {
			return;
		}
		nng_recv_aio(s->sock, s->aio);
		return;
	}
	msg = nng_aio_get_msg(s->aio);
	if (sl_event_decode(nng_msg_body(msg), nng_msg_len(msg), &ev) ==
	    SLUICE_OK) {
		atomic_store(&s->heard, true);
		atomic_fetch_add(&s->events, 1);
		if (ev->kind_case == SLUICE__V1__EVENT__KIND_CHANGE &&
		    ev->change != NULL) {
			arrivals *a   = s->arr;
			uint64_t  rev = ev->change->revision;
			if (rev > a->base && rev - a->base < a->nslots) {
				size_t   i    = (size_t) (rev - a->base);
				uint64_t prev = atomic_load(&a->last_ns[i]);
				while (prev < t &&
				    !atomic_compare_exchange_weak(
				        &a->last_ns[i], &prev, t)) { }
				atomic_fetch_add(&a->got[i], 1);
			}
		}
		sluice__v1__event__free_unpacked(ev, NULL);
	}
	nng_msg_free(msg);
	if (!atomic_load(&s->stopping)) {
		nng_recv_aio(s->sock, s->aio);
	}
}

typedef struct change_result {
	stats    lat;
	unsigned subs;
	unsigned connected;
	unsigned incomplete; // writes some subscriber never saw in time
} change_result;

static change_result
bench_changes(
    const opts *o, nng_socket api, const sl_secret *k, const char *pub_url)
{
	change_result res = { { NAN, NAN, NAN, 0, 0 }, o->subs, 0, 0 };
	sub          *subs;
	arrivals      arr;
	double       *lat;
	size_t        n = 0;
	unsigned      next;
	uint64_t      rev;
	char          err[256];
	double        end;

	memset(&arr, 0, sizeof(arr));
	subs = calloc(o->subs, sizeof(*subs));
	lat  = calloc(o->changes + 1, sizeof(double));
	if (subs == NULL || lat == NULL || flip_reset(api, k, &next) != 0) {
		goto out;
	}
	// The reset wrote at least one revision; ask for the current one.
	if (apply_spec(api, k, BENCH_ROLLOUT, "bench flip", &rev, err,
	        sizeof(err)) != SLUICE_OK) {
		fprintf(stderr, "bench: %s\n", err);
		goto out;
	}
	arr.base    = rev;
	arr.nslots  = (size_t) o->changes * 2 + 16;
	arr.got     = calloc(arr.nslots, sizeof(*arr.got));
	arr.last_ns = calloc(arr.nslots, sizeof(*arr.last_ns));
	if (arr.got == NULL || arr.last_ns == NULL) {
		goto out;
	}
	for (unsigned i = 0; i < o->subs; i++) {
		sub *s = &subs[i];
		int  rv;

		s->arr = &arr;
		if ((rv = nng_sub0_open(&s->sock)) != 0 ||
		    (rv = nng_socket_set(
		         s->sock, NNG_OPT_SUB_SUBSCRIBE, "", 0)) != 0 ||
		    (rv = nng_aio_alloc(&s->aio, sub_cb, s)) != 0) {
			fprintf(stderr, "bench: sub %u: %s\n", i,
			    nng_strerror(rv));
			goto stop;
		}
		// Non-blocking dial: nng reconnects on its own.
		if ((rv = nng_dial(
		         s->sock, pub_url, NULL, NNG_FLAG_NONBLOCK)) != 0) {
			fprintf(stderr, "bench: sub dial %s: %s\n", pub_url,
			    nng_strerror(rv));
			goto stop;
		}
		nng_recv_aio(s->sock, s->aio);
	}
	// Wait (bounded) until every subscriber has heard a heartbeat, so
	// none of them misses the first change while still connecting.
	end = now_s() + 10.0;
	while (now_s() < end) {
		unsigned c = 0;
		for (unsigned i = 0; i < o->subs; i++) {
			c += atomic_load(&subs[i].heard) ? 1u : 0u;
		}
		res.connected = c;
		if (c == o->subs) {
			break;
		}
		struct timespec ts = { 0, 20000000L };
		nanosleep(&ts, NULL);
	}
	if (res.connected < o->subs) {
		fprintf(stderr,
		    "bench: only %u of %u subscribers connected; measuring "
		    "with those\n",
		    res.connected, o->subs);
	}

	end = now_s() + o->phase_secs;
	for (unsigned i = 0; i < o->changes && now_s() < end; i++) {
		uint64_t t0 = sl_mono_ns();
		uint64_t deadline;
		size_t   slot;
		bool     all = false;

		if (flip(api, k, next++, &rev, err, sizeof(err)) !=
		    SLUICE_OK) {
			if (res.lat.errors++ < 3) {
				fprintf(
				    stderr, "bench: change %u: %s\n", i, err);
			}
			continue;
		}
		if (rev <= arr.base || rev - arr.base >= arr.nslots) {
			res.lat.errors++;
			continue;
		}
		slot = (size_t) (rev - arr.base);
		// Wait (bounded) for the last subscriber, so writes do not
		// overlap and each figure is one write's fan-out.
		deadline = sl_mono_ns() + 2000000000ull;
		while (sl_mono_ns() < deadline) {
			if (atomic_load(&arr.got[slot]) >= res.connected) {
				all = true;
				break;
			}
			struct timespec ts = { 0, 20000 };
			nanosleep(&ts, NULL);
		}
		if (!all) {
			res.incomplete++;
			continue;
		}
		lat[n++] =
		    (double) (atomic_load(&arr.last_ns[slot]) - t0) / 1e6;
	}
	{
		unsigned e = res.lat.errors;
		res.lat    = summarize(lat, n, e);
	}
stop:
	for (unsigned i = 0; i < o->subs; i++) {
		atomic_store(&subs[i].stopping, true);
		if (subs[i].aio != NULL) {
			nng_aio_stop(subs[i].aio);
		}
	}
	for (unsigned i = 0; i < o->subs; i++) {
		if (subs[i].aio != NULL) {
			nng_close(subs[i].sock);
			nng_aio_free(subs[i].aio);
		} else if (nng_socket_id(subs[i].sock) > 0) {
			nng_close(subs[i].sock);
		}
	}
out:
	free((void *) (uintptr_t) arr.got);
	free((void *) (uintptr_t) arr.last_ns);
	free(subs);
	free(lat);
	return (res);
}

// ------------------------------------------------------------- main

static char *
get_publish_url(nng_socket s)
{
	Sluice__V1__Request req  = SLUICE__V1__REQUEST__INIT;
	Sluice__V1__GetInfo info = SLUICE__V1__GET_INFO__INIT;
	Sluice__V1__Reply  *rep  = NULL;
	char               *url  = NULL;

	req.op_case = SLUICE__V1__REQUEST__OP_INFO;
	req.info    = &info;
	if (call(s, &req, &rep) == SLUICE_OK &&
	    rep->result_case == SLUICE__V1__REPLY__RESULT_INFO &&
	    rep->info->publish_url != NULL && rep->info->publish_url[0]) {
		url = strdup(rep->info->publish_url);
	}
	if (rep != NULL) {
		sluice__v1__reply__free_unpacked(rep, NULL);
	}
	return (url);
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: bench_flagd --api URL --key FILE [options]\n"
	    "  --publish URL   change stream (default: asked from flagd)\n"
	    "  --disk TEXT     description of the data disk, for the report\n"
	    "  --flips N       promote/rollback writes (500)\n"
	    "  --applies N     applies of a changing spec (300)\n"
	    "  --read-secs S   duration of each read run (3)\n"
	    "  --threads N     concurrent readers of the second run (16)\n"
	    "  --subs N        change-stream subscribers (100)\n"
	    "  --changes N     writes timed to the last subscriber (200)\n"
	    "  --phase-secs S  bound on each write phase (30)\n"
	    "Prints figures; never fails on them.\n");
}

static char disk_buf[256];

static int
parse_opts(opts *o, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--help") == 0) {
			usage(stdout);
			exit(0);
		}
		if (v == NULL) {
			usage(stderr);
			return (-1);
		}
		i++;
		if (strcmp(a, "--api") == 0) {
			o->api = v;
		} else if (strcmp(a, "--publish") == 0) {
			o->publish = v;
		} else if (strcmp(a, "--key") == 0) {
			o->key = v;
		} else if (strcmp(a, "--disk") == 0) {
			o->disk = v;
		} else if (strcmp(a, "--flips") == 0) {
			o->flips = (unsigned) strtoul(v, NULL, 10);
		} else if (strcmp(a, "--applies") == 0) {
			o->applies = (unsigned) strtoul(v, NULL, 10);
		} else if (strcmp(a, "--read-secs") == 0) {
			o->read_secs = strtod(v, NULL);
		} else if (strcmp(a, "--threads") == 0) {
			o->threads_hi = (unsigned) strtoul(v, NULL, 10);
		} else if (strcmp(a, "--subs") == 0) {
			o->subs = (unsigned) strtoul(v, NULL, 10);
		} else if (strcmp(a, "--changes") == 0) {
			o->changes = (unsigned) strtoul(v, NULL, 10);
		} else if (strcmp(a, "--phase-secs") == 0) {
			o->phase_secs = strtod(v, NULL);
		} else {
			usage(stderr);
			return (-1);
		}
	}
	// The disk text goes into a JSON string: keep it plain.
	(void) snprintf(disk_buf, sizeof(disk_buf), "%s", o->disk);
	for (char *p = disk_buf; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\' || (unsigned char) *p < 0x20) {
			*p = '_';
		}
	}
	o->disk = disk_buf;
	if (o->api == NULL || o->key == NULL) {
		usage(stderr);
		return (-1);
	}
	if (o->threads_hi < 1 || o->threads_hi > BENCH_MAX_THREADS ||
	    o->subs < 1 || o->subs > BENCH_MAX_SUBS || o->read_secs <= 0 ||
	    o->read_secs > 60 || o->phase_secs <= 0 || o->phase_secs > 600 ||
	    o->flips > 1000000 || o->applies > 1000000 ||
	    o->changes > 100000) {
		fprintf(stderr, "bench: option out of range\n");
		return (-1);
	}
	return (0);
}

static void
row(const char *what, const stats *s, const char *unit)
{
	printf("%-34s %10.3f %10.3f %10.3f %7zu %6u  %s\n", what, s->p50,
	    s->p99, s->max, s->n, s->errors, unit);
}

// JSON has no NaN: a figure that could not be measured is null.
static void
jnum(const char *name, double v, const char *sep)
{
	if (isnan(v)) {
		printf("\"%s\":null%s", name, sep);
	} else {
		printf("\"%s\":%.3f%s", name, v, sep);
	}
}

static void
jstats(const char *name, const stats *s, const char *sep)
{
	printf("\"%s\":{", name);
	jnum("p50", s->p50, ",");
	jnum("p99", s->p99, ",");
	printf("\"n\":%zu,\"errors\":%u}%s", s->n, s->errors, sep);
}

int
main(int argc, char **argv)
{
	opts o = { NULL, NULL, NULL, "unknown", 500, 300, 3.0, 16, 100, 200,
		30.0 };
	sl_secret    *k = NULL;
	nng_socket    api;
	char          err[256];
	char         *pub = NULL;
	stats         flips, applies;
	read_result   r1, rn;
	change_result ch;
	long          ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	if (parse_opts(&o, argc, argv) != 0) {
		return (2);
	}
	if (sl_crypto_init() != SLUICE_OK) {
		fprintf(stderr, "bench: libsodium failed to initialise\n");
		return (1);
	}
	if (sl_secret_load(&k, o.key, err, sizeof(err)) != SLUICE_OK) {
		fprintf(stderr, "bench: key %s: %s\n", o.key, err);
		return (1);
	}
	if (req_open(&api, o.api) != 0) {
		sl_secret_free(k);
		return (1);
	}
	if (o.publish != NULL) {
		pub = strdup(o.publish);
	} else if ((pub = get_publish_url(api)) == NULL) {
		fprintf(stderr,
		    "bench: flagd did not say its change stream; "
		    "pass --publish\n");
	}

	printf("bench: writes (%u promote/rollback, %u applies)...\n", o.flips,
	    o.applies);
	fflush(stdout);
	bench_writes(&o, api, k, &flips, &applies);
	printf("bench: reads, 1 thread, %.1f s...\n", o.read_secs);
	fflush(stdout);
	r1 = bench_reads(&o, 1);
	printf("bench: reads, %u threads, %.1f s...\n", o.threads_hi,
	    o.read_secs);
	fflush(stdout);
	rn = bench_reads(&o, o.threads_hi);
	if (pub != NULL) {
		printf("bench: change fan-out, %u subscribers, %u writes...\n",
		    o.subs, o.changes);
		fflush(stdout);
		ch = bench_changes(&o, api, k, pub);
	} else {
		ch = (change_result) { { NAN, NAN, NAN, 0, 1 }, o.subs, 0, 0 };
	}

	printf("\nmachine: %ld CPUs; data disk: %s; flagd fsync on\n", ncpu,
	    o.disk);
	printf("%-34s %10s %10s %10s %7s %6s\n", "measurement", "p50", "p99",
	    "max", "count", "errors");
	row("promote/rollback (write)", &flips, "ms");
	row("apply changed spec (write)", &applies, "ms");
	row("GetRollout, 1 thread", &r1.lat, "ms");
	{
		char label[64];
		(void) snprintf(label, sizeof(label), "GetRollout, %u threads",
		    rn.threads);
		row(label, &rn.lat, "ms");
	}
	{
		char label[64];
		(void) snprintf(label, sizeof(label),
		    "change to last of %u subs", ch.connected);
		row(label, &ch.lat, "ms");
	}
	printf("read throughput: %.0f req/s (1 thread), %.0f req/s (%u "
	       "threads)\n",
	    r1.ops_s, rn.ops_s, rn.threads);
	if (ch.incomplete > 0) {
		printf(
		    "change fan-out: %u writes not seen by every subscriber "
		    "within 2 s (left out)\n",
		    ch.incomplete);
	}

	printf("{\"bench\":\"flagd\",\"nproc\":%ld,\"disk\":\"%s\","
	       "\"fsync\":true,",
	    ncpu, o.disk);
	jstats("promote_rollback_ms", &flips, ",");
	jstats("apply_ms", &applies, ",");
	printf("\"read_ops_s\":{\"1\":%.0f,\"%u\":%.0f},", r1.ops_s,
	    rn.threads, rn.ops_s);
	jstats("read_1_ms", &r1.lat, ",");
	jstats("read_n_ms", &rn.lat, ",");
	printf("\"subs\":%u,", ch.connected);
	jstats("change_to_last_sub_ms", &ch.lat, "");
	printf("}\n");

	free(pub);
	nng_close(api);
	sl_secret_free(k);
	return (0);
}
