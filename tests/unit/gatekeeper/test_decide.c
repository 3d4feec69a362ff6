// SPDX-License-Identifier: MIT
//
// Unit tests for gatekeeper/decide.c: the evidence digest against an
// independent BLAKE2b (one-shot, over the bytes laid out by hand); the
// reason text names the condition, the figures and the window for a
// rollback, a promotion and an inconclusive rollback; and a CAS conflict
// from flagd is a no-op (nothing decided, no evidence kept, no retry
// before the back-off), driven through gk_core_open against the
// in-process fake flagd of gk_fixture.h.

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sodium.h>

#include "core.h"
#include "decide.h"
#include "gk_fixture.h"

static void
test_decide_digest_matches_independent_blake2b(void **state)
{
	const uint8_t  a[] = { 1, 2, 3 };
	uint8_t        b[300];
	const uint8_t *rs[3];
	size_t         ls[3];
	uint8_t        got[SL_HASH_BYTES], want[SL_HASH_BYTES];
	uint8_t        flat[4 + 3 + 4 + 300 + 4];
	size_t         off = 0;

	(void) state;
	assert_int_equal(sl_crypto_init(), SLUICE_OK);
	for (size_t i = 0; i < sizeof(b); i++) {
		b[i] = (uint8_t) (i * 7);
	}
	rs[0] = a;
	ls[0] = sizeof(a);
	rs[1] = b;
	ls[1] = sizeof(b);
	rs[2] = b;
	ls[2] = 0; // an empty report still contributes its length
	// u32 big-endian length || bytes, for each report, by hand.
	for (int i = 0; i < 3; i++) {
		flat[off++] = (uint8_t) (ls[i] >> 24);
		flat[off++] = (uint8_t) (ls[i] >> 16);
		flat[off++] = (uint8_t) (ls[i] >> 8);
		flat[off++] = (uint8_t) ls[i];
		memcpy(flat + off, rs[i], ls[i]);
		off += ls[i];
	}
	assert_int_equal(off, sizeof(flat));
	assert_int_equal(
	    crypto_generichash(want, sizeof(want), flat, off, NULL, 0), 0);
	gk_evidence_digest(rs, ls, 3, got);
	assert_memory_equal(got, want, SL_HASH_BYTES);
	// Order matters, and so does the framing.
	rs[0] = b;
	ls[0] = sizeof(b);
	rs[1] = a;
	ls[1] = sizeof(a);
	gk_evidence_digest(rs, ls, 3, got);
	assert_memory_not_equal(got, want, SL_HASH_BYTES);
	// No reports: BLAKE2b-256 of nothing.
	assert_int_equal(
	    crypto_generichash(want, sizeof(want), NULL, 0, NULL, 0), 0);
	gk_evidence_digest(rs, ls, 0, got);
	assert_memory_equal(got, want, SL_HASH_BYTES);
}

// A gk_ro at canary with its last evaluation set by the test.
static gk_ro *
ro_at_canary(void)
{
	gk_ro *ro = calloc(1, sizeof(*ro));

	assert_non_null(ro);
	snprintf(ro->name, sizeof(ro->name), "%s", FX_ROLLOUT);
	ro->msg       = fx_rollout(1, 1000, 10);
	ro->evaluated = true;
	return (ro);
}

static void
ro_free(gk_ro *ro)
{
	sluice__v1__rollout__free_unpacked(ro->msg, NULL);
	free(ro);
}

static void
test_decide_reason_rollback_names_condition_figures_window(void **state)
{
	gk_ro                  *ro = ro_at_canary();
	const Sluice__V1__Gate *g  = gk_core_gate(ro);
	char                    buf[1024];

	(void) state;
	assert_non_null(g);
	ro->last.status          = GK_STATUS_FAILING;
	ro->last.deciding        = 0;
	ro->last.window          = 7;
	ro->last.cond[0].value   = 0.0625;
	ro->last.cond[0].samples = 6;
	ro->last.cond[0].streak  = 2;
	ro->last.cond[0].status  = GK_COND_BREACH;
	gk_decide_reason(ro, g, GK_DECIDE_ROLLBACK, buf, sizeof(buf));
	assert_non_null(strstr(buf, "gate canary failing"));
	assert_non_null(strstr(buf, "\"error_rate mean < 0.01\""));
	assert_non_null(strstr(buf, "breached with 0.0625"));
	assert_non_null(strstr(buf, "over 6 samples"));
	assert_non_null(strstr(buf, "2 consecutive evaluations"));
	assert_non_null(strstr(buf, "window: last 10 reports (7 reports)"));
	ro_free(ro);
}

static void
test_decide_reason_promote_lists_every_condition(void **state)
{
	gk_ro                  *ro = ro_at_canary();
	const Sluice__V1__Gate *g  = gk_core_gate(ro);
	char                    buf[1024];

	(void) state;
	ro->last.status        = GK_STATUS_PASSING;
	ro->last.deciding      = -1;
	ro->last.window        = 3;
	ro->last.soak_reports  = 3;
	ro->last.soak_ms       = 4500;
	ro->last.cond[0].value = 0.002;
	ro->last.cond[1].value = 830;
	gk_decide_reason(ro, g, GK_DECIDE_PROMOTE, buf, sizeof(buf));
	assert_non_null(strstr(buf, "gate canary passed"));
	assert_non_null(strstr(buf, "soak 3 reports, 4 s"));
	assert_non_null(strstr(buf, "window: last 10 reports (3 reports)"));
	assert_non_null(strstr(buf, "\"error_rate mean < 0.01\": 0.002"));
	assert_non_null(strstr(buf, "\"latency_ms p95 < 2000\": 830"));
	// A short buffer is cut, never overrun.
	gk_decide_reason(ro, g, GK_DECIDE_PROMOTE, buf, 20);
	assert_int_equal(strlen(buf), 19);
	ro_free(ro);
}

