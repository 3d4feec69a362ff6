// SPDX-License-Identifier: MIT
//
// bench_flip.c — flip-to-all-clients latency: N sluice_client instances
// in this process (each with its own updater thread, REQ and SUB
// sockets, as N ETL jobs would have) follow one flagd; the bench promotes
// and rolls back one rollout in turn and measures, per flip, the time
// from sending the signed write to the moment the last client has
// applied its revision (the change callback of the last client). Runs
// with 100 and with 1000 clients; also prints the write's own round trip
// (commit), the time until flagd's client registry shows every client at
// the revision (acks, what `flagctl wait` sees), and the resident memory
// per client. bench/run.sh starts the flagd. It prints; it never judges.

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "codec.h"
#include "envelope.h"
#include "keys.h"
#include "rpc.h"
#include "sluice.h"

#define ROLLOUT "bench.fanout"
#define FLAG "bench.fanout.on"
#define FLIP_TIMEOUT_MS 10000u

#define UNCONST(s) ((char *) (uintptr_t) (s))

static int
apply_rollout(sl_rpc *r, const sl_secret *k, uint64_t *revp)
{
	static char             *stages[2] = { UNCONST("off"), UNCONST("on") };
	Sluice__V1__Command      cmd;
	Sluice__V1__ApplyRollout ap;
	Sluice__V1__RolloutSpec  spec;
	Sluice__V1__Flag         f;
	Sluice__V1__Flag        *fp = &f;
	Sluice__V1__FlagValue    v[2];
	Sluice__V1__FlagValue   *vp[2] = { &v[0], &v[1] };

	for (int i = 0; i < 2; i++) {
		sluice__v1__flag_value__init(&v[i]);
		v[i].kind_case  = SLUICE__V1__FLAG_VALUE__KIND_BOOL_VALUE;
		v[i].bool_value = i;
	}
	sluice__v1__flag__init(&f);
	f.key      = UNCONST(FLAG);
	f.n_values = 2;
	f.values   = vp;
	sluice__v1__rollout_spec__init(&spec);
	spec.name     = UNCONST(ROLLOUT);
	spec.owner    = UNCONST("bench");
	spec.n_stages = 2;
	spec.stages   = stages;
	spec.n_flags  = 1;
	spec.flags    = &fp;
	sluice__v1__apply_rollout__init(&ap);
	ap.spec  = &spec;
	ap.force = true;
	sluice__v1__command__init(&cmd);
	cmd.reason      = UNCONST("bench_flip");
	cmd.action_case = SLUICE__V1__COMMAND__ACTION_APPLY;
	cmd.apply       = &ap;
	return (bench_write_cmd("bench_flip", r, k, &cmd, revp));
}

// Promote to "on" or roll back to "off".
static int
flip(sl_rpc *r, const sl_secret *k, bool on, uint64_t *revp)
{
	Sluice__V1__Command  cmd;
	Sluice__V1__Promote  pr;
	Sluice__V1__Rollback rb;

	sluice__v1__command__init(&cmd);
	sluice__v1__promote__init(&pr);
	sluice__v1__rollback__init(&rb);
	cmd.reason = UNCONST("bench_flip");
	if (on) {
		pr.rollout      = UNCONST(ROLLOUT);
		pr.to_stage     = UNCONST("on");
		cmd.action_case = SLUICE__V1__COMMAND__ACTION_PROMOTE;
		cmd.promote     = &pr;
	} else {
		rb.rollout      = UNCONST(ROLLOUT);
		rb.to_stage     = UNCONST("off");
		cmd.action_case = SLUICE__V1__COMMAND__ACTION_ROLLBACK;
		cmd.rollback    = &rb;
	}
	return (bench_write_cmd("bench_flip", r, k, &cmd, revp));
}

