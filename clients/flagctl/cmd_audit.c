// SPDX-License-Identifier: MIT
//
// cmd_audit.c — the flagctl verbs over the audit log: history (one
// rollout), audit (recent entries) and audit verify, which fetches the
// whole chain page by page and recomputes it with sl_audit_verifier, so a
// removed or edited entry anywhere, the tail included, is found.

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "audit.h"
#include "cmd_audit.h"
#include "codec.h"
#include "output.h"

#define DEFAULT_AUDIT_LIMIT 20u

// One AuditQuery page.
static int
audit_page(ctl *c, const char *rollout, uint64_t after, uint32_t limit,
    Sluice__V1__Reply **repp)
{
	Sluice__V1__Request    req;
	Sluice__V1__AuditQuery q;
	int                    rv;

	sluice__v1__request__init(&req);
	sluice__v1__audit_query__init(&q);
	q.rollout = (char *) (uintptr_t) (rollout != NULL ? rollout : "");
	q.after_revision = after;
	q.limit          = limit;
	req.op_case      = SLUICE__V1__REQUEST__OP_AUDIT;
	req.audit        = &q;
	rv = ctl_call(c, &req, SLUICE__V1__REPLY__RESULT_AUDIT, repp);
	if (rv == SLUICE_OK && (*repp)->audit == NULL) {
		rv = SLUICE_EPROTO;
	}
	return (rv);
}

// The last `keep` entries (all when keep is 0), copied out of the pages.
typedef struct ring {
	Sluice__V1__AuditEntry **e;
	size_t                   cap;   // slots; grows when keep is 0
	size_t                   n;     // entries held
	size_t                   start; // oldest, when full
	size_t                   keep;
} ring;

static void
ring_fini(ring *r)
{
	size_t i;

	for (i = 0; i < r->n; i++) {
		sluice__v1__audit_entry__free_unpacked(r->e[i], NULL);
	}
	free(r->e);
}

static Sluice__V1__AuditEntry *
ring_at(const ring *r, size_t i)
{
	return (r->e[(r->start + i) % r->cap]);
}

static int
ring_push(ring *r, const Sluice__V1__AuditEntry *e)
{
	ProtobufCMessage        *m;
	Sluice__V1__AuditEntry **grown;
	size_t                   cap;
	int                      rv;

	if ((rv = sl_message_copy(&e->base, &m)) != SLUICE_OK) {
		return (rv);
	}
	if (r->keep != 0 && r->n == r->keep) {
		sluice__v1__audit_entry__free_unpacked(r->e[r->start], NULL);
		r->e[r->start] = (Sluice__V1__AuditEntry *) m;
		r->start       = (r->start + 1) % r->cap;
		return (SLUICE_OK);
	}
	if (r->n == r->cap) {
		cap = r->keep != 0 ? r->keep : (r->cap == 0 ? 64 : r->cap * 2);
		if ((grown = realloc(r->e, cap * sizeof(*grown))) == NULL) {
			protobuf_c_message_free_unpacked(m, NULL);
			return (SLUICE_ENOMEM);
		}
		r->e   = grown;
		r->cap = cap;
	}
	r->e[r->n++] = (Sluice__V1__AuditEntry *) m;
	return (SLUICE_OK);
}

// Collects entries after `after` (optionally of one rollout) into r.
static int
collect(ctl *c, const char *rollout, uint64_t after, ring *r, uint64_t *revp,
    Sluice__V1__Reply **errp)
{
	Sluice__V1__Reply *rep = NULL;
	size_t             i;
	int                rv;

	for (;;) {
		if ((rv = audit_page(c, rollout, after, 0, &rep)) !=
		    SLUICE_OK) {
			*errp = rep;
			return (rv);
		}
		*revp = rep->revision;
		for (i = 0; i < rep->audit->n_entries; i++) {
			if ((rv = ring_push(r, rep->audit->entries[i])) !=
			    SLUICE_OK) {
				ctl_reply_free(rep);
				return (rv);
			}
			after = rep->audit->entries[i]->revision;
		}
		if (!rep->audit->more) {
			break;
		}
		if (rep->audit->n_entries == 0) {
			ctl_reply_free(rep);
			return (SLUICE_EPROTO); // "more", but nothing to go on
		}
		ctl_reply_free(rep);
		rep = NULL;
	}
	ctl_reply_free(rep);
	return (SLUICE_OK);
}

