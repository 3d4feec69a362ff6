// SPDX-License-Identifier: MIT
//
// Unit tests for gatekeeper/db.c: gate state, window reports, replay
// marks, evidence and pending evidence persist across a close and reopen;
// window walks keep to their rollout (no prefix bleed) and to counted
// reports; deletes and clears; missing, corrupt and over-long keys.

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db.h"

typedef struct fx {
	char   dir[64];
	gk_db *d;
} fx;

static int
setup(void **state)
{
	fx *x = calloc(1, sizeof(*x));

	snprintf(x->dir, sizeof(x->dir), "/tmp/gk-db-XXXXXX");
	assert_non_null(mkdtemp(x->dir));
	assert_int_equal(gk_db_open(&x->d, x->dir), SLUICE_OK);
	*state = x;
	return (0);
}

static int
teardown(void **state)
{
	fx  *x = *state;
	char cmd[128];

	gk_db_close(x->d);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", x->dir);
	assert_int_equal(system(cmd), 0);
	free(x);
	return (0);
}

static void
reopen(fx *x)
{
	gk_db_close(x->d);
	x->d = NULL;
	assert_int_equal(gk_db_open(&x->d, x->dir), SLUICE_OK);
}

static gk_txn *
wtxn(fx *x)
{
	gk_txn *t = NULL;

	assert_int_equal(gk_db_begin(x->d, true, &t), SLUICE_OK);
	return (t);
}

static gk_txn *
rtxn(fx *x)
{
	gk_txn *t = NULL;

	assert_int_equal(gk_db_begin(x->d, false, &t), SLUICE_OK);
	return (t);
}

static void
test_db_state_persists_across_reopen(void **state)
{
	fx         *x = *state;
	gk_db_state s, got;
	gk_txn     *t;

	memset(&s, 0, sizeof(s));
	s.version             = GK_DB_STATE_VERSION;
	s.gate.stage          = 2;
	s.gate.stage_since_ms = 1700000000123ull;
	s.gate.streak[0]      = 1;
	s.gate.streak[31]     = 4;
	s.gate.soak_reports   = 3;
	s.gate.soak_since_ms  = 99;
	s.gate.soaking        = 1;
	s.gate.evaluations    = 17;
	s.counted             = 17;
	s.recorded            = 2;
	s.next_id             = 20;
	s.decision_revision   = 0;
	t                     = wtxn(x);
	assert_int_equal(gk_txn_put_state(t, "orders", &s), SLUICE_OK);
	assert_int_equal(gk_txn_commit(t), SLUICE_OK);
	reopen(x);
	t = rtxn(x);
	assert_int_equal(gk_txn_get_state(t, "orders", &got), SLUICE_OK);
	assert_memory_equal(&got, &s, sizeof(s));
	assert_int_equal(gk_txn_get_state(t, "order", &got), SLUICE_ENOENT);
	gk_txn_abort(t);
	// An aborted write leaves nothing behind.
	s.counted = 18;
	t         = wtxn(x);
	assert_int_equal(gk_txn_put_state(t, "orders", &s), SLUICE_OK);
	gk_txn_abort(t);
	t = rtxn(x);
	assert_int_equal(gk_txn_get_state(t, "orders", &got), SLUICE_OK);
	assert_int_equal(got.counted, 17);
	gk_txn_abort(t);
	// A state of another version is refused, and skipped when listed.
	s.version = GK_DB_STATE_VERSION + 1;
	t         = wtxn(x);
	assert_int_equal(gk_txn_put_state(t, "future", &s), SLUICE_OK);
	assert_int_equal(gk_txn_commit(t), SLUICE_OK);
	t = rtxn(x);
	assert_int_equal(gk_txn_get_state(t, "future", &got), SLUICE_ECORRUPT);
	gk_txn_abort(t);
}

typedef struct seen {
	uint64_t id[16];
	uint64_t at[16];
	char     body[16][16];
	size_t   n;
} seen;

