/* SPDX-License-Identifier: MIT */
/*
 * decide.c — gate decisions as compare-and-set writes to flagd: Rollback
 * or Promote with expect_stage, a reason naming the condition, figures
 * and window, and the evidence digest of the reports that decided it.
 * The evidence (those reports) is stored in gatekeeper's LMDB under the
 * command's nonce BEFORE the write is sent, and moved under the revision
 * flagd gave the write once the reply says it; a gatekeeper that crashed
 * (or lost the reply) in between binds it later by finding the audit entry
 * whose evidence_digest matches (gk_decide_reconcile), so no committed
 * decision is ever without its evidence.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "codec.h"
#include "decide.h"
#include "envelope.h"
#include "rollout.h"

void
gk_evidence_digest(const uint8_t *const *reports, const size_t *lens, size_t n,
    uint8_t out[SL_HASH_BYTES])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, SL_HASH_BYTES);
	for (size_t i = 0; i < n; i++) {
		uint8_t be[4] = { (uint8_t) (lens[i] >> 24),
			(uint8_t) (lens[i] >> 16), (uint8_t) (lens[i] >> 8),
			(uint8_t) lens[i] };
		crypto_generichash_update(&st, be, sizeof(be));
		crypto_generichash_update(&st, reports[i], lens[i]);
	}
	crypto_generichash_final(&st, out, SL_HASH_BYTES);
}

static void
window_text(const Sluice__V1__Gate *g, char *buf, size_t len)
{
	char d[32];

	if (g->window_reports > 0 && g->window_seconds > 0) {
		sl_duration_format(g->window_seconds, d, sizeof(d));
		snprintf(buf, len, "last %u reports within %s",
		    g->window_reports, d);
	} else if (g->window_reports > 0) {
		snprintf(buf, len, "last %u reports", g->window_reports);
	} else if (g->window_seconds > 0) {
		sl_duration_format(g->window_seconds, d, sizeof(d));
		snprintf(buf, len, "last %s", d);
	} else {
		snprintf(buf, len, "every report of the stage");
	}
}

void
gk_decide_reason(const gk_ro *ro, const Sluice__V1__Gate *g, gk_decision d,
    char *buf, size_t buflen)
{
	const gk_eval *e     = &ro->last;
	const char    *stage = "?";
	char           win[96], cond[160];
	size_t         off;

	if (ro->msg != NULL && ro->msg->spec != NULL &&
	    ro->msg->stage < ro->msg->spec->n_stages) {
		stage = ro->msg->spec->stages[ro->msg->stage];
	}
	window_text(g, win, sizeof(win));
	if (d == GK_DECIDE_ROLLBACK && e->status == GK_STATUS_FAILING &&
	    e->deciding >= 0 && (size_t) e->deciding < g->n_conditions) {
		const gk_cond_result *cr = &e->cond[e->deciding];

		sl_condition_format(
		    g->conditions[e->deciding], cond, sizeof(cond));
		snprintf(buf, buflen,
		    "gatekeeper: gate %s failing: \"%s\" breached with %.6g "
		    "over %u samples, %u consecutive evaluations; window: %s "
		    "(%zu reports)",
		    stage, cond, cr->value, cr->samples, cr->streak, win,
		    e->window);
		return;
	}
	if (d == GK_DECIDE_ROLLBACK) {
		char dl[32];
		sl_duration_format(g->deadline_seconds, dl, sizeof(dl));
		snprintf(buf, buflen,
		    "gatekeeper: gate %s inconclusive: too few samples (min "
		    "%u) %s after the stage began; on_inconclusive: rollback; "
		    "window: %s (%zu reports)",
		    stage, g->min_samples, dl, win, e->window);
		return;
	}
	off = (size_t) snprintf(buf, buflen,
	    "gatekeeper: gate %s passed: soak %u reports, %llu s; window: %s "
	    "(%zu reports)",
	    stage, e->soak_reports, (unsigned long long) (e->soak_ms / 1000),
	    win, e->window);
	for (size_t i = 0; i < g->n_conditions && off < buflen; i++) {
		sl_condition_format(g->conditions[i], cond, sizeof(cond));
		off += (size_t) snprintf(buf + off, buflen - off,
		    "; \"%s\": %.6g", cond, e->cond[i].value);
	}
}

struct gk_pending {
	char        rollout[SLUICE_MAX_NAME];
	uint32_t    stage;
	uint64_t    after_rev; /* the rollout's revision when decided */
	uint64_t    now;
	gk_decision d;
	char        reason[1024];
	uint8_t     digest[SL_HASH_BYTES];
	uint8_t     nonce[SL_NONCE_BYTES];
	uint8_t   **reports;
	size_t     *lens;
	size_t      n;
	uint8_t    *ev; /* packed Evidence (revision 0), as stored pending */
	size_t      evlen;
};