static int
print_entries(ctl *c, const ring *r, uint64_t revision, const char *empty)
{
	ctl_audit_cols cols;
	json_t        *arr;
	size_t         i;

	if (c->json) {
		arr = json_array();
		for (i = 0; i < r->n; i++) {
			ctl_json_push(&arr, ctl_json_audit(ring_at(r, i)));
		}
		return (ctl_end(c,
		    ctl_json_print(
		        ctl_json_listing(revision, "entries", arr))));
	}
	if (r->n == 0) {
		printf("%s\n", empty);
		return (CTL_EXIT_OK);
	}
	ctl_audit_cols_init(&cols);
	for (i = 0; i < r->n; i++) {
		ctl_audit_cols_add(&cols, ring_at(r, i));
	}
	ctl_print_audit_header(stdout, &cols);
	for (i = 0; i < r->n; i++) {
		ctl_print_audit(stdout, &cols, ring_at(r, i));
	}
	return (CTL_EXIT_OK);
}

static int
parse_limit(ctl *c, const char *s, size_t *limitp)
{
	uint64_t v;

	if (ctl_parse_u64(s, &v) != SLUICE_OK || v > 1000000) {
		return (ctl_usage(c,
		    "--limit wants a number of entries (0 = all), not "
		    "\"%s\"",
		    s));
	}
	*limitp = (size_t) v;
	return (-1);
}

static const char history_usage[] =
    "usage: flagctl history ROLLOUT [--limit N] [--json]\n"
    "\n"
    "Prints the audit entries of one rollout, oldest first: revision,\n"
    "time, actor (key id), action, before \u2192 after, reason.\n"
    "\n"
    "  --limit N   only the last N entries (default: all)\n"
    "  --json      print {revision, entries:[{revision, time, actor,\n"
    "              action, rollout, before, after, reason,\n"
    "              evidence_digest, prev_hash, hash}]}\n";

int
ctl_cmd_history(ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "limit", required_argument, NULL, CTL_OPT_VERB_BASE },
		CTL_COMMON_OPTS,
		{ NULL, 0, NULL, 0 },
	};
	Sluice__V1__Reply *err = NULL;
	ring               r;
	uint64_t           revision = 0;
	size_t             limit    = 0;
	char               what[128];
	char               empty[160];
	int                o;
	int                ex;
	int                rv;

	c->usage = history_usage;
	ctl_getopt_reset();
	while ((o = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (o == CTL_OPT_VERB_BASE) {
			if ((ex = parse_limit(c, optarg, &limit)) >= 0) {
				return (ex);
			}
		} else if ((ex = ctl_common_opt(c, o, optarg, argv)) >= 0) {
			return (ex);
		}
	}
	if ((ex = ctl_operands(c, argc, argv, 1, 1, "ROLLOUT")) >= 0) {
		return (ex);
	}
	memset(&r, 0, sizeof(r));
	r.keep = limit;
	snprintf(what, sizeof(what), "rollout \"%s\"", argv[optind]);
	if ((rv = collect(c, argv[optind], 0, &r, &revision, &err)) !=
	    SLUICE_OK) {
		ring_fini(&r);
		return (ctl_fail_call(c, rv, err, what));
	}
	snprintf(empty, sizeof(empty), "no audit entries for rollout %s",
	    argv[optind]);
	ex = print_entries(c, &r, revision, empty);
	ring_fini(&r);
	return (ex);
}

