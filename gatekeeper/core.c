/* SPDX-License-Identifier: MIT */
/*
 * core.c — gatekeeper's state: rollouts followed from flagd, windows of
 * counted reports and gate states mirrored in LMDB, report acceptance,
 * status and evidence queries, counters, and the tracker thread (stage
 * changes, timed evaluations, key refresh). core.h gives the locking.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec.h"
#include "core.h"
#include "decide.h"
#include "envelope.h"
#include "rollout.h"

#define KEYS_RETRY_MS 1000u
// Pending decision evidence: how often to look for its audit entry, and
// after how long an unmatched one is taken as never committed.
#define RECONCILE_MS 5000u
#define RECONCILE_GIVE_UP_MS (10u * 60u * 1000u)

// ---------------------------------------------------------------- rollouts

gk_ro *
gk_core_find(gk_core *c, const char *name)
{
	for (size_t i = 0; i < c->nro; i++) {
		if (strcmp(c->ros[i]->name, name) == 0) {
			return (c->ros[i]);
		}
	}
	return (NULL);
}

static gk_ro *
ro_add(gk_core *c, const char *name)
{
	gk_ro  *ro;
	gk_ro **nv;

	if (strlen(name) >= SLUICE_MAX_NAME) {
		return (NULL);
	}
	if ((nv = realloc(c->ros, (c->nro + 1) * sizeof(*nv))) == NULL) {
		return (NULL);
	}
	c->ros = nv;
	if ((ro = calloc(1, sizeof(*ro))) == NULL) {
		return (NULL);
	}
	snprintf(ro->name, sizeof(ro->name), "%s", name);
	ro->st.version   = GK_DB_STATE_VERSION;
	ro->st.next_id   = 1;
	c->ros[c->nro++] = ro;
	return (ro);
}

static void
entry_free(gk_entry *e)
{
	if (e->r != NULL) {
		sluice__v1__metric_report__free_unpacked(e->r, NULL);
	}
	free(e->packed);
	memset(e, 0, sizeof(*e));
}

// Drops the oldest k entries of ro's window (memory only).
static void
win_drop(gk_ro *ro, size_t k)
{
	if (k > ro->n) {
		k = ro->n;
	}
	if (k == 0) {
		return; // also keeps memmove away from a NULL window
	}
	for (size_t i = 0; i < k; i++) {
		entry_free(&ro->win[i]);
	}
	memmove(ro->win, ro->win + k, (ro->n - k) * sizeof(*ro->win));
	ro->n -= k;
}

static void
ro_free(gk_ro *ro)
{
	win_drop(ro, ro->n);
	free(ro->win);
	if (ro->msg != NULL) {
		sluice__v1__rollout__free_unpacked(ro->msg, NULL);
	}
	free(ro);
}

const Sluice__V1__Gate *
gk_core_gate(const gk_ro *ro)
{
	const Sluice__V1__RolloutSpec *s;

	if (ro->msg == NULL || (s = ro->msg->spec) == NULL ||
	    ro->msg->stage >= s->n_stages) {
		return (NULL);
	}
	for (size_t i = 0; i < s->n_gates; i++) {
		if (s->gates[i] != NULL && s->gates[i]->stage != NULL &&
		    strcmp(s->gates[i]->stage, s->stages[ro->msg->stage]) ==
		        0) {
			return (s->gates[i]);
		}
	}
	return (NULL);
}

static void
persist_state(gk_core *c, gk_ro *ro, bool clear_window)
{
	gk_txn *t;
	int     rv;

	if ((rv = gk_db_begin(c->db, true, &t)) != SLUICE_OK) {
		sl_log_err("core.db", "cannot begin: %s", sluice_strerror(rv));
		return;
	}
	if ((clear_window &&
	        (rv = gk_txn_clear_window(t, ro->name)) != SLUICE_OK) ||
	    (rv = gk_txn_put_state(t, ro->name, &ro->st)) != SLUICE_OK) {
		gk_txn_abort(t);
		sl_log_err("core.db", "cannot save %s: %s", ro->name,
		    sluice_strerror(rv));
		return;
	}
	if ((rv = gk_txn_commit(t)) != SLUICE_OK) {
		sl_log_err("core.db", "cannot commit %s: %s", ro->name,
		    sluice_strerror(rv));
	}
}

gk_ro *
gk_core_apply_rollout_unsaved(gk_core *c, Sluice__V1__Rollout *msg)
{
	gk_ro *ro;

	if (msg == NULL || msg->spec == NULL || msg->spec->name == NULL) {
		if (msg != NULL) {
			sluice__v1__rollout__free_unpacked(msg, NULL);
		}
		return (NULL);
	}
	if ((ro = gk_core_find(c, msg->spec->name)) == NULL &&
	    (ro = ro_add(c, msg->spec->name)) == NULL) {
		sluice__v1__rollout__free_unpacked(msg, NULL);
		return (NULL);
	}
	if (ro->msg != NULL) {
		sluice__v1__rollout__free_unpacked(ro->msg, NULL);
	}
	ro->msg = msg;
	if (ro->st.gate.stage != msg->stage ||
	    ro->st.gate.stage_since_ms != msg->stage_since_ms) {
		// A new stage (or the same one entered again): its gate
		// starts from nothing. Reports already counted belong to
		// the old stage.
		if (ro->st.gate.stage_since_ms != 0) {
			sl_log_info("core.stage",
			    "%s: stage %u -> %u, gate reset", ro->name,
			    ro->st.gate.stage, msg->stage);
			atomic_fetch_add(&c->m.stage_resets, 1);
		}
		gk_gate_stage_reset(
		    &ro->st.gate, msg->stage, msg->stage_since_ms);
		ro->st.decision_revision = 0;
		ro->st.counted           = 0;
		win_drop(ro, ro->n);
		ro->evaluated      = false;
		ro->retry_after_ms = 0;
		return (ro);
	}
	return (NULL);
}

void
gk_core_save_reset(gk_core *c, gk_ro *ro)
{
	persist_state(c, ro, true);
}

void
gk_core_apply_rollout(gk_core *c, Sluice__V1__Rollout *msg)
{
	gk_ro *ro;

	if ((ro = gk_core_apply_rollout_unsaved(c, msg)) != NULL) {
		persist_state(c, ro, true);
	}
}

// GetRollout from flagd, without c->mtx. *msgp owned by the caller.
static int
fetch_rollout(gk_core *c, const char *name, Sluice__V1__Rollout **msgp)
{
	Sluice__V1__Request    req;
	Sluice__V1__GetRollout get;
	Sluice__V1__Reply     *rep = NULL;
	int                    rv;

	sluice__v1__request__init(&req);
	sluice__v1__get_rollout__init(&get);
	get.name    = (char *) (uintptr_t) name;
	req.op_case = SLUICE__V1__REQUEST__OP_GET;
	req.get     = &get;
	pthread_mutex_lock(&c->rpc_mtx);
	rv = sl_rpc_call(c->rpc, &req, &rep);
	pthread_mutex_unlock(&c->rpc_mtx);
	if (rv == SLUICE_OK &&
	    rep->result_case == SLUICE__V1__REPLY__RESULT_ROLLOUT) {
		rv = sl_message_copy(
		    &rep->rollout->base, (ProtobufCMessage **) msgp);
	} else if (rv == SLUICE_OK) {
		rv = SLUICE_EPROTO;
	}
	if (rep != NULL) {
		sluice__v1__reply__free_unpacked(rep, NULL);
	}
	return (rv);
}

static int
fetch_all(gk_core *c)
{
	Sluice__V1__Request      req;
	Sluice__V1__ListRollouts list;
	Sluice__V1__Reply       *rep = NULL;
	int                      rv;

	sluice__v1__request__init(&req);
	sluice__v1__list_rollouts__init(&list);
	req.op_case = SLUICE__V1__REQUEST__OP_LIST;
	req.list    = &list;
	pthread_mutex_lock(&c->rpc_mtx);
	rv = sl_rpc_call(c->rpc, &req, &rep);
	pthread_mutex_unlock(&c->rpc_mtx);
	if (rv == SLUICE_OK &&
	    rep->result_case == SLUICE__V1__REPLY__RESULT_LIST) {
		pthread_mutex_lock(&c->mtx);
		for (size_t i = 0; i < rep->list->n_rollouts; i++) {
			Sluice__V1__Rollout *m;
			if (sl_message_copy(&rep->list->rollouts[i]->base,
			        (ProtobufCMessage **) &m) == SLUICE_OK) {
				gk_core_apply_rollout(c, m);
			}
		}
		pthread_mutex_unlock(&c->mtx);
	} else if (rv == SLUICE_OK) {
		rv = SLUICE_EPROTO;
	}
	if (rep != NULL) {
		sluice__v1__reply__free_unpacked(rep, NULL);
	}
	return (rv);
}

static int
fetch_keys(gk_core *c)
{
	Sluice__V1__Request  req;
	Sluice__V1__ListKeys lk;
	Sluice__V1__Reply   *rep = NULL;
	Sluice__V1__KeyList *kl;
	int                  rv;

	sluice__v1__request__init(&req);
	sluice__v1__list_keys__init(&lk);
	req.op_case = SLUICE__V1__REQUEST__OP_KEYS;
	req.keys    = &lk;
	pthread_mutex_lock(&c->rpc_mtx);
	rv         = sl_rpc_call(c->rpc, &req, &rep);
	c->keys_ms = sl_mono_ms();
	pthread_mutex_unlock(&c->rpc_mtx);
	if (rv == SLUICE_OK &&
	    rep->result_case == SLUICE__V1__REPLY__RESULT_KEYS) {
		if ((rv = sl_message_copy(&rep->keys->base,
		         (ProtobufCMessage **) &kl)) == SLUICE_OK) {
			gk_keys_set(c->keys, kl);
		}
	} else if (rv == SLUICE_OK) {
		rv = SLUICE_EPROTO;
	}
	if (rep != NULL) {
		sluice__v1__reply__free_unpacked(rep, NULL);
	}
	return (rv);
}

// ---------------------------------------------------------------- status

static const char *
cond_state_name(gk_cond_status s)
{
	switch (s) {
	case GK_COND_PASS:
		return ("pass");
	case GK_COND_BREACH:
		return ("breach");
	case GK_COND_PENDING:
	default:
		return ("pending");
	}
}

void
gk_core_gate_status(gk_core *c, gk_ro *ro, Sluice__V1__GateStatus *out,
    Sluice__V1__ConditionStatus *cs, Sluice__V1__ConditionStatus **csp)
{
	const Sluice__V1__Gate *g = gk_core_gate(ro);
	const gk_eval          *e = &ro->last;

	(void) c;
	sluice__v1__gate_status__init(out);
	out->rollout     = ro->name;
	out->stage_index = ro->st.gate.stage;
	if (ro->msg != NULL && ro->msg->spec != NULL &&
	    ro->msg->stage < ro->msg->spec->n_stages) {
		out->stage = ro->msg->spec->stages[ro->msg->stage];
	}
	out->counted           = ro->st.counted;
	out->recorded          = ro->st.recorded;
	out->evaluations       = ro->st.gate.evaluations;
	out->decision_revision = ro->st.decision_revision;
	if (g == NULL) {
		out->state = (char *) (uintptr_t) "none";
		return;
	}
	out->state          = (char *) (uintptr_t) (ro->evaluated
	                 ? gk_status_name(e->status)
	                 : gk_status_name(ro->st.gate.decided == GK_DECIDE_PROMOTE
	                           ? GK_STATUS_PROMOTED
	                           : ro->st.gate.decided == GK_DECIDE_ROLLBACK
	                           ? GK_STATUS_ROLLED_BACK
	                           : GK_STATUS_PENDING));
	out->window_reports = (uint32_t) (ro->evaluated ? e->window : ro->n);
	out->soak_reports   = ro->st.gate.soak_reports;
	out->soak_ms        = ro->evaluated ? e->soak_ms : 0;
	out->n_conditions   = g->n_conditions;
	out->conditions     = csp;
	for (size_t i = 0; i < g->n_conditions && i < GK_MAX_CONDITIONS; i++) {
		sluice__v1__condition_status__init(&cs[i]);
		cs[i].condition = g->conditions[i];
		if (ro->evaluated) {
			cs[i].value   = e->cond[i].value;
			cs[i].samples = e->cond[i].samples;
			cs[i].state   = (char *) (uintptr_t) cond_state_name(
			      e->cond[i].status);
			cs[i].streak = e->cond[i].streak;
		} else {
			cs[i].state = (char *) (uintptr_t) "pending";
		}
		csp[i] = &cs[i];
	}
}

// ---------------------------------------------------------------- reports

// Evaluates ro at now (new_report: after a counted report) into ro->last,
// on a copy of the state; the caller commits st. n: entries to consider.
static void
evaluate(gk_ro *ro, size_t n, uint64_t now, bool new_report, gk_gate_state *st,
    gk_eval *ev)
{
	const Sluice__V1__Gate *g = gk_core_gate(ro);
	gk_sample              *s;
	double                 *scratch;

	memset(ev, 0, sizeof(*ev));
	ev->deciding = -1;
	if (g == NULL) {
		ev->status = GK_STATUS_NONE;
		ev->window = n;
		return;
	}
	s       = sl_xcalloc(n + 1, sizeof(*s));
	scratch = sl_xcalloc(2 * n + 2, sizeof(*scratch));
	for (size_t i = 0; i < n; i++) {
		s[i].at_ms = ro->win[i].at_ms;
		s[i].r     = ro->win[i].r;
	}
	if (gk_gate_evaluate(g, s, n, st, now, new_report, scratch, ev) !=
	    SLUICE_OK) {
		memset(ev, 0, sizeof(*ev));
		ev->status   = GK_STATUS_NONE;
		ev->deciding = -1;
	}
	// A decision is only taken for an active rollout.
	if (ro->msg != NULL &&
	    ro->msg->state != SLUICE__V1__ROLLOUT_STATE__STATE_ACTIVE) {
		ev->decision = GK_DECIDE_NONE;
	}
	free(s);
	free(scratch);
}

typedef struct verdict {
	bool        accepted;
	bool        counted;
	gk_reject   why;
	gk_pending *dec;  /* a decision to send once the report committed */
	uint8_t    *gate; /* packed GateStatus right after the report */
	size_t      gatelen;
	char        rollout[SLUICE_MAX_NAME];
} verdict;

