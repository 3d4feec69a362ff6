// SPDX-License-Identifier: MIT
//
// Unit tests for gatekeeper/core.c (and decide.c through it), driven
// without sockets: gk_core_open against the in-process fake flagd of
// gk_fixture.h (inproc://, no libsluice subscription), requests through
// gk_core_handle. Counted reports, gate state and replay marks survive a
// reopen; a stage change resets the gate; garbage is counted as
// malformed; reports committed as a group are counted only when good,
// and a failed group commit is retried report by report;
// a bad batch rolls back and the deciding verdict says
// "rolled_back" (issue 5); a decision's evidence is stored before its
// write and bound from flagd's audit after a lost reply and a restart.

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <lmdb.h>

#include "core.h"
#include "decide.h"
#include "gk_fixture.h"

// Linked with -Wl,--wrap=mdb_txn_commit (Makefile): the next
// fail_commits commits fail as a full disk would, aborting.
static atomic_int fail_commits;

int __real_mdb_txn_commit(MDB_txn *txn);
int __wrap_mdb_txn_commit(MDB_txn *txn);

int
__wrap_mdb_txn_commit(MDB_txn *txn)
{
	if (atomic_load(&fail_commits) > 0) {
		atomic_fetch_sub(&fail_commits, 1);
		mdb_txn_abort(txn);
		return (MDB_MAP_FULL);
	}
	return (__real_mdb_txn_commit(txn));
}

typedef struct fx {
	fx_flagd *f;
	char      dir[64];
	char      data[128];
	char      key[192];
	gk_core  *c;
} fx;

static gk_core *
core_open(fx *x, uint32_t timeout_ms)
{
	gk_options o;
	gk_core   *c = NULL;

	memset(&o, 0, sizeof(o));
	o.flagd      = x->f->url;
	o.key_file   = x->key;
	o.data_dir   = x->data;
	o.tick_ms    = 600000; // no timed evaluation during a test
	o.keys_ms    = 600000;
	o.timeout_ms = timeout_ms;
	o.no_follow  = true;
	assert_int_equal(gk_core_open(&c, &o), SLUICE_OK);
	return (c);
}

static int
setup(void **state)
{
	static int n;
	fx        *x = calloc(1, sizeof(*x));
	char       name[32];

	snprintf(name, sizeof(name), "core%d", n++);
	x->f = fx_flagd_start(name);
	fx_tmpdir(x->dir, sizeof(x->dir));
	snprintf(x->data, sizeof(x->data), "%s/data", x->dir);
	assert_int_equal(mkdir(x->data, 0700), 0);
	fx_write_key(x->f, x->dir, x->key, sizeof(x->key));
	x->c   = core_open(x, 2000);
	*state = x;
	return (0);
}

static int
teardown(void **state)
{
	fx *x = *state;

	gk_core_close(x->c);
	fx_flagd_stop(x->f);
	fx_rmdir(x->dir);
	free(x);
	return (0);
}

// Closes and reopens the core (what survives is what LMDB holds), then
// returns the test rollout with the core's mutex held: the caller checks
// it, then unlocks x->c->mtx.
static gk_ro *
reopen_locked(fx *x)
{
	gk_ro *ro;

	gk_core_close(x->c);
	x->c = core_open(x, 2000);
	pthread_mutex_lock(&x->c->mtx);
	ro = gk_core_find(x->c, FX_ROLLOUT);
	assert_non_null(ro);
	return (ro);
}

// Sends a report through gk_core_handle; returns the unpacked reply.
static Sluice__V1__GkReply *
send_report(
    fx *x, const char *stage, const char *job, uint64_t seq, double error_rate)
{
	uint8_t          *req, *rep;
	size_t            len, rlen;
	ProtobufCMessage *m;

	fx_report_req(x->f->etl, stage, job, seq, error_rate, 100, &req, &len);
	assert_int_equal(gk_core_handle(x->c, req, len, &rep, &rlen), 0);
	assert_int_equal(sl_unpack(&sluice__v1__gk_reply__descriptor, rep,
	                     rlen, 1u << 20, &m),
	    SLUICE_OK);
	free(req);
	free(rep);
	return ((Sluice__V1__GkReply *) m);
}

