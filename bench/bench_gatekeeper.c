// SPDX-License-Identifier: MIT
//
// bench_gatekeeper.c — gatekeeper's figures against a running flagd and
// gatekeeper (bench/run.sh starts both and stops them by PID):
//
//  1. verified reports per second with 1, 8, 32 and 64 concurrent reporters
//     (--reporters 1,8,32,64; each a sluice_client with its own REQ socket
//     and job, signing with a reporter key), bounded by a count and a
//     time; with --gk-http, gatekeeper's LMDB commits per phase (from its
//     /metrics) and so the reports per group commit;
//  2. gatekeeper's own CPU time per accepted report (utime + stime of the
//     gatekeeper process from /proc/PID/stat, before and after phase 1),
//     beside the CPU cost of one raw crypto_sign_verify_detached over a
//     report of the same shape, measured in this run, and their ratio;
//  3. bad report -> rollback visible in N (100) sluice clients: per trial
//     the rollout is promoted back to canary, every client is waited for,
//     then bad reports are sent until the gate trips; the latency runs
//     from sending the report that tripped it to the change callback of
//     the last client at the rollback revision. Bounded trials.
//
// It prints; it never judges the numbers.

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "bench_util.h"
#include "codec.h"
#include "envelope.h"
#include "keys.h"
#include "rollout.h"
#include "rpc.h"
#include "sluice.h"

#define R_TPUT "bench_gk_tput"
#define R_FLIP "bench_gk_flip"
#define UNCONST(s) ((char *) (uintptr_t) (s))
#define MAX_REPORTERS 256
#define MAX_PHASES 8

static uint64_t
thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ((uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec);
}

