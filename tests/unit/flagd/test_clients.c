// SPDX-License-Identifier: MIT
//
// test_clients.c — flagd/clients.c: the in-memory registry of client
// acknowledgements. Unsigned and signed acks, the refusals (bad
// signature, unknown key, stale time, another key's client, malformed
// body), LRU eviction when full, expiry after the liveness window, and a
// client leaving.

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <time.h>

#include "clients.h"
#include "envelope.h"
#include "fixture.h"
#include "keys.h"

typedef struct cfx {
	fixture       *fx;
	flagd_metrics  m;
	flagd_clients *reg;
	sl_secret     *key;
	sl_secret     *stranger; // not in the store
} cfx;

static void
put_key(flagd_store *s, const sl_secret *k)
{
	Sluice__V1__Key key;
	flagd_txn      *t;

	sluice__v1__key__init(&key);
	key.id              = (char *) (uintptr_t) k->id;
	key.public_key.data = (uint8_t *) (uintptr_t) k->pk;
	key.public_key.len  = sizeof(k->pk);
	key.role            = SLUICE__V1__ROLE__ROLE_READER;
	assert_int_equal(flagd_store_begin(s, true, &t), SLUICE_OK);
	assert_int_equal(flagd_txn_put_key(t, &key), SLUICE_OK);
	assert_int_equal(flagd_txn_commit(t), SLUICE_OK);
}

static cfx *
cfx_new(size_t max, uint64_t liveness_ms)
{
	cfx    *c = fx_xcalloc(1, sizeof(*c));
	uint8_t seed[32];

	c->fx = fx_new();
	assert_int_equal(
	    flagd_clients_open(&c->reg, max, liveness_ms, &c->m), SLUICE_OK);
	memset(seed, 7, sizeof(seed));
	assert_int_equal(
	    sl_secret_from_seed(&c->key, "etl-job", seed), SLUICE_OK);
	memset(seed, 8, sizeof(seed));
	assert_int_equal(
	    sl_secret_from_seed(&c->stranger, "stranger", seed), SLUICE_OK);
	put_key(c->fx->store, c->key);
	return (c);
}

static void
cfx_free(cfx *c)
{
	flagd_clients_close(c->reg);
	sl_secret_free(c->key);
	sl_secret_free(c->stranger);
	fx_free(c->fx);
	free(c);
}

// Sends one ack as id at rev, signed with k (NULL: unsigned).
static int
ack(cfx *c, const sl_secret *k, const char *id, uint64_t rev, uint64_t ts,
    bool leaving, bool *verifiedp)
{
	Sluice__V1__ClientAck a;
	Sluice__V1__SignedAck sa;
	char                  err[256] = "";
	int                   rv;

	sluice__v1__client_ack__init(&a);
	sluice__v1__signed_ack__init(&sa);
	a.client_id        = (char *) (uintptr_t) id;
	a.host             = (char *) (uintptr_t) "etl-1\x1b[31m";
	a.pid              = 42;
	a.applied_revision = rev;
	a.time_ms          = ts;
	a.leaving          = leaving;
	assert_int_equal(sl_ack_seal(k, &a, &sa), SLUICE_OK);
	rv = flagd_clients_ack(c->reg, c->fx->store, 300000, &sa, sl_now_ms(),
	    verifiedp, err, sizeof(err));
	if (rv != SLUICE_OK) {
		assert_true(err[0] != '\0');
	}
	sl_signed_ack_clear(&sa);
	return (rv);
}

static const Sluice__V1__ClientInfo *
find(const Sluice__V1__ClientList *l, const char *id)
{
	for (size_t i = 0; i < l->n_clients; i++) {
		if (strcmp(l->clients[i]->client_id, id) == 0) {
			return (l->clients[i]);
		}
	}
	return (NULL);
}