static void
count_reject(gk_core *c, verdict *v, gk_reject why)
{
	v->why = why;
	atomic_fetch_add(&c->m.rejected[why], 1);
	sl_log_debug(
	    "report.reject", "report rejected: %s", gk_reject_name(why));
}

// A verified report waiting for its group commit, inside the request
// that carries it (gk_req): sr, buf and v belong to that request.
typedef struct gk_job {
	struct gk_job                  *next;
	struct gk_req                  *req;
	const Sluice__V1__SignedReport *sr;
	Sluice__V1__MetricReport       *r; /* owned; NULL once in a window */
	const uint8_t                  *buf;
	size_t                          len;
	uint64_t                        now;
	verdict                        *v;
	bool                            final;   /* rejected for good */
	bool                            fetched; /* its rollout was fetched */
	bool                            refetch; /* unknown: fetch, retry */
} gk_job;

// What a batch changed in memory before its commit, to put back when the
// commit fails: each rollout's state as it was before its first report of
// the batch (its window is re-read from the database, which still has the
// window as it was).
typedef struct undo_ro {
	gk_ro      *ro;
	gk_db_state st;
	gk_eval     last;
	bool        evaluated;
} undo_ro;

typedef struct undo {
	undo_ro *v;
	size_t   n, cap;
	bool     replay; /* the replay table was changed */
} undo;

