/* SPDX-License-Identifier: MIT */
/*
 * test_machine.c — unit tests of flagd/machine.c, the state machine: the
 * stage walk, idempotent apply, live-change conflicts and --force,
 * promote/rollback targets and compare-and-set, prerequisites, pause,
 * the rollback window, exact revert, roles and scopes, replay protection,
 * flag ownership and key management. Every refused command is checked to
 * leave the store byte for byte as it was.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "audit.h"
#include "fixture.h"
#include "keys.h"
#include "rollout.h"

#define T0 1700000000000ull // a fixed "now" for the first command
#define TTL (10u * 60u * 1000u)

static const flagd_machine_opts OPTS = { TTL, 0 };

typedef struct mfix {
	fixture *fx;
	uint64_t now; // advanced by 1 ms per command unless set
} mfix;

static void
bootstrap(fixture *fx)
{
	Sluice__V1__Key *ks[] = {
		fx_key("root", SLUICE__V1__ROLE__ROLE_ADMIN, "", 1),
		fx_key("ops", SLUICE__V1__ROLE__ROLE_OPERATOR, "orders*", 2),
		fx_key("ops-all", SLUICE__V1__ROLE__ROLE_OPERATOR, "", 3),
		fx_key("rep", SLUICE__V1__ROLE__ROLE_REPORTER, "", 4),
		fx_key("rd", SLUICE__V1__ROLE__ROLE_READER, "", 5),
		fx_key("oadmin", SLUICE__V1__ROLE__ROLE_ADMIN, "orders*", 6),
	};
	Sluice__V1__Key keys[sizeof(ks) / sizeof(ks[0])];
	flagd_result    res;

	for (size_t i = 0; i < sizeof(ks) / sizeof(ks[0]); i++) {
		keys[i] = *ks[i];
	}
	assert_int_equal(flagd_machine_bootstrap_keys(fx->store, keys,
	                     sizeof(ks) / sizeof(ks[0]), T0, &res),
	    SLUICE_OK);
	assert_true(res.changed);
	assert_int_equal(res.revision, 1);
	flagd_result_fini(&res);
	for (size_t i = 0; i < sizeof(ks) / sizeof(ks[0]); i++) {
		sluice__v1__key__free_unpacked(ks[i], NULL);
	}
}

static int
setup(void **state)
{
	mfix *m = fx_xcalloc(1, sizeof(*m));

	m->fx  = fx_new();
	m->now = T0;
	bootstrap(m->fx);
	*state = m;
	return (0);
}

static int
teardown(void **state)
{
	mfix *m = *state;

	fx_free(m->fx);
	free(m);
	return (0);
}

// ------------------------------------------------------------ inspection

static uint64_t
revision(mfix *m)
{
	return (flagd_store_revision(m->fx->store));
}

static flagd_store_stats
stats(mfix *m)
{
	flagd_store_stats st;
	flagd_txn        *t;

	assert_int_equal(
	    flagd_store_begin(m->fx->store, false, &t), SLUICE_OK);
	assert_int_equal(flagd_txn_stats(t, &st), SLUICE_OK);
	flagd_txn_abort(t);
	return (st);
}

static Sluice__V1__Rollout *
get(mfix *m, const char *name)
{
	Sluice__V1__Rollout *r;
	flagd_txn           *t;

	assert_int_equal(
	    flagd_store_begin(m->fx->store, false, &t), SLUICE_OK);
	assert_int_equal(flagd_txn_get_rollout(t, name, &r), SLUICE_OK);
	flagd_txn_abort(t);
	return (r);
}

// Everything a command may change, packed: revision, rollouts, keys and
// entry counts (audit, history, nonces).
typedef struct image {
	uint8_t *buf;
	size_t   len;
} image;

static image
take_image(mfix *m)
{
	Sluice__V1__Snapshot  snap;
	Sluice__V1__KeyList   kl;
	Sluice__V1__Rollout **rs;
	flagd_store_stats     st;
	uint8_t              *a;
	uint8_t              *b;
	size_t                al;
	size_t                bl;
	image                 img;
	flagd_txn            *t;

	assert_int_equal(
	    flagd_store_begin(m->fx->store, false, &t), SLUICE_OK);
	sluice__v1__snapshot__init(&snap);
	sluice__v1__key_list__init(&kl);
	snap.revision = flagd_txn_revision(t);
	assert_int_equal(
	    flagd_txn_list_rollouts(t, &rs, &snap.n_rollouts), SLUICE_OK);
	snap.rollouts = rs;
	assert_int_equal(
	    flagd_txn_list_keys(t, &kl.keys, &kl.n_keys), SLUICE_OK);
	assert_int_equal(flagd_txn_stats(t, &st), SLUICE_OK);
	flagd_txn_abort(t);
	assert_int_equal(sl_pack(&snap.base, &a, &al), SLUICE_OK);
	assert_int_equal(sl_pack(&kl.base, &b, &bl), SLUICE_OK);
	img.len = al + bl + 3 * sizeof(uint64_t);
	img.buf = fx_xcalloc(1, img.len);
	memcpy(img.buf, a, al);
	memcpy(img.buf + al, b, bl);
	memcpy(img.buf + al + bl, &st.audit, sizeof(uint64_t));
	memcpy(img.buf + al + bl + 8, &st.history, sizeof(uint64_t));
	memcpy(img.buf + al + bl + 16, &st.nonces, sizeof(uint64_t));
	free(a);
	free(b);
	flagd_rollouts_free(rs, snap.n_rollouts);
	flagd_keys_free(kl.keys, kl.n_keys);
	return (img);
}

// ------------------------------------------------------------ running

// Runs cmd as actor at m->now (then advances it), frees cmd, keeps res.
static int
run_res(
    mfix *m, const char *actor, Sluice__V1__Command *cmd, flagd_result *res)
{
	int rv;

	rv = flagd_machine_apply(m->fx->store, &OPTS, actor, cmd, m->now, res);
	assert_int_equal(rv, res->code);
	fx_cmd_free(cmd);
	m->now++;
	return (rv);
}

// Runs a command that must succeed and write exactly one revision with
// one audit entry.
static void
ok(mfix *m, const char *actor, Sluice__V1__Command *cmd)
{
	flagd_result      res;
	uint64_t          rev = revision(m);
	flagd_store_stats st  = stats(m);
	int               rv;

	rv = run_res(m, actor, cmd, &res);
	if (rv != SLUICE_OK) {
		fail_msg(
		    "expected OK, got %s: %s", sluice_errname(rv), res.msg);
	}
	assert_true(res.changed);
	assert_int_equal(res.revision, rev + 1);
	assert_int_equal(revision(m), rev + 1);
	assert_int_equal(stats(m).audit, st.audit + 1);
	assert_non_null(res.audit);
	assert_int_equal(res.audit->revision, rev + 1);
	assert_int_equal(res.audit->hash.len, SL_HASH_BYTES);
	if (res.rollout != NULL) {
		assert_int_equal(res.rollout->revision, rev + 1);
	}
	flagd_result_fini(&res);
}

// Runs a command that must fail with code, with msg containing want (if
// set), and must leave the store exactly as it was.
static void
refused(mfix *m, const char *actor, Sluice__V1__Command *cmd, int code,
    const char *want)
{
	flagd_result res;
	image        before = take_image(m);
	image        after;
	int          rv;

	rv = run_res(m, actor, cmd, &res);
	if (rv != code) {
		fail_msg("expected %s, got %s: %s", sluice_errname(code),
		    sluice_errname(rv), res.msg);
	}
	assert_false(res.changed);
	assert_null(res.rollout);
	assert_null(res.audit);
	assert_true(res.msg[0] != '\0');
	if (want != NULL && strstr(res.msg, want) == NULL) {
		fail_msg("message \"%s\" lacks \"%s\"", res.msg, want);
	}
	after = take_image(m);
	assert_int_equal(after.len, before.len);
	assert_memory_equal(after.buf, before.buf, before.len);
	free(before.buf);
	free(after.buf);
	flagd_result_fini(&res);
}

static void
expect_at(mfix *m, const char *name, uint32_t stage, uint32_t last_good,
    Sluice__V1__RolloutState state)
{
	Sluice__V1__Rollout *r = get(m, name);

	assert_int_equal(r->stage, stage);
	assert_int_equal(r->last_good, last_good);
	assert_int_equal(r->state, state);
	sluice__v1__rollout__free_unpacked(r, NULL);
}

#define ACTIVE SLUICE__V1__ROLLOUT_STATE__STATE_ACTIVE
#define PAUSED SLUICE__V1__ROLLOUT_STATE__STATE_PAUSED
#define ROLLED_BACK SLUICE__V1__ROLLOUT_STATE__STATE_ROLLED_BACK
#define COMPLETED SLUICE__V1__ROLLOUT_STATE__STATE_COMPLETED

static Sluice__V1__Command *
apply_std(mfix *m, const char *name, const char *prefix)
{
	return (fx_cmd_apply(m->now, fx_spec_std(name, prefix), false));
}

static Sluice__V1__Command *
promote(mfix *m, const char *name)
{
	return (fx_cmd_promote(m->now, name, NULL, -1));
}

// ------------------------------------------------------------ tests

static void
test_machine_bootstrap_seeds_keys_once(void **state)
{
	mfix            *m = *state;
	flagd_result     res;
	Sluice__V1__Key *k =
	    fx_key("other", SLUICE__V1__ROLE__ROLE_ADMIN, "", 9);
	fixture *fx2;

	assert_int_equal(stats(m).keys, 6);
	assert_int_equal(stats(m).audit, 1);
	assert_int_equal(
	    flagd_machine_bootstrap_keys(m->fx->store, k, 1, T0, &res),
	    SLUICE_OK);
	assert_false(res.changed);
	assert_int_equal(res.revision, 1);
	flagd_result_fini(&res);
	assert_int_equal(stats(m).keys, 6);

	// A key list without an admin would lock key management out.
	fx2     = fx_new();
	k->role = SLUICE__V1__ROLE__ROLE_OPERATOR;
	assert_int_equal(
	    flagd_machine_bootstrap_keys(fx2->store, k, 1, T0, &res),
	    SLUICE_EINVAL);
	assert_int_equal(flagd_store_revision(fx2->store), 0);
	flagd_result_fini(&res);
	fx_free(fx2);
	sluice__v1__key__free_unpacked(k, NULL);
}

static void
test_machine_full_stage_walk(void **state)
{
	mfix                    *m = *state;
	Sluice__V1__AuditEntry **es;
	flagd_result             res;
	sl_audit_verifier        v;
	const char              *why;
	size_t                   n;
	bool                     more;
	flagd_txn               *t;

	ok(m, "root", apply_std(m, "orders_v2", "orders"));
	expect_at(m, "orders_v2", 0, 0, ACTIVE);
	for (uint32_t i = 1; i <= 4; i++) {
		ok(m, "root", promote(m, "orders_v2"));
		expect_at(
		    m, "orders_v2", i, i - 1, i == 4 ? COMPLETED : ACTIVE);
	}
	refused(m, "root", promote(m, "orders_v2"), SLUICE_ESTATE,
	    "already at its final stage \"full\"");

	// One audit entry per revision, chained, with readable summaries.
	assert_int_equal(revision(m), 6);
	assert_int_equal(stats(m).audit, 6);
	assert_int_equal(
	    flagd_store_begin(m->fx->store, false, &t), SLUICE_OK);
	assert_int_equal(
	    flagd_txn_audit_list(t, "", 0, 0, &es, &n, &more), SLUICE_OK);
	flagd_txn_abort(t);
	assert_int_equal(n, 6);
	sl_audit_verifier_init(&v);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(
		    sl_audit_verifier_next(&v, es[i], &why), SLUICE_OK);
	}
	assert_string_equal(es[0]->action, "bootstrap");
	assert_string_equal(es[1]->action, "apply");
	assert_string_equal(es[1]->before, "absent");
	assert_string_equal(es[3]->action, "promote");
	assert_string_equal(es[3]->actor, "root");
	assert_string_equal(es[3]->rollout, "orders_v2");
	assert_string_equal(es[3]->reason, "unit test");
	assert_string_equal(
	    es[3]->before, "stage=shadow(1) last_good=off state=active");
	assert_string_equal(
	    es[3]->after, "stage=canary(2) last_good=shadow state=active");
	assert_string_equal(
	    es[5]->after, "stage=full(4) last_good=half state=completed");
	flagd_audit_free(es, n);

	// The result carries the rollout and the entry for publishing.
	assert_int_equal(
	    run_res(m, "root", fx_cmd_rollback(m->now, "orders_v2", NULL, -1),
	        &res),
	    SLUICE_OK);
	assert_non_null(res.rollout);
	assert_int_equal(res.rollout->stage, 3);
	assert_int_equal(res.rollout->revision, 7);
	assert_string_equal(res.audit->action, "rollback");
	flagd_result_fini(&res);
}

static void
test_machine_apply_same_spec_is_noop(void **state)
{
	mfix             *m = *state;
	flagd_result      res;
	flagd_store_stats st;

	ok(m, "root", apply_std(m, "orders_v2", "orders"));
	ok(m, "root", promote(m, "orders_v2"));
	st = stats(m);
	assert_int_equal(
	    run_res(m, "root", apply_std(m, "orders_v2", "orders"), &res),
	    SLUICE_OK);
	assert_false(res.changed);
	assert_int_equal(res.revision, 3);
	assert_null(res.audit);
	assert_non_null(res.rollout); // the current state, for the reply
	assert_int_equal(res.rollout->stage, 1);
	flagd_result_fini(&res);
	assert_int_equal(revision(m), 3);
	assert_int_equal(stats(m).audit, st.audit);
	assert_int_equal(stats(m).nonces, st.nonces); // nonce not consumed
	// Even with force, the same spec stays a no-op.
	assert_int_equal(
	    run_res(m, "root",
	        fx_cmd_apply(m->now, fx_spec_std("orders_v2", "orders"), true),
	        &res),
	    SLUICE_OK);
	assert_false(res.changed);
	flagd_result_fini(&res);
	assert_int_equal(revision(m), 3);
}

static void
test_machine_apply_invalid_spec_is_einval(void **state)
{
	mfix                    *m = *state;
	Sluice__V1__RolloutSpec *s = fx_spec("orders_v2", "off,on");

	fx_spec_flag(
	    s, "orders.write", "false,true,true"); // 3 values, 2 stages
	refused(
	    m, "root", fx_cmd_apply(m->now, s, false), SLUICE_EINVAL, NULL);
	s = fx_spec("Bad Name", "off,on");
	refused(
	    m, "root", fx_cmd_apply(m->now, s, false), SLUICE_EINVAL, NULL);
}

static void
test_machine_apply_live_change_needs_force(void **state)
{
	mfix                    *m = *state;
	Sluice__V1__RolloutSpec *s;
	Sluice__V1__Rollout     *r;

	ok(m, "root", apply_std(m, "orders_v2", "orders"));
	ok(m, "root", promote(m, "orders_v2"));
	ok(m, "root", promote(m, "orders_v2")); // canary(2)

	// Changing the value clients see now.
	s = fx_spec("orders_v2", FX_STAGES);
	fx_spec_flag(s, "orders.write", "false,true,true,true,true");
	fx_spec_flag(s, "orders.read", "0%,0%,20%,50%,100%");
	refused(m, "root", fx_cmd_apply(m->now, s, false), SLUICE_ECONFLICT,
	    "use --force");
	// Removing a live flag.
	s = fx_spec("orders_v2", FX_STAGES);
	fx_spec_flag(s, "orders.write", "false,true,true,true,true");
	refused(m, "root", fx_cmd_apply(m->now, s, false), SLUICE_ECONFLICT,
	    "removes flag \"orders.read\"");
	// Renaming a stage already passed.
	s = fx_spec("orders_v2", "off,dark,canary,half,full");
	fx_spec_flag(s, "orders.write", "false,true,true,true,true");
	fx_spec_flag(s, "orders.read", "0%,0%,10%,50%,100%");
	refused(m, "root", fx_cmd_apply(m->now, s, false), SLUICE_ECONFLICT,
	    "renames or reorders stage 1");
	// Dropping the current stage.
	s = fx_spec("orders_v2", "off,shadow");
	fx_spec_flag(s, "orders.write", "false,true");
	fx_spec_flag(s, "orders.read", "0%,0%");
	refused(m, "root", fx_cmd_apply(m->now, s, false), SLUICE_ECONFLICT,
	    "drops");

	// Future stages, a new flag and a new description are fine.
	s = fx_spec("orders_v2", "off,shadow,canary,quarter,half,full");
	fx_spec_flag(s, "orders.write", "false,true,true,true,true,true");
	fx_spec_flag(s, "orders.read", "0%,0%,10%,25%,50%,100%");
	fx_spec_flag(s, "orders.backfill", "false,false,false,true,true,true");
	ok(m, "root", fx_cmd_apply(m->now, s, false));
	expect_at(m, "orders_v2", 2, 1, ACTIVE);

	// With force the live value changes.
	s = fx_spec("orders_v2", "off,shadow,canary,quarter,half,full");
	fx_spec_flag(s, "orders.write", "false,true,true,true,true,true");
	fx_spec_flag(s, "orders.read", "0%,0%,20%,25%,50%,100%");
	ok(m, "root", fx_cmd_apply(m->now, s, true));
	r = get(m, "orders_v2");
	assert_int_equal(r->spec->flags[1]->values[2]->percent_bp, 2000);
	assert_int_equal(r->spec->n_flags, 2);
	sluice__v1__rollout__free_unpacked(r, NULL);
	assert_int_equal(stats(m).flags, 2); // orders.backfill released

	// Forced onto fewer stages than the current index: clamp to the
	// last stage, which completes the rollout.
	ok(m, "root", promote(m, "orders_v2"));
	ok(m, "root", promote(m, "orders_v2")); // half(4), last_good 3
	s = fx_spec("orders_v2", "off,shadow,done");
	fx_spec_flag(s, "orders.write", "false,true,true");
	fx_spec_flag(s, "orders.read", "0%,0%,100%");
	ok(m, "root", fx_cmd_apply(m->now, s, true));
	expect_at(m, "orders_v2", 2, 2, COMPLETED);
}

static void
test_machine_promote_to_named_stage(void **state)
{
	mfix *m = *state;

	ok(m, "root", apply_std(m, "orders_v2", "orders"));
	refused(m, "root", fx_cmd_promote(m->now, "orders_v2", "nope", -1),
	    SLUICE_EINVAL, "has no stage \"nope\"");
	ok(m, "root", fx_cmd_promote(m->now, "orders_v2", "half", -1));
	expect_at(m, "orders_v2", 3, 0, ACTIVE);
	refused(m, "root", fx_cmd_promote(m->now, "orders_v2", "half", -1),
	    SLUICE_ESTATE,
	    "stage \"half\" is not after the current stage \"half\"");
	refused(m, "root", fx_cmd_promote(m->now, "orders_v2", "shadow", -1),
	    SLUICE_ESTATE, "not after");
	ok(m, "root", fx_cmd_promote(m->now, "orders_v2", "full", -1));
	expect_at(m, "orders_v2", 4, 3, COMPLETED);
	refused(m, "root", promote(m, "missing"), SLUICE_ENOENT,
	    "rollout \"missing\" not found");
}

static void
test_machine_prerequisites_gate_promote(void **state)
{
	mfix                    *m = *state;
	Sluice__V1__RolloutSpec *s = fx_spec_std("orders_writer", "ow");

	fx_spec_require(s, "orders_reader", "canary");
	ok(m, "root", fx_cmd_apply(m->now, s, false));
	refused(m, "root", promote(m, "orders_writer"), SLUICE_EPREREQ,
	    "\"orders_reader\" does not exist");
	ok(m, "root", apply_std(m, "orders_reader", "or"));
	ok(m, "root", promote(m, "orders_reader")); // shadow
	refused(m, "root", promote(m, "orders_writer"), SLUICE_EPREREQ,
	    "requires \"orders_reader\" at stage \"canary\" or later; it is "
	    "at \"shadow\"");
	ok(m, "root", promote(m, "orders_reader")); // canary
	ok(m, "root", promote(m, "orders_writer"));
	expect_at(m, "orders_writer", 1, 0, ACTIVE);
}

static void
test_machine_cas_mismatch_is_econflict(void **state)
{
	mfix *m = *state;

	ok(m, "root", apply_std(m, "orders_v2", "orders"));
	refused(m, "root", fx_cmd_promote(m->now, "orders_v2", NULL, 1),
	    SLUICE_ECONFLICT, "not at stage 1 as expected");
	ok(m, "root", fx_cmd_promote(m->now, "orders_v2", NULL, 0));
	ok(m, "root", fx_cmd_promote(m->now, "orders_v2", NULL, 1));
	refused(m, "root", fx_cmd_rollback(m->now, "orders_v2", NULL, 1),
	    SLUICE_ECONFLICT, "as expected");
	ok(m, "root", fx_cmd_rollback(m->now, "orders_v2", NULL, 2));
	expect_at(m, "orders_v2", 1, 1, ROLLED_BACK);
}

static void
test_machine_pause_blocks_promote(void **state)
{
	mfix *m = *state;

	ok(m, "root", apply_std(m, "orders_v2", "orders"));
	ok(m, "ops", fx_cmd_pause(m->now, "orders_v2"));
	expect_at(m, "orders_v2", 0, 0, PAUSED);
	refused(m, "root", promote(m, "orders_v2"), SLUICE_ESTATE,
	    "paused; resume first");
	refused(m, "root", fx_cmd_pause(m->now, "orders_v2"), SLUICE_ESTATE,
	    "already paused");
	ok(m, "ops", fx_cmd_resume(m->now, "orders_v2"));
	expect_at(m, "orders_v2", 0, 0, ACTIVE);
	refused(m, "root", fx_cmd_resume(m->now, "orders_v2"), SLUICE_ESTATE,
	    "not paused");
	ok(m, "root", fx_cmd_promote(m->now, "orders_v2", "full", -1));
	refused(m, "root", fx_cmd_pause(m->now, "orders_v2"), SLUICE_ESTATE,
	    "completed");
	// A paused rollout can still be rolled back, and resumes where it
	// stands.
	ok(m, "root", fx_cmd_rollback(m->now, "orders_v2", "half", -1));
	ok(m, "root", fx_cmd_pause(m->now, "orders_v2"));
	ok(m, "root", fx_cmd_rollback(m->now, "orders_v2", "canary", -1));
	expect_at(m, "orders_v2", 2, 0, ROLLED_BACK);
	ok(m, "root", fx_cmd_pause(m->now, "orders_v2"));
	ok(m, "root", fx_cmd_resume(m->now, "orders_v2"));
	expect_at(m, "orders_v2", 2, 0, ACTIVE);
}

static void
test_machine_rollback_to_last_good_and_named(void **state)
{
	mfix *m = *state;

	ok(m, "root", apply_std(m, "orders_v2", "orders"));
	refused(m, "root", fx_cmd_rollback(m->now, "orders_v2", NULL, -1),
	    SLUICE_ESTATE, "first stage");
	for (int i = 0; i < 3; i++) {
		ok(m, "root", promote(m, "orders_v2"));
	}
	expect_at(m, "orders_v2", 3, 2, ACTIVE);
	ok(m, "ops", fx_cmd_rollback(m->now, "orders_v2", NULL, -1));
	expect_at(m, "orders_v2", 2, 2, ROLLED_BACK);
	refused(m, "root", fx_cmd_rollback(m->now, "orders_v2", NULL, -1),
	    SLUICE_ESTATE, "already at its last good stage");
	refused(m, "root", fx_cmd_rollback(m->now, "orders_v2", "half", -1),
	    SLUICE_ESTATE, "not before");
	refused(m, "root", fx_cmd_rollback(m->now, "orders_v2", "x", -1),
	    SLUICE_EINVAL, "no stage \"x\"");
	ok(m, "root", fx_cmd_rollback(m->now, "orders_v2", "off", -1));
	expect_at(m, "orders_v2", 0, 0, ROLLED_BACK);
	// Promoting again leaves the rolled-back state.
	ok(m, "root", promote(m, "orders_v2"));
	expect_at(m, "orders_v2", 1, 0, ACTIVE);
}

static void
test_machine_rollback_window_settles_stage(void **state)
{
	mfix                    *m = *state;
	Sluice__V1__RolloutSpec *s = fx_spec_std("orders_v2", "orders");
	Sluice__V1__Rollout     *r;
	uint64_t                 entered;

	s->rollback_window_s = 60;
	ok(m, "root", fx_cmd_apply(m->now, s, false));
	ok(m, "root", promote(m, "orders_v2"));
	ok(m, "root", promote(m, "orders_v2")); // canary, last_good shadow
	entered = m->now - 1;

	// Pausing stops the clock: resume restarts the window.
	m->now = entered + 59999;
	ok(m, "root", fx_cmd_pause(m->now, "orders_v2"));
	ok(m, "root", fx_cmd_resume(m->now, "orders_v2"));
	entered = m->now - 1;
	r       = get(m, "orders_v2");
	assert_int_equal(r->stage_since_ms, entered);
	assert_int_equal(sl_rollout_last_good(r, entered + 59999), 1);
	assert_int_equal(sl_rollout_last_good(r, entered + 60000), 2);
	sluice__v1__rollout__free_unpacked(r, NULL);

	// Once canary has held for the window, it is the last good
	// stage itself: nothing to roll back to without --to.
	m->now = entered + 60000;
	refused(m, "root", fx_cmd_rollback(m->now, "orders_v2", NULL, -1),
	    SLUICE_ESTATE, "already at its last good stage \"canary\"");
	ok(m, "root", promote(m, "orders_v2")); // half, last_good canary
	expect_at(m, "orders_v2", 3, 2, ACTIVE);
	m->now += 1000;
	ok(m, "root", fx_cmd_rollback(m->now, "orders_v2", NULL, -1));
	expect_at(m, "orders_v2", 2, 2, ROLLED_BACK);
	// A rolled-back stage does not settle however long it holds.
	m->now += 3600u * 1000u;
	refused(m, "root", fx_cmd_rollback(m->now, "orders_v2", NULL, -1),
	    SLUICE_ESTATE, NULL);
	ok(m, "root", fx_cmd_rollback(m->now, "orders_v2", "shadow", -1));
	expect_at(m, "orders_v2", 1, 1, ROLLED_BACK);
}

static void
test_machine_rollback_inside_window_goes_to_last_good(void **state)
{
	mfix                    *m = *state;
	Sluice__V1__RolloutSpec *s = fx_spec_std("orders_v2", "orders");

	s->rollback_window_s = 60;
	ok(m, "root", fx_cmd_apply(m->now, s, false));
	ok(m, "root", promote(m, "orders_v2"));
	ok(m, "root", promote(m, "orders_v2")); // canary at now-1
	m->now += 59000;
	ok(m, "root", fx_cmd_rollback(m->now, "orders_v2", NULL, -1));
	expect_at(m, "orders_v2", 1, 1, ROLLED_BACK);
}

static void
test_machine_revert_is_exact_and_repeatable(void **state)
{
	mfix                    *m = *state;
	Sluice__V1__RolloutSpec *s;
	Sluice__V1__Rollout     *at4;
	Sluice__V1__Rollout     *r;
	flagd_txn               *t;
	uint64_t                 rev;

	ok(m, "root", apply_std(m, "orders_v2", "orders")); // 2
	ok(m, "root", promote(m, "orders_v2"));             // 3
	ok(m, "root", promote(m, "orders_v2"));             // 4
	s = fx_spec("orders_v2", FX_STAGES);
	fx_spec_flag(s, "orders.write", "false,true,false,true,true");
	fx_spec_flag(s, "orders.other", "1,2,3,4,5");
	ok(m, "root", fx_cmd_apply(m->now, s, true));     // 5
	ok(m, "root", promote(m, "orders_v2"));           // 6
	ok(m, "root", fx_cmd_pause(m->now, "orders_v2")); // 7

	assert_int_equal(
	    flagd_store_begin(m->fx->store, false, &t), SLUICE_OK);
	assert_int_equal(
	    flagd_txn_rollout_at(t, "orders_v2", 4, &at4), SLUICE_OK);
	flagd_txn_abort(t);
	for (int i = 0; i < 2; i++) {
		rev = revision(m);
		ok(m, "ops", fx_cmd_revert(m->now, "orders_v2", 4));
		r = get(m, "orders_v2");
		assert_true(
		    sl_message_equal(&r->spec->base, &at4->spec->base));
		assert_int_equal(r->stage, at4->stage);
		assert_int_equal(r->last_good, at4->last_good);
		assert_int_equal(r->state, at4->state);
		assert_int_equal(r->created_revision, 2);
		assert_int_equal(r->revision, rev + 1);
		assert_int_equal(r->stage_since_ms, m->now - 1); // new time
		sluice__v1__rollout__free_unpacked(r, NULL);
		// Moving on in between must not change where revert lands.
		ok(m, "root", promote(m, "orders_v2"));
	}
	assert_int_equal(stats(m).flags, 2); // orders.other released
	refused(m, "root", fx_cmd_revert(m->now, "orders_v2", 1),
	    SLUICE_ENOENT, "did not exist at revision 1");
	refused(m, "root", fx_cmd_revert(m->now, "orders_v2", 999),
	    SLUICE_EINVAL, "in the future");
	refused(m, "root", fx_cmd_revert(m->now, "nope", 3), SLUICE_ENOENT,
	    "not found");
	sluice__v1__rollout__free_unpacked(at4, NULL);
}

static void
test_machine_revert_rechecks_flag_ownership(void **state)
{
	mfix                    *m = *state;
	Sluice__V1__RolloutSpec *s;

	ok(m, "root", apply_std(m, "orders_v2", "orders")); // 2
	s = fx_spec("orders_v2", FX_STAGES);
	fx_spec_flag(s, "orders.write", "false,true,true,true,true");
	ok(m, "root", fx_cmd_apply(m->now, s, true)); // 3: drops .read
	s = fx_spec("billing", "off,on");
	fx_spec_flag(s, "orders.read", "0%,100%");
	ok(m, "root", fx_cmd_apply(m->now, s, false)); // 4: takes .read
	refused(m, "root", fx_cmd_revert(m->now, "orders_v2", 2),
	    SLUICE_EEXIST,
	    "flag \"orders.read\" belongs to rollout \"billing\"");
}

static void
test_machine_role_and_scope_matrix(void **state)
{
	mfix *m = *state;

	refused(m, "ops", apply_std(m, "orders_v2", "orders"), SLUICE_EPERM,
	    "key \"ops\" (operator) may not apply \"orders_v2\"");
	ok(m, "root", apply_std(m, "orders_v2", "orders"));
	ok(m, "root", apply_std(m, "billing", "billing"));
	ok(m, "oadmin", apply_std(m, "orders_v3", "orders3"));
	refused(m, "oadmin", apply_std(m, "billing2", "billing2"),
	    SLUICE_EPERM, "scope \"orders*\"");

	ok(m, "ops", promote(m, "orders_v2"));
	ok(m, "ops", fx_cmd_rollback(m->now, "orders_v2", NULL, -1));
	refused(m, "ops", promote(m, "billing"), SLUICE_EPERM,
	    "key \"ops\" (operator, scope \"orders*\") may not promote "
	    "\"billing\"");
	ok(m, "ops-all", promote(m, "billing"));
	ok(m, "ops-all", fx_cmd_revert(m->now, "billing", 3));

	refused(m, "rep", promote(m, "orders_v2"), SLUICE_EPERM, "reporter");
	refused(m, "rd", fx_cmd_pause(m->now, "orders_v2"), SLUICE_EPERM,
	    "reader");
	refused(m, "rd", fx_cmd_rollback(m->now, "orders_v2", NULL, -1),
	    SLUICE_EPERM, NULL);
	refused(m, "ops-all",
	    fx_cmd_key_add(
	        m->now, fx_key("x", SLUICE__V1__ROLE__ROLE_READER, "", 9)),
	    SLUICE_EPERM, "may not key_add \"x\"");
	refused(m, "oadmin", fx_cmd_key_remove(m->now, "rd"), SLUICE_EPERM,
	    "unscoped admin");
	refused(m, "ghost", promote(m, "orders_v2"), SLUICE_EUNKNOWNKEY,
	    "\"ghost\"");
}

static void
test_machine_replayed_nonce_refused(void **state)
{
	mfix                *m = *state;
	Sluice__V1__Command *c;
	Sluice__V1__Command *dup;
	ProtobufCMessage    *copy;

	ok(m, "root", apply_std(m, "orders_v2", "orders"));
	c = promote(m, "orders_v2");
	assert_int_equal(sl_message_copy(&c->base, &copy), SLUICE_OK);
	dup = (Sluice__V1__Command *) copy;
	ok(m, "root", c);
	refused(m, "root", dup, SLUICE_EREPLAY, "replayed");
	expect_at(m, "orders_v2", 1, 0, ACTIVE);

	// A refused command does not burn its nonce.
	c = fx_cmd_promote(m->now, "orders_v2", NULL, 0);
	assert_int_equal(sl_message_copy(&c->base, &copy), SLUICE_OK);
	dup                        = (Sluice__V1__Command *) copy;
	dup->promote->expect_stage = 1;
	refused(m, "root", c, SLUICE_ECONFLICT, NULL);
	ok(m, "root", dup);

	// A timestamp older than the nonce window could be replayed once
	// its nonce is forgotten, so it is refused outright.
	c               = promote(m, "orders_v2");
	c->timestamp_ms = m->now - TTL;
	refused(m, "root", c, SLUICE_EEXPIRED, NULL);

	// Commands without an action or nonce are refused cleanly.
	c = fx_cmd(m->now);
	refused(m, "root", c, SLUICE_EINVAL, "no action");
	c = promote(m, "orders_v2");
	free(c->nonce.data);
	c->nonce.data = NULL;
	c->nonce.len  = 0;
	refused(m, "root", c, SLUICE_EINVAL, "nonce");
}

static void
test_machine_flag_owned_elsewhere_refused(void **state)
{
	mfix                    *m = *state;
	Sluice__V1__RolloutSpec *s = fx_spec("billing", "off,on");

	ok(m, "root", apply_std(m, "orders_v2", "orders"));
	fx_spec_flag(s, "billing.write", "false,true");
	fx_spec_flag(s, "orders.write", "false,true");
	refused(m, "root", fx_cmd_apply(m->now, s, false), SLUICE_EEXIST,
	    "flag \"orders.write\" belongs to rollout \"orders_v2\"");
	// Force does not override ownership.
	s = fx_spec("billing", "off,on");
	fx_spec_flag(s, "orders.read", "0%,100%");
	refused(m, "root", fx_cmd_apply(m->now, s, true), SLUICE_EEXIST, NULL);
}

static void
test_machine_key_add_and_remove(void **state)
{
	mfix            *m = *state;
	Sluice__V1__Key *k;

	ok(m, "root",
	    fx_cmd_key_add(m->now,
	        fx_key(
	            "ci@build", SLUICE__V1__ROLE__ROLE_OPERATOR, "etl*", 8)));
	refused(m, "root",
	    fx_cmd_key_add(m->now,
	        fx_key("ci@build", SLUICE__V1__ROLE__ROLE_READER, "", 8)),
	    SLUICE_EEXIST, "already exists");
	k = fx_key("short", SLUICE__V1__ROLE__ROLE_READER, "", 8);
	k->public_key.len = 31;
	refused(
	    m, "root", fx_cmd_key_add(m->now, k), SLUICE_EINVAL, "32 bytes");
	refused(m, "root",
	    fx_cmd_key_add(
	        m->now, fx_key("norole", SLUICE__V1__ROLE__ROLE_NONE, "", 8)),
	    SLUICE_EINVAL, "no role");
	refused(m, "root",
	    fx_cmd_key_add(m->now,
	        fx_key("bad id!", SLUICE__V1__ROLE__ROLE_READER, "", 8)),
	    SLUICE_EINVAL, "invalid key id");
	refused(m, "root", fx_cmd_key_remove(m->now, "nobody"), SLUICE_ENOENT,
	    "not found");
	ok(m, "root", fx_cmd_key_remove(m->now, "ci@build"));

	// "oadmin" is an admin too, but scoped; remove it, then root is the
	// last admin and may not go.
	ok(m, "root", fx_cmd_key_remove(m->now, "oadmin"));
	refused(m, "root", fx_cmd_key_remove(m->now, "root"), SLUICE_ESTATE,
	    "last admin");
	ok(m, "root",
	    fx_cmd_key_add(
	        m->now, fx_key("root2", SLUICE__V1__ROLE__ROLE_ADMIN, "", 9)));
	ok(m, "root", fx_cmd_key_remove(m->now, "root")); // itself
	refused(m, "root", promote(m, "orders_v2"), SLUICE_EUNKNOWNKEY, NULL);
	refused(m, "root2", fx_cmd_key_remove(m->now, "root2"), SLUICE_ESTATE,
	    NULL);
	assert_int_equal(stats(m).keys, 5);
}

// Membership entries are audited writes for an unscoped admin; the
// result tells the proposing node which configuration change to make.
static void
test_machine_member_add_and_remove(void **state)
{
	mfix        *m = *state;
	flagd_result res;

	refused(m, "ops-all",
	    fx_cmd_member_add(
	        m->now, 4, "10.0.0.4:7402", "tcp://10.0.0.4:7400"),
	    SLUICE_EPERM, "may not member_add \"node 4\"");
	refused(m, "oadmin", fx_cmd_member_remove(m->now, 2), SLUICE_EPERM,
	    "managing the cluster needs an unscoped admin key");
	refused(m, "root",
	    fx_cmd_member_add(m->now, 4, "10.0.0.4", "tcp://10.0.0.4:7400"),
	    SLUICE_EINVAL, "not HOST:PORT");
	refused(m, "root",
	    fx_cmd_member_add(m->now, 0, "10.0.0.4:7402", "tcp://10.0.0.4:1"),
	    SLUICE_EINVAL, "positive number");
	refused(m, "root", fx_cmd_member_add(m->now, 4, "10.0.0.4:7402", ""),
	    SLUICE_EINVAL, "API URL");
	refused(m, "root", fx_cmd_member_remove(m->now, 0), SLUICE_EINVAL,
	    "node id 0");

	assert_int_equal(run_res(m, "root",
	                     fx_cmd_member_add(m->now, 4, "db-4.flagd:7402",
	                         "tcp://db-4.flagd:7400"),
	                     &res),
	    SLUICE_OK);
	assert_true(res.changed);
	assert_int_equal(res.member_op, SL_ACT_MEMBER_ADD);
	assert_int_equal(res.member_id, 4);
	assert_string_equal(
	    res.member_address, "db-4.flagd:7402@tcp://db-4.flagd:7400");
	assert_string_equal(res.audit->action, "member_add");
	assert_string_equal(res.audit->rollout, "node 4");
	assert_non_null(strstr(res.audit->after, "db-4.flagd:7402"));
	flagd_result_fini(&res);

	assert_int_equal(
	    run_res(m, "root", fx_cmd_member_remove(m->now, 2), &res),
	    SLUICE_OK);
	assert_int_equal(res.member_op, SL_ACT_MEMBER_REMOVE);
	assert_int_equal(res.member_id, 2);
	assert_string_equal(res.audit->action, "member_remove");
	flagd_result_fini(&res);

	// Other writes carry no membership change.
	assert_int_equal(
	    run_res(m, "root", apply_std(m, "orders_v9", "o9"), &res),
	    SLUICE_OK);
	assert_int_equal(res.member_op, 0);
	flagd_result_fini(&res);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_machine_bootstrap_seeds_keys_once),
		T(test_machine_full_stage_walk),
		T(test_machine_apply_same_spec_is_noop),
		T(test_machine_apply_invalid_spec_is_einval),
		T(test_machine_apply_live_change_needs_force),
		T(test_machine_promote_to_named_stage),
		T(test_machine_prerequisites_gate_promote),
		T(test_machine_cas_mismatch_is_econflict),
		T(test_machine_pause_blocks_promote),
		T(test_machine_rollback_to_last_good_and_named),
		T(test_machine_rollback_window_settles_stage),
		T(test_machine_rollback_inside_window_goes_to_last_good),
		T(test_machine_revert_is_exact_and_repeatable),
		T(test_machine_revert_rechecks_flag_ownership),
		T(test_machine_role_and_scope_matrix),
		T(test_machine_replayed_nonce_refused),
		T(test_machine_flag_owned_elsewhere_refused),
		T(test_machine_key_add_and_remove),
		T(test_machine_member_add_and_remove),
#undef T
	};

	return (
	    cmocka_run_group_tests_name("flagd/machine", tests, NULL, NULL));
}
