// SPDX-License-Identifier: MIT
//
// Unit tests for gatekeeper/reports.c: a known-answer signature vector,
// then one test per rejection: tampered body, wrong key, unknown key,
// wrong role, wrong scope, stale time, non-finite metric, oversized,
// truncated and garbage input; and the replay table.

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "envelope.h"
#include "keys.h"
#include "reports.h"

#define NOW 1700000000000ull
#define SKEW 300000ull

// Ed25519 of the all-zero seed over "sluice-report-v1\0" || body, computed
// with libsodium's crypto_sign_detached directly (not through sl_sign).
static const char    kat_body[]  = "sluice gatekeeper known answer";
static const uint8_t kat_sig[64] = { 0x8c, 0x22, 0x62, 0x0e, 0x1d, 0xda, 0x13,
	0xee, 0x58, 0x8f, 0x51, 0xb6, 0xc5, 0xce, 0x07, 0x53, 0x59, 0x98, 0xd9,
	0x9c, 0x83, 0xdb, 0x10, 0xfb, 0x14, 0x32, 0x55, 0x2b, 0x3e, 0x35, 0xbd,
	0x55, 0xd5, 0xf3, 0x95, 0x44, 0x26, 0x70, 0x0c, 0xde, 0xbf, 0x1f, 0xfb,
	0xb8, 0xbb, 0x3a, 0x7b, 0x00, 0x6f, 0xbd, 0x95, 0x27, 0x64, 0x0f, 0x8d,
	0x9d, 0x6f, 0x57, 0x32, 0x1b, 0x7c, 0x5b, 0xa6, 0x01 };

typedef struct fx {
	sl_secret *etl;   // reporter, scope "orders_*"
	sl_secret *ops;   // operator: may not report
	sl_secret *other; // not in the key set
	gk_keys   *ks;
} fx;

static sl_secret *
seed_key(const char *id, uint8_t b)
{
	uint8_t    seed[32];
	sl_secret *k = NULL;

	memset(seed, b, sizeof(seed));
	assert_int_equal(sl_secret_from_seed(&k, id, seed), SLUICE_OK);
	return (k);
}

static Sluice__V1__Key *
key_msg(const sl_secret *s, Sluice__V1__Role role, const char *scope)
{
	Sluice__V1__Key *k = calloc(1, sizeof(*k));

	assert_non_null(k);
	sluice__v1__key__init(k);
	k->id              = strdup(s->id);
	k->public_key.data = malloc(32);
	memcpy(k->public_key.data, s->pk, 32);
	k->public_key.len = 32;
	k->role           = role;
	k->scope          = strdup(scope);
	return (k);
}

// A KeyList built by hand, then packed and unpacked so it can be freed
// with free_unpacked as gk_keys_set expects.
static Sluice__V1__KeyList *
key_list(fx *f)
{
	Sluice__V1__KeyList l;
	Sluice__V1__Key    *ks[2];
	ProtobufCMessage   *m;
	uint8_t            *buf;
	size_t              len;

	sluice__v1__key_list__init(&l);
	ks[0]  = key_msg(f->etl, SLUICE__V1__ROLE__ROLE_REPORTER, "orders_*");
	ks[1]  = key_msg(f->ops, SLUICE__V1__ROLE__ROLE_OPERATOR, "");
	l.keys = ks;
	l.n_keys = 2;
	assert_int_equal(sl_pack(&l.base, &buf, &len), SLUICE_OK);
	assert_int_equal(sl_unpack(&sluice__v1__key_list__descriptor, buf, len,
	                     1u << 20, &m),
	    SLUICE_OK);
	free(buf);
	for (int i = 0; i < 2; i++) {
		sl_key_clear(ks[i]);
		free(ks[i]);
	}
	return ((Sluice__V1__KeyList *) m);
}

static int
setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));

	assert_int_equal(sl_crypto_init(), SLUICE_OK);
	f->etl   = seed_key("etl-orders", 1);
	f->ops   = seed_key("ops", 2);
	f->other = seed_key("etl-orders", 3); // same id, other key
	assert_int_equal(gk_keys_alloc(&f->ks), SLUICE_OK);
	gk_keys_set(f->ks, key_list(f));
	*state = f;
	return (0);
}

static int
teardown(void **state)
{
	fx *f = *state;

	gk_keys_free(f->ks);
	sl_secret_free(f->etl);
	sl_secret_free(f->ops);
	sl_secret_free(f->other);
	free(f);
	return (0);
}

typedef struct rmsg {
	Sluice__V1__MetricReport                r;
	Sluice__V1__MetricReport__MetricsEntry  e;
	Sluice__V1__MetricReport__MetricsEntry *ep[1];
} rmsg;

