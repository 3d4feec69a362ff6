// SPDX-License-Identifier: MIT
//
// Unit tests for proto/keys.c: an Ed25519 known-answer vector through the
// context prefix, tamper/wrong-key/wrong-context/truncation cases, secret
// key files, authorized-keys lines, roles and scopes.

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

#include <sodium.h>

#include "keys.h"

// Known answer: seed = bytes 0x00..0x1f, ctx = SL_CTX_COMMAND,
// msg = "promote orders.read_new". Ed25519 is deterministic, so the
// signature over "sluice-command-v1\0promote orders.read_new" is fixed.
// Computed once with a stand-alone program calling libsodium's
// crypto_sign_seed_keypair + crypto_sign_detached on the concatenation.
static const char *const kat_pk_hex =
    "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8";
static const char *const kat_sig_hex =
    "288f1e059e92b5280b5eee73f98af4dd331b4433e70fcc5079853125643febe4"
    "10fafc6f71ecaae21b4a3b71f1af7f4b215f90725bd5cb120d758472a255970b";
static const char kat_msg[] = "promote orders.read_new";

static void
hex2bin(const char *hex, uint8_t *out, size_t n)
{
	size_t len;

	assert_int_equal(
	    sodium_hex2bin(out, n, hex, strlen(hex), NULL, &len, NULL), 0);
	assert_int_equal(len, n);
}

static sl_secret *
seed_key(const char *id, uint8_t first)
{
	uint8_t    seed[32];
	sl_secret *k = NULL;

	for (size_t i = 0; i < sizeof(seed); i++) {
		seed[i] = (uint8_t) (first + i);
	}
	assert_int_equal(sl_secret_from_seed(&k, id, seed), SLUICE_OK);
	return (k);
}

static void
test_keys_sign_known_answer(void **state)
{
	sl_secret *k = seed_key("kat", 0);
	uint8_t    pk[32];
	uint8_t    want[64];
	uint8_t    sig[64];

	(void) state;
	hex2bin(kat_pk_hex, pk, sizeof(pk));
	hex2bin(kat_sig_hex, want, sizeof(want));
	assert_memory_equal(k->pk, pk, sizeof(pk));
	assert_int_equal(
	    sl_sign(k, SL_CTX_COMMAND, kat_msg, strlen(kat_msg), sig),
	    SLUICE_OK);
	assert_memory_equal(sig, want, sizeof(want));
	assert_int_equal(sl_verify(pk, sizeof(pk), SL_CTX_COMMAND, kat_msg,
	                     strlen(kat_msg), want, sizeof(want)),
	    SLUICE_OK);
	sl_secret_free(k);
}

static void
test_keys_verify_rejects_tampered_body(void **state)
{
	sl_secret *k     = seed_key("a", 1);
	char       msg[] = "promote orders.read_new";
	uint8_t    sig[64];

	(void) state;
	assert_int_equal(
	    sl_sign(k, SL_CTX_COMMAND, msg, strlen(msg), sig), SLUICE_OK);
	msg[0] = 'P';
	assert_int_equal(sl_verify(k->pk, 32, SL_CTX_COMMAND, msg, strlen(msg),
	                     sig, sizeof(sig)),
	    SLUICE_EBADSIG);
	msg[0] = 'p';
	sig[10] ^= 1;
	assert_int_equal(sl_verify(k->pk, 32, SL_CTX_COMMAND, msg, strlen(msg),
	                     sig, sizeof(sig)),
	    SLUICE_EBADSIG);
	sl_secret_free(k);
}

static void
test_keys_verify_rejects_wrong_key(void **state)
{
	sl_secret *a = seed_key("a", 1);
	sl_secret *b = seed_key("b", 2);
	uint8_t    sig[64];

	(void) state;
	assert_int_equal(sl_sign(a, SL_CTX_COMMAND, "x", 1, sig), SLUICE_OK);
	assert_int_equal(
	    sl_verify(b->pk, 32, SL_CTX_COMMAND, "x", 1, sig, sizeof(sig)),
	    SLUICE_EBADSIG);
	assert_int_equal(
	    sl_verify(a->pk, 32, SL_CTX_COMMAND, "x", 1, sig, sizeof(sig)),
	    SLUICE_OK);
	sl_secret_free(a);
	sl_secret_free(b);
}