static void
undo_touch(undo *u, gk_ro *ro)
{
	for (size_t i = 0; i < u->n; i++) {
		if (u->v[i].ro == ro) {
			return;
		}
	}
	if (u->n == u->cap) {
		u->cap = u->cap ? u->cap * 2 : 4;
		if ((u->v = realloc(u->v, u->cap * sizeof(*u->v))) == NULL) {
			sl_panic(__FILE__, __LINE__, "out of memory");
		}
	}
	u->v[u->n].ro        = ro;
	u->v[u->n].st        = ro->st;
	u->v[u->n].last      = ro->last;
	u->v[u->n].evaluated = ro->evaluated;
	u->n++;
}

static int load_report_cb(
    void *arg, uint64_t id, uint64_t at_ms, const uint8_t *sr, size_t len);
static int load_replay_cb(
    void *arg, const char *key, const char *job, uint64_t seq);

typedef struct load_ctx {
	gk_core *c;
	gk_ro   *ro;
	int      rv;
} load_ctx;

// Under c->mtx, after a failed batch: memory back to what the database
// holds (which the aborted transaction did not change).
static void
undo_apply(gk_core *c, undo *u)
{
	load_ctx l = { c, NULL, SLUICE_OK };
	gk_txn  *t = NULL;
	int      rv;

	if ((rv = gk_db_begin(c->db, false, &t)) != SLUICE_OK) {
		sl_log_err("core.db", "cannot re-read the windows: %s",
		    sluice_strerror(rv));
	}
	for (size_t i = 0; i < u->n; i++) {
		gk_ro *ro = u->v[i].ro;

		ro->st        = u->v[i].st;
		ro->last      = u->v[i].last;
		ro->evaluated = u->v[i].evaluated;
		win_drop(ro, ro->n);
		l.ro = ro;
		if (t != NULL &&
		    gk_txn_each_window(t, ro->name, load_report_cb, &l) !=
		        SLUICE_OK) {
			sl_log_err("core.db", "%s: cannot re-read the window",
			    ro->name);
		}
	}
	if (u->replay && t != NULL) {
		gk_replay *fresh;

		if (gk_replay_alloc(&fresh) == SLUICE_OK) {
			gk_replay_free(c->replay);
			c->replay = fresh;
			(void) gk_txn_each_replay(t, load_replay_cb, &l);
		}
	}
	gk_txn_abort(t);
	free(u->v);
	memset(u, 0, sizeof(*u));
}

// Applies job j to memory and to the batch's transaction t, under
// c->mtx: replay check (against the table, which already holds the
// batch's earlier reports), store, evaluate, and, when the report
// decides, the decision's evidence in the same transaction. A rejection
// changes nothing. Returns non-OK when t cannot be committed.
static int
apply_job(gk_core *c, gk_txn *t, gk_job *j, undo *u)
{
	verdict                        *v  = j->v;
	const Sluice__V1__SignedReport *sr = j->sr;
	Sluice__V1__MetricReport       *r  = j->r;
	gk_gate_state                   st;
	gk_db_state                     ds;
	gk_eval                         ev;
	gk_entry                       *e;
	gk_ro                          *ro;
	int                             si, rv;
	bool                            counted;
	size_t                          drop = 0;

	if (j->final) {
		return (SLUICE_OK);
	}
	if ((ro = gk_core_find(c, r->rollout)) == NULL || ro->msg == NULL) {
		// A rollout created since we last looked: the API thread
		// fetches it and queues the report again, once.
		v->why     = GK_REJ_UNKNOWN_ROLLOUT;
		j->refetch = !j->fetched;
		return (SLUICE_OK);
	}
	if (!gk_replay_check(c->replay, sr->key_id, r->job, r->sequence)) {
		v->why = GK_REJ_REPLAY;
		return (SLUICE_OK);
	}
	si      = sl_stage_index(ro->msg->spec, r->stage);
	counted = si >= 0 && (uint32_t) si == ro->msg->stage;
	if (counted && ro->n == ro->cap) {
		size_t    cap = ro->cap ? ro->cap * 2 : 64;
		gk_entry *nw  = realloc(ro->win, cap * sizeof(*nw));
		if (nw == NULL) {
			v->why = GK_REJ_INTERNAL;
			return (SLUICE_OK);
		}
		ro->win = nw;
		ro->cap = cap;
	}
	undo_touch(u, ro);
	st = ro->st.gate;
	ds = ro->st;
	ds.next_id++;
	if ((rv = gk_txn_put_replay(t, sr->key_id, r->job, r->sequence)) !=
	        SLUICE_OK ||
	    (rv = gk_txn_put_report(t, counted, ro->name, ro->st.next_id,
	         j->now, j->buf, j->len)) != SLUICE_OK) {
		return (rv);
	}
	if (counted) {
		e         = &ro->win[ro->n];
		e->id     = ro->st.next_id;
		e->at_ms  = j->now;
		e->r      = r;
		e->packed = sl_xmalloc(j->len);
		e->len    = j->len;
		memcpy(e->packed, j->buf, j->len);
		j->r = NULL; // the window owns it now
		ro->n++;
		evaluate(ro, ro->n, j->now, true, &st, &ev);
		ds.counted++;
		ds.gate = st;
		drop    = ev.status == GK_STATUS_NONE ? 0 : ev.first;
		if (ev.status == GK_STATUS_NONE && ro->n > GK_MAX_WINDOW) {
			drop = ro->n - GK_MAX_WINDOW;
		}
		for (size_t i = 0; i < drop; i++) {
			if ((rv = gk_txn_del_window(
			         t, ro->name, ro->win[i].id)) != SLUICE_OK) {
				return (rv);
			}
		}
		win_drop(ro, drop);
		ev.first -= ev.first >= drop ? drop : ev.first;
		ro->last      = ev;
		ro->evaluated = true;
	} else {
		ds.recorded++;
	}
	if ((rv = gk_txn_put_state(t, ro->name, &ds)) != SLUICE_OK) {
		return (rv);
	}
	ro->st    = ds;
	u->replay = true;
	if (gk_replay_record(c->replay, sr->key_id, r->job, r->sequence) !=
	    SLUICE_OK) {
		sl_log_warn("report.replay", "replay table: out of memory");
	}
	v->accepted = true;
	v->counted  = counted;
	// The report decides: its evidence goes into this transaction, so
	// the write leaves right after the one commit.
	if (counted && ev.decision != GK_DECIDE_NONE &&
	    (rv = gk_decide_prepare(c, ro, t, j->now, &v->dec)) != SLUICE_OK) {
		return (rv);
	}
	// The gate as this report left it, for the verdict: taken now, so
	// the reply needs no lock (the core mutex is held through the next
	// group's commit).
	{
		Sluice__V1__GateStatus       gs;
		Sluice__V1__ConditionStatus  cs[GK_MAX_CONDITIONS];
		Sluice__V1__ConditionStatus *csp[GK_MAX_CONDITIONS];

		gk_core_gate_status(c, ro, &gs, cs, csp);
		if (sl_pack(&gs.base, &v->gate, &v->gatelen) != SLUICE_OK) {
			v->gate = NULL;
		}
	}
	return (SLUICE_OK);
}

// Counts job j's outcome, once its batch is final.
static void
job_count(gk_core *c, gk_job *j)
{
	verdict *v = j->v;

	if (j->refetch) {
		return; // counted after the second try
	}
	if (!v->accepted) {
		count_reject(
		    c, v, v->why != GK_REJ_NONE ? v->why : GK_REJ_INTERNAL);
		return;
	}
	atomic_fetch_add(&c->m.accepted, 1);
	atomic_fetch_add(v->counted ? &c->m.counted : &c->m.recorded, 1);
}