static int
current_stage(sl_rpc *r, uint32_t *stagep)
{
	Sluice__V1__Request    req;
	Sluice__V1__GetRollout get;
	Sluice__V1__Reply     *rep = NULL;
	int                    rv;

	sluice__v1__request__init(&req);
	sluice__v1__get_rollout__init(&get);
	get.name    = UNCONST(ROLLOUT);
	req.op_case = SLUICE__V1__REQUEST__OP_GET;
	req.get     = &get;
	if ((rv = sl_rpc_call(r, &req, &rep)) == SLUICE_OK &&
	    rep->rollout != NULL) {
		*stagep = rep->rollout->stage;
	}
	if (rep != NULL) {
		sluice__v1__reply__free_unpacked(rep, NULL);
	}
	return (rv);
}

// How many clients flagd's registry shows at >= rev.
static size_t
acked_at(sl_rpc *r, uint64_t rev)
{
	Sluice__V1__Request     req;
	Sluice__V1__ListClients lc;
	Sluice__V1__Reply      *rep = NULL;
	size_t                  n   = 0;

	sluice__v1__request__init(&req);
	sluice__v1__list_clients__init(&lc);
	req.op_case = SLUICE__V1__REQUEST__OP_CLIENTS;
	req.clients = &lc;
	if (sl_rpc_call(r, &req, &rep) == SLUICE_OK && rep->clients != NULL) {
		for (size_t i = 0; i < rep->clients->n_clients; i++) {
			n += rep->clients->clients[i]->applied_revision >= rev;
		}
	}
	if (rep != NULL) {
		sluice__v1__reply__free_unpacked(rep, NULL);
	}
	return (n);
}

static double
rss_mib(void)
{
	FILE  *f = fopen("/proc/self/statm", "r");
	long   size;
	long   res = 0;
	double mib;

	if (f == NULL) {
		return (NAN);
	}
	if (fscanf(f, "%ld %ld", &size, &res) != 2) {
		res = 0;
	}
	fclose(f);
	mib = (double) res * (double) sysconf(_SC_PAGESIZE) / 1048576.0;
	return (mib);
}

typedef struct closer {
	sluice_client **cs;
	size_t          n;
	size_t          from;
	size_t          step;
} closer;

static void *
closer_main(void *arg)
{
	closer *k = arg;

	for (size_t i = k->from; i < k->n; i += k->step) {
		sluice_client_close(k->cs[i]);
	}
	return (NULL);
}

// Closes the clients from a few threads: each close waits for its
// stream's pipe to end (up to a heartbeat, clients/lib/sock.c), and a
// thousand of those in a row would take minutes.
static void
close_all(sluice_client **cs, size_t n)
{
	enum { CLOSERS = 16 };
	closer    k[CLOSERS];
	pthread_t t[CLOSERS];
	bool      started[CLOSERS];

	for (size_t i = 0; i < CLOSERS; i++) {
		k[i] = (closer) { cs, n, i, CLOSERS };
		started[i] =
		    pthread_create(&t[i], NULL, closer_main, &k[i]) == 0;
		if (!started[i]) {
			closer_main(&k[i]);
		}
	}
	for (size_t i = 0; i < CLOSERS; i++) {
		if (started[i]) {
			pthread_join(t[i], NULL);
		}
	}
}

