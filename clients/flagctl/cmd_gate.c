// SPDX-License-Identifier: MIT
//
// cmd_gate.c — `flagctl gate`: talks to gatekeeper's report API (nng REQ,
// GkRequest/GkReply). `status` shows each condition's aggregate,
// threshold, samples and state; `evidence` the reports behind a decision
// (and checks their digest); `report` signs and sends one metric report
// through libsluice's sluice_report().

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <sodium.h>

#include "cmd_gate.h"
#include "codec.h"
#include "envelope.h"
#include "output.h"
#include "rollout.h"
#include "sluice.h"

#define GK_DEFAULT "tcp://127.0.0.1:7500"
#define MAX_METRICS 64

static const char gate_usage[] =
    "usage: flagctl gate status [ROLLOUT] [--json]\n"
    "       flagctl gate evidence ROLLOUT REVISION [--json]\n"
    "       flagctl gate report ROLLOUT --job JOB --metric NAME=VALUE...\n"
    "                           [--stage STAGE] [--seq N] [--run ID]\n"
    "                           [--unit UNIT]... --key FILE [--json]\n"
    "\n"
    "Asks gatekeeper (--gatekeeper URL, SLUICE_GATEKEEPER, "
    "default\n" GK_DEFAULT ")\n"
    "about gates: 'status' shows each condition's aggregate, threshold,\n"
    "samples and state; 'evidence' the signed reports behind the decision\n"
    "written at REVISION (the digest is recomputed and compared);\n"
    "'report' signs one metric report with --key and prints the verdict.\n";

enum {
	OPT_GK = CTL_OPT_VERB_BASE,
	OPT_JOB,
	OPT_METRIC,
	OPT_STAGE,
	OPT_SEQ,
	OPT_RUN,
	OPT_UNIT,
};

typedef struct gate_args {
	const char   *gk;
	const char   *job, *stage, *run;
	uint64_t      seq;
	sluice_metric metrics[MAX_METRICS];
	char         *names[MAX_METRICS];
	size_t        n_metrics;
	const char   *units[MAX_METRICS];
	size_t        n_units;
} gate_args;

// One GkRequest to gatekeeper; *repp freed with gk_reply__free_unpacked.
static int
gk_call(ctl *c, const char *url, Sluice__V1__GkRequest *req,
    Sluice__V1__GkReply **repp)
{
	nng_socket         s;
	Sluice__V1__Header h;
	ProtobufCMessage  *m;
	uint8_t           *buf;
	size_t             len, n = 0;
	void              *rbuf = NULL;
	int                rv;

	sluice__v1__header__init(&h);
	h.api_version = SL_API_VERSION;
	h.request_id  = 1;
	req->header   = &h;
	if ((rv = sl_pack(&req->base, &buf, &len)) != SLUICE_OK) {
		return (rv);
	}
	if (nng_req0_open(&s) != 0) {
		free(buf);
		return (SLUICE_EINTERNAL);
	}
	(void) nng_socket_set_ms(s, NNG_OPT_RECVTIMEO,
	    (nng_duration) (c->timeout_ms ? c->timeout_ms : 5000u));
	(void) nng_socket_set_ms(s, NNG_OPT_SENDTIMEO,
	    (nng_duration) (c->timeout_ms ? c->timeout_ms : 5000u));
	(void) nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, 64u << 20);
	if (nng_dial(s, url, NULL, 0) != 0 || nng_send(s, buf, len, 0) != 0) {
		rv = SLUICE_EUNAVAIL;
	} else if ((rv = nng_recv(s, &rbuf, &n, NNG_FLAG_ALLOC)) != 0) {
		rv = rv == NNG_ETIMEDOUT ? SLUICE_ETIMEDOUT : SLUICE_EUNAVAIL;
	} else {
		rv = sl_unpack(
		    &sluice__v1__gk_reply__descriptor, rbuf, n, 64u << 20, &m);
		if (rv == SLUICE_OK) {
			*repp = (Sluice__V1__GkReply *) m;
		}
		nng_free(rbuf, n);
	}
	nng_close(s);
	free(buf);
	if (rv == SLUICE_EUNAVAIL) {
		snprintf(c->errmsg, sizeof(c->errmsg),
		    "no gatekeeper reachable at %s", url);
	}
	return (rv);
}

