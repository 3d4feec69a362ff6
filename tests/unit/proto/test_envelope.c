// SPDX-License-Identifier: MIT
//
// Unit tests for proto/envelope.c: seal, verify and open commands and
// reports; tampering, oversized bodies, missing nonces and actions.

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "envelope.h"

static sl_secret *
test_key(void)
{
	uint8_t    seed[32];
	sl_secret *k = NULL;

	memset(seed, 0x5a, sizeof(seed));
	assert_int_equal(sl_secret_from_seed(&k, "ops", seed), SLUICE_OK);
	return (k);
}

static void
promote_cmd(Sluice__V1__Command *cmd, Sluice__V1__Promote *p)
{
	sluice__v1__command__init(cmd);
	sluice__v1__promote__init(p);
	p->rollout       = (char *) (uintptr_t) "orders.read_new";
	cmd->reason      = (char *) (uintptr_t) "canary looks good";
	cmd->action_case = SLUICE__V1__COMMAND__ACTION_PROMOTE;
	cmd->promote     = p;
}

static void
test_envelope_seal_verify_open(void **state)
{
	sl_secret                *k = test_key();
	Sluice__V1__Command       cmd;
	Sluice__V1__Promote       p;
	Sluice__V1__SignedCommand sc;
	Sluice__V1__Command      *out = NULL;
	uint64_t                  before;

	(void) state;
	promote_cmd(&cmd, &p);
	sluice__v1__signed_command__init(&sc);
	before = sl_now_ms();
	assert_int_equal(sl_command_seal(k, &cmd, &sc), SLUICE_OK);
	assert_true(cmd.timestamp_ms >= before);
	assert_int_equal(cmd.nonce.len, SL_NONCE_BYTES);
	assert_string_equal(sc.key_id, "ops");
	assert_int_equal(sc.signature.len, SLUICE_SIG_BYTES);
	assert_int_equal(sl_command_verify(&sc, k->pk, 32), SLUICE_OK);
	assert_int_equal(sl_command_open(&sc, &out), SLUICE_OK);
	assert_int_equal(out->timestamp_ms, cmd.timestamp_ms);
	assert_memory_equal(out->nonce.data, cmd.nonce.data, SL_NONCE_BYTES);
	assert_int_equal(sl_command_action(out), SL_ACT_PROMOTE);
	assert_string_equal(sl_command_rollout(out), "orders.read_new");
	assert_string_equal(out->reason, "canary looks good");
	sluice__v1__command__free_unpacked(out, NULL);
	sl_signed_command_clear(&sc);
	sl_command_clear_nonce(&cmd);
	assert_null(cmd.nonce.data);
	sl_secret_free(k);
}

static void
test_envelope_seal_keeps_given_time_and_nonce(void **state)
{
	sl_secret                *k = test_key();
	Sluice__V1__Command       cmd;
	Sluice__V1__Promote       p;
	Sluice__V1__SignedCommand sc;
	uint8_t                   nonce[SL_NONCE_BYTES];

	(void) state;
	promote_cmd(&cmd, &p);
	memset(nonce, 7, sizeof(nonce));
	cmd.timestamp_ms = 1234;
	cmd.nonce.data   = nonce;
	cmd.nonce.len    = sizeof(nonce);
	sluice__v1__signed_command__init(&sc);
	assert_int_equal(sl_command_seal(k, &cmd, &sc), SLUICE_OK);
	assert_int_equal(cmd.timestamp_ms, 1234);
	assert_ptr_equal(cmd.nonce.data, nonce);
	sl_signed_command_clear(&sc);
	sl_secret_free(k);
}

static void
test_envelope_tampered_body_fails(void **state)
{
	sl_secret                *k = test_key();
	Sluice__V1__Command       cmd;
	Sluice__V1__Promote       p;
	Sluice__V1__SignedCommand sc;

	(void) state;
	promote_cmd(&cmd, &p);
	sluice__v1__signed_command__init(&sc);
	assert_int_equal(sl_command_seal(k, &cmd, &sc), SLUICE_OK);
	sc.body.data[sc.body.len - 1] ^= 0x01;
	assert_int_equal(sl_command_verify(&sc, k->pk, 32), SLUICE_EBADSIG);
	sc.body.data[sc.body.len - 1] ^= 0x01;
	assert_int_equal(sl_command_verify(&sc, k->pk, 32), SLUICE_OK);
	// Truncated body and truncated signature.
	sc.body.len--;
	assert_int_equal(sl_command_verify(&sc, k->pk, 32), SLUICE_EBADSIG);
	sc.body.len++;
	sc.signature.len--;
	assert_int_equal(sl_command_verify(&sc, k->pk, 32), SLUICE_EBADSIG);
	sc.signature.len++;
	sl_signed_command_clear(&sc);
	sl_command_clear_nonce(&cmd);
	sl_secret_free(k);
}