static void
report_init(rmsg *m, const char *rollout, uint64_t seq, uint64_t t)
{
	sluice__v1__metric_report__init(&m->r);
	sluice__v1__metric_report__metrics_entry__init(&m->e);
	m->r.rollout   = (char *) (uintptr_t) rollout;
	m->r.stage     = (char *) (uintptr_t) "canary";
	m->r.job       = (char *) (uintptr_t) "load_orders";
	m->r.run_id    = (char *) (uintptr_t) "run-1";
	m->r.sequence  = seq;
	m->r.time_ms   = t;
	m->e.key       = (char *) (uintptr_t) "error_rate";
	m->e.value     = 0.001;
	m->ep[0]       = &m->e;
	m->r.metrics   = m->ep;
	m->r.n_metrics = 1;
}

// Seals r with k and packs the envelope into *bufp, *lenp.
static void
seal_pack(const sl_secret *k, rmsg *m, uint8_t **bufp, size_t *lenp)
{
	Sluice__V1__SignedReport sr;

	sluice__v1__signed_report__init(&sr);
	assert_int_equal(sl_report_seal(k, &m->r, &sr), SLUICE_OK);
	assert_int_equal(sl_pack(&sr.base, bufp, lenp), SLUICE_OK);
	sl_signed_report_clear(&sr);
}

static int
verify_buf(fx *f, const uint8_t *buf, size_t len, gk_reject *why)
{
	gk_verified v = { 0 };
	int         rv;

	rv = gk_report_verify(f->ks, buf, len, NOW, SKEW, &v, why);
	if (rv == SLUICE_OK) {
		assert_non_null(v.r);
		gk_verified_clear(&v);
	} else {
		assert_null(v.r);
	}
	return (rv);
}

static void
expect_reject(fx *f, const sl_secret *k, rmsg *m, gk_reject want)
{
	uint8_t  *buf;
	size_t    len;
	gk_reject why = GK_REJ_NONE;

	seal_pack(k, m, &buf, &len);
	assert_int_equal(verify_buf(f, buf, len, &why), gk_reject_code(want));
	assert_string_equal(gk_reject_name(why), gk_reject_name(want));
	free(buf);
}

static void
test_reports_known_answer_signature(void **state)
{
	uint8_t                  seed[32] = { 0 };
	sl_secret               *k        = NULL;
	uint8_t                  sig[64];
	Sluice__V1__SignedReport sr;

	(void) state;
	assert_int_equal(sl_secret_from_seed(&k, "kat", seed), SLUICE_OK);
	assert_int_equal(
	    sl_sign(k, SL_CTX_REPORT, kat_body, strlen(kat_body), sig),
	    SLUICE_OK);
	assert_memory_equal(sig, kat_sig, 64);
	sluice__v1__signed_report__init(&sr);
	sr.body.data      = (uint8_t *) (uintptr_t) kat_body;
	sr.body.len       = strlen(kat_body);
	sr.signature.data = (uint8_t *) (uintptr_t) kat_sig;
	sr.signature.len  = 64;
	assert_int_equal(sl_report_verify(&sr, k->pk, 32), SLUICE_OK);
	// The same signature is no command signature: the context differs.
	assert_int_equal(sl_verify(k->pk, 32, SL_CTX_COMMAND, kat_body,
	                     strlen(kat_body), kat_sig, 64),
	    SLUICE_EBADSIG);
	sl_secret_free(k);
}

static void
test_reports_good_report_accepted(void **state)
{
	fx         *f = *state;
	rmsg        m;
	uint8_t    *buf;
	size_t      len;
	gk_reject   why;
	gk_verified v = { 0 };

	report_init(&m, "orders_v2", 1, NOW - 1000);
	seal_pack(f->etl, &m, &buf, &len);
	assert_int_equal(
	    gk_report_verify(f->ks, buf, len, NOW, SKEW, &v, &why), SLUICE_OK);
	assert_int_equal(why, GK_REJ_NONE);
	assert_string_equal(v.r->rollout, "orders_v2");
	assert_string_equal(v.sr->key_id, "etl-orders");
	assert_int_equal(v.r->sequence, 1);
	gk_verified_clear(&v);
	free(buf);
}

