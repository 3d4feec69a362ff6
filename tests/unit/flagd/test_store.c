/* SPDX-License-Identifier: MIT */
/*
 * test_store.c — unit tests of flagd/store.c: rollouts, history at a
 * revision, the flag index, keys, nonces and their purge, the audit chain,
 * and persistence across close and open, each against a real LMDB
 * environment in a temporary directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "audit.h"
#include "fixture.h"

static int
setup(void **state)
{
	*state = fx_new();
	return (0);
}

static int
teardown(void **state)
{
	fx_free(*state);
	return (0);
}

static flagd_txn *
begin(fixture *fx, bool write)
{
	flagd_txn *t;

	assert_int_equal(flagd_store_begin(fx->store, write, &t), SLUICE_OK);
	return (t);
}

// Writes spec as a rollout at revision rev (stage as given), in one txn.
static void
put_at(
    fixture *fx, Sluice__V1__RolloutSpec *spec, uint64_t rev, uint32_t stage)
{
	Sluice__V1__Rollout r;
	flagd_txn          *t = begin(fx, true);

	sluice__v1__rollout__init(&r);
	r.spec     = spec;
	r.stage    = stage;
	r.revision = rev;
	assert_int_equal(flagd_txn_set_revision(t, rev), SLUICE_OK);
	assert_int_equal(flagd_txn_put_rollout(t, &r), SLUICE_OK);
	assert_int_equal(flagd_txn_commit(t), SLUICE_OK);
}

static void
append_audit(flagd_txn *t, uint64_t rev, const char *rollout)
{
	Sluice__V1__AuditEntry e;

	sluice__v1__audit_entry__init(&e);
	e.revision = rev;
	e.time_ms  = 1000 + rev;
	e.actor    = (char *) (uintptr_t) "root";
	e.action   = (char *) (uintptr_t) "apply";
	e.rollout  = (char *) (uintptr_t) rollout;
	assert_int_equal(flagd_txn_set_revision(t, rev), SLUICE_OK);
	assert_int_equal(flagd_txn_audit_append(t, &e), SLUICE_OK);
	assert_non_null(e.hash.data);
	assert_int_equal(e.hash.len, SL_HASH_BYTES);
}

static void
test_store_empty_store_has_revision_zero(void **state)
{
	fixture              *fx = *state;
	flagd_txn            *t  = begin(fx, false);
	Sluice__V1__Rollout  *r;
	Sluice__V1__Rollout **rs;
	size_t                n = 99;

	assert_int_equal(flagd_txn_revision(t), 0);
	assert_int_equal(
	    flagd_txn_get_rollout(t, "orders_v2", &r), SLUICE_ENOENT);
	assert_int_equal(flagd_txn_get_rollout(t, "", &r), SLUICE_ENOENT);
	assert_int_equal(flagd_txn_list_rollouts(t, &rs, &n), SLUICE_OK);
	assert_int_equal(n, 0);
	flagd_rollouts_free(rs, n);
	flagd_txn_abort(t);
	assert_int_equal(flagd_store_revision(fx->store), 0);
}

static void
test_store_put_get_list_rollouts(void **state)
{
	fixture                 *fx = *state;
	Sluice__V1__RolloutSpec *a  = fx_spec_std("b.orders", "orders");
	Sluice__V1__RolloutSpec *b  = fx_spec_std("a.users", "users");
	Sluice__V1__Rollout     *r;
	Sluice__V1__Rollout    **rs;
	size_t                   n;
	flagd_txn               *t;

	put_at(fx, a, 1, 2);
	put_at(fx, b, 2, 0);
	t = begin(fx, false);
	assert_int_equal(flagd_txn_revision(t), 2);
	assert_int_equal(flagd_txn_get_rollout(t, "b.orders", &r), SLUICE_OK);
	assert_true(sl_message_equal(&r->spec->base, &a->base));
	assert_int_equal(r->stage, 2);
	assert_int_equal(r->revision, 1);
	sluice__v1__rollout__free_unpacked(r, NULL);
	assert_int_equal(flagd_txn_list_rollouts(t, &rs, &n), SLUICE_OK);
	assert_int_equal(n, 2);
	assert_string_equal(rs[0]->spec->name, "a.users"); // name order
	assert_string_equal(rs[1]->spec->name, "b.orders");
	flagd_rollouts_free(rs, n);
	flagd_txn_abort(t);
	sluice__v1__rollout_spec__free_unpacked(a, NULL);
	sluice__v1__rollout_spec__free_unpacked(b, NULL);
}

static void
test_store_abort_discards_writes(void **state)
{
	fixture                 *fx   = *state;
	Sluice__V1__RolloutSpec *spec = fx_spec_std("orders", "orders");
	Sluice__V1__Rollout      r;
	Sluice__V1__Rollout     *got;
	flagd_txn               *t = begin(fx, true);

	sluice__v1__rollout__init(&r);
	r.spec     = spec;
	r.revision = 1;
	assert_int_equal(flagd_txn_set_revision(t, 1), SLUICE_OK);
	assert_int_equal(flagd_txn_put_rollout(t, &r), SLUICE_OK);
	assert_int_equal(flagd_txn_revision(t), 1); // sees its own write
	flagd_txn_abort(t);
	t = begin(fx, false);
	assert_int_equal(flagd_txn_revision(t), 0);
	assert_int_equal(
	    flagd_txn_get_rollout(t, "orders", &got), SLUICE_ENOENT);
	flagd_txn_abort(t);
	sluice__v1__rollout_spec__free_unpacked(spec, NULL);
}

static void
test_store_rollout_at_finds_latest_at_or_before(void **state)
{
	fixture                 *fx  = *state;
	Sluice__V1__RolloutSpec *ab  = fx_spec_std("ab", "ab");
	Sluice__V1__RolloutSpec *a   = fx_spec_std("a", "a");
	Sluice__V1__RolloutSpec *abc = fx_spec_std("abc", "abc");
	Sluice__V1__Rollout     *r;
	flagd_txn               *t;
	static const struct {
		uint64_t at;
		int      rv;
		uint64_t rev;
	} cases[] = {
		{ 0, SLUICE_ENOENT, 0 },
		{ 2, SLUICE_ENOENT, 0 },
		{ 3, SLUICE_OK, 3 },
		{ 4, SLUICE_OK, 3 },
		{ 6, SLUICE_OK, 5 },
		{ 7, SLUICE_OK, 7 },
		{ 300, SLUICE_OK, 7 },
		{ UINT64_MAX, SLUICE_OK, 7 },
	};

	// Neighbours in key order on both sides, so a lookup that strays
	// from its own name would show.
	put_at(fx, a, 1, 0);
	put_at(fx, abc, 2, 0);
	put_at(fx, ab, 3, 0);
	put_at(fx, ab, 5, 1);
	put_at(fx, ab, 7, 2);
	put_at(fx, abc, 8, 1);
	t = begin(fx, false);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rv = flagd_txn_rollout_at(t, "ab", cases[i].at, &r);

		assert_int_equal(rv, cases[i].rv);
		if (rv == SLUICE_OK) {
			assert_int_equal(r->revision, cases[i].rev);
			assert_string_equal(r->spec->name, "ab");
			sluice__v1__rollout__free_unpacked(r, NULL);
		}
	}
	assert_int_equal(flagd_txn_rollout_at(t, "a", 9, &r), SLUICE_OK);
	assert_int_equal(r->revision, 1);
	sluice__v1__rollout__free_unpacked(r, NULL);
	assert_int_equal(flagd_txn_rollout_at(t, "abc", 1, &r), SLUICE_ENOENT);
	assert_int_equal(flagd_txn_rollout_at(t, "zz", 9, &r), SLUICE_ENOENT);
	assert_int_equal(flagd_txn_rollout_at(t, "0", 9, &r), SLUICE_ENOENT);
	flagd_txn_abort(t);
	sluice__v1__rollout_spec__free_unpacked(a, NULL);
	sluice__v1__rollout_spec__free_unpacked(ab, NULL);
	sluice__v1__rollout_spec__free_unpacked(abc, NULL);
}

static void
test_store_flag_index_follows_rollout(void **state)
{
	fixture                 *fx = *state;
	Sluice__V1__RolloutSpec *v1 = fx_spec("orders", "off,on");
	Sluice__V1__RolloutSpec *v2 = fx_spec("orders", "off,on");
	char                     owner[64];
	flagd_txn               *t;

	fx_spec_flag(v1, "x", "false,true");
	fx_spec_flag(v1, "y", "false,true");
	fx_spec_flag(v2, "y", "false,true");
	fx_spec_flag(v2, "z", "0,1");
	put_at(fx, v1, 1, 0);
	t = begin(fx, false);
	assert_int_equal(
	    flagd_txn_flag_owner(t, "x", owner, sizeof(owner)), SLUICE_OK);
	assert_string_equal(owner, "orders");
	assert_int_equal(
	    flagd_txn_flag_owner(t, "z", owner, sizeof(owner)), SLUICE_ENOENT);
	// A buffer too small for the owner is refused, not overrun.
	assert_int_equal(
	    flagd_txn_flag_owner(t, "x", owner, 6), SLUICE_EINVAL);
	flagd_txn_abort(t);
	put_at(fx, v2, 2, 0);
	t = begin(fx, false);
	assert_int_equal(
	    flagd_txn_flag_owner(t, "x", owner, sizeof(owner)), SLUICE_ENOENT);
	assert_int_equal(
	    flagd_txn_flag_owner(t, "y", owner, sizeof(owner)), SLUICE_OK);
	assert_int_equal(
	    flagd_txn_flag_owner(t, "z", owner, sizeof(owner)), SLUICE_OK);
	assert_string_equal(owner, "orders");
	flagd_txn_abort(t);
	sluice__v1__rollout_spec__free_unpacked(v1, NULL);
	sluice__v1__rollout_spec__free_unpacked(v2, NULL);
}

static void
test_store_keys_put_get_list_delete(void **state)
{
	fixture         *fx = *state;
	Sluice__V1__Key *a =
	    fx_key("root", SLUICE__V1__ROLE__ROLE_ADMIN, "", 1);
	Sluice__V1__Key *b =
	    fx_key("ops", SLUICE__V1__ROLE__ROLE_OPERATOR, "orders*", 2);
	Sluice__V1__Key  *got;
	Sluice__V1__Key **ks;
	size_t            n;
	flagd_txn        *t = begin(fx, true);

	assert_int_equal(flagd_txn_put_key(t, a), SLUICE_OK);
	assert_int_equal(flagd_txn_put_key(t, b), SLUICE_OK);
	assert_int_equal(flagd_txn_commit(t), SLUICE_OK);
	t = begin(fx, true);
	assert_int_equal(flagd_txn_get_key(t, "ops", &got), SLUICE_OK);
	assert_true(sl_message_equal(&got->base, &b->base));
	sluice__v1__key__free_unpacked(got, NULL);
	assert_int_equal(flagd_txn_list_keys(t, &ks, &n), SLUICE_OK);
	assert_int_equal(n, 2);
	assert_string_equal(ks[0]->id, "ops");
	assert_string_equal(ks[1]->id, "root");
	flagd_keys_free(ks, n);
	assert_int_equal(flagd_txn_del_key(t, "ops"), SLUICE_OK);
	assert_int_equal(flagd_txn_del_key(t, "ops"), SLUICE_ENOENT);
	assert_int_equal(flagd_txn_get_key(t, "ops", &got), SLUICE_ENOENT);
	assert_int_equal(flagd_txn_commit(t), SLUICE_OK);
	sluice__v1__key__free_unpacked(a, NULL);
	sluice__v1__key__free_unpacked(b, NULL);
}

static void
test_store_nonce_replay_refused_until_expiry(void **state)
{
	fixture      *fx        = *state;
	const uint8_t nonce[16] = "0123456789abcdef";
	const uint8_t other[16] = "fedcba9876543210";
	flagd_txn    *t         = begin(fx, true);

	assert_int_equal(
	    flagd_txn_nonce_use(t, nonce, 16, 2000, 1000), SLUICE_OK);
	assert_int_equal(
	    flagd_txn_nonce_use(t, nonce, 16, 2000, 1000), SLUICE_EREPLAY);
	assert_int_equal(
	    flagd_txn_nonce_use(t, other, 16, 2000, 1000), SLUICE_OK);
	assert_int_equal(
	    flagd_txn_nonce_use(t, nonce, 0, 2000, 1000), SLUICE_EINVAL);
	assert_int_equal(flagd_txn_commit(t), SLUICE_OK);
	fx_reopen(fx); // durable
	t = begin(fx, true);
	assert_int_equal(
	    flagd_txn_nonce_use(t, nonce, 16, 2500, 1999), SLUICE_EREPLAY);
	// At its expiry the nonce is forgotten and may be recorded again.
	assert_int_equal(
	    flagd_txn_nonce_use(t, nonce, 16, 4000, 2000), SLUICE_OK);
	assert_int_equal(
	    flagd_txn_nonce_use(t, nonce, 16, 4000, 3000), SLUICE_EREPLAY);
	assert_int_equal(flagd_txn_commit(t), SLUICE_OK);
}

static void
test_store_nonce_purge_is_incremental(void **state)
{
	fixture          *fx = *state;
	flagd_store_stats st;
	uint8_t           nonce[16];
	flagd_txn        *t = begin(fx, true);

	memset(nonce, 0, sizeof(nonce));
	for (uint32_t i = 0; i < 100; i++) {
		memcpy(nonce, &i, sizeof(i));
		assert_int_equal(
		    flagd_txn_nonce_use(t, nonce, 16, 10 + (i % 7), 1),
		    SLUICE_OK);
	}
	assert_int_equal(flagd_txn_stats(t, &st), SLUICE_OK);
	assert_int_equal(st.nonces, 100);
	assert_int_equal(flagd_txn_commit(t), SLUICE_OK);

	// Each use purges a bounded batch of expired nonces, oldest first.
	t = begin(fx, true);
	memset(nonce, 0xff, sizeof(nonce));
	assert_int_equal(
	    flagd_txn_nonce_use(t, nonce, 16, 100, 50), SLUICE_OK);
	assert_int_equal(flagd_txn_stats(t, &st), SLUICE_OK);
	assert_true(st.nonces > 1 && st.nonces < 100);
	for (int i = 0; i < 10; i++) {
		nonce[0] = (uint8_t) i;
		assert_int_equal(
		    flagd_txn_nonce_use(t, nonce, 16, 100, 50), SLUICE_OK);
	}
	assert_int_equal(flagd_txn_stats(t, &st), SLUICE_OK);
	assert_int_equal(st.nonces, 11); // only the unexpired ones remain
	assert_int_equal(flagd_txn_commit(t), SLUICE_OK);
}

static void
test_store_audit_chain_verifies(void **state)
{
	fixture                 *fx = *state;
	Sluice__V1__AuditEntry **es;
	Sluice__V1__AuditEntry  *e;
	Sluice__V1__AuditEntry   bad;
	sl_audit_verifier        v;
	const char              *why = NULL;
	size_t                   n;
	bool                     more;
	flagd_txn               *t = begin(fx, true);

	append_audit(t, 1, "orders");
	append_audit(t, 2, "users");
	assert_int_equal(flagd_txn_commit(t), SLUICE_OK);
	t = begin(fx, true);
	append_audit(t, 3, "orders");
	append_audit(t, 4, "orders");
	// The entry must carry the txn's revision.
	sluice__v1__audit_entry__init(&bad);
	bad.revision = 9;
	assert_int_equal(flagd_txn_audit_append(t, &bad), SLUICE_EINVAL);
	assert_int_equal(flagd_txn_commit(t), SLUICE_OK);

	t = begin(fx, false);
	assert_int_equal(
	    flagd_txn_audit_list(t, NULL, 0, 0, &es, &n, &more), SLUICE_OK);
	assert_int_equal(n, 4);
	assert_false(more);
	sl_audit_verifier_init(&v);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(
		    sl_audit_verifier_next(&v, es[i], &why), SLUICE_OK);
	}
	assert_int_equal(v.count, 4);
	// Editing an entry breaks the chain.
	sl_audit_verifier_init(&v);
	assert_int_equal(sl_audit_verifier_next(&v, es[0], &why), SLUICE_OK);
	es[1]->time_ms++;
	assert_int_equal(
	    sl_audit_verifier_next(&v, es[1], &why), SLUICE_ECORRUPT);
	flagd_audit_free(es, n);

	assert_int_equal(
	    flagd_txn_audit_list(t, "orders", 0, 2, &es, &n, &more),
	    SLUICE_OK);
	assert_int_equal(n, 2);
	assert_true(more);
	assert_int_equal(es[0]->revision, 1);
	assert_int_equal(es[1]->revision, 3);
	flagd_audit_free(es, n);
	assert_int_equal(
	    flagd_txn_audit_list(t, "orders", 3, 2, &es, &n, &more),
	    SLUICE_OK);
	assert_int_equal(n, 1);
	assert_false(more);
	assert_int_equal(es[0]->revision, 4);
	flagd_audit_free(es, n);
	assert_int_equal(flagd_txn_get_audit(t, 2, &e), SLUICE_OK);
	assert_string_equal(e->rollout, "users");
	sluice__v1__audit_entry__free_unpacked(e, NULL);
	assert_int_equal(flagd_txn_get_audit(t, 5, &e), SLUICE_ENOENT);
	flagd_txn_abort(t);
}

static void
test_store_reopen_persists_everything(void **state)
{
	fixture                 *fx   = *state;
	Sluice__V1__RolloutSpec *spec = fx_spec_std("orders", "orders");
	Sluice__V1__Key         *k =
	    fx_key("root", SLUICE__V1__ROLE__ROLE_ADMIN, "", 7);
	Sluice__V1__AuditEntry **es;
	Sluice__V1__Rollout     *r;
	Sluice__V1__Key         *got;
	sl_audit_verifier        v;
	const char              *why;
	char                     owner[64];
	size_t                   n;
	bool                     more;
	flagd_txn               *t;

	put_at(fx, spec, 1, 3);
	t = begin(fx, true);
	assert_int_equal(flagd_txn_put_key(t, k), SLUICE_OK);
	append_audit(t, 1, "orders");
	assert_int_equal(flagd_txn_set_applied(t, 42), SLUICE_OK);
	assert_int_equal(flagd_txn_commit(t), SLUICE_OK);
	fx_reopen(fx);
	t = begin(fx, true);
	append_audit(t, 2, "orders"); // chains onto the persisted head
	assert_int_equal(flagd_txn_commit(t), SLUICE_OK);
	fx_reopen(fx);

	assert_int_equal(flagd_store_revision(fx->store), 2);
	t = begin(fx, false);
	assert_int_equal(flagd_txn_applied(t), 42);
	assert_int_equal(flagd_txn_get_rollout(t, "orders", &r), SLUICE_OK);
	assert_int_equal(r->stage, 3);
	assert_true(sl_message_equal(&r->spec->base, &spec->base));
	sluice__v1__rollout__free_unpacked(r, NULL);
	assert_int_equal(flagd_txn_rollout_at(t, "orders", 1, &r), SLUICE_OK);
	sluice__v1__rollout__free_unpacked(r, NULL);
	assert_int_equal(
	    flagd_txn_flag_owner(t, "orders.write", owner, sizeof(owner)),
	    SLUICE_OK);
	assert_int_equal(flagd_txn_get_key(t, "root", &got), SLUICE_OK);
	assert_true(sl_message_equal(&got->base, &k->base));
	sluice__v1__key__free_unpacked(got, NULL);
	assert_int_equal(
	    flagd_txn_audit_list(t, "", 0, 0, &es, &n, &more), SLUICE_OK);
	assert_int_equal(n, 2);
	sl_audit_verifier_init(&v);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(
		    sl_audit_verifier_next(&v, es[i], &why), SLUICE_OK);
	}
	flagd_audit_free(es, n);
	flagd_txn_abort(t);
	sluice__v1__rollout_spec__free_unpacked(spec, NULL);
	sluice__v1__key__free_unpacked(k, NULL);
}

static void
test_store_readers_run_beside_a_writer(void **state)
{
	fixture                 *fx   = *state;
	Sluice__V1__RolloutSpec *spec = fx_spec_std("orders", "orders");
	flagd_txn               *r1   = begin(fx, false);
	flagd_txn               *r2   = begin(fx, false);
	flagd_txn               *r3;

	// A write committed while readers are open is invisible to them
	// and visible to readers that start afterwards.
	put_at(fx, spec, 1, 0);
	r3 = begin(fx, false);
	assert_int_equal(flagd_txn_revision(r1), 0);
	assert_int_equal(flagd_txn_revision(r2), 0);
	assert_int_equal(flagd_txn_revision(r3), 1);
	flagd_txn_abort(r2);
	flagd_txn_abort(r1);
	flagd_txn_abort(r3);
	sluice__v1__rollout_spec__free_unpacked(spec, NULL);
}

static void
test_store_open_missing_dir_fails(void **state)
{
	flagd_store *s = NULL;

	(void) state;
	assert_int_not_equal(
	    flagd_store_open(&s, "/nonexistent/sluice/dir", NULL), SLUICE_OK);
	assert_null(s);
	assert_int_equal(flagd_store_open(&s, "", NULL), SLUICE_EINVAL);
	flagd_store_close(NULL);
	flagd_txn_abort(NULL);
}

static void
test_store_map_full_is_efull(void **state)
{
	fixture         *fx = *state;
	flagd_store     *s;
	flagd_store_opts o = { 64u * 1024u, true, false };
	char             dir[128];
	uint8_t          nonce[16];
	flagd_txn       *t;
	int              rv = SLUICE_OK;

	assert_true(snprintf(dir, sizeof(dir), "%s/small", fx->dir) <
	    (int) sizeof(dir));
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(flagd_store_open(&s, dir, &o), SLUICE_OK);
	assert_int_equal(flagd_store_begin(s, true, &t), SLUICE_OK);
	memset(nonce, 0, sizeof(nonce));
	for (uint32_t i = 0; i < 100000 && rv == SLUICE_OK; i++) {
		memcpy(nonce, &i, sizeof(i));
		rv = flagd_txn_nonce_use(t, nonce, 16, 1000, 1);
	}
	assert_int_equal(rv, SLUICE_EFULL);
	flagd_txn_abort(t);
	flagd_store_close(s); // fx_free removes the directory
}

// A derived store (its durable record is the raft log) marks itself
// "open" with the machine's boot id while in use and "clean" once synced
// at close; it is discarded at open only when it was left open under
// another boot, i.e. after a machine crash that may have torn it.
static void
derived_state(const char *dir, char *buf, size_t len)
{
	char  path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/" STORE_STATE_FILE, dir);
	buf[0] = '\0';
	if ((f = fopen(path, "r")) != NULL) {
		if (fgets(buf, (int) len, f) == NULL) {
			buf[0] = '\0';
		}
		fclose(f);
	}
}

static void
derived_put_revision(flagd_store *s, uint64_t rev)
{
	flagd_txn *t;

	assert_int_equal(flagd_store_begin(s, true, &t), SLUICE_OK);
	assert_int_equal(flagd_txn_set_revision(t, rev), SLUICE_OK);
	assert_int_equal(flagd_txn_commit(t), SLUICE_OK);
}

static void
derived_set_state(const char *dir, const char *line)
{
	char  path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/" STORE_STATE_FILE, dir);
	assert_non_null(f = fopen(path, "w"));
	fputs(line, f);
	fclose(f);
}

static void
test_store_derived_discarded_only_after_machine_crash(void **state)
{
	fixture         *fx = *state;
	flagd_store_opts o  = { 0, false, true };
	flagd_store     *s;
	char             dir[256];
	char             path[512];
	char             line[128];
	pid_t            pid;
	int              status;

	assert_true(snprintf(dir, sizeof(dir), "%s/derived", fx->dir) <
	    (int) sizeof(dir));
	assert_int_equal(mkdir(dir, 0700), 0);

	// A process crash: a child opens a new store, commits and dies
	// without closing it. Nothing discarded; the marker says "open".
	if ((pid = fork()) == 0) {
		if (flagd_store_open(&s, dir, &o) != SLUICE_OK ||
		    flagd_store_rebuilt(s)) {
			_exit(1);
		}
		derived_put_revision(s, 7);
		_exit(0);
	}
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	derived_state(dir, line, sizeof(line));
	assert_int_equal(strncmp(line, "open ", 5), 0);

	// Reopened on the same boot: kept, with the child's commit.
	assert_int_equal(flagd_store_open(&s, dir, &o), SLUICE_OK);
	assert_false(flagd_store_rebuilt(s));
	assert_int_equal(flagd_store_revision(s), 7);
	assert_int_equal(flagd_store_sync(s), SLUICE_OK);

	// Closed: synced and marked clean; then kept whatever the boot.
	flagd_store_close(s);
	derived_state(dir, line, sizeof(line));
	assert_int_equal(strncmp(line, "clean ", 6), 0);
	derived_set_state(dir, "clean 00000000-0000-0000-0000-000000000000\n");
	assert_int_equal(flagd_store_open(&s, dir, &o), SLUICE_OK);
	assert_false(flagd_store_rebuilt(s));
	assert_int_equal(flagd_store_revision(s), 7);
	flagd_store_close(s);

	// Left open under another boot (a machine crash): discarded.
	derived_set_state(dir, "open 00000000-0000-0000-0000-000000000000\n");
	assert_int_equal(flagd_store_open(&s, dir, &o), SLUICE_OK);
	assert_true(flagd_store_rebuilt(s));
	assert_int_equal(flagd_store_revision(s), 0);
	derived_put_revision(s, 3);
	flagd_store_close(s);

	// No marker beside an existing store (an older flagd's, or the
	// marker lost): not trusted either.
	snprintf(path, sizeof(path), "%s/" STORE_STATE_FILE, dir);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(flagd_store_open(&s, dir, &o), SLUICE_OK);
	assert_true(flagd_store_rebuilt(s));
	assert_int_equal(flagd_store_revision(s), 0);
	flagd_store_close(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_store_empty_store_has_revision_zero),
		T(test_store_put_get_list_rollouts),
		T(test_store_abort_discards_writes),
		T(test_store_rollout_at_finds_latest_at_or_before),
		T(test_store_flag_index_follows_rollout),
		T(test_store_keys_put_get_list_delete),
		T(test_store_nonce_replay_refused_until_expiry),
		T(test_store_nonce_purge_is_incremental),
		T(test_store_audit_chain_verifies),
		T(test_store_reopen_persists_everything),
		T(test_store_readers_run_beside_a_writer),
		T(test_store_map_full_is_efull),
		T(test_store_derived_discarded_only_after_machine_crash),
		cmocka_unit_test(test_store_open_missing_dir_fails),
#undef T
	};

	return (cmocka_run_group_tests_name("flagd/store", tests, NULL, NULL));
}