typedef struct gk_pending pending;

static void
pending_free(pending *p)
{
	if (p == NULL) {
		return;
	}
	for (size_t i = 0; i < p->n; i++) {
		free(p->reports[i]);
	}
	free(p->reports);
	free(p->lens);
	free(p->ev);
	free(p);
}

// Whether ro has a decision to write now. Under c->mtx.
static bool
wanted(const gk_ro *ro, uint64_t now)
{
	return (gk_core_gate(ro) != NULL && ro->msg != NULL && ro->evaluated &&
	    !ro->inflight && ro->st.gate.decided == GK_DECIDE_NONE &&
	    ro->last.decision != GK_DECIDE_NONE && now >= ro->retry_after_ms);
}

// Under c->mtx, when wanted(): fills p and marks ro in flight.
static void
prepare(gk_ro *ro, uint64_t now, pending *p)
{
	const Sluice__V1__Gate *g = gk_core_gate(ro);
	const gk_eval          *e = &ro->last;

	snprintf(p->rollout, sizeof(p->rollout), "%s", ro->name);
	p->stage     = ro->st.gate.stage;
	p->after_rev = ro->msg->revision;
	p->now       = now;
	p->d         = e->decision;
	gk_decide_reason(ro, g, p->d, p->reason, sizeof(p->reason));
	p->n       = ro->n > e->first ? ro->n - e->first : 0;
	p->reports = sl_xcalloc(p->n + 1, sizeof(*p->reports));
	p->lens    = sl_xcalloc(p->n + 1, sizeof(*p->lens));
	for (size_t i = 0; i < p->n; i++) {
		const gk_entry *en = &ro->win[e->first + i];
		p->reports[i]      = sl_xmalloc(en->len + 1);
		memcpy(p->reports[i], en->packed, en->len);
		p->lens[i] = en->len;
	}
	gk_evidence_digest(
	    (const uint8_t *const *) p->reports, p->lens, p->n, p->digest);
	randombytes_buf(p->nonce, sizeof(p->nonce));
	ro->inflight = true;
}