static void
test_reports_tampered_body_rejected(void **state)
{
	fx                      *f = *state;
	rmsg                     m;
	uint8_t                 *buf;
	size_t                   len;
	gk_reject                why;
	Sluice__V1__SignedReport sr;
	ProtobufCMessage        *pm;

	report_init(&m, "orders_v2", 1, NOW);
	seal_pack(f->etl, &m, &buf, &len);
	assert_int_equal(sl_unpack(&sluice__v1__signed_report__descriptor, buf,
	                     len, 1u << 20, &pm),
	    SLUICE_OK);
	free(buf);
	sr = *(Sluice__V1__SignedReport *) pm;
	sr.body.data[sr.body.len - 1] ^= 0x01; // the metric's value
	assert_int_equal(sl_pack(&sr.base, &buf, &len), SLUICE_OK);
	assert_int_equal(verify_buf(f, buf, len, &why), SLUICE_EBADSIG);
	assert_int_equal(why, GK_REJ_BAD_SIGNATURE);
	free(buf);
	protobuf_c_message_free_unpacked(pm, NULL);
}

static void
test_reports_wrong_key_rejected(void **state)
{
	fx  *f = *state;
	rmsg m;

	report_init(&m, "orders_v2", 1, NOW);
	expect_reject(f, f->other, &m, GK_REJ_BAD_SIGNATURE);
}

static void
test_reports_unknown_key_rejected(void **state)
{
	fx        *f = *state;
	rmsg       m;
	sl_secret *k = seed_key("stranger", 9);

	report_init(&m, "orders_v2", 1, NOW);
	expect_reject(f, k, &m, GK_REJ_UNKNOWN_KEY);
	sl_secret_free(k);
}

static void
test_reports_wrong_role_rejected(void **state)
{
	fx  *f = *state;
	rmsg m;

	report_init(&m, "orders_v2", 1, NOW);
	expect_reject(f, f->ops, &m, GK_REJ_ROLE);
}

static void
test_reports_wrong_scope_rejected(void **state)
{
	fx  *f = *state;
	rmsg m;

	report_init(&m, "payments_v2", 1, NOW);
	expect_reject(f, f->etl, &m, GK_REJ_SCOPE);
}

static void
test_reports_stale_time_rejected(void **state)
{
	fx  *f = *state;
	rmsg m;

	report_init(&m, "orders_v2", 1, NOW - SKEW - 1);
	expect_reject(f, f->etl, &m, GK_REJ_STALE_TIME);
	report_init(&m, "orders_v2", 1, NOW + SKEW + 1);
	expect_reject(f, f->etl, &m, GK_REJ_STALE_TIME);
	report_init(&m, "orders_v2", 1, NOW + SKEW); // the edge is fine
	uint8_t  *buf;
	size_t    len;
	gk_reject why;
	seal_pack(f->etl, &m, &buf, &len);
	assert_int_equal(verify_buf(f, buf, len, &why), SLUICE_OK);
	free(buf);
}

static void
test_reports_bad_metric_rejected(void **state)
{
	fx  *f = *state;
	rmsg m;

	report_init(&m, "orders_v2", 1, NOW);
	m.e.value = NAN;
	expect_reject(f, f->etl, &m, GK_REJ_BAD_METRIC);
	m.e.value = INFINITY;
	expect_reject(f, f->etl, &m, GK_REJ_BAD_METRIC);
}

static void
test_reports_missing_fields_malformed(void **state)
{
	fx  *f = *state;
	rmsg m;

	report_init(&m, "orders_v2", 0, NOW); // sequence 0
	expect_reject(f, f->etl, &m, GK_REJ_MALFORMED);
	report_init(&m, "orders_v2", 1, NOW);
	m.r.job = (char *) (uintptr_t) "";
	expect_reject(f, f->etl, &m, GK_REJ_MALFORMED);
}

static void
test_reports_oversized_rejected(void **state)
{
	fx                      *f   = *state;
	size_t                   len = SL_MAX_REPORT_BYTES + 2048u;
	uint8_t                 *buf = calloc(1, len);
	gk_reject                why;
	Sluice__V1__SignedReport sr;
	uint8_t                 *pb;
	size_t                   pl;

	assert_int_equal(verify_buf(f, buf, len, &why), SLUICE_ETOOBIG);
	assert_int_equal(why, GK_REJ_TOOBIG);
	// A well-formed envelope whose body is above the limit.
	sluice__v1__signed_report__init(&sr);
	sr.key_id         = (char *) (uintptr_t) "etl-orders";
	sr.body.data      = buf;
	sr.body.len       = SL_MAX_REPORT_BYTES + 1u;
	sr.signature.data = buf;
	sr.signature.len  = 64;
	assert_int_equal(sl_pack(&sr.base, &pb, &pl), SLUICE_OK);
	assert_int_equal(verify_buf(f, pb, pl, &why), SLUICE_ETOOBIG);
	assert_int_equal(why, GK_REJ_TOOBIG);
	free(pb);
	free(buf);
}