static void
test_keys_verify_rejects_wrong_ctx(void **state)
{
	sl_secret *k = seed_key("a", 1);
	uint8_t    sig[64];

	(void) state;
	assert_int_equal(sl_sign(k, SL_CTX_REPORT, "body", 4, sig), SLUICE_OK);
	assert_int_equal(
	    sl_verify(k->pk, 32, SL_CTX_COMMAND, "body", 4, sig, sizeof(sig)),
	    SLUICE_EBADSIG);
	// The NUL separator keeps ("ab", "c") apart from ("a", "bc").
	assert_int_equal(sl_sign(k, "ab", "c", 1, sig), SLUICE_OK);
	assert_int_equal(sl_verify(k->pk, 32, "a", "bc", 2, sig, sizeof(sig)),
	    SLUICE_EBADSIG);
	sl_secret_free(k);
}

static void
test_keys_verify_rejects_truncated_sig_and_pk(void **state)
{
	sl_secret *k = seed_key("a", 1);
	uint8_t    sig[64];

	(void) state;
	assert_int_equal(sl_sign(k, SL_CTX_COMMAND, "m", 1, sig), SLUICE_OK);
	assert_int_equal(sl_verify(k->pk, 32, SL_CTX_COMMAND, "m", 1, sig, 63),
	    SLUICE_EBADSIG);
	assert_int_equal(sl_verify(k->pk, 32, SL_CTX_COMMAND, "m", 1, sig, 0),
	    SLUICE_EBADSIG);
	assert_int_equal(sl_verify(k->pk, 31, SL_CTX_COMMAND, "m", 1, sig, 64),
	    SLUICE_EBADSIG);
	assert_int_equal(sl_verify(NULL, 32, SL_CTX_COMMAND, "m", 1, sig, 64),
	    SLUICE_EBADSIG);
	// A truncated body fails too.
	assert_int_equal(sl_verify(k->pk, 32, SL_CTX_COMMAND, "m", 0, sig, 64),
	    SLUICE_EBADSIG);
	sl_secret_free(k);
}

static void
test_keys_secret_file_round_trip(void **state)
{
	char        dir[] = "/tmp/sluice-keys-XXXXXX";
	char        path[128];
	char        err[256] = "";
	sl_secret  *k        = NULL;
	sl_secret  *l        = NULL;
	struct stat st;
	uint8_t     sig[64];

	(void) state;
	assert_non_null(mkdtemp(dir));
	(void) snprintf(path, sizeof(path), "%s/ops.key", dir);
	assert_int_equal(sl_secret_generate(&k, "ops@example"), SLUICE_OK);
	assert_int_equal(sl_secret_save(k, path), SLUICE_OK);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	// A second save must not clobber the key.
	assert_int_equal(sl_secret_save(k, path), SLUICE_EEXIST);
	assert_int_equal(
	    sl_secret_load(&l, path, err, sizeof(err)), SLUICE_OK);
	assert_string_equal(l->id, "ops@example");
	assert_memory_equal(l->pk, k->pk, 32);
	assert_memory_equal(l->sk, k->sk, 64);
	assert_int_equal(sl_sign(l, SL_CTX_COMMAND, "x", 1, sig), SLUICE_OK);
	assert_int_equal(
	    sl_verify(k->pk, 32, SL_CTX_COMMAND, "x", 1, sig, 64), SLUICE_OK);
	sl_secret_free(k);
	sl_secret_free(l);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(
	    sl_secret_load(&l, path, err, sizeof(err)), SLUICE_ENOENT);
	assert_int_equal(rmdir(dir), 0);
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	// As a key file should be, so that loading it does not warn.
	assert_int_equal(chmod(path, 0600), 0);
}

