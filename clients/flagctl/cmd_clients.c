// SPDX-License-Identifier: MIT
//
// cmd_clients.c — `flagctl clients` and `flagctl wait`. libsluice clients
// acknowledge the revision they have applied to the node they follow, and
// each node keeps those acks in memory (flagd/clients.c; not replicated).
// So both verbs ask every endpoint listed in --server, merge the answers
// by client id (the most recent ack wins) and tolerate nodes that do not
// answer, as long as one does.

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd_clients.h"
#include "output.h"

#define WAIT_POLL_MS 200u
#define WAIT_DEFAULT_MS 60000u
#define WAIT_MAX_LAGGARDS 10u

// One client as the merged view shows it; ci is borrowed from a reply.
typedef struct row {
	const Sluice__V1__ClientInfo *ci;
	uint64_t                      node_now_ms;
} row;

typedef struct fleet {
	Sluice__V1__Reply **reps;
	size_t              nreps;
	row                *rows;
	size_t              nrows;
	uint64_t            revision; // the highest any node answered with
	uint64_t            liveness_ms;
	size_t              nodes_ok;
	size_t              nodes;
	char                err[512]; // why the last node failed, if any
} fleet;

static void
fleet_fini(fleet *f)
{
	for (size_t i = 0; i < f->nreps; i++) {
		ctl_reply_free(f->reps[i]);
	}
	free(f->reps);
	free(f->rows);
	memset(f, 0, sizeof(*f));
}

static int
cmp_row(const void *a, const void *b)
{
	const row *x = a;
	const row *y = b;
	int        d = strcmp(x->ci->client_id, y->ci->client_id);

	if (d != 0) {
		return (d);
	}
	// The most recent ack first, so the dedup below keeps it.
	return (x->ci->last_seen_ms > y->ci->last_seen_ms   ? -1
	        : x->ci->last_seen_ms < y->ci->last_seen_ms ? 1
	                                                    : 0);
}

// ListClients on one endpoint.
static int
list_one(
    ctl *c, const char *ep, Sluice__V1__Reply **repp, char *err, size_t errlen)
{
	Sluice__V1__Request     req;
	Sluice__V1__ListClients lc;
	Sluice__V1__Reply      *rep = NULL;
	sl_rpc                 *r;
	int                     rv;

	if ((rv = sl_rpc_open(&r, ep, c->timeout_ms)) != SLUICE_OK) {
		sl_seterr(err, errlen, "bad server address \"%s\"", ep);
		return (rv);
	}
	sluice__v1__request__init(&req);
	sluice__v1__list_clients__init(&lc);
	req.op_case = SLUICE__V1__REQUEST__OP_CLIENTS;
	req.clients = &lc;
	rv          = sl_rpc_call(r, &req, &rep);
	sl_rpc_close(r);
	if (rv == SLUICE_OK &&
	    (rep->result_case != SLUICE__V1__REPLY__RESULT_CLIENTS ||
	        rep->clients == NULL)) {
		rv = SLUICE_EPROTO;
	}
	if (rv != SLUICE_OK) {
		if (rep != NULL &&
		    rep->result_case == SLUICE__V1__REPLY__RESULT_ERROR) {
			sl_seterr(
			    err, errlen, "%s: %s", ep, sl_reply_errmsg(rep));
		} else if (rv == SLUICE_EUNAVAIL) {
			sl_seterr(
			    err, errlen, "no server reachable at %s", ep);
		} else {
			sl_seterr(
			    err, errlen, "%s: %s", ep, sluice_strerror(rv));
		}
		ctl_reply_free(rep);
		return (rv);
	}
	*repp = rep;
	return (SLUICE_OK);
}