static void
test_reports_truncated_rejected(void **state)
{
	fx       *f = *state;
	rmsg      m;
	uint8_t  *buf;
	size_t    len;
	gk_reject why;
	size_t    n_bad = 0;

	report_init(&m, "orders_v2", 1, NOW);
	seal_pack(f->etl, &m, &buf, &len);
	// Every proper prefix is rejected, whatever the reason.
	for (size_t cut = 0; cut < len; cut++) {
		int rv = verify_buf(f, buf, cut, &why);
		assert_int_not_equal(rv, SLUICE_OK);
		assert_int_not_equal(why, GK_REJ_NONE);
		n_bad++;
	}
	assert_int_equal(n_bad, len);
	free(buf);
}

static void
test_reports_garbage_rejected(void **state)
{
	fx       *f = *state;
	uint8_t   buf[512];
	gk_reject why;
	uint32_t  x = 12345;

	for (int round = 0; round < 200; round++) {
		size_t len = (size_t) (x % sizeof(buf));
		for (size_t i = 0; i < len; i++) {
			x      = x * 1103515245u + 12345u;
			buf[i] = (uint8_t) (x >> 16);
		}
		assert_int_not_equal(verify_buf(f, buf, len, &why), SLUICE_OK);
		assert_int_not_equal(why, GK_REJ_NONE);
	}
	assert_int_equal(
	    verify_buf(f, (const uint8_t *) "\xff\xff\xff", 3, &why),
	    SLUICE_EPROTO);
	assert_int_equal(why, GK_REJ_MALFORMED);
}

static void
test_reports_replayed_sequence_rejected(void **state)
{
	gk_replay *t;

	(void) state;
	assert_int_equal(gk_replay_alloc(&t), SLUICE_OK);
	assert_true(gk_replay_check(t, "etl", "job-a", 1));
	assert_int_equal(gk_replay_record(t, "etl", "job-a", 5), SLUICE_OK);
	assert_false(gk_replay_check(t, "etl", "job-a", 5)); // replay
	assert_false(gk_replay_check(t, "etl", "job-a", 4)); // older
	assert_true(gk_replay_check(t, "etl", "job-a", 6));
	// Per key and job: another job and another key start afresh, and
	// "etl"+"x\0..." never collides with "etlx".
	assert_true(gk_replay_check(t, "etl", "job-b", 1));
	assert_true(gk_replay_check(t, "other", "job-a", 1));
	for (int i = 0; i < 100; i++) {
		char job[16];
		snprintf(job, sizeof(job), "j%03d", 99 - i);
		assert_int_equal(
		    gk_replay_record(t, "etl", job, (uint64_t) i + 1),
		    SLUICE_OK);
	}
	assert_int_equal(gk_replay_last(t, "etl", "j099"), 1);
	assert_int_equal(gk_replay_last(t, "etl", "j000"), 100);
	assert_int_equal(gk_replay_last(t, "etl", "job-a"), 5);
	// Recording an older sequence never moves the mark back.
	assert_int_equal(gk_replay_record(t, "etl", "job-a", 2), SLUICE_OK);
	assert_int_equal(gk_replay_last(t, "etl", "job-a"), 5);
	gk_replay_free(t);
}

static void
test_reports_reject_names_and_codes(void **state)
{
	(void) state;
	assert_string_equal(gk_reject_name(GK_REJ_REPLAY), "replay");
	assert_int_equal(gk_reject_code(GK_REJ_REPLAY), SLUICE_EREPLAY);
	assert_int_equal(gk_reject_code(GK_REJ_NONE), SLUICE_OK);
	assert_string_equal(gk_reject_name(GK_REJ_COUNT), "unknown");
	for (int i = 1; i < GK_REJ_COUNT; i++) {
		assert_int_not_equal(gk_reject_code((gk_reject) i), SLUICE_OK);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reports_known_answer_signature),
		cmocka_unit_test(test_reports_good_report_accepted),
		cmocka_unit_test(test_reports_tampered_body_rejected),
		cmocka_unit_test(test_reports_wrong_key_rejected),
		cmocka_unit_test(test_reports_unknown_key_rejected),
		cmocka_unit_test(test_reports_wrong_role_rejected),
		cmocka_unit_test(test_reports_wrong_scope_rejected),
		cmocka_unit_test(test_reports_stale_time_rejected),
		cmocka_unit_test(test_reports_bad_metric_rejected),
		cmocka_unit_test(test_reports_missing_fields_malformed),
		cmocka_unit_test(test_reports_oversized_rejected),
		cmocka_unit_test(test_reports_truncated_rejected),
		cmocka_unit_test(test_reports_garbage_rejected),
		cmocka_unit_test(test_reports_replayed_sequence_rejected),
		cmocka_unit_test(test_reports_reject_names_and_codes),
	};

	return (cmocka_run_group_tests_name(
	    "gatekeeper/reports", tests, setup, teardown));
}
