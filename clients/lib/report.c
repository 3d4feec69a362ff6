/* SPDX-License-Identifier: MIT */
/*
 * report.c — signed metric reports from libsluice to gatekeeper: builds
 * a MetricReport, seals it with the client's key (SL_CTX_REPORT), sends
 * it over nng REQ and turns the GkReply into a sluice_verdict.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "codec.h"
#include "envelope.h"
#include "keys.h"
#include "report.h"

struct sl_reporter {
	pthread_mutex_t mtx; // one request at a time on the socket
	nng_socket      sock;
	bool            open;
	sl_secret      *key;
	uint32_t        timeout_ms;
	uint64_t        last_seq;
	uint64_t        request_id;
};

int
sl_reporter_open(sl_reporter **rp, const char *url, const char *key_file,
    uint32_t timeout_ms)
{
	sl_reporter *r;
	char         err[256];
	int          rv;

	if (url == NULL || key_file == NULL || key_file[0] == '\0') {
		return (SLUICE_EINVAL);
	}
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		return (SLUICE_ENOMEM);
	}
	pthread_mutex_init(&r->mtx, NULL);
	r->timeout_ms = timeout_ms ? timeout_ms : 2000u;
	if ((rv = sl_secret_load(&r->key, key_file, err, sizeof(err))) !=
	    SLUICE_OK) {
		sl_log_warn("report.key", "cannot load %s: %s", key_file, err);
		goto fail;
	}
	if (nng_req0_open(&r->sock) != 0) {
		rv = SLUICE_EINTERNAL;
		goto fail;
	}
	r->open = true;
	(void) nng_socket_set_ms(
	    r->sock, NNG_OPT_RECVTIMEO, (nng_duration) r->timeout_ms);
	(void) nng_socket_set_ms(
	    r->sock, NNG_OPT_SENDTIMEO, (nng_duration) r->timeout_ms);
	// A resend would be refused as a replay: never resend on our own.
	(void) nng_socket_set_ms(
	    r->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	(void) nng_socket_set_size(r->sock, NNG_OPT_RECVMAXSZ, 4u << 20);
	if (nng_dial(r->sock, url, NULL, NNG_FLAG_NONBLOCK) != 0) {
		rv = SLUICE_EINVAL;
		goto fail;
	}
	*rp = r;
	return (SLUICE_OK);
fail:
	sl_reporter_close(r);
	return (rv);
}

void
sl_reporter_close(sl_reporter *r)
{
	if (r == NULL) {
		return;
	}
	if (r->open) {
		nng_close(r->sock);
	}
	sl_secret_free(r->key);
	pthread_mutex_destroy(&r->mtx);
	free(r);
}

// Under r->mtx.
static int
call_locked(sl_reporter *r, const void *req, size_t len, uint8_t **replyp,
    size_t *replylenp)
{
	void  *buf = NULL;
	size_t n   = 0;
	int    rv;

	if ((rv = nng_send(r->sock, (void *) (uintptr_t) req, len, 0)) != 0) {
		return (SLUICE_EUNAVAIL);
	}
	if ((rv = nng_recv(r->sock, &buf, &n, NNG_FLAG_ALLOC)) != 0) {
		return (
		    rv == NNG_ETIMEDOUT ? SLUICE_ETIMEDOUT : SLUICE_EUNAVAIL);
	}
	if ((*replyp = malloc(n + 1)) == NULL) {
		nng_free(buf, n);
		return (SLUICE_ENOMEM);
	}
	memcpy(*replyp, buf, n);
	*replylenp = n;
	nng_free(buf, n);
	return (SLUICE_OK);
}

int
sl_reporter_call(sl_reporter *r, const void *req, size_t len, uint8_t **replyp,
    size_t *replylenp)
{
	int rv;

	pthread_mutex_lock(&r->mtx);
	rv = call_locked(r, req, len, replyp, replylenp);
	pthread_mutex_unlock(&r->mtx);
	return (rv);
}

static void
copy_str(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src != NULL ? src : "");
}

static void
fill_verdict(const Sluice__V1__ReportVerdict *v, sluice_verdict *out)
{
	out->accepted = v->accepted;
	out->counted  = v->counted;
	out->code     = (int) v->code;
	copy_str(out->reason, sizeof(out->reason), v->reason);
	if (v->gate != NULL) {
		copy_str(out->gate, sizeof(out->gate), v->gate->state);
		copy_str(out->stage, sizeof(out->stage), v->gate->stage);
		out->window_reports = v->gate->window_reports;
	}
}

int
sluice_report_send(
    sluice_client *c, const sluice_report *rep, sluice_verdict *vp)
{
	sl_reporter                             *r = sl_client_reporter(c);
	Sluice__V1__MetricReport                 mr;
	Sluice__V1__MetricReport__MetricsEntry  *es  = NULL;
	Sluice__V1__MetricReport__MetricsEntry **esp = NULL;
	Sluice__V1__SignedReport                 sr;
	Sluice__V1__GkRequest                    req;
	Sluice__V1__Header                       h;
	Sluice__V1__GkReply                     *reply = NULL;
	ProtobufCMessage                        *m;
	char                                     stage[SLUICE_MAX_NAME];
	uint8_t                                 *buf = NULL, *rbuf = NULL;
	size_t                                   len, rlen;
	int                                      rv;

	if (r == NULL || rep == NULL || vp == NULL || rep->rollout == NULL ||
	    rep->job == NULL || rep->job[0] == '\0' ||
	    (rep->n_metrics > 0 && rep->metrics == NULL) ||
	    (rep->n_units > 0 && rep->units == NULL)) {
		return (SLUICE_EINVAL);
	}
	if (rep->stage == NULL &&
	    sluice_stage(c, rep->rollout, stage, sizeof(stage), NULL) !=
	        SLUICE_OK) {
		return (SLUICE_EINVAL);
	}
	for (size_t i = 0; i < rep->n_metrics; i++) {
		if (rep->metrics[i].name == NULL ||
		    !isfinite(rep->metrics[i].value)) {
			return (SLUICE_EINVAL);
		}
	}
	es  = calloc(rep->n_metrics + 1, sizeof(*es));
	esp = calloc(rep->n_metrics + 1, sizeof(*esp));
	if (es == NULL || esp == NULL) {
		free(es);
		free(esp);
		return (SLUICE_ENOMEM);
	}
	sluice__v1__metric_report__init(&mr);
	mr.rollout = (char *) (uintptr_t) rep->rollout;
	mr.stage =
	    rep->stage != NULL ? (char *) (uintptr_t) rep->stage : stage;
	mr.job     = (char *) (uintptr_t) rep->job;
	mr.run_id  = (char *) (uintptr_t) (rep->run_id ? rep->run_id : "");
	mr.time_ms = rep->time_ms ? rep->time_ms : sl_now_ms();
	mr.units   = (char **) (uintptr_t) rep->units;
	mr.n_units = rep->n_units;
	for (size_t i = 0; i < rep->n_metrics; i++) {
		sluice__v1__metric_report__metrics_entry__init(&es[i]);
		es[i].key   = (char *) (uintptr_t) rep->metrics[i].name;
		es[i].value = rep->metrics[i].value;
		esp[i]      = &es[i];
	}
	mr.metrics   = esp;
	mr.n_metrics = rep->n_metrics;

	pthread_mutex_lock(&r->mtx);
	if (rep->sequence != 0) {
		mr.sequence = rep->sequence;
	} else {
		// Microseconds of the wall clock, kept increasing: a job
		// restarted later continues above its last sequence.
		uint64_t s  = sl_now_ms() * 1000u;
		mr.sequence = s > r->last_seq ? s : r->last_seq + 1;
	}
	if (mr.sequence > r->last_seq) {
		r->last_seq = mr.sequence;
	}
	sluice__v1__signed_report__init(&sr);
	if ((rv = sl_report_seal(r->key, &mr, &sr)) != SLUICE_OK) {
		goto out;
	}
	sluice__v1__gk_request__init(&req);
	sluice__v1__header__init(&h);
	h.api_version = SL_API_VERSION;
	h.request_id  = ++r->request_id;
	h.deadline_ms = r->timeout_ms;
	req.header    = &h;
	req.op_case   = SLUICE__V1__GK_REQUEST__OP_REPORT;
	req.report    = &sr;
	rv            = sl_pack(&req.base, &buf, &len);
	sl_signed_report_clear(&sr);
	if (rv != SLUICE_OK) {
		goto out;
	}
	if ((rv = call_locked(r, buf, len, &rbuf, &rlen)) != SLUICE_OK) {
		goto out;
	}
	if ((rv = sl_unpack(&sluice__v1__gk_reply__descriptor, rbuf, rlen,
	         4u << 20, &m)) != SLUICE_OK) {
		goto out;
	}
	reply = (Sluice__V1__GkReply *) m;
	memset(vp, 0, sizeof(*vp));
	vp->sequence = mr.sequence;
	if (reply->result_case == SLUICE__V1__GK_REPLY__RESULT_VERDICT) {
		fill_verdict(reply->verdict, vp);
	} else if (reply->result_case == SLUICE__V1__GK_REPLY__RESULT_ERROR) {
		vp->code = (int) reply->error->code;
		copy_str(vp->reason, sizeof(vp->reason), "error");
	} else {
		rv = SLUICE_EPROTO;
	}
out:
	pthread_mutex_unlock(&r->mtx);
	if (reply != NULL) {
		sluice__v1__gk_reply__free_unpacked(reply, NULL);
	}
	free(buf);
	free(rbuf);
	free(es);
	free(esp);
	return (rv);
}