// Commits n jobs in one transaction. When that fails, memory is put
// back and each job is tried in a transaction of its own, so that one
// report the database refuses does not fail the others.
static void
run_batch(gk_core *c, gk_job **js, size_t n)
{
	undo    u = { NULL, 0, 0, false };
	gk_txn *t = NULL;
	int     rv;

	bool any = false;

	pthread_mutex_lock(&c->mtx);
	rv = gk_db_begin(c->db, true, &t);
	for (size_t i = 0; i < n && rv == SLUICE_OK; i++) {
		rv = apply_job(c, t, js[i], &u);
		any |= js[i]->v->accepted;
	}
	if (rv == SLUICE_OK && any) {
		rv = gk_txn_commit(t);
		if (rv == SLUICE_OK) {
			atomic_fetch_add(&c->m.report_commits, 1);
		}
	} else {
		// Nothing accepted (every report a replay, say): nothing
		// to write, and no sync.
		gk_txn_abort(t);
	}
	if (rv == SLUICE_OK) {
		free(u.v);
	} else {
		sl_log_err("report.store", "cannot store %zu report%s: %s", n,
		    n == 1 ? "" : "s", sluice_strerror(rv));
		undo_apply(c, &u);
		for (size_t i = 0; i < n; i++) {
			gk_job  *j = js[i];
			verdict *v = j->v;

			gk_decide_cancel(c, v->dec);
			free(v->gate);
			v->dec      = NULL;
			v->gate     = NULL;
			v->accepted = false;
			v->counted  = false;
			j->refetch  = false;
			if (j->final) {
				continue;
			}
			v->why = n == 1 ? GK_REJ_INTERNAL : GK_REJ_NONE;
			// A report moved into the window was freed with it.
			if (j->r == NULL &&
			    sl_report_open(j->sr, &j->r) != SLUICE_OK) {
				j->r     = NULL;
				v->why   = GK_REJ_INTERNAL;
				j->final = true;
			}
			if (n == 1) {
				j->final = true;
			}
		}
	}
	pthread_mutex_unlock(&c->mtx);
	if (rv != SLUICE_OK && n > 1) {
		for (size_t i = 0; i < n; i++) {
			if (js[i]->final) {
				job_count(c, js[i]);
			} else {
				run_batch(c, &js[i], 1);
			}
		}
		return;
	}
	for (size_t i = 0; i < n; i++) {
		job_count(c, js[i]);
	}
}

// ------------------------------------------------------- requests in hand
//
// A request lives in a gk_req from gk_core_submit until its reply
// function is called. Nothing on the way blocks on flagd or waits for
// another thread's commit on the submitting thread (an nng callback):
// a report is verified there, then queued for a group commit (below);
// what may wait on flagd (a key refresh, a rollout fetch, a decision
// write) or on the core mutex (status) goes to the aside threads.

typedef enum aside_kind {
	ASIDE_REQUEST, /* a status or evidence query */
	ASIDE_KEYS,    /* an unknown key: refresh the keys, verify again */
	ASIDE_REFETCH, /* an unknown rollout: fetch it, queue again */
	ASIDE_DECIDE,  /* the report decided: write the decision */
} aside_kind;

typedef struct gk_req {
	gk_core               *c;
	gk_reply_fn            fn;
	void                  *arg;
	Sluice__V1__GkRequest *req; /* owned */
	uint64_t               request_id;
	uint8_t               *packed; /* the SignedReport, re-encoded */
	size_t                 plen;
	verdict                v;
	gk_job                 j;
	aside_kind             aside;
	struct gk_req         *aside_next;
} gk_req;

// Hands the reply (buf malloc'd, or NULL with rv an error) to the
// request's owner and frees the request.
static void
req_finish(gk_req *q, int rv, uint8_t *buf, size_t len)
{
	gk_reply_fn fn  = q->fn;
	void       *arg = q->arg;

	if (q->j.r != NULL) {
		sluice__v1__metric_report__free_unpacked(q->j.r, NULL);
	}
	free(q->v.gate);
	free(q->packed);
	if (q->req != NULL) {
		protobuf_c_message_free_unpacked(&q->req->base, NULL);
	}
	free(q);
	fn(arg, buf, len, rv);
}

static void aside_push(gk_core *c, gk_req *q, aside_kind k);

static int
reply_error(Sluice__V1__GkReply *rep, Sluice__V1__Error *err, int code,
    const char *msg)
{
	sluice__v1__error__init(err);
	err->code        = (uint32_t) code;
	err->message     = (char *) (uintptr_t) msg;
	rep->result_case = SLUICE__V1__GK_REPLY__RESULT_ERROR;
	rep->error       = err;
	return (code);
}

static int
pack_reply(Sluice__V1__GkReply *rep, uint8_t **bufp, size_t *lenp)
{
	return (sl_pack(&rep->base, bufp, lenp));
}

// The verdict of report request q, decision dd (NONE when it decided
// nothing): packs it and finishes q.
static void
report_answer(gk_req *q, const gk_decided *dd)
{
	Sluice__V1__GkReply       rep;
	Sluice__V1__ReportVerdict rv_msg;
	Sluice__V1__GateStatus   *gate = NULL;
	verdict                  *v    = &q->v;
	uint8_t                  *buf  = NULL;
	size_t                    len  = 0;
	int                       rv;

	sluice__v1__gk_reply__init(&rep);
	rep.request_id = q->request_id;
	// The gate as the report left it (taken under the lock, in its
	// group commit): for the deciding report, the gate it reported to
	// rather than the next stage's.
	if (v->gate != NULL &&
	    sl_unpack(&sluice__v1__gate_status__descriptor, v->gate,
	        v->gatelen, SIZE_MAX,
	        (ProtobufCMessage **) &gate) != SLUICE_OK) {
		gate = NULL;
	}
	sluice__v1__report_verdict__init(&rv_msg);
	rv_msg.accepted = v->accepted;
	rv_msg.counted  = v->counted;
	rv_msg.code = (uint32_t) (v->accepted ? 0 : gk_reject_code(v->why));
	rv_msg.reason =
	    (char *) (uintptr_t) (v->accepted ? "" : gk_reject_name(v->why));
	rep.result_case = SLUICE__V1__GK_REPLY__RESULT_VERDICT;
	rep.verdict     = &rv_msg;
	if (gate == NULL) {
		rv = pack_reply(&rep, &buf, &len);
		req_finish(q, rv, buf, len);
		return;
	}
	if (dd->decision != GK_DECIDE_NONE) {
		// This report decided: the reporter learns the decision on
		// the gate it reported to, not the next stage's gate.
		if (gate->state != NULL && gate->state[0] != '\0') {
			free(gate->state); // "" is protobuf-c's static default
		}
		gate->state = (char *) (uintptr_t) gk_status_name(
		    dd->decision == GK_DECIDE_PROMOTE ? GK_STATUS_PROMOTED
		                                      : GK_STATUS_ROLLED_BACK);
		gate->decision_revision = dd->revision;
	}
	rv_msg.gate = gate;
	rv          = pack_reply(&rep, &buf, &len);
	if (dd->decision != GK_DECIDE_NONE) {
		// state points at a static string: free_unpacked must not.
		gate->state = NULL;
	}
	sluice__v1__gate_status__free_unpacked(gate, NULL);
	req_finish(q, rv, buf, len);
}