// The packed Evidence of p at revision (0: not known yet). *bufp
// malloc'd, freed by the caller.
static int
pack_evidence(const pending *p, uint64_t revision, uint64_t now,
    uint8_t **bufp, size_t *lenp)
{
	Sluice__V1__Evidence       ev;
	Sluice__V1__SignedReport **srp;
	ProtobufCMessage         **ms;
	size_t                     k = 0;
	int                        rv;

	srp = sl_xcalloc(p->n + 1, sizeof(*srp));
	ms  = sl_xcalloc(p->n + 1, sizeof(*ms));
	for (size_t i = 0; i < p->n; i++) {
		if (sl_unpack(&sluice__v1__signed_report__descriptor,
		        p->reports[i], p->lens[i], SL_MAX_REPORT_BYTES + 1024u,
		        &ms[k]) == SLUICE_OK) {
			srp[k] = (Sluice__V1__SignedReport *) ms[k];
			k++;
		}
	}
	sluice__v1__evidence__init(&ev);
	ev.rollout  = (char *) (uintptr_t) p->rollout;
	ev.revision = revision;
	ev.action =
	    (char *) (uintptr_t) (p->d == GK_DECIDE_PROMOTE ? "promote"
	                                                    : "rollback");
	ev.reason      = (char *) (uintptr_t) p->reason;
	ev.digest.data = (uint8_t *) (uintptr_t) p->digest;
	ev.digest.len  = SL_HASH_BYTES;
	ev.time_ms     = now;
	ev.reports     = srp;
	ev.n_reports   = k;
	rv             = sl_pack(&ev.base, bufp, lenp);
	for (size_t i = 0; i < k; i++) {
		protobuf_c_message_free_unpacked(ms[i], NULL);
	}
	free(ms);
	free(srp);
	return (rv);
}

static void
drop_pending(gk_core *c, const uint8_t *nonce, size_t nlen)
{
	gk_txn *t;

	if (gk_db_begin(c->db, true, &t) != SLUICE_OK) {
		return;
	}
	if (gk_txn_del_pending(t, nonce, nlen) != SLUICE_OK) {
		gk_txn_abort(t);
		return;
	}
	if (gk_txn_commit(t) != SLUICE_OK) {
		sl_log_warn("decide.evidence", "cannot drop pending evidence");
	}
}

// Whether an error answer to a decision write proves nothing was
// committed. flagd also answers with errors that mean "may or may not
// have been committed" (leadership changed mid-write, a forwarded write
// lost, shutting down); their evidence is kept until the audit says.
// EREPLAY is not final either: only a committed command leaves its nonce.
static bool
refusal_is_final(int code)
{
	switch (code) {
	case SLUICE_EINVAL:
	case SLUICE_ENOENT:
	case SLUICE_EEXIST:
	case SLUICE_EPROTO:
	case SLUICE_ETOOBIG:
	case SLUICE_EBADSIG:
	case SLUICE_EUNKNOWNKEY:
	case SLUICE_EPERM:
	case SLUICE_EEXPIRED:
	case SLUICE_ECONFLICT:
	case SLUICE_EPREREQ:
	case SLUICE_ESTATE:
	case SLUICE_EVERSION:
		return (true);
	default:
		return (false);
	}
}

// Moves evidence ev (packed, revision 0) from pending[nonce] to
// evidence[rollout, revision] and, when st is given, saves the gate state
// of rollout in the same transaction (clear: dropping its window first,
// a gate reset).
static int
bind_evidence(gk_core *c, const char *rollout, const uint8_t *nonce,
    size_t nlen, uint64_t revision, const uint8_t *ev, size_t evlen,
    const gk_db_state *st, bool clear)
{
	ProtobufCMessage     *m;
	Sluice__V1__Evidence *e;
	uint8_t              *buf = NULL;
	size_t                len;
	gk_txn               *t;
	int                   rv;

	if ((rv = sl_unpack(&sluice__v1__evidence__descriptor, ev, evlen,
	         SIZE_MAX, &m)) != SLUICE_OK) {
		return (rv);
	}
	e           = (Sluice__V1__Evidence *) m;
	e->revision = revision;
	rv          = sl_pack(&e->base, &buf, &len);
	protobuf_c_message_free_unpacked(m, NULL);
	if (rv != SLUICE_OK) {
		return (rv);
	}
	if ((rv = gk_db_begin(c->db, true, &t)) == SLUICE_OK) {
		if ((rv = gk_txn_put_evidence(
		         t, rollout, revision, buf, len)) != SLUICE_OK ||
		    (rv = gk_txn_del_pending(t, nonce, nlen)) != SLUICE_OK ||
		    (clear &&
		        (rv = gk_txn_clear_window(t, rollout)) != SLUICE_OK) ||
		    (st != NULL &&
		        (rv = gk_txn_put_state(t, rollout, st)) !=
		            SLUICE_OK)) {
			gk_txn_abort(t);
		} else {
			rv = gk_txn_commit(t);
		}
	}
	free(buf);
	return (rv);
}