static void
test_decide_reason_inconclusive_rollback(void **state)
{
	gk_ro                  *ro = ro_at_canary();
	const Sluice__V1__Gate *g  = gk_core_gate(ro);
	char                    buf[1024];

	(void) state;
	ro->last.status   = GK_STATUS_INCONCLUSIVE;
	ro->last.deciding = -1;
	ro->last.window   = 0;
	gk_decide_reason(ro, g, GK_DECIDE_ROLLBACK, buf, sizeof(buf));
	assert_non_null(strstr(buf, "gate canary inconclusive"));
	assert_non_null(strstr(buf, "min 1"));
	assert_non_null(strstr(buf, "on_inconclusive: rollback"));
	assert_non_null(strstr(buf, "window: last 10 reports (0 reports)"));
	ro_free(ro);
}

// ---------------------------------------------------------------- CAS

static int
count_cb(void *arg, const uint8_t *nonce, size_t nlen, uint64_t after_rev,
    const uint8_t *ev, size_t len)
{
	(void) nonce;
	(void) nlen;
	(void) after_rev;
	(void) ev;
	(void) len;
	(*(int *) arg)++;
	return (SLUICE_OK);
}

static void
send_bad(gk_core *c, fx_flagd *f, uint64_t seq)
{
	uint8_t *req, *rep;
	size_t   len, rlen;

	fx_report_req(f->etl, "canary", "load", seq, 0.5, 100, &req, &len);
	assert_int_equal(gk_core_handle(c, req, len, &rep, &rlen), 0);
	free(req);
	free(rep);
}

static void
test_decide_cas_conflict_is_a_no_op(void **state)
{
	fx_flagd  *f = fx_flagd_start("decide-cas");
	char       dir[64], data[128], key[192];
	gk_options o;
	gk_core   *c = NULL;
	gk_ro     *ro;
	gk_txn    *t;
	uint8_t   *buf;
	size_t     len;
	int        n = 0;

	(void) state;
	fx_tmpdir(dir, sizeof(dir));
	snprintf(data, sizeof(data), "%s/data", dir);
	assert_int_equal(mkdir(data, 0700), 0);
	fx_write_key(f, dir, key, sizeof(key));
	f->write_mode = FX_WRITE_CONFLICT;
	memset(&o, 0, sizeof(o));
	o.flagd     = f->url;
	o.key_file  = key;
	o.data_dir  = data;
	o.tick_ms   = 600000;
	o.keys_ms   = 600000;
	o.no_follow = true;
	assert_int_equal(gk_core_open(&c, &o), SLUICE_OK);

	send_bad(c, f, 1);
	send_bad(c, f, 2); // failing: the rollback is sent, and refused
	pthread_mutex_lock(&f->mtx);
	assert_int_equal(f->writes, 1);
	assert_int_equal(f->last->rollback->expect_stage, 1);
	pthread_mutex_unlock(&f->mtx);
	assert_int_equal(atomic_load(&c->m.conflicts), 1);
	assert_int_equal(atomic_load(&c->m.rollbacks), 0);
	assert_int_equal(atomic_load(&c->m.decision_errors), 0);
	pthread_mutex_lock(&c->mtx);
	ro = gk_core_find(c, FX_ROLLOUT);
	assert_int_equal(ro->st.gate.decided, GK_DECIDE_NONE);
	assert_int_equal(ro->st.decision_revision, 0);
	assert_false(ro->inflight);
	assert_true(ro->retry_after_ms > sl_now_ms());
	assert_int_equal(ro->st.gate.stage, 1); // nothing applied
	pthread_mutex_unlock(&c->mtx);
	// A third failing report within the back-off sends nothing.
	send_bad(c, f, 3);
	pthread_mutex_lock(&f->mtx);
	assert_int_equal(f->writes, 1);
	pthread_mutex_unlock(&f->mtx);
	// No evidence kept, under any revision, nor pending.
	assert_int_equal(gk_db_begin(c->db, false, &t), SLUICE_OK);
	assert_int_equal(gk_txn_each_pending(t, count_cb, &n), 0);
	assert_int_equal(n, 0);
	for (uint64_t rev = 0; rev < 16; rev++) {
		assert_int_equal(
		    gk_txn_get_evidence(t, FX_ROLLOUT, rev, &buf, &len),
		    SLUICE_ENOENT);
	}
	gk_txn_abort(t);
	gk_core_close(c);
	fx_flagd_stop(f);
	fx_rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    test_decide_digest_matches_independent_blake2b),
		cmocka_unit_test(
		    test_decide_reason_rollback_names_condition_figures_window),
		cmocka_unit_test(
		    test_decide_reason_promote_lists_every_condition),
		cmocka_unit_test(test_decide_reason_inconclusive_rollback),
		cmocka_unit_test(test_decide_cas_conflict_is_a_no_op),
	};

	return (cmocka_run_group_tests_name(
	    "gatekeeper/decide", tests, NULL, NULL));
}