static int
report_cb(
    void *arg, uint64_t id, uint64_t at_ms, const uint8_t *sr, size_t len)
{
	seen *s = arg;

	if (s->n < 16 && len < 16) {
		s->id[s->n] = id;
		s->at[s->n] = at_ms;
		memcpy(s->body[s->n], sr, len);
		s->body[s->n][len] = '\0';
		s->n++;
	}
	return (SLUICE_OK);
}

static void
test_db_window_persists_in_order_per_rollout(void **state)
{
	fx     *x = *state;
	gk_txn *t = wtxn(x);
	seen    s;
	char    body[16];

	// Ids written out of order, across a byte boundary (255/256):
	// big-endian keys walk in numeric order.
	static const uint64_t ids[] = { 256, 3, 255, 1 };
	for (size_t i = 0; i < 4; i++) {
		snprintf(
		    body, sizeof(body), "r%llu", (unsigned long long) ids[i]);
		assert_int_equal(gk_txn_put_report(t, true, "a", ids[i],
		                     1000 + ids[i], body, strlen(body)),
		    SLUICE_OK);
	}
	// Another rollout whose name extends "a", and a recorded report.
	assert_int_equal(gk_txn_put_report(t, true, "ab", 2, 5, "x", 1), 0);
	assert_int_equal(gk_txn_put_report(t, false, "a", 9, 5, "y", 1), 0);
	assert_int_equal(gk_txn_commit(t), SLUICE_OK);
	reopen(x);

	memset(&s, 0, sizeof(s));
	t = rtxn(x);
	assert_int_equal(gk_txn_each_window(t, "a", report_cb, &s), 0);
	gk_txn_abort(t);
	assert_int_equal(s.n, 4);
	assert_int_equal(s.id[0], 1);
	assert_int_equal(s.id[1], 3);
	assert_int_equal(s.id[2], 255);
	assert_int_equal(s.id[3], 256);
	assert_int_equal(s.at[3], 1256);
	assert_string_equal(s.body[2], "r255");

	t = wtxn(x);
	assert_int_equal(gk_txn_del_window(t, "a", 3), SLUICE_OK);
	assert_int_equal(gk_txn_del_window(t, "a", 3), SLUICE_OK); // gone: ok
	assert_int_equal(gk_txn_commit(t), SLUICE_OK);
	memset(&s, 0, sizeof(s));
	t = rtxn(x);
	assert_int_equal(gk_txn_each_window(t, "a", report_cb, &s), 0);
	gk_txn_abort(t);
	assert_int_equal(s.n, 3);

	t = wtxn(x);
	assert_int_equal(gk_txn_clear_window(t, "a"), SLUICE_OK);
	assert_int_equal(gk_txn_commit(t), SLUICE_OK);
	reopen(x);
	memset(&s, 0, sizeof(s));
	t = rtxn(x);
	assert_int_equal(gk_txn_each_window(t, "a", report_cb, &s), 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(gk_txn_each_window(t, "ab", report_cb, &s), 0);
	assert_int_equal(s.n, 1); // untouched by a's clear
	assert_string_equal(s.body[0], "x");
	gk_txn_abort(t);
}

typedef struct marks {
	char     key[4][32];
	char     job[4][32];
	uint64_t seq[4];
	size_t   n;
} marks;

static int
replay_cb(void *arg, const char *key, const char *job, uint64_t seq)
{
	marks *m = arg;

	if (m->n < 4) {
		snprintf(m->key[m->n], 32, "%s", key);
		snprintf(m->job[m->n], 32, "%s", job);
		m->seq[m->n++] = seq;
	}
	return (SLUICE_OK);
}

static void
test_db_replay_marks_survive_reopen(void **state)
{
	fx     *x = *state;
	gk_txn *t = wtxn(x);
	marks   m;

	assert_int_equal(gk_txn_put_replay(t, "etl", "load", 5), SLUICE_OK);
	assert_int_equal(gk_txn_put_replay(t, "etl", "load", 9), SLUICE_OK);
	assert_int_equal(gk_txn_put_replay(t, "etl", "merge", 1), SLUICE_OK);
	assert_int_equal(gk_txn_put_replay(t, "etl2", "load", 7), SLUICE_OK);
	assert_int_equal(gk_txn_commit(t), SLUICE_OK);
	reopen(x);
	memset(&m, 0, sizeof(m));
	t = rtxn(x);
	assert_int_equal(gk_txn_each_replay(t, replay_cb, &m), SLUICE_OK);
	gk_txn_abort(t);
	assert_int_equal(m.n, 3); // (etl, load) overwritten, not doubled
	assert_string_equal(m.key[0], "etl");
	assert_string_equal(m.job[0], "load");
	assert_int_equal(m.seq[0], 9);
	assert_string_equal(m.job[1], "merge");
	assert_string_equal(m.key[2], "etl2");
	assert_int_equal(m.seq[2], 7);
}

static void
test_db_evidence_and_pending_persist(void **state)
{
	fx           *x        = *state;
	gk_txn       *t        = wtxn(x);
	const uint8_t nonce[4] = { 1, 2, 3, 4 };
	uint8_t      *buf;
	size_t        len;

	assert_int_equal(gk_txn_put_evidence(t, "orders", 42, "ev42", 4), 0);
	assert_int_equal(gk_txn_put_pending(t, nonce, 4, 41, "pend", 4), 0);
	assert_int_equal(gk_txn_commit(t), SLUICE_OK);
	reopen(x);
	t = rtxn(x);
	assert_int_equal(
	    gk_txn_get_evidence(t, "orders", 42, &buf, &len), SLUICE_OK);
	assert_int_equal(len, 4);
	assert_memory_equal(buf, "ev42", 4);
	free(buf);
	assert_int_equal(
	    gk_txn_get_evidence(t, "orders", 41, &buf, &len), SLUICE_ENOENT);
	gk_txn_abort(t);

	t = wtxn(x);
	assert_int_equal(gk_txn_del_pending(t, nonce, 4), SLUICE_OK);
	assert_int_equal(gk_txn_del_pending(t, nonce, 4), SLUICE_OK);
	assert_int_equal(gk_txn_del_pending(t, nonce, 0), SLUICE_EINVAL);
	assert_int_equal(gk_txn_commit(t), SLUICE_OK);
}

static int
pending_cb(void *arg, const uint8_t *nonce, size_t nlen, uint64_t after_rev,
    const uint8_t *ev, size_t len)
{
	int *n = arg;

	assert_int_equal(nlen, 4);
	assert_int_equal(nonce[3], 4);
	assert_int_equal(after_rev, 41);
	assert_int_equal(len, 4);
	assert_memory_equal(ev, "pend", 4);
	(*n)++;
	return (SLUICE_OK);
}

static void
test_db_pending_listed_after_reopen(void **state)
{
	fx           *x        = *state;
	gk_txn       *t        = wtxn(x);
	const uint8_t nonce[4] = { 1, 2, 3, 4 };
	int           n        = 0;

	assert_int_equal(gk_txn_put_pending(t, nonce, 4, 41, "pend", 4), 0);
	assert_int_equal(gk_txn_commit(t), SLUICE_OK);
	reopen(x);
	t = rtxn(x);
	assert_int_equal(gk_txn_each_pending(t, pending_cb, &n), SLUICE_OK);
	gk_txn_abort(t);
	assert_int_equal(n, 1);
}

static void
test_db_overlong_names_refused(void **state)
{
	fx     *x = *state;
	gk_txn *t = wtxn(x);
	char    name[300];

	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	assert_int_equal(
	    gk_txn_put_report(t, true, name, 1, 1, "x", 1), SLUICE_EINVAL);
	assert_int_equal(gk_txn_put_replay(t, name, "job", 1), SLUICE_EINVAL);
	assert_int_equal(
	    gk_txn_put_evidence(t, name, 1, "x", 1), SLUICE_EINVAL);
	gk_txn_abort(t);
	gk_txn_abort(NULL);
	gk_db_close(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_db_state_persists_across_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_db_window_persists_in_order_per_rollout, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_db_replay_marks_survive_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_db_evidence_and_pending_persist, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_db_pending_listed_after_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_db_overlong_names_refused, setup, teardown),
	};

	return (
	    cmocka_run_group_tests_name("gatekeeper/db", tests, NULL, NULL));
}