static void
test_clients_unsigned_ack_listed_unverified(void **state)
{
	cfx                          *c = cfx_new(10, 60000);
	Sluice__V1__ClientList        l;
	const Sluice__V1__ClientInfo *ci;
	bool                          verified = true;

	(void) state;
	assert_int_equal(
	    ack(c, NULL, "aaaa", 3, sl_now_ms(), false, &verified), SLUICE_OK);
	assert_false(verified);
	assert_int_equal(
	    ack(c, NULL, "aaaa", 5, sl_now_ms(), false, NULL), SLUICE_OK);
	assert_int_equal(
	    ack(c, NULL, "bbbb", 4, sl_now_ms(), false, NULL), SLUICE_OK);
	sluice__v1__client_list__init(&l);
	assert_int_equal(
	    flagd_clients_list(c->reg, sl_now_ms(), &l), SLUICE_OK);
	assert_int_equal(l.n_clients, 2);
	assert_string_equal(l.clients[0]->client_id, "aaaa"); // sorted
	ci = l.clients[0];
	assert_int_equal(ci->applied_revision, 5);
	assert_int_equal(ci->pid, 42);
	assert_false(ci->verified);
	assert_string_equal(ci->key_id, "");
	// The escape sequence in the host name is defused.
	assert_string_equal(ci->host, "etl-1?[31m");
	assert_int_equal(l.liveness_ms, 60000);
	flagd_clients_list_free(&l);
	assert_int_equal(atomic_load(&c->m.acks), 3);
	assert_int_equal(atomic_load(&c->m.acks_unverified), 3);
	cfx_free(c);
}

static void
test_clients_signed_ack_verified_and_owned_by_its_key(void **state)
{
	cfx                   *c = cfx_new(10, 60000);
	Sluice__V1__ClientList l;
	bool                   verified = false;

	(void) state;
	assert_int_equal(
	    ack(c, c->key, "job-1", 7, sl_now_ms(), false, &verified),
	    SLUICE_OK);
	assert_true(verified);
	// Nobody else speaks for a client known by its key.
	assert_int_equal(
	    ack(c, NULL, "job-1", 1, sl_now_ms(), false, NULL), SLUICE_EPERM);
	assert_int_equal(
	    ack(c, NULL, "job-1", 1, sl_now_ms(), true, NULL), SLUICE_EPERM);
	sluice__v1__client_list__init(&l);
	assert_int_equal(
	    flagd_clients_list(c->reg, sl_now_ms(), &l), SLUICE_OK);
	assert_int_equal(l.n_clients, 1);
	assert_true(l.clients[0]->verified);
	assert_string_equal(l.clients[0]->key_id, "etl-job");
	assert_int_equal(l.clients[0]->applied_revision, 7);
	flagd_clients_list_free(&l);
	cfx_free(c);
}

static void
test_clients_refused_acks_change_nothing(void **state)
{
	cfx                  *c = cfx_new(10, 60000);
	Sluice__V1__ClientAck a;
	Sluice__V1__SignedAck sa;
	char                  err[256];

	(void) state;
	assert_int_equal(
	    ack(c, c->stranger, "x1", 1, sl_now_ms(), false, NULL),
	    SLUICE_EUNKNOWNKEY);
	assert_int_equal(
	    ack(c, c->key, "x2", 1, sl_now_ms() - 3600000, false, NULL),
	    SLUICE_EEXPIRED);
	// A signature by another key under our key's id.
	sluice__v1__client_ack__init(&a);
	sluice__v1__signed_ack__init(&sa);
	a.client_id = (char *) (uintptr_t) "x3";
	a.time_ms   = sl_now_ms();
	assert_int_equal(sl_ack_seal(c->stranger, &a, &sa), SLUICE_OK);
	free(sa.key_id);
	sa.key_id = fx_strdup("etl-job");
	assert_int_equal(flagd_clients_ack(c->reg, c->fx->store, 300000, &sa,
	                     sl_now_ms(), NULL, err, sizeof(err)),
	    SLUICE_EBADSIG);
	sl_signed_ack_clear(&sa);
	// A body that is not a ClientAck, and one without an id.
	sa.body.data = (uint8_t *) fx_strdup("\xff\xff\xff");
	sa.body.len  = 3;
	assert_int_equal(flagd_clients_ack(c->reg, c->fx->store, 300000, &sa,
	                     sl_now_ms(), NULL, err, sizeof(err)),
	    SLUICE_EPROTO);
	sl_signed_ack_clear(&sa);
	assert_int_equal(flagd_clients_ack(c->reg, c->fx->store, 300000, &sa,
	                     sl_now_ms(), NULL, err, sizeof(err)),
	    SLUICE_EPROTO);
	assert_int_equal(flagd_clients_count(c->reg, sl_now_ms()), 0);
	assert_int_equal(atomic_load(&c->m.acks), 0);
	cfx_free(c);
}