// Asks every endpoint and merges. SLUICE_OK when at least one answered.
static int
fleet_load(ctl *c, fleet *f)
{
	char  *list;
	char  *save = NULL;
	size_t cap  = 1;
	size_t n    = 0;
	int    last = SLUICE_EUNAVAIL;

	memset(f, 0, sizeof(*f));
	for (const char *p = c->server; *p != '\0'; p++) {
		cap += *p == ',';
	}
	if ((list = strdup(c->server)) == NULL ||
	    (f->reps = calloc(cap, sizeof(*f->reps))) == NULL) {
		free(list);
		return (SLUICE_ENOMEM);
	}
	for (char *ep = strtok_r(list, ", \t", &save); ep != NULL;
	     ep       = strtok_r(NULL, ", \t", &save)) {
		Sluice__V1__Reply *rep = NULL;
		int                rv;

		f->nodes++;
		if ((rv = list_one(c, ep, &rep, f->err, sizeof(f->err))) !=
		    SLUICE_OK) {
			last = rv;
			continue;
		}
		f->reps[f->nreps++] = rep;
		f->nodes_ok++;
		n += rep->clients->n_clients;
		if (rep->revision > f->revision) {
			f->revision = rep->revision;
		}
		if (rep->clients->liveness_ms > f->liveness_ms) {
			f->liveness_ms = rep->clients->liveness_ms;
		}
	}
	free(list);
	if (f->nodes_ok == 0) {
		if (f->nodes == 0) {
			sl_seterr(f->err, sizeof(f->err), "no server given");
		}
		return (last);
	}
	if ((f->rows = calloc(n + 1, sizeof(*f->rows))) == NULL) {
		return (SLUICE_ENOMEM);
	}
	for (size_t i = 0; i < f->nreps; i++) {
		const Sluice__V1__ClientList *cl = f->reps[i]->clients;
		for (size_t j = 0; j < cl->n_clients; j++) {
			f->rows[f->nrows].ci          = cl->clients[j];
			f->rows[f->nrows].node_now_ms = cl->now_ms;
			f->nrows++;
		}
	}
	qsort(f->rows, f->nrows, sizeof(*f->rows), cmp_row);
	n = 0;
	for (size_t i = 0; i < f->nrows; i++) {
		if (n > 0 &&
		    strcmp(f->rows[n - 1].ci->client_id,
		        f->rows[i].ci->client_id) == 0) {
			continue;
		}
		f->rows[n++] = f->rows[i];
	}
	f->nrows = n;
	return (SLUICE_OK);
}

static uint64_t
age_ms(const row *r)
{
	return (r->node_now_ms > r->ci->last_seen_ms
	        ? r->node_now_ms - r->ci->last_seen_ms
	        : 0);
}

static json_t *
row_json(const row *r)
{
	const Sluice__V1__ClientInfo *ci = r->ci;
	char                          seen[64];
	char                          started[64];

	ctl_format_time(ci->last_seen_ms, seen, sizeof(seen));
	ctl_format_time(ci->started_ms, started, sizeof(started));
	return (json_pack("{s:o, s:o, s:I, s:I, s:s, s:I, s:I, s:s, s:o, s:b}",
	    "client_id", ctl_json_str(ci->client_id), "host",
	    ctl_json_str(ci->host), "pid", (json_int_t) ci->pid,
	    "applied_revision", (json_int_t) ci->applied_revision, "last_seen",
	    seen, "last_seen_ms", (json_int_t) ci->last_seen_ms, "age_ms",
	    (json_int_t) age_ms(r), "started", started, "key_id",
	    ci->key_id[0] != '\0' ? ctl_json_str(ci->key_id) : json_null(),
	    "verified", ci->verified ? 1 : 0));
}

static json_t *
rows_json(const row *rows, size_t n, uint64_t min_rev, bool only_behind)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < n; i++) {
		if (only_behind && rows[i].ci->applied_revision >= min_rev) {
			continue;
		}
		ctl_json_push(&arr, row_json(&rows[i]));
	}
	return (arr);
}

static void
print_table(const fleet *f)
{
	size_t wh = 4;

	for (size_t i = 0; i < f->nrows; i++) {
		size_t l = strlen(f->rows[i].ci->host);
		wh       = l > wh ? l : wh;
	}
	wh = wh > 40 ? 40 : wh;
	printf("%-16s  %-*s  %7s  %8s  %9s  %s\n", "CLIENT", (int) wh, "HOST",
	    "PID", "APPLIED", "LAST SEEN", "KEY");
	for (size_t i = 0; i < f->nrows; i++) {
		const Sluice__V1__ClientInfo *ci = f->rows[i].ci;
		char                          seen[32];

		snprintf(seen, sizeof(seen), "%.1fs ago",
		    (double) age_ms(&f->rows[i]) / 1000.0);
		printf("%-16s  %-*.*s  %7u  %8llu  %9s  %s%s\n", ci->client_id,
		    (int) wh, (int) wh, ci->host, (unsigned) ci->pid,
		    (unsigned long long) ci->applied_revision, seen,
		    ci->key_id[0] != '\0' ? ci->key_id : "-",
		    ci->verified ? " (verified)" : " (unverified)");
	}
}