static int
gk_fail(ctl *c, int rv, Sluice__V1__GkReply *rep)
{
	int ex;

	if (rep != NULL &&
	    rep->result_case == SLUICE__V1__GK_REPLY__RESULT_ERROR) {
		ex = ctl_fail(c, "%s (%s)", rep->error->message,
		    sluice_errname((int) rep->error->code));
	} else if (c->errmsg[0] != '\0') {
		ex = ctl_fail(c, "%s", c->errmsg);
	} else {
		ex = ctl_end(c, rv != SLUICE_OK ? rv : SLUICE_EPROTO);
	}
	if (rep != NULL) {
		sluice__v1__gk_reply__free_unpacked(rep, NULL);
	}
	return (ex);
}

static json_t *
json_gate(const Sluice__V1__GateStatus *g)
{
	json_t *conds = json_array();
	char    text[256];

	for (size_t i = 0; i < g->n_conditions; i++) {
		const Sluice__V1__ConditionStatus *cs = g->conditions[i];
		text[0]                               = '\0';
		if (cs->condition != NULL) {
			sl_condition_format(cs->condition, text, sizeof(text));
		}
		json_array_append_new(conds,
		    json_pack("{s:s, s:f, s:f, s:I, s:s, s:I}", "condition",
		        text, "value", cs->value, "threshold",
		        cs->condition ? cs->condition->threshold : 0.0,
		        "samples", (json_int_t) cs->samples, "state",
		        cs->state ? cs->state : "", "streak",
		        (json_int_t) cs->streak));
	}
	return (json_pack(
	    "{s:s, s:s, s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o}",
	    "rollout", g->rollout, "stage", g->stage, "stage_index",
	    (json_int_t) g->stage_index, "state", g->state, "window_reports",
	    (json_int_t) g->window_reports, "soak_reports",
	    (json_int_t) g->soak_reports, "soak_ms", (json_int_t) g->soak_ms,
	    "evaluations", (json_int_t) g->evaluations, "counted",
	    (json_int_t) g->counted, "recorded", (json_int_t) g->recorded,
	    "decision_revision", (json_int_t) g->decision_revision,
	    "conditions", conds));
}

static void
print_gate(const Sluice__V1__GateStatus *g)
{
	char text[256];

	printf("%s  stage %s  gate %s  window %u  soak %u reports %llu s  "
	       "counted %llu  other-stage %llu",
	    g->rollout, g->stage, g->state, g->window_reports, g->soak_reports,
	    (unsigned long long) (g->soak_ms / 1000),
	    (unsigned long long) g->counted, (unsigned long long) g->recorded);
	if (g->decision_revision != 0) {
		printf("  decided at revision %llu",
		    (unsigned long long) g->decision_revision);
	}
	printf("\n");
	for (size_t i = 0; i < g->n_conditions; i++) {
		const Sluice__V1__ConditionStatus *cs = g->conditions[i];
		text[0]                               = '\0';
		if (cs->condition != NULL) {
			sl_condition_format(cs->condition, text, sizeof(text));
		}
		printf("  %-36s value %-12.6g samples %-5u %s", text,
		    cs->value, cs->samples, cs->state);
		if (cs->streak > 0) {
			printf(" (breached %u in a row)", cs->streak);
		}
		printf("\n");
	}
}