static Sluice__V1__ReportVerdict *
verdict_of(Sluice__V1__GkReply *r)
{
	assert_int_equal(r->result_case, SLUICE__V1__GK_REPLY__RESULT_VERDICT);
	return (r->verdict);
}

static int
count_pending_cb(void *arg, const uint8_t *nonce, size_t nlen,
    uint64_t after_rev, const uint8_t *ev, size_t len)
{
	(void) nonce;
	(void) nlen;
	(void) after_rev;
	(void) ev;
	(void) len;
	(*(int *) arg)++;
	return (SLUICE_OK);
}

static int
pending_count(gk_core *c)
{
	gk_txn *t;
	int     n = 0;

	assert_int_equal(gk_db_begin(c->db, false, &t), SLUICE_OK);
	assert_int_equal(gk_txn_each_pending(t, count_pending_cb, &n), 0);
	gk_txn_abort(t);
	return (n);
}

// The evidence stored under revision, unpacked (NULL when none).
static Sluice__V1__Evidence *
evidence_at(gk_core *c, uint64_t revision)
{
	gk_txn           *t;
	uint8_t          *buf;
	size_t            len;
	ProtobufCMessage *m = NULL;
	int               rv;

	assert_int_equal(gk_db_begin(c->db, false, &t), SLUICE_OK);
	rv = gk_txn_get_evidence(t, FX_ROLLOUT, revision, &buf, &len);
	gk_txn_abort(t);
	if (rv == SLUICE_ENOENT) {
		return (NULL);
	}
	assert_int_equal(rv, SLUICE_OK);
	assert_int_equal(sl_unpack(&sluice__v1__evidence__descriptor, buf, len,
	                     SIZE_MAX, &m),
	    SLUICE_OK);
	free(buf);
	return ((Sluice__V1__Evidence *) m);
}

static void
test_core_counts_and_replay_marks_survive_reopen(void **state)
{
	fx                        *x = *state;
	Sluice__V1__GkReply       *r;
	Sluice__V1__ReportVerdict *v;
	gk_ro                     *ro;

	r = send_report(x, "canary", "load", 100, 0.001);
	v = verdict_of(r);
	assert_true(v->accepted && v->counted);
	assert_non_null(v->gate);
	assert_string_equal(v->gate->state, "passing");
	assert_string_equal(v->gate->stage, "canary");
	sluice__v1__gk_reply__free_unpacked(r, NULL);
	r = send_report(x, "canary", "load", 101, 0.002);
	assert_true(verdict_of(r)->accepted);
	sluice__v1__gk_reply__free_unpacked(r, NULL);

	ro = reopen_locked(x);
	assert_int_equal(ro->n, 2);
	assert_int_equal(ro->st.counted, 2);
	assert_int_equal(ro->st.gate.soak_reports, 2);
	pthread_mutex_unlock(&x->c->mtx);
	// The replay mark came back from LMDB.
	r = send_report(x, "canary", "load", 101, 0.001);
	v = verdict_of(r);
	assert_false(v->accepted);
	assert_string_equal(v->reason, "replay");
	assert_int_equal(v->code, SLUICE_EREPLAY);
	sluice__v1__gk_reply__free_unpacked(r, NULL);
	assert_int_equal(atomic_load(&x->c->m.rejected[GK_REJ_REPLAY]), 1);
}