static const char audit_usage[] =
    "usage: flagctl audit [--rollout ROLLOUT] [--limit N] [--json]\n"
    "       flagctl audit verify [--json]\n"
    "\n"
    "Prints the most recent audit entries, oldest first (every write is\n"
    "one entry: revision, time, actor, action, before \u2192 after,\n"
    "reason).\n"
    "\n"
    "'audit verify' fetches the whole log page by page and recomputes its\n"
    "BLAKE2b hash chain: it fails (exit 1) naming the first entry that\n"
    "was edited, removed or reordered, and also when entries at the tail\n"
    "were removed (the last entry must carry the server's revision).\n"
    "\n"
    "  --rollout ROLLOUT   only this rollout's entries\n"
    "  --limit N           how many (default 20; 0 = all)\n"
    "  --json              print {revision, entries:[...]}; for verify\n"
    "                      {ok, entries, revision, head[, bad_revision,\n"
    "                      reason]}\n";

static int audit_verify(ctl *c, int argc, char **argv);

int
ctl_cmd_audit(ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "rollout", required_argument, NULL, CTL_OPT_VERB_BASE },
		{ "limit", required_argument, NULL, CTL_OPT_VERB_BASE + 1 },
		CTL_COMMON_OPTS,
		{ NULL, 0, NULL, 0 },
	};
	Sluice__V1__Reply *err = NULL;
	ring               r;
	const char        *rollout  = NULL;
	uint64_t           revision = 0;
	uint64_t           after    = 0;
	size_t             limit    = DEFAULT_AUDIT_LIMIT;
	int                o;
	int                ex;
	int                rv;

	if (argc > 1 && strcmp(argv[1], "verify") == 0) {
		c->verb = "audit verify";
		return (audit_verify(c, argc - 1, argv + 1));
	}
	c->usage = audit_usage;
	ctl_getopt_reset();
	while ((o = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (o == CTL_OPT_VERB_BASE) {
			rollout = optarg;
		} else if (o == CTL_OPT_VERB_BASE + 1) {
			if ((ex = parse_limit(c, optarg, &limit)) >= 0) {
				return (ex);
			}
		} else if ((ex = ctl_common_opt(c, o, optarg, argv)) >= 0) {
			return (ex);
		}
	}
	if ((ex = ctl_operands(c, argc, argv, 0, 0, NULL)) >= 0) {
		return (ex);
	}
	memset(&r, 0, sizeof(r));
	r.keep = limit;
	// Revisions are consecutive, one entry each: without a rollout
	// filter the last N entries start after head - N, so there is no
	// need to read the whole log.
	if (rollout == NULL && limit != 0) {
		if ((rv = audit_page(c, NULL, 0, 1, &err)) != SLUICE_OK) {
			return (ctl_fail_call(c, rv, err, NULL));
		}
		after = err->revision > limit ? err->revision - limit : 0;
		ctl_reply_free(err);
		err = NULL;
	}
	if ((rv = collect(c, rollout, after, &r, &revision, &err)) !=
	    SLUICE_OK) {
		ring_fini(&r);
		return (ctl_fail_call(c, rv, err, NULL));
	}
	ex = print_entries(c, &r, revision, "no audit entries");
	ring_fini(&r);
	return (ex);
}

static const char verify_usage[] =
    "usage: flagctl audit verify [--json]\n"
    "\n"
    "Fetches every audit entry and recomputes the hash chain. Exit 0 when\n"
    "the chain is whole; 1 naming the first bad entry's revision and why.\n";