// A job whose group committed (or was refused): answered now, or handed
// to the aside threads when it must wait on flagd.
static void
job_done(gk_core *c, gk_job *j)
{
	static const gk_decided none = { GK_DECIDE_NONE, 0, 0 };
	gk_req                 *q    = j->req;

	if (j->refetch) {
		aside_push(c, q, ASIDE_REFETCH);
	} else if (q->v.dec != NULL) {
		aside_push(c, q, ASIDE_DECIDE);
	} else {
		report_answer(q, &none);
	}
}

// Group commit: queues j; if no commit is running, this thread commits
// the whole queue, answers the group, and goes on with what queued
// meanwhile until the queue is empty. Otherwise it returns at once: the
// running committer takes j with its next group, and j's request is
// answered from there, after the commit that holds it. So no thread
// ever waits for another's commit, and only one thread at a time is in
// a commit.
static void
gc_drain(gk_core *c)
{
	gk_job **js  = NULL;
	size_t   cap = 0;

	// Called with gc_mtx held and gc_busy set by this thread.
	while (c->gc_queued > 0) {
		gk_job *q = c->gc_head;
		size_t  n = c->gc_queued;

		if (n > cap) {
			free(js);
			cap = n < 16 ? 16 : n;
			js  = sl_xcalloc(cap, sizeof(*js));
		}
		for (size_t i = 0; i < n; i++, q = q->next) {
			js[i] = q;
		}
		c->gc_head   = NULL;
		c->gc_tail   = &c->gc_head;
		c->gc_queued = 0;
		pthread_mutex_unlock(&c->gc_mtx);

		run_batch(c, js, n);
		for (size_t i = 0; i < n; i++) {
			job_done(c, js[i]); // may free js[i]
		}

		pthread_mutex_lock(&c->gc_mtx);
	}
	c->gc_busy = false;
	free(js);
}

static void
gc_submit(gk_core *c, gk_job *j)
{
	pthread_mutex_lock(&c->gc_mtx);
	j->next     = NULL;
	*c->gc_tail = j;
	c->gc_tail  = &j->next;
	c->gc_queued++;
	if (!c->gc_busy) {
		c->gc_busy = true;
		gc_drain(c);
	}
	pthread_mutex_unlock(&c->gc_mtx);
}

void
gk_core_gc_hold(gk_core *c, bool hold)
{
	pthread_mutex_lock(&c->gc_mtx);
	if (hold) {
		c->gc_busy = true;
	} else {
		gc_drain(c);
	}
	pthread_mutex_unlock(&c->gc_mtx);
}

// A verified report (r owned) of request q: to its group commit.
static void
report_queue(gk_req *q, Sluice__V1__MetricReport *r, uint64_t now)
{
	snprintf(q->v.rollout, sizeof(q->v.rollout), "%s", r->rollout);
	q->j.req = q;
	q->j.sr  = q->req->report;
	q->j.r   = r;
	q->j.buf = q->packed;
	q->j.len = q->plen;
	q->j.now = now;
	q->j.v   = &q->v;
	gc_submit(q->c, &q->j);
}

static void
report_start(gk_req *q)
{
	static const gk_decided         none = { GK_DECIDE_NONE, 0, 0 };
	gk_core                        *c    = q->c;
	const Sluice__V1__SignedReport *sr   = q->req->report;
	Sluice__V1__MetricReport       *r    = NULL;
	gk_reject                       why;
	uint64_t                        now;
	int                             rv;

	// Evidence digests cover this encoding of the SignedReport: its
	// signed body is a bytes field, so the body and its signature are
	// exactly as received; only the envelope is re-encoded
	// (protobuf-c writes fields in number order, so the same message
	// always encodes the same way).
	if ((rv = sl_pack(&sr->base, &q->packed, &q->plen)) != SLUICE_OK) {
		req_finish(q, rv, NULL, 0);
		return;
	}
	now = sl_now_ms();
	if (gk_report_verify_msg(c->keys, sr, now, c->opt.skew_ms, &r, &why) !=
	    SLUICE_OK) {
		// A key added since the last refresh: fetch keys once (at
		// most once a second) and try again, aside.
		if (why == GK_REJ_UNKNOWN_KEY &&
		    sl_mono_ms() - c->keys_ms >= KEYS_RETRY_MS) {
			q->j.now = now;
			aside_push(c, q, ASIDE_KEYS);
			return;
		}
		count_reject(c, &q->v, why);
		report_answer(q, &none);
		return;
	}
	report_queue(q, r, now);
}

// ---------------------------------------------------------------- aside

static void
aside_push(gk_core *c, gk_req *q, aside_kind k)
{
	q->aside      = k;
	q->aside_next = NULL;
	pthread_mutex_lock(&c->as_mtx);
	*c->as_tail = q;
	c->as_tail  = &q->aside_next;
	pthread_cond_signal(&c->as_cv);
	pthread_mutex_unlock(&c->as_mtx);
}

static int answer_status(gk_core *c, const char *rollout,
    Sluice__V1__GkReply *rep, uint8_t **bufp, size_t *lenp);
static int answer_evidence(gk_core *c, const Sluice__V1__EvidenceQuery *q,
    Sluice__V1__GkReply *rep, uint8_t **bufp, size_t *lenp);

static void
aside_run(gk_core *c, gk_req *q)
{
	static const gk_decided   none = { GK_DECIDE_NONE, 0, 0 };
	Sluice__V1__GkRequest    *req  = q->req;
	Sluice__V1__MetricReport *r    = NULL;
	Sluice__V1__Rollout      *msg;
	Sluice__V1__GkReply       rep;
	gk_decided                dd = { GK_DECIDE_NONE, 0, 0 };
	gk_reject                 why;
	uint8_t                  *buf = NULL;
	size_t                    len = 0;
	int                       rv;

	switch (q->aside) {
	case ASIDE_REQUEST:
		sluice__v1__gk_reply__init(&rep);
		rep.request_id = q->request_id;
		if (req->op_case == SLUICE__V1__GK_REQUEST__OP_STATUS) {
			rv = answer_status(c,
			    req->status->rollout != NULL ? req->status->rollout
			                                 : "",
			    &rep, &buf, &len);
		} else {
			rv = answer_evidence(
			    c, req->evidence, &rep, &buf, &len);
		}
		req_finish(q, rv, buf, len);
		break;
	case ASIDE_KEYS:
		// Another request may have refreshed them meanwhile.
		if (sl_mono_ms() - c->keys_ms >= KEYS_RETRY_MS) {
			(void) fetch_keys(c);
		}
		if (gk_report_verify_msg(c->keys, req->report, q->j.now,
		        c->opt.skew_ms, &r, &why) == SLUICE_OK) {
			report_queue(q, r, q->j.now);
		} else {
			count_reject(c, &q->v, why);
			report_answer(q, &none);
		}
		break;
	case ASIDE_REFETCH:
		// Not known yet: a rollout created since we last looked.
		if (strlen(q->j.r->rollout) < SLUICE_MAX_NAME &&
		    fetch_rollout(c, q->j.r->rollout, &msg) == SLUICE_OK) {
			pthread_mutex_lock(&c->mtx);
			gk_core_apply_rollout(c, msg);
			pthread_mutex_unlock(&c->mtx);
		}
		q->j.refetch = false;
		q->j.fetched = true;
		q->v.why     = GK_REJ_NONE;
		gc_submit(c, &q->j);
		break;
	case ASIDE_DECIDE:
		(void) gk_decide_send(c, q->v.dec, &dd);
		q->v.dec = NULL;
		report_answer(q, &dd);
		break;
	default:
		sl_panic(__FILE__, __LINE__, "bad aside kind");
	}
}