// ---------------------------------------------------------------- clients

static const char clients_usage[] =
    "usage: flagctl clients [--json]\n"
    "\n"
    "Lists the live libsluice clients: those that acknowledged within the\n"
    "server's liveness window (flagd --client-liveness-ms, default 15 s).\n"
    "For each: its id (random per client open), host, pid, the revision\n"
    "it has applied, when it was last heard from, and the key that signed\n"
    "its acks (verified) or '-' (unsigned acks, unverified).\n"
    "\n"
    "flagd keeps acks per node, in memory: every endpoint given with\n"
    "--server is asked and the answers are merged by client id.\n"
    "\n"
    "  --json   print {revision, liveness_ms, nodes, clients: [{client_id,\n"
    "           host, pid, applied_revision, last_seen, last_seen_ms,\n"
    "           age_ms, started, key_id, verified}]}\n";

static int
fleet_fail(const ctl *c, int rv, const fleet *f)
{
	if (rv == SLUICE_ENOMEM || f->err[0] == '\0') {
		return (ctl_fail(c, "%s: %s", c->verb, sluice_strerror(rv)));
	}
	return (ctl_fail(c, "%s", f->err));
}

static void
warn_partial(const fleet *f)
{
	if (f->nodes_ok < f->nodes) {
		fprintf(stderr,
		    "flagctl: warning: %zu of %zu servers did not answer "
		    "(%s); their clients are missing\n",
		    f->nodes - f->nodes_ok, f->nodes, f->err);
	}
}

int
ctl_cmd_clients(ctl *c, int argc, char **argv)
{
	fleet   f;
	json_t *o;
	int     ex;
	int     rv;

	c->usage = clients_usage;
	if ((ex = ctl_parse_common(c, argc, argv, 0, 0)) >= 0) {
		return (ex);
	}
	if ((rv = fleet_load(c, &f)) != SLUICE_OK) {
		ex = fleet_fail(c, rv, &f);
		fleet_fini(&f);
		return (ex);
	}
	warn_partial(&f);
	if (c->json) {
		o = ctl_json_listing(f.revision, "clients",
		    rows_json(f.rows, f.nrows, 0, false));
		if (o != NULL &&
		    (json_object_set_new(o, "liveness_ms",
		         json_integer((json_int_t) f.liveness_ms)) != 0 ||
		        json_object_set_new(o, "nodes",
		            json_integer((json_int_t) f.nodes_ok)) != 0)) {
			json_decref(o);
			o = NULL;
		}
		rv = ctl_json_print(o);
		fleet_fini(&f);
		return (ctl_end(c, rv));
	}
	if (f.nrows == 0) {
		printf("no live clients (revision %llu)\n",
		    (unsigned long long) f.revision);
	} else {
		print_table(&f);
	}
	fleet_fini(&f);
	return (CTL_EXIT_OK);
}

// ---------------------------------------------------------------- wait

static const char wait_usage[] =
    "usage: flagctl wait --revision R [--clients N] [--timeout T] [--json]\n"
    "\n"
    "Waits until every live client has applied revision R or later, and\n"
    "at least one client is live; with --clients N, until at least N\n"
    "live clients have (others may lag). This is how a rollback is proved\n"
    "to have reached every consumer: take R from the rollback's output.\n"
    "Progress goes to stderr (\"3/5 clients at revision >= 42\").\n"
    "\n"
    "  --revision R   the revision to wait for\n"
    "  --clients N    enough when N clients have it\n"
    "  --timeout T    give up after T: 30, 30s, 1500ms, 2m (default 60s);\n"
    "                 exit 1 naming the clients still behind\n"
    "  --json         print {revision, ok, at, live, waited_ms, clients,\n"
    "                 behind} at the end\n"
    "\n"
    "Exit status: 0 reached, 1 timed out or no server answered, 2 usage.\n";