static void
test_core_stage_change_resets_gate(void **state)
{
	fx                  *x = *state;
	gk_ro               *ro;
	Sluice__V1__GkReply *r;

	r = send_report(x, "canary", "load", 1, 0.5); // breaching
	assert_string_equal(verdict_of(r)->gate->state, "breaching");
	sluice__v1__gk_reply__free_unpacked(r, NULL);
	pthread_mutex_lock(&x->c->mtx);
	gk_core_apply_rollout(x->c, fx_rollout(2, sl_now_ms(), 11));
	ro = gk_core_find(x->c, FX_ROLLOUT);
	assert_int_equal(ro->n, 0);
	assert_int_equal(ro->st.counted, 0);
	assert_int_equal(ro->st.gate.stage, 2);
	assert_int_equal(ro->st.gate.streak[0], 0);
	pthread_mutex_unlock(&x->c->mtx);
	// A report for the old stage is recorded, not counted.
	r = send_report(x, "canary", "load", 2, 0.5);
	assert_true(verdict_of(r)->accepted);
	assert_false(verdict_of(r)->counted);
	assert_string_equal(verdict_of(r)->gate->state, "none");
	sluice__v1__gk_reply__free_unpacked(r, NULL);
	// ... and the reset was persisted.
	ro = reopen_locked(x);
	// The fake still says canary: reopening applies it again, a reset.
	assert_int_equal(ro->n, 0);
	assert_int_equal(ro->st.recorded, 1);
	pthread_mutex_unlock(&x->c->mtx);
}

static void
test_core_garbage_counted_as_malformed(void **state)
{
	fx                  *x      = *state;
	static const uint8_t junk[] = { 0xff, 0xff, 0xff, 0x01, 0x02 };
	uint8_t             *rep;
	size_t               rlen;
	ProtobufCMessage    *m;
	Sluice__V1__GkReply *r;

	assert_int_equal(
	    gk_core_handle(x->c, junk, sizeof(junk), &rep, &rlen), 0);
	assert_int_equal(sl_unpack(&sluice__v1__gk_reply__descriptor, rep,
	                     rlen, 1u << 20, &m),
	    SLUICE_OK);
	r = (Sluice__V1__GkReply *) m;
	assert_int_equal(r->result_case, SLUICE__V1__GK_REPLY__RESULT_ERROR);
	assert_int_equal(r->error->code, SLUICE_EPROTO);
	sluice__v1__gk_reply__free_unpacked(r, NULL);
	free(rep);
	assert_int_equal(atomic_load(&x->c->m.rejected[GK_REJ_MALFORMED]), 1);
	assert_int_equal(atomic_load(&x->c->m.accepted), 0);
}

// One request sent from a thread of its own; the test thread checks the
// reply after the join (cmocka is not thread-safe).
typedef struct sender {
	gk_core  *c;
	uint8_t  *req, *rep;
	size_t    len, rlen;
	int       rv;
	pthread_t thr;
} sender;

static void *
sender_main(void *arg)
{
	sender *s = arg;

	s->rv = gk_core_handle(s->c, s->req, s->len, &s->rep, &s->rlen);
	return (NULL);
}

static size_t
queued(gk_core *c)
{
	size_t n;

	pthread_mutex_lock(&c->gc_mtx);
	n = c->gc_queued;
	pthread_mutex_unlock(&c->gc_mtx);
	return (n);
}

// Holds the group commit as if one were running, or lets it go.
static void
gc_hold(gk_core *c, bool busy)
{
	gk_core_gc_hold(c, busy);
}

// s[0..2]: job a's reports 1 and 2, then report 2 again (a replay).
static void
three_reports(fx *x, sender *s)
{
	fx_report_req(
	    x->f->etl, "canary", "a", 1, 0.001, 100, &s[0].req, &s[0].len);
	fx_report_req(
	    x->f->etl, "canary", "a", 2, 0.001, 100, &s[1].req, &s[1].len);
	s[2].req = malloc(s[1].len);
	assert_non_null(s[2].req);
	memcpy(s[2].req, s[1].req, s[1].len);
	s[2].len = s[1].len;
}