static void
test_envelope_report_signature_does_not_verify_as_command(void **state)
{
	sl_secret                *k = test_key();
	Sluice__V1__MetricReport  r;
	Sluice__V1__SignedReport  sr;
	Sluice__V1__SignedCommand sc;
	Sluice__V1__MetricReport *out = NULL;

	(void) state;
	sluice__v1__metric_report__init(&r);
	r.rollout  = (char *) (uintptr_t) "orders.read_new";
	r.stage    = (char *) (uintptr_t) "canary";
	r.sequence = 5;
	sluice__v1__signed_report__init(&sr);
	assert_int_equal(sl_report_seal(k, &r, &sr), SLUICE_OK);
	assert_int_equal(sl_report_verify(&sr, k->pk, 32), SLUICE_OK);
	assert_int_equal(sl_report_open(&sr, &out), SLUICE_OK);
	assert_int_equal(out->sequence, 5);
	assert_string_equal(out->stage, "canary");
	sluice__v1__metric_report__free_unpacked(out, NULL);

	// Same bytes, same key, other context: must fail.
	sluice__v1__signed_command__init(&sc);
	sc.body      = sr.body;
	sc.signature = sr.signature;
	assert_int_equal(sl_command_verify(&sc, k->pk, 32), SLUICE_EBADSIG);
	sl_signed_report_clear(&sr);
	sl_secret_free(k);
}

static void
test_envelope_oversized_body_is_etoobig(void **state)
{
	sl_secret                *k = test_key();
	Sluice__V1__Command       cmd;
	Sluice__V1__Promote       p;
	Sluice__V1__SignedCommand sc;
	Sluice__V1__Command      *out = NULL;
	char                     *big;

	(void) state;
	big = malloc(SL_MAX_COMMAND_BYTES + 1);
	assert_non_null(big);
	memset(big, 'x', SL_MAX_COMMAND_BYTES);
	big[SL_MAX_COMMAND_BYTES] = '\0';

	// Sealing refuses it, and leaves cmd as it was.
	promote_cmd(&cmd, &p);
	cmd.reason = big;
	sluice__v1__signed_command__init(&sc);
	assert_int_equal(sl_command_seal(k, &cmd, &sc), SLUICE_ETOOBIG);
	assert_int_equal(cmd.nonce.len, 0);
	assert_int_equal(cmd.timestamp_ms, 0);
	assert_null(sc.body.data);

	// A peer that sends one anyway gets ETOOBIG from verify and open.
	sc.body.data = (uint8_t *) big;
	sc.body.len  = SL_MAX_COMMAND_BYTES + 1;
	assert_int_equal(sl_command_verify(&sc, k->pk, 32), SLUICE_ETOOBIG);
	assert_int_equal(sl_command_open(&sc, &out), SLUICE_ETOOBIG);
	assert_null(out);
	free(big);
	sl_secret_free(k);
}

static void
test_envelope_missing_nonce_is_eproto(void **state)
{
	Sluice__V1__Command       cmd;
	Sluice__V1__Promote       p;
	Sluice__V1__SignedCommand sc;
	Sluice__V1__Command      *out            = NULL;
	uint8_t                   short_nonce[8] = { 0 };
	uint8_t                  *buf;
	size_t                    len;

	(void) state;
	// Built by hand, as a hostile or broken client would.
	promote_cmd(&cmd, &p);
	cmd.timestamp_ms = 1;
	sluice__v1__signed_command__init(&sc);
	assert_int_equal(sl_pack(&cmd.base, &buf, &len), SLUICE_OK);
	sc.body.data = buf;
	sc.body.len  = len;
	assert_int_equal(sl_command_open(&sc, &out), SLUICE_EPROTO);
	assert_null(out);
	free(buf);

	cmd.nonce.data = short_nonce;
	cmd.nonce.len  = sizeof(short_nonce);
	assert_int_equal(sl_pack(&cmd.base, &buf, &len), SLUICE_OK);
	sc.body.data = buf;
	sc.body.len  = len;
	assert_int_equal(sl_command_open(&sc, &out), SLUICE_EPROTO);
	free(buf);
}