static int
gate_status(ctl *c, const gate_args *a, const char *rollout)
{
	Sluice__V1__GkRequest       req;
	Sluice__V1__GateStatusQuery q;
	Sluice__V1__GkReply        *rep = NULL;
	int                         rv;

	sluice__v1__gk_request__init(&req);
	sluice__v1__gate_status_query__init(&q);
	q.rollout   = (char *) (uintptr_t) (rollout ? rollout : "");
	req.op_case = SLUICE__V1__GK_REQUEST__OP_STATUS;
	req.status  = &q;
	if ((rv = gk_call(c, a->gk, &req, &rep)) != SLUICE_OK ||
	    rep->result_case != SLUICE__V1__GK_REPLY__RESULT_STATUS) {
		return (gk_fail(c, rv, rep));
	}
	if (c->json) {
		json_t *arr = json_array();
		for (size_t i = 0; i < rep->status->n_gates; i++) {
			json_array_append_new(
			    arr, json_gate(rep->status->gates[i]));
		}
		rv = ctl_json_print(json_pack("{s:o}", "gates", arr));
	} else {
		for (size_t i = 0; i < rep->status->n_gates; i++) {
			print_gate(rep->status->gates[i]);
		}
	}
	sluice__v1__gk_reply__free_unpacked(rep, NULL);
	return (ctl_end(c, rv));
}

static int
gate_evidence(ctl *c, const gate_args *a, const char *rollout, uint64_t rev)
{
	Sluice__V1__GkRequest     req;
	Sluice__V1__EvidenceQuery q;
	Sluice__V1__GkReply      *rep = NULL;
	Sluice__V1__Evidence     *ev;
	crypto_generichash_state  hs;
	uint8_t                   digest[SL_HASH_BYTES];
	char                      hex[2 * SL_HASH_BYTES + 1];
	bool                      match;
	json_t                   *arr;
	int                       rv;

	sluice__v1__gk_request__init(&req);
	sluice__v1__evidence_query__init(&q);
	q.rollout    = (char *) (uintptr_t) rollout;
	q.revision   = rev;
	req.op_case  = SLUICE__V1__GK_REQUEST__OP_EVIDENCE;
	req.evidence = &q;
	if ((rv = gk_call(c, a->gk, &req, &rep)) != SLUICE_OK ||
	    rep->result_case != SLUICE__V1__GK_REPLY__RESULT_EVIDENCE) {
		return (gk_fail(c, rv, rep));
	}
	ev = rep->evidence;
	// The digest is over the reports as gatekeeper received them:
	// recompute it from what we were sent.
	crypto_generichash_init(&hs, NULL, 0, SL_HASH_BYTES);
	arr = json_array();
	for (size_t i = 0; i < ev->n_reports; i++) {
		uint8_t                  *b;
		size_t                    l;
		Sluice__V1__MetricReport *r = NULL;

		if (sl_pack(&ev->reports[i]->base, &b, &l) != SLUICE_OK) {
			continue;
		}
		uint8_t be[4] = { (uint8_t) (l >> 24), (uint8_t) (l >> 16),
			(uint8_t) (l >> 8), (uint8_t) l };
		crypto_generichash_update(&hs, be, 4);
		crypto_generichash_update(&hs, b, l);
		free(b);
		if (sl_report_open(ev->reports[i], &r) != SLUICE_OK) {
			continue;
		}
		json_t *mets = json_object();
		for (size_t k = 0; k < r->n_metrics; k++) {
			json_object_set_new(mets, r->metrics[k]->key,
			    json_real(r->metrics[k]->value));
		}
		if (c->json) {
			json_array_append_new(arr,
			    json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:o}",
			        "key", ev->reports[i]->key_id, "job", r->job,
			        "run_id", r->run_id, "stage", r->stage,
			        "sequence", (json_int_t) r->sequence,
			        "time_ms", (json_int_t) r->time_ms, "metrics",
			        mets));
		} else {
			char *ms =
			    json_dumps(mets, JSON_COMPACT | JSON_SORT_KEYS);
			printf("  key %s job %s run %s seq %llu stage %s %s\n",
			    ev->reports[i]->key_id, r->job, r->run_id,
			    (unsigned long long) r->sequence, r->stage,
			    ms ? ms : "");
			free(ms);
			json_decref(mets);
		}
		sluice__v1__metric_report__free_unpacked(r, NULL);
	}
	crypto_generichash_final(&hs, digest, SL_HASH_BYTES);
	match = ev->digest.len == SL_HASH_BYTES &&
	    sodium_memcmp(digest, ev->digest.data, SL_HASH_BYTES) == 0;
	sodium_bin2hex(hex, sizeof(hex), ev->digest.data,
	    ev->digest.len == SL_HASH_BYTES ? SL_HASH_BYTES : 0);
	if (c->json) {
		rv = ctl_json_print(json_pack(
		    "{s:s, s:I, s:s, s:s, s:s, s:b, s:I, s:o}", "rollout",
		    ev->rollout, "revision", (json_int_t) ev->revision,
		    "action", ev->action, "reason", ev->reason, "digest", hex,
		    "digest_ok", match, "time_ms", (json_int_t) ev->time_ms,
		    "reports", arr));
	} else {
		json_decref(arr);
		printf("%s revision %llu: %s\nreason: %s\ndigest: %s (%s)\n"
		       "reports: %zu (listed above)\n",
		    ev->rollout, (unsigned long long) ev->revision, ev->action,
		    ev->reason, hex,
		    match ? "matches the reports" : "MISMATCH", ev->n_reports);
	}
	sluice__v1__gk_reply__free_unpacked(rep, NULL);
	if (!match) {
		return (ctl_fail(c, "evidence digest does not match"));
	}
	return (ctl_end(c, rv));
}