static void *
aside_main(void *arg)
{
	gk_core *c = arg;

	for (;;) {
		gk_req *q;

		pthread_mutex_lock(&c->as_mtx);
		while (c->as_head == NULL && !c->as_stop) {
			pthread_cond_wait(&c->as_cv, &c->as_mtx);
		}
		if ((q = c->as_head) == NULL) {
			// Stopping, and nothing left in hand.
			pthread_mutex_unlock(&c->as_mtx);
			break;
		}
		if ((c->as_head = q->aside_next) == NULL) {
			c->as_tail = &c->as_head;
		}
		pthread_mutex_unlock(&c->as_mtx);
		aside_run(c, q);
	}
	return (NULL);
}

// ---------------------------------------------------------------- requests

static int
answer_status(gk_core *c, const char *rollout, Sluice__V1__GkReply *rep,
    uint8_t **bufp, size_t *lenp)
{
	Sluice__V1__GateStatusList    list;
	Sluice__V1__GateStatus       *gs;
	Sluice__V1__GateStatus      **gsp;
	Sluice__V1__ConditionStatus  *cs;
	Sluice__V1__ConditionStatus **csp;
	Sluice__V1__Error             err;
	size_t                        n = 0;
	int                           rv;

	pthread_mutex_lock(&c->mtx);
	gs  = sl_xcalloc(c->nro + 1, sizeof(*gs));
	gsp = sl_xcalloc(c->nro + 1, sizeof(*gsp));
	cs  = sl_xcalloc((c->nro + 1) * GK_MAX_CONDITIONS, sizeof(*cs));
	csp = sl_xcalloc((c->nro + 1) * GK_MAX_CONDITIONS, sizeof(*csp));
	for (size_t i = 0; i < c->nro; i++) {
		gk_ro *ro = c->ros[i];
		if (ro->msg == NULL ||
		    (rollout[0] != '\0' && strcmp(rollout, ro->name) != 0)) {
			continue;
		}
		gk_core_gate_status(c, ro, &gs[n], &cs[n * GK_MAX_CONDITIONS],
		    &csp[n * GK_MAX_CONDITIONS]);
		gsp[n] = &gs[n];
		n++;
	}
	sluice__v1__gate_status_list__init(&list);
	list.gates   = gsp;
	list.n_gates = n;
	if (rollout[0] != '\0' && n == 0) {
		(void) reply_error(
		    rep, &err, SLUICE_ENOENT, "no such rollout");
	} else {
		rep->result_case = SLUICE__V1__GK_REPLY__RESULT_STATUS;
		rep->status      = &list;
	}
	rv = pack_reply(rep, bufp, lenp);
	pthread_mutex_unlock(&c->mtx);
	free(gs);
	free(gsp);
	free(cs);
	free(csp);
	return (rv);
}

static int
answer_evidence(gk_core *c, const Sluice__V1__EvidenceQuery *q,
    Sluice__V1__GkReply *rep, uint8_t **bufp, size_t *lenp)
{
	Sluice__V1__Error err;
	gk_txn           *t;
	uint8_t          *ev = NULL;
	size_t            evlen;
	ProtobufCMessage *m = NULL;
	int               rv;

	if (q->rollout == NULL || strlen(q->rollout) >= SLUICE_MAX_NAME) {
		(void) reply_error(rep, &err, SLUICE_EINVAL, "bad rollout");
		return (pack_reply(rep, bufp, lenp));
	}
	if ((rv = gk_db_begin(c->db, false, &t)) != SLUICE_OK) {
		(void) reply_error(rep, &err, rv, "database");
		return (pack_reply(rep, bufp, lenp));
	}
	rv = gk_txn_get_evidence(t, q->rollout, q->revision, &ev, &evlen);
	gk_txn_abort(t);
	if (rv == SLUICE_OK) {
		rv = sl_unpack(&sluice__v1__evidence__descriptor, ev, evlen,
		    SIZE_MAX, &m);
	}
	free(ev);
	if (rv != SLUICE_OK) {
		(void) reply_error(rep, &err, rv,
		    rv == SLUICE_ENOENT ? "no decision of gatekeeper at that "
		                          "revision"
		                        : "cannot read the evidence");
		return (pack_reply(rep, bufp, lenp));
	}
	rep->result_case = SLUICE__V1__GK_REPLY__RESULT_EVIDENCE;
	rep->evidence    = (Sluice__V1__Evidence *) m;
	rv               = pack_reply(rep, bufp, lenp);
	protobuf_c_message_free_unpacked(m, NULL);
	return (rv);
}

void
gk_core_submit(
    gk_core *c, const void *buf, size_t len, gk_reply_fn fn, void *arg)
{
	ProtobufCMessage   *m;
	Sluice__V1__GkReply rep;
	Sluice__V1__Error   err;
	gk_req             *q;
	uint8_t            *out    = NULL;
	size_t              outlen = 0;
	int                 rv;

	sluice__v1__gk_reply__init(&rep);
	if ((rv = sl_unpack(&sluice__v1__gk_request__descriptor, buf, len,
	         SL_MAX_REPORT_BYTES + 4096u, &m)) != SLUICE_OK) {
		atomic_fetch_add(
		    &c->m.rejected[rv == SLUICE_ETOOBIG ? GK_REJ_TOOBIG
		                                        : GK_REJ_MALFORMED],
		    1);
		(void) reply_error(&rep, &err, rv,
		    rv == SLUICE_ETOOBIG ? "request too large"
		                         : "malformed request");
		rv = pack_reply(&rep, &out, &outlen);
		fn(arg, out, outlen, rv);
		return;
	}
	q      = sl_xcalloc(1, sizeof(*q));
	q->c   = c;
	q->fn  = fn;
	q->arg = arg;
	q->req = (Sluice__V1__GkRequest *) m;
	if (q->req->header != NULL) {
		q->request_id  = q->req->header->request_id;
		rep.request_id = q->request_id;
		if (q->req->header->api_version != 0 &&
		    q->req->header->api_version != SL_API_VERSION) {
			(void) reply_error(&rep, &err, SLUICE_EVERSION,
			    "unsupported API version");
			rv = pack_reply(&rep, &out, &outlen);
			req_finish(q, rv, out, outlen);
			return;
		}
	}
	switch (q->req->op_case) {
	case SLUICE__V1__GK_REQUEST__OP_REPORT:
		report_start(q);
		break;
	case SLUICE__V1__GK_REQUEST__OP_STATUS:
	case SLUICE__V1__GK_REQUEST__OP_EVIDENCE:
		aside_push(c, q, ASIDE_REQUEST);
		break;
	case SLUICE__V1__GK_REQUEST__OP__NOT_SET:
	case _SLUICE__V1__GK_REQUEST__OP__CASE_IS_INT_SIZE:
	default:
		atomic_fetch_add(&c->m.rejected[GK_REJ_MALFORMED], 1);
		(void) reply_error(&rep, &err, SLUICE_EPROTO, "no operation");
		rv = pack_reply(&rep, &out, &outlen);
		req_finish(q, rv, out, outlen);
		break;
	}
}

// gk_core_handle: gk_core_submit, waiting for the reply.
typedef struct sync_wait {
	pthread_mutex_t mtx;
	pthread_cond_t  cv;
	bool            done;
	uint8_t        *buf;
	size_t          len;
	int             rv;
} sync_wait;

static void
sync_reply(void *arg, uint8_t *buf, size_t len, int rv)
{
	sync_wait *w = arg;

	pthread_mutex_lock(&w->mtx);
	w->buf  = buf;
	w->len  = len;
	w->rv   = rv;
	w->done = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mtx);
}

int
gk_core_handle(gk_core *c, const void *buf, size_t len, uint8_t **replyp,
    size_t *replylenp)
{
	sync_wait w;

	memset(&w, 0, sizeof(w));
	pthread_mutex_init(&w.mtx, NULL);
	pthread_cond_init(&w.cv, NULL);
	gk_core_submit(c, buf, len, sync_reply, &w);
	pthread_mutex_lock(&w.mtx);
	while (!w.done) {
		pthread_cond_wait(&w.cv, &w.mtx);
	}
	pthread_mutex_unlock(&w.mtx);
	pthread_cond_destroy(&w.cv);
	pthread_mutex_destroy(&w.mtx);
	*replyp    = w.buf;
	*replylenp = w.len;
	return (w.rv);
}