// CPU seconds (user + system) of process pid so far, the system part in
// *sysp; NAN if unreadable.
static double
proc_cpu_s(long pid, double *sysp)
{
	char               path[64], buf[1024], *p;
	FILE              *f;
	size_t             n;
	unsigned long long ut = 0, st = 0;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if ((f = fopen(path, "r")) == NULL) {
		return (NAN);
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	// Fields after the command name (which may hold spaces): state is
	// field 3; utime and stime are 14 and 15.
	if ((p = strrchr(buf, ')')) == NULL ||
	    sscanf(p + 2,
	        "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
	        &st) != 2) {
		return (NAN);
	}
	*sysp = (double) st / (double) sysconf(_SC_CLK_TCK);
	return ((double) (ut + st) / (double) sysconf(_SC_CLK_TCK));
}

// sluice_gk_report_commits_total from gatekeeper's /metrics at url
// (http://127.0.0.1:PORT, loopback only, plain HTTP/1.0); -1 if unknown.
static double
gk_commits(const char *url)
{
	static const char  req[] = "GET /metrics HTTP/1.0\r\n"
	                           "Connection: close\r\n\r\n";
	struct timeval     tv    = { 5, 0 };
	struct sockaddr_in sa;
	char               buf[65536], *p;
	size_t             n = 0;
	ssize_t            k;
	unsigned           port;
	int                fd;
	double             v = -1;

	if (url == NULL || sscanf(url, "http://127.0.0.1:%u", &port) != 1 ||
	    port > 65535) {
		return (-1);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sin_family      = AF_INET;
	sa.sin_port        = htons((uint16_t) port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0) {
		return (-1);
	}
	(void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0 ||
	    write(fd, req, sizeof(req) - 1) != (ssize_t) (sizeof(req) - 1)) {
		close(fd);
		return (-1);
	}
	while (n < sizeof(buf) - 1 &&
	    (k = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0) {
		n += (size_t) k;
	}
	close(fd);
	buf[n] = '\0';
	if ((p = strstr(buf, "\nsluice_gk_report_commits_total ")) != NULL) {
		v = strtod(
		    p + strlen("\nsluice_gk_report_commits_total "), NULL);
	}
	return (v);
}

// ---------------------------------------------------------------- flagd

// A rollout baseline/canary/full with a gate at canary: window reports
// and min samples as given, consecutive failures 1 when trip is set.
static int
apply_rollout(sl_rpc *r, const sl_secret *k, const char *name, uint32_t window,
    uint32_t min_samples, bool trip)
{
	static char *stages[3] = { UNCONST("baseline"), UNCONST("canary"),
		UNCONST("full") };
	Sluice__V1__Command      cmd;
	Sluice__V1__ApplyRollout ap;
	Sluice__V1__RolloutSpec  spec;
	Sluice__V1__Flag         f;
	Sluice__V1__Flag        *fp = &f;
	Sluice__V1__FlagValue    v[3];
	Sluice__V1__FlagValue   *vp[3] = { &v[0], &v[1], &v[2] };
	Sluice__V1__Gate         g;
	Sluice__V1__Gate        *gp = &g;
	Sluice__V1__Condition    c[2];
	Sluice__V1__Condition   *cp[2] = { &c[0], &c[1] };
	char                     flag[96], err[128];
	int                      rv;

	for (int i = 0; i < 3; i++) {
		sluice__v1__flag_value__init(&v[i]);
		v[i].kind_case  = SLUICE__V1__FLAG_VALUE__KIND_BOOL_VALUE;
		v[i].bool_value = i > 0;
	}
	snprintf(flag, sizeof(flag), "%s.on", name);
	sluice__v1__flag__init(&f);
	f.key      = flag;
	f.n_values = 3;
	f.values   = vp;
	sluice__v1__condition__init(&c[0]);
	sluice__v1__condition__init(&c[1]);
	if (sl_condition_parse("error_rate mean < 0.01", &c[0], err,
	        sizeof(err)) != SLUICE_OK ||
	    sl_condition_parse("latency_ms p95 < 2000", &c[1], err,
	        sizeof(err)) != SLUICE_OK) {
		fprintf(stderr, "bench_gatekeeper: condition: %s\n", err);
		return (SLUICE_EINVAL);
	}
	sluice__v1__gate__init(&g);
	g.stage                = stages[1];
	g.conditions           = cp;
	g.n_conditions         = 2;
	g.window_reports       = window;
	g.min_samples          = min_samples;
	g.consecutive_failures = trip ? 1 : 2;
	sluice__v1__rollout_spec__init(&spec);
	spec.name     = UNCONST(name);
	spec.owner    = UNCONST("bench");
	spec.n_stages = 3;
	spec.stages   = stages;
	spec.n_flags  = 1;
	spec.flags    = &fp;
	spec.n_gates  = 1;
	spec.gates    = &gp;
	sluice__v1__apply_rollout__init(&ap);
	ap.spec  = &spec;
	ap.force = true;
	sluice__v1__command__init(&cmd);
	cmd.reason      = UNCONST("bench_gatekeeper");
	cmd.action_case = SLUICE__V1__COMMAND__ACTION_APPLY;
	cmd.apply       = &ap;
	rv = bench_write_cmd("bench_gatekeeper", r, k, &cmd, NULL);
	sl_condition_clear(&c[0]);
	sl_condition_clear(&c[1]);
	return (rv);
}

static int
promote_canary(sl_rpc *r, const sl_secret *k, const char *name, uint64_t *revp)
{
	Sluice__V1__Command cmd;
	Sluice__V1__Promote pr;

	sluice__v1__command__init(&cmd);
	sluice__v1__promote__init(&pr);
	pr.rollout      = UNCONST(name);
	pr.to_stage     = UNCONST("canary");
	cmd.reason      = UNCONST("bench_gatekeeper: back to canary");
	cmd.action_case = SLUICE__V1__COMMAND__ACTION_PROMOTE;
	cmd.promote     = &pr;
	return (bench_write_cmd("bench_gatekeeper", r, k, &cmd, revp));
}

// ---------------------------------------------------------------- reports

static int
reporter_open(sluice_client **cp, const char *gk, const char *key)
{
	sluice_client_opts o;

	sluice_client_opts_init(&o);
	o.key_file           = key;
	o.gatekeeper         = gk;
	o.request_timeout_ms = 10000;
	// No flagd: the stage is always given, so an offline client serves.
	return (sluice_client_open(cp, "", &o));
}

static int
send_one(sluice_client *c, const char *rollout, const char *job,
    double error_rate, sluice_verdict *v)
{
	static const char *const units[] = { "2026-11-01" };
	sluice_metric            m[2]    = { { "error_rate", error_rate },
		              { "latency_ms", 830 } };
	sluice_report            r;

	memset(&r, 0, sizeof(r));
	r.rollout   = rollout;
	r.stage     = "canary";
	r.job       = job;
	r.run_id    = "bench";
	r.units     = units;
	r.n_units   = 1;
	r.metrics   = m;
	r.n_metrics = 2;
	return (sluice_report(c, &r, v));
}

typedef struct rep_arg {
	const char *gk, *key;
	unsigned    idx;
	uint64_t    want;
	uint64_t    deadline_ns;
	uint64_t    accepted, rejected, errors;
	char        last_reason[32];
} rep_arg;

static void *
reporter_main(void *p)
{
	rep_arg       *a = p;
	sluice_client *c;
	char           job[32];

	snprintf(job, sizeof(job), "bench_job_%u_%d", a->idx, (int) getpid());
	if (reporter_open(&c, a->gk, a->key) != SLUICE_OK) {
		a->errors = 1;
		return (NULL);
	}
	for (uint64_t i = 0; i < a->want && bench_now_ns() < a->deadline_ns;
	     i++) {
		sluice_verdict v;

		if (send_one(c, R_TPUT, job, 0.001, &v) != SLUICE_OK) {
			a->errors++;
		} else if (v.accepted) {
			a->accepted++;
		} else {
			a->rejected++;
			snprintf(a->last_reason, sizeof(a->last_reason), "%s",
			    v.reason);
		}
	}
	sluice_client_close(c);
	return (NULL);
}

// One throughput phase: n reporters, want reports in all, at most secs.
// Returns gatekeeper CPU seconds per accepted report (NAN if unknown).
// gk_http (may be NULL): gatekeeper's HTTP URL, for its commit count.
static double
throughput(const char *gk, const char *key, long gk_pid, const char *gk_http,
    unsigned n, uint64_t want, unsigned secs)
{
	static pthread_t thr[MAX_REPORTERS];
	static rep_arg   a[MAX_REPORTERS];
	uint64_t         acc = 0, rej = 0, err = 0, t0, t1;
	double           cpu0, cpu1, sys0 = 0, sys1 = 0, per, com0, com1;
	char             groups[96] = "";

	memset(a, 0, sizeof(a));
	com0 = gk_commits(gk_http);
	cpu0 = proc_cpu_s(gk_pid, &sys0);
	t0   = bench_now_ns();
	for (unsigned i = 0; i < n; i++) {
		a[i].gk          = gk;
		a[i].key         = key;
		a[i].idx         = i;
		a[i].want        = want / n;
		a[i].deadline_ns = t0 + (uint64_t) secs * 1000000000u;
		if (pthread_create(&thr[i], NULL, reporter_main, &a[i]) != 0) {
			n = i;
			break;
		}
	}
	for (unsigned i = 0; i < n; i++) {
		pthread_join(thr[i], NULL);
		acc += a[i].accepted;
		rej += a[i].rejected;
		err += a[i].errors;
	}
	t1   = bench_now_ns();
	cpu1 = proc_cpu_s(gk_pid, &sys1);
	com1 = gk_commits(gk_http);
	per  = acc > 0 ? (cpu1 - cpu0) / (double) acc : NAN;
	if (com0 >= 0 && com1 > com0) {
		snprintf(groups, sizeof(groups),
		    "; %.0f LMDB commits = %.2f reports per commit",
		    com1 - com0, (double) acc / (com1 - com0));
	}
	printf("bench_gatekeeper: %u reporter%s: %llu accepted in %.2f s = "
	       "%.0f verified reports/s (rejected %llu%s%s, errors %llu); "
	       "gatekeeper CPU %.3f s = %.1f us per accepted report "
	       "(%.1f us of it system time)%s\n",
	    n, n == 1 ? "" : "s", (unsigned long long) acc,
	    (double) (t1 - t0) / 1e9,
	    (double) acc / ((double) (t1 - t0) / 1e9),
	    (unsigned long long) rej, rej > 0 ? ", last: " : "",
	    rej > 0 ? a[0].last_reason : "", (unsigned long long) err,
	    cpu1 - cpu0, per * 1e6,
	    acc > 0 ? (sys1 - sys0) / (double) acc * 1e6 : NAN, groups);
	return (per);
}

// CPU seconds of one crypto_sign_verify_detached over a report of the
// bench's shape, as gatekeeper verifies it (context || body).
static double
raw_verify_cost(unsigned iters)
{
	static const char        ctx[] = SL_CTX_REPORT; // with its NUL
	sl_secret               *k     = NULL;
	Sluice__V1__MetricReport mr;
	Sluice__V1__MetricReport__MetricsEntry e[2], *ep[2] = { &e[0], &e[1] };
	char                    *units[1] = { UNCONST("2026-11-01") };
	Sluice__V1__SignedReport sr;
	uint8_t                 *msg;
	size_t                   mlen;
	uint64_t                 t0;
	unsigned                 ok = 0;

	if (sl_secret_generate(&k, "bench") != SLUICE_OK) {
		return (NAN);
	}
	sluice__v1__metric_report__init(&mr);
	sluice__v1__metric_report__metrics_entry__init(&e[0]);
	sluice__v1__metric_report__metrics_entry__init(&e[1]);
	e[0].key     = UNCONST("error_rate");
	e[0].value   = 0.001;
	e[1].key     = UNCONST("latency_ms");
	e[1].value   = 830;
	mr.rollout   = UNCONST(R_TPUT);
	mr.stage     = UNCONST("canary");
	mr.job       = UNCONST("bench_job_0");
	mr.run_id    = UNCONST("bench");
	mr.sequence  = 1700000000000000ull;
	mr.time_ms   = 1700000000000ull;
	mr.units     = units;
	mr.n_units   = 1;
	mr.metrics   = ep;
	mr.n_metrics = 2;
	sluice__v1__signed_report__init(&sr);
	if (sl_report_seal(k, &mr, &sr) != SLUICE_OK) {
		sl_secret_free(k);
		return (NAN);
	}
	mlen = sizeof(ctx) + sr.body.len;
	msg  = malloc(mlen);
	if (msg == NULL) {
		exit(1);
	}
	memcpy(msg, ctx, sizeof(ctx));
	memcpy(msg + sizeof(ctx), sr.body.data, sr.body.len);
	t0 = thread_cpu_ns();
	for (unsigned i = 0; i < iters; i++) {
		ok += crypto_sign_verify_detached(
		          sr.signature.data, msg, mlen, k->pk) == 0;
	}
	t0 = thread_cpu_ns() - t0;
	if (ok != iters) {
		printf("bench_gatekeeper: WARNING: the raw verify failed "
		       "(%u of %u ok): the context string differs\n",
		    ok, iters);
	}
	free(msg);
	sl_signed_report_clear(&sr);
	sl_secret_free(k);
	return ((double) t0 / 1e9 / (double) iters);
}

// ---------------------------------------------------------------- flip

static void
flip_trials(const char *api, const char *gk, const char *rkey, sl_rpc *r,
    const sl_secret *admin, size_t n, unsigned trials)
{
	sluice_client **cs   = calloc(n, sizeof(*cs));
	bench_member   *ms   = calloc(n, sizeof(*ms));
	double         *lat  = calloc(trials + 1, sizeof(*lat));
	double         *rtt  = calloc(trials + 1, sizeof(*rtt));
	double         *olat = calloc(trials + 1, sizeof(*olat));
	sluice_client  *rep  = NULL;
	size_t          nlat = 0, nolat = 0, sent = 0;
	uint64_t        last_rev = 0; // the previous trial's rollback
	unsigned        missed   = 0;
	bench_fan       f;
	char            job[32];

	if (cs == NULL || ms == NULL || lat == NULL || rtt == NULL ||
	    olat == NULL) {
		fprintf(stderr, "bench_gatekeeper: out of memory\n");
		exit(1);
	}
	bench_fan_init(&f);
	n = bench_fan_clients_open(&f, cs, ms, n, api, "bench_gatekeeper");
	if (reporter_open(&rep, gk, rkey) != SLUICE_OK) {
		fprintf(stderr, "bench_gatekeeper: no reporter client\n");
		goto out;
	}
	snprintf(job, sizeof(job), "bench_flip_%d", (int) getpid());
	for (unsigned t = 0; t < trials; t++) {
		uint64_t       prom = 0, t0 = 0, t1 = 0, deadline;
		sluice_verdict v;
		bool           tripped = false;
		int            rv;

		// Each trial on a settled system, as in bench_flip (and
		// bench_etcd_watch): the clients ack a change once their
		// stream has been quiet for 20 ms, and those acks would
		// otherwise meet the next trial's writes at flagd.
		if (t > 0) {
			bench_nap_ms(BENCH_GAP_MS);
		}
		// The same path without gatekeeper, in the same trial: an
		// operator's write (the promotion back to canary) to the
		// last of the clients. Its revision is known in advance once
		// a rollback was seen (nothing else writes).
		atomic_store(&f.done, 0);
		f.t_last_ns = 0;
		atomic_store(&f.target, last_rev != 0 ? last_rev + 1 : 0);
		t0 = bench_now_ns();
		if (promote_canary(r, admin, R_FLIP, &prom) != SLUICE_OK) {
			atomic_store(&f.target, 0);
			last_rev = 0;
			missed++;
			bench_nap_ms(200);
			continue;
		}
		// 10 s for all the clients together, not each: a stalled
		// fan-out must not stretch a trial to n x 10 s.
		deadline = bench_now_ns() + 10000000000ull;
		for (size_t i = 0; i < n; i++) {
			uint64_t now = bench_now_ns();
			(void) sluice_wait_revision(cs[i], prom,
			    now < deadline
			        ? (uint32_t) ((deadline - now) / 1000000u)
			        : 0);
		}
		pthread_mutex_lock(&f.mtx);
		if (last_rev != 0 && prom == last_rev + 1 &&
		    atomic_load(&f.done) == f.n && f.t_last_ns > t0) {
			olat[nolat++] = (double) (f.t_last_ns - t0) / 1e6;
		}
		pthread_mutex_unlock(&f.mtx);
		last_rev = 0;
		atomic_store(&f.done, 0);
		f.t_last_ns = 0;
		// Nothing else writes: the rollback is the next revision.
		atomic_store(&f.target, prom + 1);
		// Until gatekeeper has applied the promotion, a canary
		// report is only recorded; bounded retries.
		for (int k = 0; k < 500 && !tripped; k++) {
			t0 = bench_now_ns();
			rv = send_one(rep, R_FLIP, job, 0.5, &v);
			t1 = bench_now_ns();
			sent++;
			if (rv != SLUICE_OK) {
				break;
			}
			tripped = strcmp(v.gate, "rolled_back") == 0;
			if (!tripped) {
				bench_nap_ms(1);
			}
		}
		if (!tripped) {
			missed++;
			atomic_store(&f.target, 0);
			continue;
		}
		if (!bench_fan_wait(&f, t0, 10000)) {
			missed++;
		} else {
			lat[nlat]   = (double) (f.t_last_ns - t0) / 1e6;
			rtt[nlat++] = (double) (t1 - t0) / 1e6;
			last_rev    = prom + 1;
		}
		atomic_store(&f.target, 0);
	}
	qsort(lat, nlat, sizeof(*lat), bench_cmp_double);
	qsort(rtt, nlat, sizeof(*rtt), bench_cmp_double);
	qsort(olat, nolat, sizeof(*olat), bench_cmp_double);
	printf("bench_gatekeeper: bad report -> rollback in all %zu clients: "
	       "p50 %.2f ms, p99 %.2f ms, max %.2f ms over %zu trials "
	       "(%u missed; %zu reports sent); the tripping report's own "
	       "round trip (verify, CAS write with fsync, verdict): p50 "
	       "%.2f ms\n",
	    n, bench_pct(lat, nlat, 0.50), bench_pct(lat, nlat, 0.99),
	    nlat ? lat[nlat - 1] : NAN, nlat, missed, sent,
	    bench_pct(rtt, nlat, 0.50));
	printf("bench_gatekeeper: for comparison, the same trials' "
	       "operator write (promote back to canary, fsync) -> all %zu "
	       "clients, no gatekeeper: p50 %.2f ms, p99 %.2f ms over %zu\n",
	    n, bench_pct(olat, nolat, 0.50), bench_pct(olat, nolat, 0.99),
	    nolat);
out:
	sluice_client_close(rep);
	for (size_t i = 0; i < n; i++) {
		sluice_client_close(cs[i]);
	}
	free(cs);
	free(ms);
	free(lat);
	free(rtt);
	free(olat);
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: bench_gatekeeper --api URL --key ADMINKEY --gk URL "
	    "--gk-pid PID --reporter-key FILE\n"
	    "       [--reports N] [--seconds S] [--clients N] "
	    "[--trials N]\n"
	    "       [--reporters N,N,...] (default 1,8,32,64; each up to %d) "
	    "[--gk-http URL]\n",
	    MAX_REPORTERS);
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *api = NULL, *key = NULL, *gk = NULL, *rkey = NULL;
	const char *gk_http = NULL, *phases_arg = "1,8,32,64";
	unsigned    phases[MAX_PHASES], nphases = 0;
	double      per[MAX_PHASES];
	char        line[512];
	size_t      off;
	long        gk_pid  = 0;
	uint64_t    reports = 4000;
	unsigned    secs = 20, trials = 100;
	size_t      clients = 100;
	sl_secret  *admin   = NULL;
	sl_rpc     *r       = NULL;
	char        err[256];
	double      verify;

	for (int i = 1; i + 1 < argc; i += 2) {
		const char *a = argv[i], *v = argv[i + 1];
		if (strcmp(a, "--api") == 0) {
			api = v;
		} else if (strcmp(a, "--key") == 0) {
			key = v;
		} else if (strcmp(a, "--gk") == 0) {
			gk = v;
		} else if (strcmp(a, "--gk-pid") == 0) {
			gk_pid = strtol(v, NULL, 10);
		} else if (strcmp(a, "--reporter-key") == 0) {
			rkey = v;
		} else if (strcmp(a, "--reports") == 0) {
			reports = strtoull(v, NULL, 10);
		} else if (strcmp(a, "--seconds") == 0) {
			secs = (unsigned) strtoul(v, NULL, 10);
		} else if (strcmp(a, "--clients") == 0) {
			clients = strtoul(v, NULL, 10);
		} else if (strcmp(a, "--trials") == 0) {
			trials = (unsigned) strtoul(v, NULL, 10);
		} else if (strcmp(a, "--reporters") == 0) {
			phases_arg = v;
		} else if (strcmp(a, "--gk-http") == 0) {
			gk_http = v;
		} else {
			usage();
		}
	}
	for (const char *p = phases_arg; *p != '\0';) {
		char         *end;
		unsigned long n = strtoul(p, &end, 10);

		if (end == p || n == 0 || n > MAX_REPORTERS ||
		    nphases == MAX_PHASES || (*end != ',' && *end != '\0')) {
			usage();
		}
		phases[nphases++] = (unsigned) n;
		p                 = *end == ',' ? end + 1 : end;
	}
	if (nphases == 0 || api == NULL || key == NULL || gk == NULL ||
	    rkey == NULL || gk_pid <= 0 || reports == 0 || clients == 0 ||
	    clients > 10000 || trials > 1000 || secs == 0) {
		usage();
	}
	if (sl_crypto_init() != SLUICE_OK ||
	    sl_secret_load(&admin, key, err, sizeof(err)) != SLUICE_OK ||
	    sl_rpc_open(&r, api, 5000) != SLUICE_OK) {
		fprintf(stderr, "bench_gatekeeper: setup failed %s\n", err);
		return (1);
	}
	if (apply_rollout(r, admin, R_TPUT, 20, 5, false) != SLUICE_OK ||
	    apply_rollout(r, admin, R_FLIP, 1, 1, true) != SLUICE_OK ||
	    promote_canary(r, admin, R_TPUT, NULL) != SLUICE_OK) {
		return (1);
	}
	bench_nap_ms(300); // let gatekeeper follow the promotion

	verify = raw_verify_cost(5000);
	// A short warm-up (connections, LMDB pages), not counted.
	(void) throughput(gk, rkey, gk_pid, NULL, 1, 100, secs);
	for (unsigned i = 0; i < nphases; i++) {
		per[i] = throughput(
		    gk, rkey, gk_pid, gk_http, phases[i], reports, secs);
	}
	off = (size_t) snprintf(line, sizeof(line),
	    "bench_gatekeeper: raw crypto_sign_verify_detached %.1f us; "
	    "gatekeeper CPU per accepted report / raw verify =",
	    verify * 1e6);
	for (unsigned i = 0; i < nphases && off < sizeof(line); i++) {
		off += (size_t) snprintf(line + off, sizeof(line) - off,
		    "%s %.2f (%u reporter%s)", i > 0 ? "," : "",
		    per[i] / verify, phases[i], phases[i] == 1 ? "" : "s");
	}
	printf("%s\n", line);

	flip_trials(api, gk, rkey, r, admin, clients, trials);
	sl_rpc_close(r);
	sl_secret_free(admin);
	return (0);
}