// Sends s from a thread of its own; with want > 0, waits (bounded) until
// want reports are queued, so the queue's order is the senders' order.
static void
send_queued(gk_core *c, sender *s, size_t want)
{
	s->c = c;
	assert_int_equal(pthread_create(&s->thr, NULL, sender_main, s), 0);
	for (int k = 0; want > 0 && k < 2000 && queued(c) < want; k++) {
		usleep(1000);
	}
}

// The decoded reply of a finished sender (its buffers freed).
static Sluice__V1__GkReply *
sender_reply(sender *s)
{
	ProtobufCMessage *m;

	assert_int_equal(s->rv, SLUICE_OK);
	assert_int_equal(sl_unpack(&sluice__v1__gk_reply__descriptor, s->rep,
	                     s->rlen, 1u << 20, &m),
	    SLUICE_OK);
	free(s->req);
	free(s->rep);
	return ((Sluice__V1__GkReply *) m);
}

// Group commit: reports that arrive while a commit runs are committed
// together, once. Held here by marking a commit as running until all of
// them queued. In the group: two reports of job a, and the second one
// again (a replay within the group: the table must already hold the
// group's earlier reports). Beside it, a report with a bad signature,
// which never reaches the queue. Only the two good ones are counted, in
// one commit, and survive a reopen. (Two: the fixture's gate promotes
// after a soak of three.)
static void
test_core_group_commit_counts_only_good_reports(void **state)
{
	fx                  *x = *state;
	sender               s[4];
	sl_secret           *forged  = fx_key("etl-orders", 9); // wrong key
	int                  replays = 0, accepted = 0;
	uint64_t             commits0;
	gk_ro               *ro;
	Sluice__V1__GkReply *r;

	memset(s, 0, sizeof(s));
	three_reports(x, s);
	fx_report_req(
	    forged, "canary", "c", 1, 0.001, 100, &s[3].req, &s[3].len);
	commits0 = atomic_load(&x->c->m.report_commits);

	gc_hold(x->c, true);
	// One at a time, so that the queue's order is a1, a2, a2 again.
	for (size_t i = 0; i < 4; i++) {
		send_queued(x->c, &s[i], i < 3 ? i + 1 : 0);
	}
	assert_int_equal(queued(x->c), 3);
	pthread_join(s[3].thr, NULL); // refused before the queue
	gc_hold(x->c, false);
	for (int i = 0; i < 3; i++) {
		pthread_join(s[i].thr, NULL);
	}

	for (int i = 0; i < 4; i++) {
		r = sender_reply(&s[i]);
		if (i == 3) {
			assert_false(verdict_of(r)->accepted);
			assert_string_equal(
			    verdict_of(r)->reason, "bad_signature");
		} else if (verdict_of(r)->accepted) {
			assert_true(verdict_of(r)->counted);
			assert_non_null(verdict_of(r)->gate);
			accepted++;
		} else {
			assert_string_equal(verdict_of(r)->reason, "replay");
			replays++;
		}
		sluice__v1__gk_reply__free_unpacked(r, NULL);
	}
	assert_int_equal(accepted, 2);
	assert_int_equal(replays, 1);
	assert_int_equal(atomic_load(&x->c->m.report_commits), commits0 + 1);
	assert_int_equal(atomic_load(&x->c->m.accepted), 2);
	assert_int_equal(atomic_load(&x->c->m.counted), 2);
	assert_int_equal(atomic_load(&x->c->m.rejected[GK_REJ_REPLAY]), 1);
	assert_int_equal(
	    atomic_load(&x->c->m.rejected[GK_REJ_BAD_SIGNATURE]), 1);

	// What was acknowledged is in LMDB: reopen and look.
	ro = reopen_locked(x);
	assert_int_equal(ro->n, 2);
	assert_int_equal(ro->st.counted, 2);
	assert_int_equal(ro->st.gate.soak_reports, 2);
	assert_int_equal(gk_replay_last(x->c->replay, "etl-orders", "a"), 2);
	assert_int_equal(gk_replay_last(x->c->replay, "etl-orders", "c"), 0);
	pthread_mutex_unlock(&x->c->mtx);
	sl_secret_free(forged);
}