static void
test_clients_full_registry_evicts_least_recent(void **state)
{
	cfx                   *c = cfx_new(3, 60000);
	Sluice__V1__ClientList l;

	(void) state;
	assert_int_equal(ack(c, NULL, "c1", 1, 0, false, NULL), SLUICE_OK);
	assert_int_equal(ack(c, NULL, "c2", 1, 0, false, NULL), SLUICE_OK);
	assert_int_equal(ack(c, NULL, "c3", 1, 0, false, NULL), SLUICE_OK);
	// c1 acks again, so c2 is now the least recently heard from.
	assert_int_equal(ack(c, NULL, "c1", 2, 0, false, NULL), SLUICE_OK);
	assert_int_equal(ack(c, NULL, "c4", 1, 0, false, NULL), SLUICE_OK);
	sluice__v1__client_list__init(&l);
	assert_int_equal(
	    flagd_clients_list(c->reg, sl_now_ms(), &l), SLUICE_OK);
	assert_int_equal(l.n_clients, 3);
	assert_non_null(find(&l, "c1"));
	assert_null(find(&l, "c2"));
	assert_non_null(find(&l, "c3"));
	assert_non_null(find(&l, "c4"));
	flagd_clients_list_free(&l);
	assert_int_equal(atomic_load(&c->m.clients_evicted), 1);
	assert_int_equal(atomic_load(&c->m.clients_live), 3);
	cfx_free(c);
}

// Unsigned acks can be sent by anyone: they may not push verified
// clients out of a full registry.
static void
test_clients_full_registry_keeps_verified_clients(void **state)
{
	cfx                   *c = cfx_new(2, 60000);
	Sluice__V1__ClientList l;

	(void) state;
	assert_int_equal(
	    ack(c, c->key, "job-1", 1, sl_now_ms(), false, NULL), SLUICE_OK);
	assert_int_equal(ack(c, NULL, "spam-1", 1, 0, false, NULL), SLUICE_OK);
	// Full: the unverified entry goes, not the older verified one.
	assert_int_equal(ack(c, NULL, "spam-2", 1, 0, false, NULL), SLUICE_OK);
	assert_int_equal(
	    ack(c, c->key, "job-2", 1, sl_now_ms(), false, NULL), SLUICE_OK);
	// Now only verified clients remain: an unsigned ack is refused.
	assert_int_equal(
	    ack(c, NULL, "spam-3", 1, 0, false, NULL), SLUICE_EFULL);
	sluice__v1__client_list__init(&l);
	assert_int_equal(
	    flagd_clients_list(c->reg, sl_now_ms(), &l), SLUICE_OK);
	assert_int_equal(l.n_clients, 2);
	assert_non_null(find(&l, "job-1"));
	assert_non_null(find(&l, "job-2"));
	flagd_clients_list_free(&l);
	cfx_free(c);
}

static void
test_clients_expire_after_liveness_and_leave(void **state)
{
	cfx            *c  = cfx_new(10, 50);
	struct timespec ts = { 0, 150 * 1000000L };

	(void) state;
	assert_int_equal(ack(c, NULL, "old", 1, 0, false, NULL), SLUICE_OK);
	assert_int_equal(flagd_clients_count(c->reg, sl_now_ms()), 1);
	nanosleep(&ts, NULL);
	assert_int_equal(flagd_clients_count(c->reg, sl_now_ms()), 0);
	assert_int_equal(ack(c, NULL, "bye", 1, 0, false, NULL), SLUICE_OK);
	assert_int_equal(ack(c, NULL, "bye", 1, 0, true, NULL), SLUICE_OK);
	assert_int_equal(flagd_clients_count(c->reg, sl_now_ms()), 0);
	// Leaving twice, or unknown, is harmless.
	assert_int_equal(ack(c, NULL, "bye", 1, 0, true, NULL), SLUICE_OK);
	cfx_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clients_unsigned_ack_listed_unverified),
		cmocka_unit_test(
		    test_clients_signed_ack_verified_and_owned_by_its_key),
		cmocka_unit_test(test_clients_refused_acks_change_nothing),
		cmocka_unit_test(
		    test_clients_full_registry_evicts_least_recent),
		cmocka_unit_test(
		    test_clients_full_registry_keeps_verified_clients),
		cmocka_unit_test(test_clients_expire_after_liveness_and_leave),
	};

	if (sl_crypto_init() != SLUICE_OK) {
		return (1);
	}
	return (
	    cmocka_run_group_tests_name("flagd/clients", tests, NULL, NULL));
}
