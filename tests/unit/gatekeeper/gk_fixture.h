/* SPDX-License-Identifier: MIT */
/*
 * gk_fixture.h — what gatekeeper's core and decision tests share: a tiny
 * in-process flagd (nng REP on inproc://, no ports) that answers ListKeys,
 * ListRollouts, GetRollout, AuditQuery and writes the way a test asks
 * (commit, conflict, or no answer at all), and records the last command;
 * the rollout the tests use (stages baseline/canary/full, a canary gate);
 * reporter and operator keys from fixed seeds; signed reports as
 * GkRequests; and a fresh LMDB directory per test.
 *
 * The fake's thread never asserts (cmocka is not thread-safe): it only
 * records, and the test thread checks.
 */
#ifndef GK_FIXTURE_H
#define GK_FIXTURE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "codec.h"
#include "envelope.h"
#include "keys.h"
#include "rollout.h"

#define FX_ROLLOUT "orders_v2"

typedef enum fx_write {
	FX_WRITE_COMMIT = 0, /* new revision, stage moved */
	FX_WRITE_CONFLICT,   /* ECONFLICT: the stage had moved */
	FX_WRITE_SILENT,     /* no answer: the caller times out */
	FX_WRITE_UNAVAIL,    /* EUNAVAIL: may or may not have committed */
} fx_write;

typedef struct fx_flagd {
	nng_socket           rep;
	char                 url[64];
	pthread_t            thr;
	pthread_mutex_t      mtx;
	atomic_bool          stop;
	sl_secret           *etl; /* reporter, scope orders_* */
	sl_secret           *op;  /* gatekeeper's operator key */
	Sluice__V1__Rollout *ro;  /* owned */
	uint64_t             revision;
	fx_write             write_mode;
	int                  writes; /* write requests seen */
	Sluice__V1__Command *last;   /* owned copy of the last command */
	// Audit entries the fake serves (one at most): a decision flagd
	// committed although its writer never heard back.
	bool     audit_has;
	uint64_t audit_rev;
	uint8_t  audit_digest[SL_HASH_BYTES];
} fx_flagd;

static sl_secret *
fx_key(const char *id, uint8_t b)
{
	uint8_t    seed[32];
	sl_secret *k = NULL;

	memset(seed, b, sizeof(seed));
	if (sl_secret_from_seed(&k, id, seed) != SLUICE_OK) {
		abort();
	}
	return (k);
}

// The rollout the tests use, at stage (active), as a heap message.
static Sluice__V1__Rollout *
fx_rollout(uint32_t stage, uint64_t since_ms, uint64_t revision)
{
	static char         s0[] = "baseline", s1[] = "canary", s2[] = "full";
	static char        *stages[] = { s0, s1, s2 };
	Sluice__V1__Rollout r;
	Sluice__V1__RolloutSpec spec;
	Sluice__V1__Gate        g;
	Sluice__V1__Gate       *gp[1];
	Sluice__V1__Condition   c[2];
	Sluice__V1__Condition  *cp[2];
	Sluice__V1__Rollout    *out;
	char                    err[128];

	sluice__v1__rollout__init(&r);
	sluice__v1__rollout_spec__init(&spec);
	sluice__v1__gate__init(&g);
	sluice__v1__condition__init(&c[0]);
	sluice__v1__condition__init(&c[1]);
	if (sl_condition_parse("error_rate mean < 0.01", &c[0], err,
	        sizeof(err)) != SLUICE_OK ||
	    sl_condition_parse("latency_ms p95 < 2000", &c[1], err,
	        sizeof(err)) != SLUICE_OK) {
		abort();
	}
	cp[0]                  = &c[0];
	cp[1]                  = &c[1];
	g.stage                = stages[1];
	g.conditions           = cp;
	g.n_conditions         = 2;
	g.window_reports       = 10;
	g.min_samples          = 1;
	g.consecutive_failures = 2;
	g.soak_reports         = 3;
	g.auto_promote         = true;
	gp[0]                  = &g;
	spec.name              = (char *) (uintptr_t) FX_ROLLOUT;
	spec.stages            = stages;
	spec.n_stages          = 3;
	spec.gates             = gp;
	spec.n_gates           = 1;
	r.spec                 = &spec;
	r.stage                = stage;
	r.state                = SLUICE__V1__ROLLOUT_STATE__STATE_ACTIVE;
	r.stage_since_ms       = since_ms;
	r.revision             = revision;
	r.created_revision     = 1;
	if (sl_message_copy(&r.base, (ProtobufCMessage **) &out) !=
	    SLUICE_OK) {
		abort();
	}
	sl_condition_clear(&c[0]);
	sl_condition_clear(&c[1]);
	return (out);
}