// A group whose commit fails: memory is put back from LMDB and each
// report is tried alone. Here the group (queued in a known order: a1, a2,
// a2 again) and then a1's own commit fail: a1 is refused as "internal"
// and changes nothing, a2 is accepted, and its copy is still a replay of
// it. Each outcome is counted once.
static void
test_core_failed_group_commit_retries_each_report(void **state)
{
	fx                  *x = *state;
	sender               s[3];
	const char          *want[3] = { "internal", "", "replay" };
	uint64_t             commits0;
	gk_ro               *ro;
	Sluice__V1__GkReply *r;

	memset(s, 0, sizeof(s));
	three_reports(x, s);
	commits0 = atomic_load(&x->c->m.report_commits);

	gc_hold(x->c, true);
	for (size_t i = 0; i < 3; i++) {
		send_queued(x->c, &s[i], i + 1);
		assert_int_equal(queued(x->c), i + 1);
	}
	atomic_store(&fail_commits, 2); // the group's, then a1's
	gc_hold(x->c, false);
	for (int i = 0; i < 3; i++) {
		pthread_join(s[i].thr, NULL);
	}
	assert_int_equal(atomic_load(&fail_commits), 0);

	for (int i = 0; i < 3; i++) {
		r = sender_reply(&s[i]);
		assert_int_equal(verdict_of(r)->accepted, want[i][0] == '\0');
		assert_string_equal(verdict_of(r)->reason, want[i]);
		sluice__v1__gk_reply__free_unpacked(r, NULL);
	}
	assert_int_equal(atomic_load(&x->c->m.report_commits), commits0 + 1);
	assert_int_equal(atomic_load(&x->c->m.accepted), 1);
	assert_int_equal(atomic_load(&x->c->m.counted), 1);
	assert_int_equal(atomic_load(&x->c->m.rejected[GK_REJ_INTERNAL]), 1);
	assert_int_equal(atomic_load(&x->c->m.rejected[GK_REJ_REPLAY]), 1);
	pthread_mutex_lock(&x->c->mtx);
	ro = gk_core_find(x->c, FX_ROLLOUT);
	assert_int_equal(ro->n, 1);
	assert_int_equal(ro->win[0].r->sequence, 2);
	assert_int_equal(ro->st.counted, 1);
	assert_int_equal(ro->st.gate.soak_reports, 1);
	pthread_mutex_unlock(&x->c->mtx);

	// Memory and LMDB agree.
	ro = reopen_locked(x);
	assert_int_equal(ro->n, 1);
	assert_int_equal(ro->st.counted, 1);
	assert_int_equal(gk_replay_last(x->c->replay, "etl-orders", "a"), 2);
	pthread_mutex_unlock(&x->c->mtx);
}