// "30", "30s", "1500ms", "2m" into milliseconds.
static int
parse_duration(const char *s, uint64_t *msp)
{
	char              *end;
	unsigned long long v;
	uint64_t           mult;

	if (s == NULL || *s < '0' || *s > '9') {
		return (SLUICE_EINVAL);
	}
	v = strtoull(s, &end, 10);
	if (*end == '\0' || strcmp(end, "s") == 0) {
		mult = 1000;
	} else if (strcmp(end, "ms") == 0) {
		mult = 1;
	} else if (strcmp(end, "m") == 0) {
		mult = 60000;
	} else if (strcmp(end, "h") == 0) {
		mult = 3600000;
	} else {
		return (SLUICE_EINVAL);
	}
	if (v == 0 || v > UINT64_C(86400000) / mult) {
		return (SLUICE_EINVAL);
	}
	*msp = (uint64_t) v * mult;
	return (SLUICE_OK);
}

static void
nap_ms(uint64_t ms)
{
	struct timespec ts;

	ts.tv_sec  = (time_t) (ms / 1000u);
	ts.tv_nsec = (long) (ms % 1000u) * 1000000L;
	while (nanosleep(&ts, &ts) != 0) { }
}

static void
count_at(const fleet *f, uint64_t rev, size_t *atp)
{
	size_t at = 0;

	for (size_t i = 0; i < f->nrows; i++) {
		at += f->rows[i].ci->applied_revision >= rev;
	}
	*atp = at;
}

static void
print_laggards(const fleet *f, uint64_t rev)
{
	size_t shown  = 0;
	size_t behind = 0;

	for (size_t i = 0; i < f->nrows; i++) {
		const Sluice__V1__ClientInfo *ci = f->rows[i].ci;
		if (ci->applied_revision >= rev) {
			continue;
		}
		if (shown++ < WAIT_MAX_LAGGARDS) {
			fprintf(stderr,
			    "flagctl:   %s (%s pid %u) at revision %llu, last "
			    "seen %.1fs ago\n",
			    ci->client_id, ci->host, (unsigned) ci->pid,
			    (unsigned long long) ci->applied_revision,
			    (double) age_ms(&f->rows[i]) / 1000.0);
		}
		behind++;
	}
	if (behind > WAIT_MAX_LAGGARDS) {
		fprintf(stderr, "flagctl:   ... and %zu more\n",
		    behind - WAIT_MAX_LAGGARDS);
	}
}

static int
wait_json(const fleet *f, uint64_t rev, bool ok, size_t at, uint64_t waited)
{
	json_t *o = json_pack("{s:I, s:b, s:I, s:I, s:I, s:o, s:o}",
	    "revision", (json_int_t) rev, "ok", ok ? 1 : 0, "at",
	    (json_int_t) at, "live", (json_int_t) f->nrows, "waited_ms",
	    (json_int_t) waited, "clients",
	    rows_json(f->rows, f->nrows, rev, false), "behind",
	    rows_json(f->rows, f->nrows, rev, true));

	return (ctl_json_print(o));
}