static void
test_keys_secret_file_bad_format(void **state)
{
	char       dir[] = "/tmp/sluice-keys-XXXXXX";
	char       path[128];
	char       err[256];
	char       line[256];
	char       b64[128];
	sl_secret *k = NULL;
	sl_secret *l = NULL;

	(void) state;
	assert_non_null(mkdtemp(dir));
	(void) snprintf(path, sizeof(path), "%s/bad.key", dir);

	write_file(path, "hello world\n");
	err[0] = '\0';
	assert_int_equal(
	    sl_secret_load(&l, path, err, sizeof(err)), SLUICE_EINVAL);
	assert_true(err[0] != '\0');
	assert_int_equal(unlink(path), 0);

	write_file(path, "sluice-secret-key-v1 ops AAAA\n");
	assert_int_equal(
	    sl_secret_load(&l, path, err, sizeof(err)), SLUICE_EINVAL);
	assert_int_equal(unlink(path), 0);

	// Halves that do not belong together: seed of one key, public key
	// of another.
	k = seed_key("ops", 7);
	k->sk[40] ^= 0x55;
	sodium_bin2base64(
	    b64, sizeof(b64), k->sk, 64, sodium_base64_VARIANT_ORIGINAL);
	(void) snprintf(
	    line, sizeof(line), "sluice-secret-key-v1 ops %s\n", b64);
	write_file(path, line);
	assert_int_equal(
	    sl_secret_load(&l, path, err, sizeof(err)), SLUICE_EINVAL);
	assert_non_null(strstr(err, "inconsistent"));
	assert_null(l);
	assert_int_equal(unlink(path), 0);
	sl_secret_free(k);
	assert_int_equal(rmdir(dir), 0);
}

static void
test_keys_authkey_parse_good_lines(void **state)
{
	sl_secret      *k = seed_key("ops", 3);
	char            b64[64];
	char            line[256];
	char            out[256];
	char            err[128];
	Sluice__V1__Key key;

	(void) state;
	sl_pubkey_base64(k->pk, b64, sizeof(b64));
	assert_int_equal(strlen(b64), 44);

	(void) snprintf(line, sizeof(line), "operator ops %s orders.*\n", b64);
	assert_int_equal(
	    sl_authkey_parse(line, &key, err, sizeof(err)), SLUICE_OK);
	assert_int_equal(key.role, SLUICE__V1__ROLE__ROLE_OPERATOR);
	assert_string_equal(key.id, "ops");
	assert_string_equal(key.scope, "orders.*");
	assert_int_equal(key.public_key.len, 32);
	assert_memory_equal(key.public_key.data, k->pk, 32);
	assert_int_equal(sl_authkey_format(&key, out, sizeof(out)), SLUICE_OK);
	line[strlen(line) - 1] = '\0';
	assert_string_equal(out, line);
	sl_key_clear(&key);

	(void) snprintf(line, sizeof(line), "  admin\troot@ci %s  ", b64);
	assert_int_equal(
	    sl_authkey_parse(line, &key, err, sizeof(err)), SLUICE_OK);
	assert_int_equal(key.role, SLUICE__V1__ROLE__ROLE_ADMIN);
	assert_string_equal(key.scope, "");
	assert_int_equal(sl_authkey_format(&key, out, sizeof(out)), SLUICE_OK);
	(void) snprintf(line, sizeof(line), "admin root@ci %s", b64);
	assert_string_equal(out, line);
	sl_key_clear(&key);

	assert_int_equal(
	    sl_authkey_parse("", &key, err, sizeof(err)), SLUICE_ENOENT);
	assert_int_equal(
	    sl_authkey_parse("   \n", &key, err, sizeof(err)), SLUICE_ENOENT);
	assert_int_equal(
	    sl_authkey_parse("# admin x y", &key, err, sizeof(err)),
	    SLUICE_ENOENT);
	sl_secret_free(k);
}