// ---------------------------------------------------------------- tracker

static void
change_cb(void *arg, uint64_t revision, const char *rollout)
{
	gk_core *c = arg;
	char   **nd;

	(void) revision;
	pthread_mutex_lock(&c->q_mtx);
	if (rollout == NULL) {
		c->dirty_all = true;
	} else if ((nd = realloc(c->dirty, (c->ndirty + 1) * sizeof(*nd))) !=
	    NULL) {
		c->dirty = nd;
		if ((nd[c->ndirty] = strdup(rollout)) != NULL) {
			c->ndirty++;
		}
	} else {
		c->dirty_all = true;
	}
	pthread_cond_signal(&c->q_cv);
	pthread_mutex_unlock(&c->q_mtx);
}

// Timed evaluations: soak seconds, deadlines and time windows move with
// the clock alone. Returns the names with a decision to write.
static void
tick(gk_core *c)
{
	uint64_t now = sl_now_ms();
	char(*todo)[SLUICE_MAX_NAME];
	size_t ntodo = 0;

	pthread_mutex_lock(&c->mtx);
	todo = sl_xcalloc(c->nro + 1, sizeof(*todo));
	for (size_t i = 0; i < c->nro; i++) {
		gk_ro        *ro = c->ros[i];
		gk_gate_state st = ro->st.gate;
		gk_eval       ev;

		if (ro->msg == NULL || gk_core_gate(ro) == NULL) {
			continue;
		}
		evaluate(ro, ro->n, now, false, &st, &ev);
		if (memcmp(&st, &ro->st.gate, sizeof(st)) != 0) {
			ro->st.gate = st;
			persist_state(c, ro, false);
		}
		ro->last      = ev;
		ro->evaluated = true;
		if (ev.decision != GK_DECIDE_NONE) {
			snprintf(
			    todo[ntodo++], SLUICE_MAX_NAME, "%s", ro->name);
		}
	}
	pthread_mutex_unlock(&c->mtx);
	for (size_t i = 0; i < ntodo; i++) {
		(void) gk_decide_run(c, todo[i], NULL);
	}
	free(todo);
}

static void *
tracker(void *arg)
{
	gk_core *c       = arg;
	uint64_t tick_ms = c->opt.tick_ms ? c->opt.tick_ms : 500u;
	uint64_t keys_ms = c->opt.keys_ms ? c->opt.keys_ms : 30000u;

	for (;;) {
		struct timespec ts;
		char          **dirty;
		size_t          nd;
		bool            all;

		pthread_mutex_lock(&c->q_mtx);
		if (!c->stop && !c->dirty_all && c->ndirty == 0) {
			sl_deadline_after(&ts, tick_ms);
			(void) pthread_cond_timedwait(
			    &c->q_cv, &c->q_mtx, &ts);
		}
		if (c->stop) {
			pthread_mutex_unlock(&c->q_mtx);
			break;
		}
		dirty        = c->dirty;
		nd           = c->ndirty;
		all          = c->dirty_all;
		c->dirty     = NULL;
		c->ndirty    = 0;
		c->dirty_all = false;
		pthread_mutex_unlock(&c->q_mtx);

		if (all) {
			(void) fetch_all(c);
		}
		for (size_t i = 0; i < nd; i++) {
			Sluice__V1__Rollout *msg;
			if (!all &&
			    fetch_rollout(c, dirty[i], &msg) == SLUICE_OK) {
				pthread_mutex_lock(&c->mtx);
				gk_core_apply_rollout(c, msg);
				pthread_mutex_unlock(&c->mtx);
			}
			free(dirty[i]);
		}
		free(dirty);
		if (sl_mono_ms() - c->keys_ms >= keys_ms) {
			(void) fetch_keys(c);
		}
		tick(c);
		if (atomic_load(&c->pending_evidence) &&
		    sl_mono_ms() - c->reconcile_ms >= RECONCILE_MS) {
			c->reconcile_ms = sl_mono_ms();
			// Cleared first: a decision that leaves evidence
			// pending while this runs sets it again, and is not
			// lost to the store below.
			atomic_store(&c->pending_evidence, false);
			if (gk_decide_reconcile(c, RECONCILE_GIVE_UP_MS) > 0) {
				atomic_store(&c->pending_evidence, true);
			}
		}
	}
	return (NULL);
}

// ---------------------------------------------------------------- restore

static int
load_report_cb(
    void *arg, uint64_t id, uint64_t at_ms, const uint8_t *sr, size_t len)
{
	load_ctx                 *l  = arg;
	gk_ro                    *ro = l->ro;
	ProtobufCMessage         *m;
	Sluice__V1__MetricReport *r;

	if (sl_unpack(&sluice__v1__signed_report__descriptor, sr, len,
	        SL_MAX_REPORT_BYTES + 1024u, &m) != SLUICE_OK) {
		return (SLUICE_OK); // skip; it was verified when stored
	}
	if (sl_report_open((Sluice__V1__SignedReport *) m, &r) != SLUICE_OK) {
		protobuf_c_message_free_unpacked(m, NULL);
		return (SLUICE_OK);
	}
	protobuf_c_message_free_unpacked(m, NULL);
	if (ro->n == ro->cap) {
		size_t cap = ro->cap ? ro->cap * 2 : 64;
		ro->win    = realloc(ro->win, cap * sizeof(*ro->win));
		if (ro->win == NULL) {
			sl_panic(__FILE__, __LINE__, "out of memory");
		}
		ro->cap = cap;
	}
	ro->win[ro->n].id     = id;
	ro->win[ro->n].at_ms  = at_ms;
	ro->win[ro->n].r      = r;
	ro->win[ro->n].packed = sl_xmalloc(len);
	ro->win[ro->n].len    = len;
	memcpy(ro->win[ro->n].packed, sr, len);
	ro->n++;
	return (SLUICE_OK);
}

static int
load_state_cb(void *arg, const char *rollout, const gk_db_state *s)
{
	load_ctx *l = arg;
	gk_ro    *ro;

	if ((ro = ro_add(l->c, rollout)) == NULL) {
		return (SLUICE_ENOMEM);
	}
	ro->st = *s;
	return (SLUICE_OK);
}

static int
load_replay_cb(void *arg, const char *key, const char *job, uint64_t seq)
{
	load_ctx *l = arg;

	return (gk_replay_record(l->c->replay, key, job, seq));
}

static int
restore(gk_core *c)
{
	load_ctx l = { c, NULL, SLUICE_OK };
	gk_txn  *t;
	int      rv;

	if ((rv = gk_db_begin(c->db, false, &t)) != SLUICE_OK) {
		return (rv);
	}
	if ((rv = gk_txn_each_state(t, load_state_cb, &l)) != SLUICE_OK ||
	    (rv = gk_txn_each_replay(t, load_replay_cb, &l)) != SLUICE_OK) {
		gk_txn_abort(t);
		return (rv);
	}
	for (size_t i = 0; i < c->nro; i++) {
		l.ro = c->ros[i];
		if ((rv = gk_txn_each_window(t, c->ros[i]->name,
		         load_report_cb, &l)) != SLUICE_OK) {
			gk_txn_abort(t);
			return (rv);
		}
	}
	gk_txn_abort(t);
	for (size_t i = 0; i < c->nro; i++) {
		sl_log_info("core.restore",
		    "%s: stage %u, %zu reports in the window, %llu counted",
		    c->ros[i]->name, c->ros[i]->st.gate.stage, c->ros[i]->n,
		    (unsigned long long) c->ros[i]->st.counted);
	}
	return (SLUICE_OK);
}