int
gk_decide_prepare(
    gk_core *c, gk_ro *ro, gk_txn *t, uint64_t now, gk_pending **pp)
{
	pending *p;
	int      rv;

	*pp = NULL;
	if (!wanted(ro, now)) {
		return (SLUICE_OK);
	}
	p = sl_xcalloc(1, sizeof(*p));
	prepare(ro, now, p);
	// The evidence first: a decision flagd commits is never without
	// the reports behind it, whatever happens to us after the send.
	if ((rv = pack_evidence(p, 0, now, &p->ev, &p->evlen)) != SLUICE_OK ||
	    (rv = gk_txn_put_pending(t, p->nonce, sizeof(p->nonce),
	         p->after_rev, p->ev, p->evlen)) != SLUICE_OK) {
		sl_log_err("decide.evidence",
		    "%s: cannot keep the evidence (%s); %s not sent",
		    p->rollout, sluice_strerror(rv), gk_decision_name(p->d));
		atomic_fetch_add(&c->m.decision_errors, 1);
		ro->inflight       = false;
		ro->retry_after_ms = now + 5000u;
		pending_free(p);
		return (rv);
	}
	*pp = p;
	return (SLUICE_OK);
}

void
gk_decide_cancel(gk_core *c, gk_pending *p)
{
	gk_ro *ro;

	if (p == NULL) {
		return;
	}
	if ((ro = gk_core_find(c, p->rollout)) != NULL) {
		ro->inflight = false;
	}
	pending_free(p);
}