static void
test_keys_authkey_parse_bad_lines(void **state)
{
	sl_secret      *k = seed_key("ops", 3);
	char            b64[64];
	char            line[256];
	char            err[128];
	Sluice__V1__Key key;
	// Each bad line is pre || base64(pk) || post.
	static const struct {
		const char *pre;
		const char *post;
	} bad[] = {
		{ "wizard ops ", "" },         // unknown role
		{ "none ops ", "" },           // no role is not a role
		{ "reader bad/id ", "" },      // bad id
		{ "reader ops ", " x extra" }, // too many fields
		{ "reader ", "" },             // too few fields
		{ "reader ops ", "AA" },       // not 32 bytes
		{ "reader ops !!", "" },       // not base64
	};

	(void) state;
	sl_pubkey_base64(k->pk, b64, sizeof(b64));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		(void) snprintf(line, sizeof(line), "%s%s%s", bad[i].pre, b64,
		    bad[i].post);
		err[0] = '\0';
		assert_int_equal(
		    sl_authkey_parse(line, &key, err, sizeof(err)),
		    SLUICE_EINVAL);
		assert_true(err[0] != '\0');
	}
	// A 32-byte base64 without the padding is not the canonical form.
	b64[43] = '\0';
	(void) snprintf(line, sizeof(line), "reader ops %s", b64);
	assert_int_equal(
	    sl_authkey_parse(line, &key, err, sizeof(err)), SLUICE_EINVAL);
	sl_secret_free(k);
}

static void
test_keys_authkeys_load_file(void **state)
{
	char             path[] = "/tmp/sluice-authkeys-XXXXXX";
	sl_secret       *a      = seed_key("a", 1);
	sl_secret       *b      = seed_key("b", 2);
	char             pa[64];
	char             pb[64];
	char             text[512];
	char             err[256];
	Sluice__V1__Key *keys = NULL;
	size_t           n    = 0;
	int              fd;

	(void) state;
	sl_pubkey_base64(a->pk, pa, sizeof(pa));
	sl_pubkey_base64(b->pk, pb, sizeof(pb));
	assert_true((fd = mkstemp(path)) >= 0);
	(void) close(fd);

	(void) snprintf(text, sizeof(text),
	    "# sluice keys\n\nadmin a %s\nreporter b %s etl.*\n", pa, pb);
	write_file(path, text);
	assert_int_equal(
	    sl_authkeys_load(path, &keys, &n, err, sizeof(err)), SLUICE_OK);
	assert_int_equal(n, 2);
	assert_string_equal(keys[1].id, "b");
	assert_int_equal(keys[1].role, SLUICE__V1__ROLE__ROLE_REPORTER);
	assert_string_equal(keys[1].scope, "etl.*");
	sl_keys_free(keys, n);

	(void) snprintf(
	    text, sizeof(text), "admin a %s\n\nreader a %s\n", pa, pb);
	write_file(path, text);
	assert_int_equal(sl_authkeys_load(path, &keys, &n, err, sizeof(err)),
	    SLUICE_EINVAL);
	assert_non_null(strstr(err, ":3:"));
	assert_non_null(strstr(err, "duplicate"));

	(void) snprintf(text, sizeof(text), "admin a %s\nroot b %s\n", pa, pb);
	write_file(path, text);
	assert_int_equal(sl_authkeys_load(path, &keys, &n, err, sizeof(err)),
	    SLUICE_EINVAL);
	assert_non_null(strstr(err, ":2:"));

	assert_int_equal(unlink(path), 0);
	assert_int_equal(sl_authkeys_load(path, &keys, &n, err, sizeof(err)),
	    SLUICE_ENOENT);
	sl_secret_free(a);
	sl_secret_free(b);
}