// One run: n clients, flips flips. Prints one line; never asserts.
static void
run(const char *api, sl_rpc *r, const sl_secret *k, size_t n, unsigned flips)
{
	sluice_client **cs;
	bench_member   *ms;
	double         *lat;
	double         *commit;
	double         *first;
	size_t          nlat  = 0;
	unsigned        stuck = 0;
	double          rss0  = rss_mib();
	double          rss1;
	double          t_open;
	double          acked_ms = NAN;
	uint64_t        rev      = 0;
	uint64_t        t0;
	uint32_t        stage = 0;
	bench_fan       f;

	bench_fan_init(&f);
	f.n    = n;
	cs     = calloc(n, sizeof(*cs));
	ms     = calloc(n, sizeof(*ms));
	lat    = calloc(flips, sizeof(*lat));
	commit = calloc(flips, sizeof(*commit));
	first  = calloc(flips, sizeof(*first));
	if (cs == NULL || ms == NULL || lat == NULL || commit == NULL ||
	    first == NULL) {
		fprintf(stderr, "bench_flip: out of memory\n");
		exit(1);
	}
	t0 = bench_now_ns();
	n  = bench_fan_clients_open(&f, cs, ms, n, api, "bench_flip");
	// All synced before the first flip.
	(void) current_stage(r, &stage);
	for (size_t i = 0; i < n; i++) {
		(void) sluice_wait_revision(cs[i], 1, 30000);
	}
	t_open = (double) (bench_now_ns() - t0) / 1e9;
	rss1   = rss_mib();

	for (unsigned i = 0; i < flips; i++) {
		uint64_t        tw;
		uint64_t        got  = 0;
		uint64_t        base = sluice_client_revision(cs[0]) > rev
		           ? sluice_client_revision(cs[0])
		           : rev;
		int             rv;

		// The bench is the only writer, so the flip's revision is
		// known before the write leaves: a client may apply it
		// before the write's reply is back here.
		atomic_store(&f.done, 0);
		atomic_store(&f.target, base + 1);
		tw        = bench_now_ns();
		rv        = flip(r, k, stage == 0, &got);
		commit[i] = (double) (bench_now_ns() - tw) / 1e6;
		if (rv != SLUICE_OK) {
			stuck++;
			atomic_store(&f.target, 0);
			(void) current_stage(r, &stage);
			continue;
		}
		stage = stage == 0 ? 1 : 0;
		rev   = got;
		if (got != base + 1) {
			// Another writer or a stale base: count this flip
			// from the revision the write got.
			atomic_store(&f.done, 0);
			atomic_store(&f.target, got);
			for (size_t j = 0; j < n; j++) {
				if (sluice_client_revision(cs[j]) >= got) {
					atomic_fetch_add(&f.done, 1);
					ms[j].counted = got;
				}
			}
			// Clients counted here applied it before now: now is
			// an upper bound for the last of them.
			pthread_mutex_lock(&f.mtx);
			if (atomic_load(&f.done) >= n && f.t_last_ns < tw) {
				f.t_last_ns = bench_now_ns();
			}
			pthread_mutex_unlock(&f.mtx);
		}
		if (!bench_fan_wait(&f, tw, FLIP_TIMEOUT_MS)) {
			stuck++;
		} else {
			first[nlat] =
			    (double) (atomic_load(&f.t_first_ns) - tw) / 1e6;
			lat[nlat++] = (double) (f.t_last_ns - tw) / 1e6;
		}
		atomic_store(&f.target, 0);
		if (i + 1 == flips) {
			// What `flagctl wait` would see: every client's ack.
			uint64_t ta = bench_now_ns();
			while (acked_at(r, rev) < n &&
			    bench_now_ns() - ta < 10000000000u) {
				bench_nap_ms(2);
			}
			if (acked_at(r, rev) >= n) {
				acked_ms =
				    (double) (bench_now_ns() - tw) / 1e6;
			}
		}
		// Each flip is measured on a settled system, as flips are
		// rare events: the clients' acks of this one (sent once their
		// stream has been quiet for 20 ms) land before the next.
		// bench_etcd_watch pauses as long between its puts.
		bench_nap_ms(BENCH_GAP_MS);
	}
	qsort(lat, nlat, sizeof(*lat), bench_cmp_double);
	qsort(commit, flips, sizeof(*commit), bench_cmp_double);
	qsort(first, nlat, sizeof(*first), bench_cmp_double);
	printf("bench: flip -> all %zu clients (changes applied): p50 %.2f "
	       "ms, p99 %.2f ms, max %.2f ms over %zu flips%s\n",
	    n, bench_pct(lat, nlat, 0.50), bench_pct(lat, nlat, 0.99),
	    nlat > 0 ? lat[nlat - 1] : NAN, nlat,
	    stuck > 0 ? " (some flips timed out or failed)" : "");
	printf("bench:   for comparison, the write's own round trip (commit "
	       "and reply): p50 %.2f ms, "
	       "p99 %.2f ms; flip -> every ack at flagd (flagctl wait): "
	       "%.1f ms (last flip)\n",
	    bench_pct(commit, flips, 0.50), bench_pct(commit, flips, 0.99),
	    acked_ms);
	printf("{\"bench\":\"flip\",\"clients\":%zu,\"p50\":%.3f,"
	       "\"p99\":%.3f,\"max\":%.3f,\"n\":%zu,\"stuck\":%u,"
	       "\"commit_p50\":%.3f,\"commit_p99\":%.3f,"
	       "\"first_p50\":%.3f,\"first_p99\":%.3f}\n",
	    n, bench_pct(lat, nlat, 0.50), bench_pct(lat, nlat, 0.99),
	    nlat > 0 ? lat[nlat - 1] : NAN, nlat, stuck,
	    bench_pct(commit, flips, 0.50), bench_pct(commit, flips, 0.99),
	    bench_pct(first, nlat, 0.50), bench_pct(first, nlat, 0.99));
	printf("bench:   %zu clients opened and synced in %.2f s; resident "
	       "memory %.1f KiB per client (tiny snapshot, threads, "
	       "sockets)\n",
	    n, t_open, (rss1 - rss0) * 1024.0 / (double) (n > 0 ? n : 1));
	fflush(stdout);
	close_all(cs, n);
	free(cs);
	free(ms);
	free(lat);
	free(commit);
	free(first);
	bench_fan_fini(&f);
}