int
gk_decide_send(gk_core *c, gk_pending *p, gk_decided *outp)
{
	gk_ro               *ro;
	uint64_t             now = p->now;
	Sluice__V1__Command  cmd;
	Sluice__V1__Rollback rb;
	Sluice__V1__Promote  pr;
	Sluice__V1__Reply   *rep      = NULL;
	Sluice__V1__Rollout *after    = NULL;
	uint64_t             revision = 0;
	int                  rv;

	sluice__v1__command__init(&cmd);
	// Our nonce, so the evidence is found by it; sl_rpc_write frees
	// cmd's nonce whoever set it, hence a heap copy.
	cmd.nonce.data = sl_xmalloc(sizeof(p->nonce));
	cmd.nonce.len  = sizeof(p->nonce);
	memcpy(cmd.nonce.data, p->nonce, sizeof(p->nonce));
	cmd.reason               = p->reason;
	cmd.evidence_digest.data = p->digest;
	cmd.evidence_digest.len  = SL_HASH_BYTES;
	if (p->d == GK_DECIDE_ROLLBACK) {
		sluice__v1__rollback__init(&rb);
		rb.rollout          = p->rollout;
		rb.has_expect_stage = true;
		rb.expect_stage     = p->stage;
		cmd.action_case     = SLUICE__V1__COMMAND__ACTION_ROLLBACK;
		cmd.rollback        = &rb;
	} else {
		sluice__v1__promote__init(&pr);
		pr.rollout          = p->rollout;
		pr.has_expect_stage = true;
		pr.expect_stage     = p->stage;
		cmd.action_case     = SLUICE__V1__COMMAND__ACTION_PROMOTE;
		cmd.promote         = &pr;
	}
	pthread_mutex_lock(&c->rpc_mtx);
	rv = sl_rpc_write(c->rpc, c->key, &cmd, &rep);
	pthread_mutex_unlock(&c->rpc_mtx);
	if (rep != NULL) {
		revision = rep->revision;
		if (rv == SLUICE_OK &&
		    rep->result_case == SLUICE__V1__REPLY__RESULT_WRITE &&
		    rep->write->rollout != NULL) {
			if (sl_message_copy(&rep->write->rollout->base,
			        (ProtobufCMessage **) &after) != SLUICE_OK) {
				after = NULL;
			}
		}
	}

	pthread_mutex_lock(&c->mtx);
	ro = gk_core_find(c, p->rollout);
	if (ro != NULL) {
		ro->inflight = false;
	}
	if (rv == SLUICE_OK) {
		gk_db_state *st    = NULL;
		gk_ro       *reset = NULL;

		atomic_fetch_add(p->d == GK_DECIDE_PROMOTE ? &c->m.promotes
		                                           : &c->m.rollbacks,
		    1);
		sl_log_notice("decide.done", "%s: %s at revision %llu: %s",
		    p->rollout, gk_decision_name(p->d),
		    (unsigned long long) revision, p->reason);
		if (ro != NULL && ro->st.gate.stage == p->stage) {
			gk_gate_mark_decided(&ro->st.gate, p->d);
			ro->st.decision_revision = revision;
			ro->last.status          = p->d == GK_DECIDE_PROMOTE
			             ? GK_STATUS_PROMOTED
			             : GK_STATUS_ROLLED_BACK;
			ro->last.decision        = GK_DECIDE_NONE;
			st                       = &ro->st;
		}
		if (after != NULL) {
			// Apply the state flagd answered with at once (the
			// change stream will say the same a moment later): the
			// stage moved, so the gate is reset.
			reset = gk_core_apply_rollout_unsaved(c, after);
			after = NULL;
			if (reset != NULL) {
				st = &reset->st;
			}
		}
		// Evidence under its revision, and the gate "decided" (or
		// reset for the new stage), in one transaction. Should it
		// fail, the evidence stays pending and gk_decide_reconcile
		// binds it from flagd's audit.
		if (bind_evidence(c, p->rollout, p->nonce, sizeof(p->nonce),
		        revision, p->ev, p->evlen, st,
		        reset != NULL) != SLUICE_OK) {
			sl_log_err("decide.evidence",
			    "%s: cannot bind the evidence to revision %llu; "
			    "left pending",
			    p->rollout, (unsigned long long) revision);
			atomic_store(&c->pending_evidence, true);
			if (reset != NULL) {
				// The reset must reach LMDB before the new
				// stage's reports do.
				gk_core_save_reset(c, reset);
			}
		}
		if (outp != NULL) {
			outp->decision = p->d;
			outp->revision = revision;
			outp->stage    = p->stage;
		}
	} else if (rv == SLUICE_ECONFLICT) {
		// The stage moved under us (another gatekeeper, an
		// operator): nothing to do; the change will reset the gate.
		atomic_fetch_add(&c->m.conflicts, 1);
		sl_log_info("decide.conflict",
		    "%s: stage is no longer %u; %s not needed", p->rollout,
		    p->stage, gk_decision_name(p->d));
		if (ro != NULL) {
			ro->retry_after_ms = now + 2000u;
		}
	} else {
		atomic_fetch_add(&c->m.decision_errors, 1);
		sl_log_warn("decide.fail", "%s: %s failed: %s (%s)",
		    p->rollout, gk_decision_name(p->d), sluice_strerror(rv),
		    rep != NULL ? sl_reply_errmsg(rep) : "");
		if (ro != NULL) {
			ro->retry_after_ms = now + 5000u;
		}
	}
	pthread_mutex_unlock(&c->mtx);
	if (rv != SLUICE_OK) {
		if (rep != NULL && refusal_is_final(rv)) {
			// flagd refused the command: nothing was committed.
			drop_pending(c, p->nonce, sizeof(p->nonce));
		} else {
			// No answer: the write may still have committed.
			// Keep the evidence until the audit says.
			atomic_store(&c->pending_evidence, true);
		}
	}
	if (after != NULL) {
		sluice__v1__rollout__free_unpacked(after, NULL);
	}
	if (rep != NULL) {
		sluice__v1__reply__free_unpacked(rep, NULL);
	}
	pending_free(p);
	return (rv == SLUICE_ECONFLICT ? SLUICE_OK : rv);
}