int
ctl_cmd_wait(ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "revision", required_argument, NULL, CTL_OPT_VERB_BASE },
		{ "clients", required_argument, NULL, CTL_OPT_VERB_BASE + 1 },
		CTL_COMMON_OPTS,
		{ NULL, 0, NULL, 0 },
	};
	fleet    f;
	uint64_t rev     = 0;
	uint64_t need    = 0;
	uint64_t timeout = WAIT_DEFAULT_MS;
	uint64_t t0;
	uint64_t now;
	size_t   at        = 0;
	size_t   last_at   = SIZE_MAX;
	size_t   last_live = SIZE_MAX;
	bool     have_rev  = false;
	bool     ok        = false;
	bool     warned    = false;
	int      o;
	int      ex;
	int      rv;

	c->usage = wait_usage;
	ctl_getopt_reset();
	while ((o = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (o == CTL_OPT_VERB_BASE) {
			if (ctl_parse_u64(optarg, &rev) != SLUICE_OK) {
				return (ctl_usage(c,
				    "--revision wants a revision number, not "
				    "\"%s\"",
				    optarg));
			}
			have_rev = true;
		} else if (o == CTL_OPT_VERB_BASE + 1) {
			if (ctl_parse_u64(optarg, &need) != SLUICE_OK ||
			    need == 0) {
				return (ctl_usage(c,
				    "--clients wants a positive number, not "
				    "\"%s\"",
				    optarg));
			}
		} else if (o == CTL_OPT_TIMEOUT) {
			// Here --timeout is the whole wait, not one request.
			if (parse_duration(optarg, &timeout) != SLUICE_OK) {
				return (ctl_usage(c,
				    "--timeout wants a duration (30, 30s, "
				    "1500ms, 2m), not \"%s\"",
				    optarg));
			}
		} else if ((ex = ctl_common_opt(c, o, optarg, argv)) >= 0) {
			return (ex);
		}
	}
	if ((ex = ctl_operands(c, argc, argv, 0, 0, NULL)) >= 0) {
		return (ex);
	}
	if (!have_rev) {
		return (ctl_usage(c, "missing --revision R"));
	}
	t0 = sl_mono_ms();
	// The first answer must come: a wrong --server fails now, not after
	// the whole timeout. Later failures (a node restarting) are waited
	// out.
	if ((rv = fleet_load(c, &f)) != SLUICE_OK) {
		ex = fleet_fail(c, rv, &f);
		fleet_fini(&f);
		return (ex);
	}
	warn_partial(&f);
	for (;;) {
		count_at(&f, rev, &at);
		ok = need > 0 ? at >= need : (f.nrows > 0 && at == f.nrows);
		if (at != last_at || f.nrows != last_live) {
			fprintf(stderr,
			    "flagctl: %zu/%zu clients at revision >= %llu%s\n",
			    at, f.nrows, (unsigned long long) rev,
			    need > 0 && !ok ? " (waiting for enough)" : "");
			last_at   = at;
			last_live = f.nrows;
		}
		now = sl_mono_ms();
		if (ok || now - t0 >= timeout) {
			break;
		}
		nap_ms(WAIT_POLL_MS);
		fleet_fini(&f);
		while ((rv = fleet_load(c, &f)) != SLUICE_OK) {
			if (!warned) {
				fprintf(stderr,
				    "flagctl: warning: %s; still waiting\n",
				    f.err[0] != '\0' ? f.err
				                     : sluice_strerror(rv));
				warned = true;
			}
			fleet_fini(&f);
			if (sl_mono_ms() - t0 >= timeout) {
				ex = ctl_fail(c,
				    "wait: timed out after %llu ms with no "
				    "server answering",
				    (unsigned long long) timeout);
				return (ex);
			}
			nap_ms(WAIT_POLL_MS);
		}
	}
	now = sl_mono_ms();
	if (c->json &&
	    (rv = wait_json(&f, rev, ok, at, now - t0)) != SLUICE_OK) {
		fleet_fini(&f);
		return (ctl_end(c, rv));
	}
	if (ok) {
		if (!c->json) {
			printf("%zu/%zu clients at revision >= %llu\n", at,
			    f.nrows, (unsigned long long) rev);
		}
		fleet_fini(&f);
		return (CTL_EXIT_OK);
	}
	if (f.nrows > 0 && at == f.nrows) {
		ex = ctl_fail(c,
		    "wait: timed out after %llu ms: all %zu live clients at "
		    "revision >= %llu, fewer than --clients %llu",
		    (unsigned long long) timeout, f.nrows,
		    (unsigned long long) rev, (unsigned long long) need);
	} else if (f.nrows == 0) {
		ex = ctl_fail(c,
		    "wait: timed out after %llu ms: no live client (is "
		    "anything connected to %s?)",
		    (unsigned long long) timeout, c->server);
	} else {
		ex = ctl_fail(c,
		    "wait: timed out after %llu ms: %zu/%zu clients at "
		    "revision >= %llu%s; behind:",
		    (unsigned long long) timeout, at, f.nrows,
		    (unsigned long long) rev,
		    need > 0 ? " (fewer than --clients)" : "");
		print_laggards(&f, rev);
	}
	fleet_fini(&f);
	return (ex);
}