static void
test_keys_role_matrix(void **state)
{
	// Rows: admin, operator, reporter, reader, none. Columns follow
	// sl_action: read apply promote rollback pause resume revert
	// key_add key_remove report.
	static const Sluice__V1__Role roles[] = {
		SLUICE__V1__ROLE__ROLE_ADMIN,
		SLUICE__V1__ROLE__ROLE_OPERATOR,
		SLUICE__V1__ROLE__ROLE_REPORTER,
		SLUICE__V1__ROLE__ROLE_READER,
		SLUICE__V1__ROLE__ROLE_NONE,
	};
	static const bool want[5][10] = {
		{ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 },
		{ 1, 0, 1, 1, 1, 1, 1, 0, 0, 0 },
		{ 1, 0, 0, 0, 0, 0, 0, 0, 0, 1 },
		{ 1, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
		{ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
	};

	(void) state;
	for (size_t r = 0; r < 5; r++) {
		for (int a = SL_ACT_READ; a <= SL_ACT_REPORT; a++) {
			assert_int_equal(
			    sl_role_allows(roles[r], (sl_action) a),
			    want[r][a]);
		}
	}
	assert_false(sl_role_allows((Sluice__V1__Role) 99, SL_ACT_READ));
}

static void
test_keys_role_and_action_names(void **state)
{
	Sluice__V1__Role r;

	(void) state;
	assert_int_equal(sl_role_parse("operator", &r), SLUICE_OK);
	assert_int_equal(r, SLUICE__V1__ROLE__ROLE_OPERATOR);
	assert_string_equal(sl_role_name(r), "operator");
	assert_string_equal(
	    sl_role_name(SLUICE__V1__ROLE__ROLE_READER), "reader");
	assert_int_equal(sl_role_parse("Admin", &r), SLUICE_EINVAL);
	assert_string_equal(sl_action_name(SL_ACT_PROMOTE), "promote");
	assert_string_equal(sl_action_name(SL_ACT_KEY_ADD), "key_add");
}

static void
test_keys_scope_glob(void **state)
{
	Sluice__V1__Key k;

	(void) state;
	sluice__v1__key__init(&k);
	assert_true(sl_key_scope_covers(&k, "anything"));
	k.scope = (char *) (uintptr_t) "orders.*";
	assert_true(sl_key_scope_covers(&k, "orders.read_new"));
	assert_false(sl_key_scope_covers(&k, "billing.v2"));
	assert_false(sl_key_scope_covers(&k, ""));
	k.scope = (char *) (uintptr_t) "exact";
	assert_true(sl_key_scope_covers(&k, "exact"));
	assert_false(sl_key_scope_covers(&k, "exactly"));
}

static void
test_keys_id_syntax(void **state)
{
	char long_id[80];

	(void) state;
	assert_true(sl_key_id_valid("ci-bot@prod.example"));
	assert_true(sl_key_id_valid("A_1"));
	assert_false(sl_key_id_valid(""));
	assert_false(sl_key_id_valid("has space"));
	assert_false(sl_key_id_valid("sl/ash"));
	memset(long_id, 'a', 63);
	long_id[63] = '\0';
	assert_true(sl_key_id_valid(long_id));
	long_id[63] = 'a';
	long_id[64] = '\0';
	assert_false(sl_key_id_valid(long_id));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys_sign_known_answer),
		cmocka_unit_test(test_keys_verify_rejects_tampered_body),
		cmocka_unit_test(test_keys_verify_rejects_wrong_key),
		cmocka_unit_test(test_keys_verify_rejects_wrong_ctx),
		cmocka_unit_test(
		    test_keys_verify_rejects_truncated_sig_and_pk),
		cmocka_unit_test(test_keys_secret_file_round_trip),
		cmocka_unit_test(test_keys_secret_file_bad_format),
		cmocka_unit_test(test_keys_authkey_parse_good_lines),
		cmocka_unit_test(test_keys_authkey_parse_bad_lines),
		cmocka_unit_test(test_keys_authkeys_load_file),
		cmocka_unit_test(test_keys_role_matrix),
		cmocka_unit_test(test_keys_role_and_action_names),
		cmocka_unit_test(test_keys_scope_glob),
		cmocka_unit_test(test_keys_id_syntax),
	};

	return (cmocka_run_group_tests_name("proto/keys", tests, NULL, NULL));
}