int
gk_decide_run(gk_core *c, const char *rollout, gk_decided *outp)
{
	gk_pending *p = NULL;
	gk_ro      *ro;
	gk_txn     *t;
	uint64_t    now = sl_now_ms();
	int         rv;

	pthread_mutex_lock(&c->mtx);
	if ((ro = gk_core_find(c, rollout)) == NULL || !wanted(ro, now)) {
		pthread_mutex_unlock(&c->mtx);
		return (SLUICE_OK);
	}
	if ((rv = gk_db_begin(c->db, true, &t)) == SLUICE_OK) {
		if ((rv = gk_decide_prepare(c, ro, t, now, &p)) != SLUICE_OK) {
			gk_txn_abort(t);
		} else if ((rv = gk_txn_commit(t)) != SLUICE_OK) {
			sl_log_err("decide.evidence",
			    "%s: cannot commit the evidence (%s); not sent",
			    rollout, sluice_strerror(rv));
			atomic_fetch_add(&c->m.decision_errors, 1);
			gk_decide_cancel(c, p);
			p                  = NULL;
			ro->retry_after_ms = now + 5000u;
		}
	}
	pthread_mutex_unlock(&c->mtx);
	if (p == NULL) {
		return (rv);
	}
	return (gk_decide_send(c, p, outp));
}

// ---------------------------------------------------------------- reconcile

typedef struct pend {
	uint8_t  nonce[64];
	size_t   nlen;
	uint64_t after_rev;
	uint8_t *ev;
	size_t   evlen;
} pend;

typedef struct pend_list {
	pend  *v;
	size_t n;
} pend_list;

static int
collect_cb(void *arg, const uint8_t *nonce, size_t nlen, uint64_t after_rev,
    const uint8_t *ev, size_t len)
{
	pend_list *l = arg;
	pend      *pe;

	if (nlen > sizeof(pe->nonce) || l->n >= 1024) {
		return (SLUICE_OK);
	}
	l->v = realloc(l->v, (l->n + 1) * sizeof(*l->v));
	if (l->v == NULL) {
		sl_panic(__FILE__, __LINE__, "out of memory");
	}
	pe = &l->v[l->n++];
	memcpy(pe->nonce, nonce, nlen);
	pe->nlen      = nlen;
	pe->after_rev = after_rev;
	pe->ev        = sl_xmalloc(len + 1);
	pe->evlen     = len;
	memcpy(pe->ev, ev, len);
	return (SLUICE_OK);
}