// ---------------------------------------------------------------- open

int
gk_core_open(gk_core **cp, const gk_options *opt)
{
	gk_core           *c;
	sluice_client_opts co;
	char               err[256];
	int                rv;

	c      = sl_xcalloc(1, sizeof(*c));
	c->opt = *opt;
	pthread_mutex_init(&c->mtx, NULL);
	pthread_mutex_init(&c->rpc_mtx, NULL);
	pthread_mutex_init(&c->gc_mtx, NULL);
	c->gc_tail = &c->gc_head;
	pthread_mutex_init(&c->as_mtx, NULL);
	pthread_cond_init(&c->as_cv, NULL);
	c->as_tail = &c->as_head;
	pthread_mutex_init(&c->q_mtx, NULL);
	{
		pthread_condattr_t ca;
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&c->q_cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	if (c->opt.skew_ms == 0) {
		c->opt.skew_ms = SL_DEFAULT_SKEW_MS;
	}
	if ((rv = sl_secret_load(&c->key, opt->key_file, err, sizeof(err))) !=
	    SLUICE_OK) {
		sl_log_err("core.key", "cannot load key %s: %s %s",
		    opt->key_file, sluice_strerror(rv), err);
		goto fail;
	}
	if ((rv = gk_keys_alloc(&c->keys)) != SLUICE_OK ||
	    (rv = gk_replay_alloc(&c->replay)) != SLUICE_OK ||
	    (rv = gk_db_open(&c->db, opt->data_dir)) != SLUICE_OK ||
	    (rv = sl_rpc_open(&c->rpc, opt->flagd,
	         opt->timeout_ms ? opt->timeout_ms : 2000u)) != SLUICE_OK) {
		goto fail;
	}
	if ((rv = restore(c)) != SLUICE_OK) {
		sl_log_err("core.restore", "cannot restore state: %s",
		    sluice_strerror(rv));
		goto fail;
	}
	if ((rv = fetch_keys(c)) != SLUICE_OK ||
	    (rv = fetch_all(c)) != SLUICE_OK) {
		sl_log_err("core.flagd", "cannot read from flagd %s: %s",
		    opt->flagd, sluice_strerror(rv));
		goto fail;
	}
	// Evidence of decisions sent before a crash: bind what flagd
	// committed; the tracker retries what it cannot settle yet.
	c->reconcile_ms = sl_mono_ms();
	atomic_store(&c->pending_evidence,
	    gk_decide_reconcile(c, RECONCILE_GIVE_UP_MS) > 0);
	if (!opt->no_follow) {
		sluice_client_opts_init(&co);
		co.change_cb  = change_cb;
		co.change_arg = c;
		if ((rv = sluice_client_open(&c->client, opt->flagd, &co)) !=
		    SLUICE_OK) {
			goto fail;
		}
		// A change may have landed between fetch_all and the
		// subscription: read everything once more.
		change_cb(c, 0, NULL);
	}
	if (pthread_create(&c->thr, NULL, tracker, c) != 0) {
		rv = SLUICE_EINTERNAL;
		goto fail;
	}
	c->thr_started = true;
	for (size_t i = 0; i < GK_ASIDE_THREADS; i++) {
		if (pthread_create(&c->as_thr[i], NULL, aside_main, c) != 0) {
			rv = SLUICE_EINTERNAL;
			goto fail;
		}
		c->as_started++;
	}
	*cp = c;
	return (SLUICE_OK);
fail:
	gk_core_close(c);
	return (rv);
}

void
gk_core_close(gk_core *c)
{
	if (c == NULL) {
		return;
	}
	// The aside threads first: they finish what they hold (which may
	// need the tracker's rollouts, never the reverse).
	pthread_mutex_lock(&c->as_mtx);
	c->as_stop = true;
	pthread_cond_broadcast(&c->as_cv);
	pthread_mutex_unlock(&c->as_mtx);
	for (size_t i = 0; i < c->as_started; i++) {
		pthread_join(c->as_thr[i], NULL);
	}
	if (c->thr_started) {
		pthread_mutex_lock(&c->q_mtx);
		c->stop = true;
		pthread_cond_signal(&c->q_cv);
		pthread_mutex_unlock(&c->q_mtx);
		pthread_join(c->thr, NULL);
	}
	sluice_client_close(c->client);
	for (size_t i = 0; i < c->ndirty; i++) {
		free(c->dirty[i]);
	}
	free(c->dirty);
	for (size_t i = 0; i < c->nro; i++) {
		ro_free(c->ros[i]);
	}
	free(c->ros);
	sl_rpc_close(c->rpc);
	gk_db_close(c->db);
	gk_replay_free(c->replay);
	gk_keys_free(c->keys);
	sl_secret_free(c->key);
	pthread_cond_destroy(&c->q_cv);
	pthread_mutex_destroy(&c->q_mtx);
	pthread_mutex_destroy(&c->rpc_mtx);
	pthread_mutex_destroy(&c->gc_mtx);
	pthread_cond_destroy(&c->as_cv);
	pthread_mutex_destroy(&c->as_mtx);
	pthread_mutex_destroy(&c->mtx);
	free(c);
}

// ---------------------------------------------------------------- metrics

void
gk_core_metrics(gk_core *c, FILE *f)
{
	fprintf(f,
	    "# HELP sluice_gk_reports_rejected_total Reports rejected, by "
	    "reason.\n# TYPE sluice_gk_reports_rejected_total counter\n");
	for (int i = 1; i < GK_REJ_COUNT; i++) {
		fprintf(f,
		    "sluice_gk_reports_rejected_total{reason=\"%s\"} %llu\n",
		    gk_reject_name((gk_reject) i),
		    (unsigned long long) atomic_load(&c->m.rejected[i]));
	}
#define GK_METRIC_(name, help, field)                                    \
	fprintf(f,                                                       \
	    "# HELP sluice_gk_" name " " help "\n# TYPE sluice_gk_" name \
	    " counter\nsluice_gk_" name " %llu\n",                       \
	    (unsigned long long) atomic_load(&c->m.field))
	GK_METRIC_("reports_accepted_total", "Reports accepted.", accepted);
	GK_METRIC_("reports_counted_total",
	    "Reports counted for their rollout's current stage.", counted);
	GK_METRIC_("reports_recorded_total",
	    "Reports for another stage: kept, not counted.", recorded);
	GK_METRIC_("promotes_total", "Promotions written.", promotes);
	GK_METRIC_("rollbacks_total", "Rollbacks written.", rollbacks);
	GK_METRIC_("decision_conflicts_total",
	    "Decisions refused because the stage had moved (no-ops).",
	    conflicts);
	GK_METRIC_("decision_errors_total", "Decisions that failed.",
	    decision_errors);
	GK_METRIC_("stage_resets_total", "Gate resets on stage changes.",
	    stage_resets);
	GK_METRIC_("report_commits_total",
	    "LMDB commits of accepted reports (a group commit holds every "
	    "report that arrived while the previous one ran).",
	    report_commits);
#undef GK_METRIC_
	pthread_mutex_lock(&c->mtx);
	fprintf(f,
	    "# HELP sluice_gk_gate_window_reports Reports in the "
	    "window.\n# TYPE sluice_gk_gate_window_reports gauge\n");
	for (size_t i = 0; i < c->nro; i++) {
		fprintf(f,
		    "sluice_gk_gate_window_reports{rollout=\"%s\"} %zu\n",
		    c->ros[i]->name, c->ros[i]->n);
	}
	pthread_mutex_unlock(&c->mtx);
	fprintf(f, "# TYPE sluice_gk_ready gauge\nsluice_gk_ready %d\n",
	    atomic_load(&c->m.ready));
}
