// SPDX-License-Identifier: MIT
//
// Unit tests for proto/codec.c: size limits are checked before parsing,
// garbage is EPROTO, pack/unpack round-trips, copies and equality.

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "codec.h"

static void
test_codec_round_trip(void **state)
{
	Sluice__V1__Heartbeat  hb;
	Sluice__V1__Heartbeat *out;
	ProtobufCMessage      *m;
	uint8_t               *buf;
	size_t                 len;

	(void) state;
	sluice__v1__heartbeat__init(&hb);
	hb.revision = 42;
	hb.time_ms  = 1700000000000u;
	hb.node_id  = 3;
	assert_int_equal(sl_pack(&hb.base, &buf, &len), SLUICE_OK);
	assert_true(len > 0);
	assert_int_equal(
	    sl_unpack(&sluice__v1__heartbeat__descriptor, buf, len, len, &m),
	    SLUICE_OK);
	out = (Sluice__V1__Heartbeat *) m;
	assert_int_equal(out->revision, 42);
	assert_int_equal(out->time_ms, 1700000000000u);
	assert_int_equal(out->node_id, 3);
	assert_true(sl_message_equal(&hb.base, m));
	protobuf_c_message_free_unpacked(m, NULL);
	free(buf);
}

static void
test_codec_empty_message_packs_to_nonnull(void **state)
{
	Sluice__V1__ListRollouts lr;
	ProtobufCMessage        *m;
	uint8_t                 *buf = NULL;
	size_t                   len = 99;

	(void) state;
	sluice__v1__list_rollouts__init(&lr);
	assert_int_equal(sl_pack(&lr.base, &buf, &len), SLUICE_OK);
	assert_non_null(buf);
	assert_int_equal(len, 0);
	assert_int_equal(
	    sl_unpack(&sluice__v1__list_rollouts__descriptor, NULL, 0, 0, &m),
	    SLUICE_OK);
	protobuf_c_message_free_unpacked(m, NULL);
	free(buf);
}

static void
test_codec_over_limit_is_etoobig(void **state)
{
	Sluice__V1__GetRollout g;
	ProtobufCMessage      *m = NULL;
	uint8_t               *buf;
	size_t                 len;

	(void) state;
	sluice__v1__get_rollout__init(&g);
	g.name = (char *) (uintptr_t) "orders.read_new";
	assert_int_equal(sl_pack(&g.base, &buf, &len), SLUICE_OK);
	assert_int_equal(sl_unpack(&sluice__v1__get_rollout__descriptor, buf,
	                     len, len - 1, &m),
	    SLUICE_ETOOBIG);
	assert_null(m);
	free(buf);
}

static void
test_codec_limit_checked_before_parsing(void **state)
{
	// Garbage above the limit must say ETOOBIG, not EPROTO: the size
	// check comes first, so the parser never sees the bytes.
	uint8_t           junk[64];
	ProtobufCMessage *m = NULL;

	(void) state;
	memset(junk, 0xff, sizeof(junk));
	assert_int_equal(sl_unpack(&sluice__v1__request__descriptor, junk,
	                     sizeof(junk), 16, &m),
	    SLUICE_ETOOBIG);
	assert_null(m);
}

static void
test_codec_garbage_is_eproto(void **state)
{
	uint8_t              junk[] = { 0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f };
	Sluice__V1__Request *r      = NULL;
	Sluice__V1__Reply   *rep    = NULL;
	Sluice__V1__Event   *ev     = NULL;

	(void) state;
	assert_int_equal(
	    sl_request_decode(junk, sizeof(junk), &r), SLUICE_EPROTO);
	assert_int_equal(
	    sl_reply_decode(junk, sizeof(junk), &rep), SLUICE_EPROTO);
	assert_int_equal(
	    sl_event_decode(junk, sizeof(junk), &ev), SLUICE_EPROTO);
	assert_null(r);
	assert_null(rep);
	assert_null(ev);
}

static void
test_codec_request_decode_enforces_request_limit(void **state)
{
	size_t               len = SL_MAX_REQUEST_BYTES + 1;
	uint8_t             *buf = calloc(1, len);
	Sluice__V1__Request *r   = NULL;

	(void) state;
	assert_non_null(buf);
	assert_int_equal(sl_request_decode(buf, len, &r), SLUICE_ETOOBIG);
	assert_null(r);
	free(buf);
}

static void
test_codec_request_round_trip(void **state)
{
	Sluice__V1__Request    req;
	Sluice__V1__Header     hdr;
	Sluice__V1__GetRollout get;
	Sluice__V1__Request   *out;
	uint8_t               *buf;
	size_t                 len;

	(void) state;
	sluice__v1__request__init(&req);
	sluice__v1__header__init(&hdr);
	sluice__v1__get_rollout__init(&get);
	hdr.api_version  = SL_API_VERSION;
	hdr.request_id   = 7;
	get.name         = (char *) (uintptr_t) "orders.read_new";
	req.header       = &hdr;
	req.min_revision = 9;
	req.op_case      = SLUICE__V1__REQUEST__OP_GET;
	req.get          = &get;
	assert_int_equal(sl_pack(&req.base, &buf, &len), SLUICE_OK);
	assert_int_equal(sl_request_decode(buf, len, &out), SLUICE_OK);
	assert_int_equal(out->op_case, SLUICE__V1__REQUEST__OP_GET);
	assert_string_equal(out->get->name, "orders.read_new");
	assert_int_equal(out->header->request_id, 7);
	assert_int_equal(out->min_revision, 9);
	sluice__v1__request__free_unpacked(out, NULL);
	free(buf);
}