static int
gate_report(ctl *c, const gate_args *a, const char *rollout)
{
	sluice_client_opts o;
	sluice_client     *cl = NULL;
	sluice_report      r;
	sluice_verdict     v;
	int                rv;

	if (c->keyfile == NULL) {
		return (ctl_usage(c, "report needs --key (or SLUICE_KEY)"));
	}
	if (a->job == NULL || a->n_metrics == 0) {
		return (ctl_usage(c, "report needs --job and --metric"));
	}
	sluice_client_opts_init(&o);
	o.key_file           = c->keyfile;
	o.gatekeeper         = a->gk;
	o.request_timeout_ms = c->timeout_ms ? c->timeout_ms : 5000u;
	// The stage, when not given, is the one flagd says now.
	if ((rv = sluice_client_open(&cl, a->stage ? "" : c->server, &o)) !=
	    SLUICE_OK) {
		return (ctl_fail(
		    c, "cannot open a client: %s", sluice_strerror(rv)));
	}
	memset(&r, 0, sizeof(r));
	r.rollout   = rollout;
	r.stage     = a->stage;
	r.job       = a->job;
	r.run_id    = a->run;
	r.sequence  = a->seq;
	r.metrics   = a->metrics;
	r.n_metrics = a->n_metrics;
	r.units     = a->units;
	r.n_units   = a->n_units;
	memset(&v, 0, sizeof(v));
	rv = sluice_report(cl, &r, &v);
	sluice_client_close(cl);
	if (rv != SLUICE_OK) {
		return (
		    ctl_fail(c, "report not sent: %s", sluice_strerror(rv)));
	}
	if (c->json) {
		rv = ctl_json_print(json_pack(
		    "{s:b, s:b, s:i, s:s, s:s, s:s, s:I, s:I}", "accepted",
		    v.accepted, "counted", v.counted, "code", v.code, "reason",
		    v.reason, "gate", v.gate, "stage", v.stage,
		    "window_reports", (json_int_t) v.window_reports,
		    "sequence", (json_int_t) v.sequence));
	} else if (v.accepted) {
		printf("accepted%s: gate %s at stage %s, %u reports in the "
		       "window\n",
		    v.counted ? "" : " (other stage: recorded, not counted)",
		    v.gate, v.stage, v.window_reports);
	} else {
		printf(
		    "rejected: %s (%s)\n", v.reason, sluice_errname(v.code));
	}
	if (rv == SLUICE_OK && !v.accepted) {
		return (CTL_EXIT_FAIL);
	}
	return (ctl_end(c, rv));
}

static void
args_free(gate_args *a)
{
	for (size_t i = 0; i < a->n_metrics; i++) {
		free(a->names[i]);
	}
}