static Sluice__V1__Key *
fx_key_msg(Sluice__V1__Key *k, const sl_secret *s, Sluice__V1__Role role,
    const char *scope)
{
	sluice__v1__key__init(k);
	k->id              = (char *) (uintptr_t) s->id;
	k->public_key.data = (uint8_t *) (uintptr_t) s->pk;
	k->public_key.len  = 32;
	k->role            = role;
	k->scope           = (char *) (uintptr_t) scope;
	return (k);
}

static void
fx_send(fx_flagd *f, Sluice__V1__Reply *rep)
{
	uint8_t *buf;
	size_t   len;

	if (sl_pack(&rep->base, &buf, &len) != SLUICE_OK) {
		abort();
	}
	(void) nng_send(f->rep, buf, len, 0);
	free(buf);
}

static void
fx_answer(fx_flagd *f, const Sluice__V1__Request *req)
{
	Sluice__V1__Reply       rep;
	Sluice__V1__Error       err;
	Sluice__V1__KeyList     kl;
	Sluice__V1__Key         k[2];
	Sluice__V1__Key        *kp[2];
	Sluice__V1__RolloutList list;
	Sluice__V1__Rollout    *rp[1];
	Sluice__V1__AuditPage   page;
	Sluice__V1__AuditEntry  ae;
	Sluice__V1__AuditEntry *aep[1];
	Sluice__V1__WriteResult wr;
	ProtobufCMessage       *m;

	sluice__v1__reply__init(&rep);
	rep.leader = true; // a single node: it leads
	if (req->header != NULL) {
		rep.request_id = req->header->request_id;
	}
	pthread_mutex_lock(&f->mtx);
	rep.revision = f->revision;
	switch (req->op_case) {
	case SLUICE__V1__REQUEST__OP_KEYS:
		sluice__v1__key_list__init(&kl);
		kp[0] = fx_key_msg(&k[0], f->etl,
		    SLUICE__V1__ROLE__ROLE_REPORTER, "orders_*");
		kp[1] = fx_key_msg(
		    &k[1], f->op, SLUICE__V1__ROLE__ROLE_OPERATOR, "");
		kl.keys         = kp;
		kl.n_keys       = 2;
		rep.result_case = SLUICE__V1__REPLY__RESULT_KEYS;
		rep.keys        = &kl;
		break;
	case SLUICE__V1__REQUEST__OP_LIST:
		sluice__v1__rollout_list__init(&list);
		rp[0]           = f->ro;
		list.rollouts   = rp;
		list.n_rollouts = f->ro != NULL ? 1 : 0;
		rep.result_case = SLUICE__V1__REPLY__RESULT_LIST;
		rep.list        = &list;
		break;
	case SLUICE__V1__REQUEST__OP_GET:
		rep.result_case = SLUICE__V1__REPLY__RESULT_ROLLOUT;
		rep.rollout     = f->ro;
		break;
	case SLUICE__V1__REQUEST__OP_AUDIT:
		sluice__v1__audit_page__init(&page);
		sluice__v1__audit_entry__init(&ae);
		if (f->audit_has &&
		    req->audit->after_revision < f->audit_rev) {
			ae.revision = f->audit_rev;
			ae.actor    = f->op->id;
			ae.action   = (char *) (uintptr_t) "rollback";
			ae.rollout  = (char *) (uintptr_t) FX_ROLLOUT;
			ae.evidence_digest.data = f->audit_digest;
			ae.evidence_digest.len  = SL_HASH_BYTES;
			aep[0]                  = &ae;
			page.entries            = aep;
			page.n_entries          = 1;
		}
		rep.result_case = SLUICE__V1__REPLY__RESULT_AUDIT;
		rep.audit       = &page;
		break;
	case SLUICE__V1__REQUEST__OP_WRITE:
		f->writes++;
		if (f->last != NULL) {
			sluice__v1__command__free_unpacked(f->last, NULL);
			f->last = NULL;
		}
		if (sl_unpack(&sluice__v1__command__descriptor,
		        req->write->body.data, req->write->body.len, 1u << 20,
		        &m) == SLUICE_OK) {
			f->last = (Sluice__V1__Command *) m;
		}
		if (f->write_mode == FX_WRITE_SILENT) {
			pthread_mutex_unlock(&f->mtx);
			return;
		}
		if (f->write_mode == FX_WRITE_UNAVAIL) {
			sluice__v1__error__init(&err);
			err.code = SLUICE_EUNAVAIL;
			err.message =
			    (char *) (uintptr_t) "leadership "
			                         "changed; the write "
			                         "may or may not have "
			                         "been committed";
			rep.result_case = SLUICE__V1__REPLY__RESULT_ERROR;
			rep.error       = &err;
			break;
		}
		if (f->write_mode == FX_WRITE_CONFLICT) {
			sluice__v1__error__init(&err);
			err.code        = SLUICE_ECONFLICT;
			err.message     = (char *) (uintptr_t) "stage moved";
			rep.result_case = SLUICE__V1__REPLY__RESULT_ERROR;
			rep.error       = &err;
			break;
		}
		// Commit: a rollback goes to stage 0, a promote one up.
		f->revision++;
		rep.revision = f->revision;
		{
			uint32_t st = f->last != NULL &&
			        f->last->action_case ==
			            SLUICE__V1__COMMAND__ACTION_PROMOTE
			    ? f->ro->stage + 1
			    : 0;
			sluice__v1__rollout__free_unpacked(f->ro, NULL);
			f->ro = fx_rollout(st, sl_now_ms(), f->revision);
		}
		sluice__v1__write_result__init(&wr);
		wr.changed      = true;
		wr.rollout      = f->ro;
		rep.result_case = SLUICE__V1__REPLY__RESULT_WRITE;
		rep.write       = &wr;
		break;
	case SLUICE__V1__REQUEST__OP_SNAPSHOT:
	case SLUICE__V1__REQUEST__OP_INFO:
	case SLUICE__V1__REQUEST__OP_ACK:
	case SLUICE__V1__REQUEST__OP_CLIENTS:
	case SLUICE__V1__REQUEST__OP_CLUSTER:
	case SLUICE__V1__REQUEST__OP__NOT_SET:
	case _SLUICE__V1__REQUEST__OP__CASE_IS_INT_SIZE:
	default:
		sluice__v1__error__init(&err);
		err.code        = SLUICE_EINVAL;
		err.message     = (char *) (uintptr_t) "not in the fake";
		rep.result_case = SLUICE__V1__REPLY__RESULT_ERROR;
		rep.error       = &err;
		break;
	}
	fx_send(f, &rep);
	pthread_mutex_unlock(&f->mtx);
}