static int
verify_result(ctl *c, bool ok, const sl_audit_verifier *v, uint64_t server,
    uint64_t bad_rev, const char *why)
{
	json_t *o;
	char    head[SL_HASH_BYTES * 2 + 1];
	int     rv;

	sodium_bin2hex(head, sizeof(head), v->head, sizeof(v->head));
	if (c->json) {
		o = json_object();
		if (o == NULL ||
		    json_object_set_new(o, "ok", json_boolean(ok)) ||
		    json_object_set_new(
		        o, "entries", json_integer((json_int_t) v->count)) ||
		    json_object_set_new(
		        o, "revision", json_integer((json_int_t) server)) ||
		    json_object_set_new(o, "head", json_string(head)) ||
		    (!ok &&
		        (json_object_set_new(o, "bad_revision",
		             json_integer((json_int_t) bad_rev)) ||
		            json_object_set_new(
		                o, "reason", ctl_json_str(why))))) {
			json_decref(o);
			o = NULL;
		}
		if ((rv = ctl_json_print(o)) != SLUICE_OK) {
			return (ctl_fail(c, "%s", sluice_strerror(rv)));
		}
	} else if (ok) {
		printf(
		    "audit chain verified: %llu entries, revisions 1..%llu, "
		    "head %s\n",
		    (unsigned long long) v->count,
		    (unsigned long long) v->revision, head);
	}
	if (!ok) {
		return (ctl_fail(c, "audit entry at revision %llu is bad: %s",
		    (unsigned long long) bad_rev, why));
	}
	return (CTL_EXIT_OK);
}

static int
audit_verify(ctl *c, int argc, char **argv)
{
	Sluice__V1__Reply *rep = NULL;
	sl_audit_verifier  v;
	const char        *why;
	char               reason[256];
	uint64_t           after  = 0;
	uint64_t           server = 0;
	uint64_t           pages  = 0;
	size_t             i;
	bool               more;
	int                ex;
	int                rv;

	c->usage = verify_usage;
	if ((ex = ctl_parse_common(c, argc, argv, 0, 0)) >= 0) {
		return (ex);
	}
	if ((rv = ctl_connect(c)) != SLUICE_OK) {
		return (ctl_fail_call(c, rv, NULL, NULL));
	}
	fprintf(stderr, "flagctl: verifying the audit chain at %s ...\n",
	    c->server);
	sl_audit_verifier_init(&v);
	do {
		if ((rv = audit_page(c, NULL, after, 0, &rep)) != SLUICE_OK) {
			return (ctl_fail_call(c, rv, rep, NULL));
		}
		server = rep->revision;
		for (i = 0; i < rep->audit->n_entries; i++) {
			const Sluice__V1__AuditEntry *e =
			    rep->audit->entries[i];

			why = NULL;
			if (sl_audit_verifier_next(&v, e, &why) != SLUICE_OK) {
				// e points into rep: keep its revision first.
				uint64_t bad_rev = e->revision;
				snprintf(reason, sizeof(reason), "%s",
				    why != NULL ? why : "hash chain broken");
				ctl_reply_free(rep);
				return (verify_result(
				    c, false, &v, server, bad_rev, reason));
			}
			after = e->revision;
		}
		more = rep->audit->more;
		if (more && rep->audit->n_entries == 0) {
			ctl_reply_free(rep);
			return (ctl_fail(c,
			    "the server announced more audit entries after "
			    "revision %llu but sent none",
			    (unsigned long long) after));
		}
		ctl_reply_free(rep);
		rep = NULL;
		if (++pages % 50 == 0) {
			fprintf(stderr, "flagctl: %llu entries checked ...\n",
			    (unsigned long long) v.count);
		}
	} while (more);
	// The last page reflects the server's revision: every revision is
	// one entry, so anything short of it was cut off the tail.
	if (v.revision != server) {
		snprintf(reason, sizeof(reason),
		    "the chain ends at revision %llu but the server is at "
		    "revision %llu: entries at the tail were removed",
		    (unsigned long long) v.revision,
		    (unsigned long long) server);
		return (verify_result(
		    c, false, &v, server, v.revision + 1, reason));
	}
	return (verify_result(c, true, &v, server, 0, NULL));
}