int
ctl_cmd_gate(ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "gatekeeper", required_argument, NULL, OPT_GK },
		{ "job", required_argument, NULL, OPT_JOB },
		{ "metric", required_argument, NULL, OPT_METRIC },
		{ "stage", required_argument, NULL, OPT_STAGE },
		{ "seq", required_argument, NULL, OPT_SEQ },
		{ "run", required_argument, NULL, OPT_RUN },
		{ "unit", required_argument, NULL, OPT_UNIT },
		CTL_COMMON_OPTS,
		{ NULL, 0, NULL, 0 },
	};
	gate_args   a;
	const char *sub;
	int         o, ex = -1;

	memset(&a, 0, sizeof(a));
	a.gk     = getenv("SLUICE_GATEKEEPER") ? getenv("SLUICE_GATEKEEPER")
	                                       : GK_DEFAULT;
	c->usage = gate_usage;
	if (argc < 2 || argv[1][0] == '-') {
		if (argc >= 2 &&
		    (strcmp(argv[1], "--help") == 0 ||
		        strcmp(argv[1], "-h") == 0)) {
			fputs(gate_usage, stdout);
			return (CTL_EXIT_OK);
		}
		return (ctl_usage(c, "missing status, evidence or report"));
	}
	sub = argv[1];
	argc--;
	argv++;
	ctl_getopt_reset();
	while ((o = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		char  *eq, *end;
		double d;
		switch (o) {
		case OPT_GK:
			a.gk = optarg;
			break;
		case OPT_JOB:
			a.job = optarg;
			break;
		case OPT_STAGE:
			a.stage = optarg;
			break;
		case OPT_RUN:
			a.run = optarg;
			break;
		case OPT_SEQ:
			if (ctl_parse_u64(optarg, &a.seq) != SLUICE_OK) {
				ex = ctl_usage(c, "bad --seq \"%s\"", optarg);
			}
			break;
		case OPT_UNIT:
			if (a.n_units < MAX_METRICS) {
				a.units[a.n_units++] = optarg;
			}
			break;
		case OPT_METRIC:
			eq    = strchr(optarg, '=');
			errno = 0;
			d     = eq ? strtod(eq + 1, &end) : 0;
			if (eq == NULL || eq == optarg || errno != 0 ||
			    end == eq + 1 || *end != '\0' ||
			    a.n_metrics >= MAX_METRICS) {
				ex = ctl_usage(c,
				    "bad --metric \"%s\" (want "
				    "NAME=NUMBER)",
				    optarg);
				break;
			}
			a.names[a.n_metrics] =
			    strndup(optarg, (size_t) (eq - optarg));
			a.metrics[a.n_metrics].name  = a.names[a.n_metrics];
			a.metrics[a.n_metrics].value = d;
			a.n_metrics++;
			break;
		default:
			ex = ctl_common_opt(c, o, optarg, argv);
			break;
		}
		if (ex >= 0) {
			args_free(&a);
			return (ex);
		}
	}
	if (strcmp(sub, "status") == 0) {
		c->verb = "gate status";
		if ((ex = ctl_operands(c, argc, argv, 0, 1, NULL)) < 0) {
			ex = gate_status(
			    c, &a, optind < argc ? argv[optind] : NULL);
		}
	} else if (strcmp(sub, "evidence") == 0) {
		uint64_t rev;
		c->verb = "gate evidence";
		if ((ex = ctl_operands(
		         c, argc, argv, 2, 2, "ROLLOUT REVISION")) < 0) {
			if (ctl_parse_u64(argv[optind + 1], &rev) !=
			    SLUICE_OK) {
				ex = ctl_usage(c, "bad revision \"%s\"",
				    argv[optind + 1]);
			} else {
				ex = gate_evidence(c, &a, argv[optind], rev);
			}
		}
	} else if (strcmp(sub, "report") == 0) {
		c->verb = "gate report";
		if ((ex = ctl_operands(c, argc, argv, 1, 1, "ROLLOUT")) < 0) {
			ex = gate_report(c, &a, argv[optind]);
		}
	} else {
		ex = ctl_usage(c, "unknown gate command \"%s\"", sub);
	}
	args_free(&a);
	return (ex);
}