static void *
fx_main(void *arg)
{
	fx_flagd *f = arg;

	while (!atomic_load(&f->stop)) {
		void             *buf;
		size_t            len;
		ProtobufCMessage *m;

		if (nng_recv(f->rep, &buf, &len, NNG_FLAG_ALLOC) != 0) {
			continue; // receive timeout: look at stop again
		}
		if (sl_unpack(&sluice__v1__request__descriptor, buf, len,
		        1u << 20, &m) == SLUICE_OK) {
			fx_answer(f, (Sluice__V1__Request *) m);
			protobuf_c_message_free_unpacked(m, NULL);
		}
		nng_free(buf, len);
	}
	return (NULL);
}

static fx_flagd *
fx_flagd_start(const char *name)
{
	fx_flagd *f = calloc(1, sizeof(*f));

	if (f == NULL || sl_crypto_init() != SLUICE_OK) {
		abort();
	}
	pthread_mutex_init(&f->mtx, NULL);
	snprintf(
	    f->url, sizeof(f->url), "inproc://gk-%s-%d", name, (int) getpid());
	f->etl      = fx_key("etl-orders", 1);
	f->op       = fx_key("gatekeeper", 2);
	f->revision = 10;
	f->ro       = fx_rollout(1, sl_now_ms(), 10);
	if (nng_rep0_open(&f->rep) != 0 ||
	    nng_socket_set_ms(f->rep, NNG_OPT_RECVTIMEO, 50) != 0 ||
	    nng_listen(f->rep, f->url, NULL, 0) != 0 ||
	    pthread_create(&f->thr, NULL, fx_main, f) != 0) {
		abort();
	}
	return (f);
}