static void
raise_nofile(size_t clients)
{
	struct rlimit rl;
	// Each client holds two connections; flagd's end is its own.
	rlim_t want = (rlim_t) clients * 4 + 256;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		return;
	}
	if (rl.rlim_cur < want) {
		rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
		(void) setrlimit(RLIMIT_NOFILE, &rl);
		(void) getrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_cur < want) {
			fprintf(stderr,
			    "bench_flip: only %llu file descriptors (wanted "
			    "%llu); large runs may fail\n",
			    (unsigned long long) rl.rlim_cur,
			    (unsigned long long) want);
		}
	}
}

int
main(int argc, char **argv)
{
	const char *api         = NULL;
	const char *keyfile     = NULL;
	unsigned    flips_small = 200;
	unsigned    flips_large = 50;
	size_t      large       = 1000;
	sl_secret  *k           = NULL;
	sl_rpc     *r           = NULL;
	uint64_t    rev;
	char        err[256];

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--api") == 0) {
			api = argv[i + 1];
		} else if (strcmp(argv[i], "--key") == 0) {
			keyfile = argv[i + 1];
		} else if (strcmp(argv[i], "--flips") == 0) {
			flips_small =
			    (unsigned) strtoul(argv[i + 1], NULL, 10);
		} else if (strcmp(argv[i], "--large") == 0) {
			large = strtoul(argv[i + 1], NULL, 10);
		}
	}
	if (api == NULL || keyfile == NULL || flips_small == 0) {
		fprintf(stderr,
		    "usage: bench_flip --api URL --key FILE [--flips N] "
		    "[--large CLIENTS]\n");
		return (2);
	}
	sl_log_level = SL_LOG_ERR;
	raise_nofile(large);
	if (sl_secret_load(&k, keyfile, err, sizeof(err)) != SLUICE_OK) {
		fprintf(stderr, "bench_flip: key %s: %s\n", keyfile, err);
		return (1);
	}
	if (sl_rpc_open(&r, api, 10000) != SLUICE_OK ||
	    apply_rollout(r, k, &rev) != SLUICE_OK) {
		fprintf(stderr, "bench_flip: cannot set up %s at %s\n",
		    ROLLOUT, api);
		sl_rpc_close(r);
		sl_secret_free(k);
		return (1);
	}
	run(api, r, k, 100, flips_small);
	if (large > 0) {
		run(api, r, k, large, flips_large);
	}
	sl_rpc_close(r);
	sl_secret_free(k);
	return (0);
}