static void
test_envelope_missing_action_is_rejected(void **state)
{
	sl_secret                *k = test_key();
	Sluice__V1__Command       cmd;
	Sluice__V1__SignedCommand sc;
	Sluice__V1__Command      *out                   = NULL;
	uint8_t                   nonce[SL_NONCE_BYTES] = { 1 };
	uint8_t                  *buf;
	size_t                    len;

	(void) state;
	sluice__v1__command__init(&cmd);
	sluice__v1__signed_command__init(&sc);
	assert_int_equal(sl_command_seal(k, &cmd, &sc), SLUICE_EINVAL);
	cmd.nonce.data = nonce;
	cmd.nonce.len  = sizeof(nonce);
	assert_int_equal(sl_pack(&cmd.base, &buf, &len), SLUICE_OK);
	sc.body.data = buf;
	sc.body.len  = len;
	assert_int_equal(sl_command_open(&sc, &out), SLUICE_EPROTO);
	assert_int_equal(sl_command_action(&cmd), SL_ACT_READ);
	free(buf);
	sl_secret_free(k);
}

static void
test_envelope_garbage_body_is_eproto(void **state)
{
	Sluice__V1__SignedCommand sc;
	Sluice__V1__Command      *out    = NULL;
	uint8_t                   junk[] = { 0x12, 0x7f, 0x01 };

	(void) state;
	sluice__v1__signed_command__init(&sc);
	sc.body.data = junk;
	sc.body.len  = sizeof(junk);
	assert_int_equal(sl_command_open(&sc, &out), SLUICE_EPROTO);
	assert_null(out);
}

static void
test_envelope_command_rollout_and_action(void **state)
{
	Sluice__V1__Command      cmd;
	Sluice__V1__ApplyRollout apply;
	Sluice__V1__RolloutSpec  spec;
	Sluice__V1__KeyRemove    kr;

	(void) state;
	sluice__v1__command__init(&cmd);
	sluice__v1__apply_rollout__init(&apply);
	sluice__v1__rollout_spec__init(&spec);
	spec.name       = (char *) (uintptr_t) "billing.v2";
	apply.spec      = &spec;
	cmd.action_case = SLUICE__V1__COMMAND__ACTION_APPLY;
	cmd.apply       = &apply;
	assert_int_equal(sl_command_action(&cmd), SL_ACT_APPLY);
	assert_string_equal(sl_command_rollout(&cmd), "billing.v2");
	sluice__v1__key_remove__init(&kr);
	cmd.action_case = SLUICE__V1__COMMAND__ACTION_KEY_REMOVE;
	cmd.key_remove  = &kr;
	assert_int_equal(sl_command_action(&cmd), SL_ACT_KEY_REMOVE);
	assert_string_equal(sl_command_rollout(&cmd), "");
}

static void
test_envelope_timestamp_fresh(void **state)
{
	(void) state;
	assert_true(sl_timestamp_fresh(1000, 1000, 0));
	assert_true(sl_timestamp_fresh(700, 1000, 300));
	assert_true(sl_timestamp_fresh(1300, 1000, 300));
	assert_false(sl_timestamp_fresh(699, 1000, 300));
	assert_false(sl_timestamp_fresh(1301, 1000, 300));
	assert_false(sl_timestamp_fresh(0, UINT64_MAX, SL_DEFAULT_SKEW_MS));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_envelope_seal_verify_open),
		cmocka_unit_test(
		    test_envelope_seal_keeps_given_time_and_nonce),
		cmocka_unit_test(test_envelope_tampered_body_fails),
		cmocka_unit_test(
		    test_envelope_report_signature_does_not_verify_as_command),
		cmocka_unit_test(test_envelope_oversized_body_is_etoobig),
		cmocka_unit_test(test_envelope_missing_nonce_is_eproto),
		cmocka_unit_test(test_envelope_missing_action_is_rejected),
		cmocka_unit_test(test_envelope_garbage_body_is_eproto),
		cmocka_unit_test(test_envelope_command_rollout_and_action),
		cmocka_unit_test(test_envelope_timestamp_fresh),
	};

	return (
	    cmocka_run_group_tests_name("proto/envelope", tests, NULL, NULL));
}