static void
test_codec_copy_and_equal(void **state)
{
	Sluice__V1__NodeInfo  ni;
	Sluice__V1__NodeInfo *cp;
	ProtobufCMessage     *m;

	(void) state;
	sluice__v1__node_info__init(&ni);
	ni.node_id = 2;
	ni.api_url = (char *) (uintptr_t) "tcp://flagd-0:7400";
	assert_int_equal(sl_message_copy(&ni.base, &m), SLUICE_OK);
	cp = (Sluice__V1__NodeInfo *) m;
	assert_ptr_not_equal(cp->api_url, ni.api_url);
	assert_string_equal(cp->api_url, ni.api_url);
	assert_true(sl_message_equal(&ni.base, m));
	cp->node_id = 3;
	assert_false(sl_message_equal(&ni.base, m));
	protobuf_c_message_free_unpacked(m, NULL);
}

static void
test_codec_equal_different_types_is_false(void **state)
{
	Sluice__V1__Pause  p;
	Sluice__V1__Resume r;

	(void) state;
	sluice__v1__pause__init(&p);
	sluice__v1__resume__init(&r);
	p.rollout = (char *) (uintptr_t) "x";
	r.rollout = (char *) (uintptr_t) "x";
	assert_false(sl_message_equal(&p.base, &r.base));
	assert_true(sl_message_equal(NULL, NULL));
	assert_false(sl_message_equal(&p.base, NULL));
}

static void
test_codec_errors_have_names_and_messages(void **state)
{
	(void) state;
	assert_string_equal(sluice_errname(SLUICE_OK), "OK");
	assert_string_equal(sluice_errname(SLUICE_EPERM), "EPERM");
	assert_string_equal(sluice_errname(SLUICE_ECLOSED), "ECLOSED");
	assert_string_equal(sluice_errname(999), "EUNKNOWN");
	assert_string_equal(sluice_errname(-1), "EUNKNOWN");
	assert_string_equal(
	    sluice_strerror(SLUICE_ETOOBIG), "message too large");
	assert_string_equal(sluice_strerror(12345), "unknown error");
	assert_int_equal(SLUICE_ECLOSED, 23);
	assert_int_equal(sluice_buckets(), 10000);
	assert_int_equal(sluice_sig_bytes(), 64);
	assert_int_equal(sluice_publickey_bytes(), 32);
	assert_int_equal(sluice_secretkey_bytes(), 64);
}

static void
test_codec_log_level_parse(void **state)
{
	int lvl = -1;

	(void) state;
	assert_int_equal(sl_log_parse_level("debug", &lvl), SLUICE_OK);
	assert_int_equal(lvl, SL_LOG_DEBUG);
	assert_int_equal(sl_log_parse_level("ERR", &lvl), SLUICE_OK);
	assert_int_equal(lvl, SL_LOG_ERR);
	assert_int_equal(sl_log_parse_level("6", &lvl), SLUICE_OK);
	assert_int_equal(lvl, SL_LOG_INFO);
	assert_int_equal(sl_log_parse_level("8", &lvl), SLUICE_EINVAL);
	assert_int_equal(sl_log_parse_level("loud", &lvl), SLUICE_EINVAL);
	assert_int_equal(sl_log_parse_level("", &lvl), SLUICE_EINVAL);
	assert_int_equal(lvl, SL_LOG_INFO);
}

static void
test_codec_clocks_advance(void **state)
{
	uint64_t a;
	uint64_t b;

	(void) state;
	assert_true(sl_now_ms() > 1600000000000u);
	a = sl_mono_ns();
	b = sl_mono_ns();
	assert_true(b >= a);
	assert_int_equal(sl_crypto_init(), SLUICE_OK);
	assert_int_equal(sl_crypto_init(), SLUICE_OK);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_codec_round_trip),
		cmocka_unit_test(test_codec_empty_message_packs_to_nonnull),
		cmocka_unit_test(test_codec_over_limit_is_etoobig),
		cmocka_unit_test(test_codec_limit_checked_before_parsing),
		cmocka_unit_test(test_codec_garbage_is_eproto),
		cmocka_unit_test(
		    test_codec_request_decode_enforces_request_limit),
		cmocka_unit_test(test_codec_request_round_trip),
		cmocka_unit_test(test_codec_copy_and_equal),
		cmocka_unit_test(test_codec_equal_different_types_is_false),
		cmocka_unit_test(test_codec_errors_have_names_and_messages),
		cmocka_unit_test(test_codec_log_level_parse),
		cmocka_unit_test(test_codec_clocks_advance),
	};

	return (cmocka_run_group_tests_name("proto/codec", tests, NULL, NULL));
}