static void
fx_flagd_stop(fx_flagd *f)
{
	atomic_store(&f->stop, true);
	pthread_join(f->thr, NULL);
	nng_close(f->rep);
	if (f->last != NULL) {
		sluice__v1__command__free_unpacked(f->last, NULL);
	}
	sluice__v1__rollout__free_unpacked(f->ro, NULL);
	sl_secret_free(f->etl);
	sl_secret_free(f->op);
	pthread_mutex_destroy(&f->mtx);
	free(f);
}

// Writes the operator key of f to a file in dir, for gk_options.key_file.
static void
fx_write_key(fx_flagd *f, const char *dir, char *path, size_t len)
{
	snprintf(path, len, "%s/gatekeeper.key", dir);
	if (sl_secret_save(f->op, path) != SLUICE_OK) {
		abort();
	}
}

// A fresh directory under /tmp; rm -r'd by fx_rmdir.
static void
fx_tmpdir(char *buf, size_t len)
{
	snprintf(buf, len, "/tmp/gk-unit-XXXXXX");
	if (mkdtemp(buf) == NULL) {
		abort();
	}
}

static void
fx_rmdir(const char *dir)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0) {
		fprintf(stderr, "cannot remove %s\n", dir);
	}
}

// A GkRequest carrying a report signed with k. *bufp malloc'd.
static void
fx_report_req(const sl_secret *k, const char *stage, const char *job,
    uint64_t seq, double error_rate, double latency_ms, uint8_t **bufp,
    size_t *lenp)
{
	Sluice__V1__MetricReport                mr;
	Sluice__V1__MetricReport__MetricsEntry  e[2];
	Sluice__V1__MetricReport__MetricsEntry *ep[2];
	Sluice__V1__SignedReport                sr;
	Sluice__V1__GkRequest                   req;

	sluice__v1__metric_report__init(&mr);
	sluice__v1__metric_report__metrics_entry__init(&e[0]);
	sluice__v1__metric_report__metrics_entry__init(&e[1]);
	e[0].key     = (char *) (uintptr_t) "error_rate";
	e[0].value   = error_rate;
	e[1].key     = (char *) (uintptr_t) "latency_ms";
	e[1].value   = latency_ms;
	ep[0]        = &e[0];
	ep[1]        = &e[1];
	mr.rollout   = (char *) (uintptr_t) FX_ROLLOUT;
	mr.stage     = (char *) (uintptr_t) stage;
	mr.job       = (char *) (uintptr_t) job;
	mr.run_id    = (char *) (uintptr_t) "run";
	mr.sequence  = seq;
	mr.time_ms   = sl_now_ms();
	mr.metrics   = ep;
	mr.n_metrics = 2;
	sluice__v1__signed_report__init(&sr);
	if (sl_report_seal(k, &mr, &sr) != SLUICE_OK) {
		abort();
	}
	sluice__v1__gk_request__init(&req);
	req.op_case = SLUICE__V1__GK_REQUEST__OP_REPORT;
	req.report  = &sr;
	if (sl_pack(&req.base, bufp, lenp) != SLUICE_OK) {
		abort();
	}
	sl_signed_report_clear(&sr);
}

#endif /* GK_FIXTURE_H */