// issue 5: the report whose evaluation decides learns the decision.
static void
test_issue_5_deciding_verdict_says_rolled_back(void **state)
{
	fx                        *x = *state;
	gk_ro                     *ro;
	Sluice__V1__GkReply       *r;
	Sluice__V1__ReportVerdict *v;
	Sluice__V1__Evidence      *ev;
	uint8_t                    dg[SL_HASH_BYTES];

	r = send_report(x, "canary", "load", 1, 0.2);
	assert_string_equal(verdict_of(r)->gate->state, "breaching");
	sluice__v1__gk_reply__free_unpacked(r, NULL);
	r = send_report(x, "canary", "load", 2, 0.3);
	v = verdict_of(r);
	assert_true(v->accepted && v->counted);
	assert_string_equal(v->gate->state, "rolled_back");
	assert_string_equal(v->gate->stage, "canary");
	assert_int_equal(v->gate->decision_revision, 11);
	assert_int_equal(v->gate->counted, 2);
	sluice__v1__gk_reply__free_unpacked(r, NULL);

	pthread_mutex_lock(&x->f->mtx);
	assert_int_equal(x->f->writes, 1);
	assert_int_equal(
	    x->f->last->action_case, SLUICE__V1__COMMAND__ACTION_ROLLBACK);
	assert_true(x->f->last->rollback->has_expect_stage);
	assert_int_equal(x->f->last->rollback->expect_stage, 1);
	assert_int_equal(x->f->last->evidence_digest.len, SL_HASH_BYTES);
	memcpy(dg, x->f->last->evidence_digest.data, SL_HASH_BYTES);
	pthread_mutex_unlock(&x->f->mtx);

	ev = evidence_at(x->c, 11);
	assert_non_null(ev);
	assert_int_equal(ev->revision, 11);
	assert_string_equal(ev->action, "rollback");
	assert_int_equal(ev->n_reports, 2);
	assert_memory_equal(ev->digest.data, dg, SL_HASH_BYTES);
	sluice__v1__evidence__free_unpacked(ev, NULL);
	assert_int_equal(pending_count(x->c), 0);
	assert_int_equal(atomic_load(&x->c->m.rollbacks), 1);

	// The gate reset for the new stage was saved with the evidence:
	// reopened, gatekeeper finds LMDB already at flagd's stage.
	gk_core_close(x->c);
	x->c = core_open(x, 2000);
	assert_int_equal(atomic_load(&x->c->m.stage_resets), 0);
	pthread_mutex_lock(&x->c->mtx);
	ro = gk_core_find(x->c, FX_ROLLOUT);
	assert_non_null(ro);
	assert_int_equal(ro->st.gate.stage, 0);
	assert_int_equal(ro->n, 0);
	pthread_mutex_unlock(&x->c->mtx);
}

// issue 5: the evidence is stored before the write; when the reply is
// lost (a crash after flagd committed looks the same) it stays pending,
// and a restarted gatekeeper binds it to the audit entry with its digest.
static void
test_issue_5_evidence_before_write_bound_after_restart(void **state)
{
	fx                   *x = *state;
	Sluice__V1__GkReply  *r;
	Sluice__V1__Evidence *ev;

	gk_core_close(x->c);
	x->c = core_open(x, 300); // short: the fake will not answer
	pthread_mutex_lock(&x->f->mtx);
	x->f->write_mode = FX_WRITE_SILENT;
	pthread_mutex_unlock(&x->f->mtx);
	r = send_report(x, "canary", "load", 1, 0.2);
	sluice__v1__gk_reply__free_unpacked(r, NULL);
	r = send_report(x, "canary", "load", 2, 0.3);
	assert_string_equal(verdict_of(r)->gate->state, "failing");
	sluice__v1__gk_reply__free_unpacked(r, NULL);
	assert_int_equal(atomic_load(&x->c->m.decision_errors), 1);
	assert_int_equal(pending_count(x->c), 1);
	assert_true(atomic_load(&x->c->pending_evidence));
	assert_null(evidence_at(x->c, 11));

	// flagd did commit it (as revision 11): its audit says so.
	pthread_mutex_lock(&x->f->mtx);
	assert_int_equal(x->f->writes, 1);
	x->f->audit_has = true;
	x->f->audit_rev = 11;
	memcpy(x->f->audit_digest, x->f->last->evidence_digest.data,
	    SL_HASH_BYTES);
	x->f->write_mode = FX_WRITE_CONFLICT;
	pthread_mutex_unlock(&x->f->mtx);

	gk_core_close(x->c); // "crash" and restart
	x->c = core_open(x, 2000);
	assert_int_equal(pending_count(x->c), 0);
	assert_false(atomic_load(&x->c->pending_evidence));
	ev = evidence_at(x->c, 11);
	assert_non_null(ev);
	assert_int_equal(ev->revision, 11);
	assert_int_equal(ev->n_reports, 2);
	assert_memory_equal(
	    ev->digest.data, x->f->audit_digest, SL_HASH_BYTES);
	sluice__v1__evidence__free_unpacked(ev, NULL);
}