// Searches flagd's audit of rollout after after_rev for gatekeeper's
// entry with evidence digest dg and action (an empty evidence set hashes
// alike for every decision, so the action must match too). *revp: its
// revision, 0 when none. *finalp: whether every page came from a leader
// that was not stale, so that "not there" can be believed.
static int
audit_find(gk_core *c, const char *rollout, uint64_t after_rev,
    const uint8_t *dg, size_t dglen, const char *action, uint64_t *revp,
    bool *finalp)
{
	uint64_t from = after_rev;

	*revp   = 0;
	*finalp = true;
	for (int page = 0; page < 1000; page++) {
		Sluice__V1__Request    req;
		Sluice__V1__AuditQuery q;
		Sluice__V1__Reply     *rep = NULL;
		bool                   more;
		int                    rv;

		sluice__v1__request__init(&req);
		sluice__v1__audit_query__init(&q);
		q.rollout        = (char *) (uintptr_t) rollout;
		q.after_revision = from;
		q.limit          = 256;
		req.op_case      = SLUICE__V1__REQUEST__OP_AUDIT;
		req.audit        = &q;
		pthread_mutex_lock(&c->rpc_mtx);
		rv = sl_rpc_call(c->rpc, &req, &rep);
		pthread_mutex_unlock(&c->rpc_mtx);
		if (rv == SLUICE_OK &&
		    rep->result_case != SLUICE__V1__REPLY__RESULT_AUDIT) {
			rv = SLUICE_EPROTO;
		}
		if (rv != SLUICE_OK) {
			if (rep != NULL) {
				sluice__v1__reply__free_unpacked(rep, NULL);
			}
			return (rv);
		}
		if (!rep->leader || rep->stale) {
			*finalp = false;
		}
		more = rep->audit->more && rep->audit->n_entries > 0;
		for (size_t i = 0; i < rep->audit->n_entries; i++) {
			const Sluice__V1__AuditEntry *e =
			    rep->audit->entries[i];
			if (e->revision > from) {
				from = e->revision;
			}
			if (*revp == 0 && e->evidence_digest.len == dglen &&
			    dglen > 0 &&
			    memcmp(e->evidence_digest.data, dg, dglen) == 0 &&
			    e->actor != NULL &&
			    strcmp(e->actor, c->key->id) == 0 &&
			    e->action != NULL && action != NULL &&
			    strcmp(e->action, action) == 0) {
				*revp = e->revision;
			}
		}
		sluice__v1__reply__free_unpacked(rep, NULL);
		if (*revp != 0 || !more) {
			return (SLUICE_OK);
		}
	}
	return (SLUICE_OK);
}

size_t
gk_decide_reconcile(gk_core *c, uint64_t give_up_ms)
{
	pend_list l    = { NULL, 0 };
	uint64_t  now  = sl_now_ms();
	size_t    left = 0;
	gk_txn   *t;

	if (gk_db_begin(c->db, false, &t) != SLUICE_OK) {
		return (1);
	}
	(void) gk_txn_each_pending(t, collect_cb, &l);
	gk_txn_abort(t);
	for (size_t i = 0; i < l.n; i++) {
		pend                 *pe = &l.v[i];
		ProtobufCMessage     *m;
		Sluice__V1__Evidence *e;
		uint64_t              rev   = 0;
		bool                  keep  = true;
		bool                  final = false;
		int                   rv;

		if (sl_unpack(&sluice__v1__evidence__descriptor, pe->ev,
		        pe->evlen, SIZE_MAX, &m) != SLUICE_OK) {
			drop_pending(c, pe->nonce, pe->nlen);
			continue;
		}
		e  = (Sluice__V1__Evidence *) m;
		rv = audit_find(c, e->rollout != NULL ? e->rollout : "",
		    pe->after_rev, e->digest.data, e->digest.len, e->action,
		    &rev, &final);
		if (rv == SLUICE_OK && rev != 0) {
			if (bind_evidence(c, e->rollout, pe->nonce, pe->nlen,
			        rev, pe->ev, pe->evlen, NULL,
			        false) == SLUICE_OK) {
				sl_log_notice("decide.reconcile",
				    "%s: evidence of the %s at revision %llu "
				    "bound from flagd's audit",
				    e->rollout, e->action,
				    (unsigned long long) rev);
				keep = false;
			}
		} else if (rv == SLUICE_OK && final &&
		    now > e->time_ms + give_up_ms) {
			// Long past any write in flight, and the leader's
			// audit does not have it: it never committed. A
			// follower or a stale node may simply not have it yet.
			sl_log_info("decide.reconcile",
			    "%s: %s never committed; evidence dropped",
			    e->rollout, e->action);
			drop_pending(c, pe->nonce, pe->nlen);
			keep = false;
		}
		left += keep ? 1 : 0;
		protobuf_c_message_free_unpacked(m, NULL);
	}
	for (size_t i = 0; i < l.n; i++) {
		free(l.v[i].ev);
	}
	free(l.v);
	return (left);
}