// An error answer that means "may or may not have been committed" (the
// leader changed mid-write) must keep the evidence pending, so that it
// is bound once flagd's audit shows the decision.
static void
test_core_unknown_outcome_keeps_evidence(void **state)
{
	fx                   *x = *state;
	Sluice__V1__GkReply  *r;
	Sluice__V1__Evidence *ev;

	pthread_mutex_lock(&x->f->mtx);
	x->f->write_mode = FX_WRITE_UNAVAIL;
	pthread_mutex_unlock(&x->f->mtx);
	r = send_report(x, "canary", "load", 1, 0.2);
	sluice__v1__gk_reply__free_unpacked(r, NULL);
	r = send_report(x, "canary", "load", 2, 0.3);
	sluice__v1__gk_reply__free_unpacked(r, NULL);
	assert_int_equal(pending_count(x->c), 1);
	assert_true(atomic_load(&x->c->pending_evidence));

	// It had committed, as revision 11.
	pthread_mutex_lock(&x->f->mtx);
	x->f->audit_has = true;
	x->f->audit_rev = 11;
	memcpy(x->f->audit_digest, x->f->last->evidence_digest.data,
	    SL_HASH_BYTES);
	pthread_mutex_unlock(&x->f->mtx);
	assert_int_equal(gk_decide_reconcile(x->c, 600000), 0);
	assert_int_equal(pending_count(x->c), 0);
	ev = evidence_at(x->c, 11);
	assert_non_null(ev);
	assert_int_equal(ev->n_reports, 2);
	sluice__v1__evidence__free_unpacked(ev, NULL);
}

// Unmatched pending evidence is dropped once older than the give-up age.
static void
test_decide_reconcile_drops_unmatched_after_give_up(void **state)
{
	fx                  *x = *state;
	gk_txn              *t;
	uint8_t              nonce[SL_NONCE_BYTES] = { 7 };
	uint8_t             *buf;
	size_t               len;
	Sluice__V1__Evidence e;

	sluice__v1__evidence__init(&e);
	e.rollout = (char *) (uintptr_t) FX_ROLLOUT;
	e.action  = (char *) (uintptr_t) "promote";
	e.time_ms = sl_now_ms() - 1000;
	assert_int_equal(sl_pack(&e.base, &buf, &len), SLUICE_OK);
	assert_int_equal(gk_db_begin(x->c->db, true, &t), SLUICE_OK);
	assert_int_equal(
	    gk_txn_put_pending(t, nonce, sizeof(nonce), 10, buf, len), 0);
	assert_int_equal(gk_txn_commit(t), SLUICE_OK);
	free(buf);
	assert_int_equal(gk_decide_reconcile(x->c, 60000), 1); // too young
	assert_int_equal(pending_count(x->c), 1);
	assert_int_equal(gk_decide_reconcile(x->c, 10), 0);
	assert_int_equal(pending_count(x->c), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_core_counts_and_replay_marks_survive_reopen, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_core_stage_change_resets_gate, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_core_garbage_counted_as_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_core_group_commit_counts_only_good_reports, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_core_failed_group_commit_retries_each_report, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_issue_5_deciding_verdict_says_rolled_back, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_issue_5_evidence_before_write_bound_after_restart,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_core_unknown_outcome_keeps_evidence, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_decide_reconcile_drops_unmatched_after_give_up, setup,
		    teardown),
	};

	return (
	    cmocka_run_group_tests_name("gatekeeper/core", tests, NULL, NULL));
}
