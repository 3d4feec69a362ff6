// SPDX-License-Identifier: MIT
//
// test_consensus.c — the consensus helpers that need no running loop:
// --peers parsing, the framing of raft entries (libraft wants 8-byte
// multiples) with the leader's time merged into the LogEntry, staleness,
// the applied index written with a command's effects, and a store
// snapshot restored into another store.

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <raft.h>

#include "config.h"
#include "consensus.h"
#include "fixture.h"

#define T0 1700000000000ull // a fixed "now"

static void
test_consensus_peers_parse_valid(void **state)
{
	flagd_peer p[FLAGD_PEERS_MAX];
	size_t     n = 0;
	char       err[256];

	(void) state;
	assert_int_equal(flagd_peers_parse("1=10.0.0.1:7402@tcp://a:7400,"
	                                   "2=flagd-1.flagd:7402@tcp://b:7400,"
	                                   "3=127.0.0.1:9@tcp://c:1",
	                     p, FLAGD_PEERS_MAX, &n, err, sizeof(err)),
	    SLUICE_OK);
	assert_int_equal(n, 3);
	assert_int_equal(p[1].id, 2);
	assert_string_equal(p[1].raft, "flagd-1.flagd:7402");
	assert_string_equal(p[1].api, "tcp://b:7400");
}

static void
test_consensus_peers_parse_rejects_bad_lists(void **state)
{
	static const char *bad[] = {
		"",
		"1=a:1",                           // no API URL
		"0=a:1@tcp://x:1",                 // id 0
		"x=a:1@tcp://x:1",                 // not a number
		"1=a@tcp://x:1",                   // no port
		"1=a:99999@tcp://x:1",             // port out of range
		"1=a:1@",                          // empty API URL
		"1=a:1@tcp://x:1,1=b:1@tcp://y:1", // id twice
		"1=a:1@tcp://x:1,2=a:1@tcp://y:1", // address twice
		"1=a:1@tcp://x:1,,2=b:1@tcp://y:1",
	};
	flagd_peer p[FLAGD_PEERS_MAX];
	size_t     n;
	char       err[256];

	(void) state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(flagd_peers_parse(bad[i], p, FLAGD_PEERS_MAX,
		                     &n, err, sizeof(err)),
		    SLUICE_EINVAL);
		assert_true(err[0] != '\0');
	}
	assert_int_equal(flagd_peers_parse("1=a:1@u,2=b:1@u,3=c:1@u", p, 2, &n,
	                     err, sizeof(err)),
	    SLUICE_EINVAL);
}

static void
test_consensus_stamp_frames_and_merges_time(void **state)
{
	Sluice__V1__LogEntry  e;
	Sluice__V1__LogEntry *got     = NULL;
	uint8_t               body[5] = { 1, 2, 3, 4, 5 };
	uint8_t               buf[128];
	size_t                len;
	void                 *framed;
	size_t                flen;
	const void           *payload;
	size_t                plen;

	(void) state;
	sluice__v1__log_entry__init(&e);
	e.actor        = (char *) (uintptr_t) "alice";
	e.op_case      = SLUICE__V1__LOG_ENTRY__OP_COMMAND;
	e.command.data = body;
	e.command.len  = sizeof(body);
	len            = sluice__v1__log_entry__pack(&e, buf);
	assert_int_equal(
	    flagd_consensus_stamp(buf, len, 1234567, &framed, &flen),
	    SLUICE_OK);
	assert_int_equal(flen % 8, 0);
	assert_int_equal(
	    flagd_consensus_unframe(framed, flen, &payload, &plen), SLUICE_OK);
	assert_int_equal(sl_unpack(&sluice__v1__log_entry__descriptor, payload,
	                     plen, 4096, (ProtobufCMessage **) &got),
	    SLUICE_OK);
	assert_int_equal(got->time_ms, 1234567);
	assert_string_equal(got->actor, "alice");
	assert_int_equal(got->command.len, sizeof(body));
	assert_memory_equal(got->command.data, body, sizeof(body));
	sluice__v1__log_entry__free_unpacked(got, NULL);
	raft_free(framed);
}

static void
test_consensus_unframe_rejects_damage(void **state)
{
	uint8_t     b[24];
	const void *p;
	size_t      n;

	(void) state;
	memset(b, 0, sizeof(b));
	assert_int_equal(
	    flagd_consensus_unframe(b, 7, &p, &n), SLUICE_ECORRUPT);
	assert_int_equal(
	    flagd_consensus_unframe(b, 12, &p, &n), SLUICE_ECORRUPT);
	b[0] = 17; // longer than the buffer holds
	assert_int_equal(
	    flagd_consensus_unframe(b, 24, &p, &n), SLUICE_ECORRUPT);
	b[0] = 3; // 3 bytes in 16: more than 7 bytes of padding
	assert_int_equal(
	    flagd_consensus_unframe(b, 24, &p, &n), SLUICE_ECORRUPT);
	b[0] = 16;
	assert_int_equal(flagd_consensus_unframe(b, 24, &p, &n), SLUICE_OK);
	assert_int_equal(n, 16);
}

static void
test_consensus_stale_after_election_timeout(void **state)
{
	flagd_consensus_status st;

	(void) state;
	memset(&st, 0, sizeof(st));
	assert_true(flagd_consensus_stale(&st, 500, 10000)); // never a leader
	st.role            = FLAGD_ROLE_FOLLOWER;
	st.leader_id       = 2;
	st.contact_mono_ms = 9800;
	assert_false(flagd_consensus_stale(&st, 500, 10000));
	assert_true(flagd_consensus_stale(&st, 500, 10301));
	st.leader_id = 0; // leader lost
	assert_true(flagd_consensus_stale(&st, 500, 10000));
	st.role            = FLAGD_ROLE_LEADER;
	st.leader_id       = 1;
	st.updated_mono_ms = 10000;
	assert_false(flagd_consensus_stale(&st, 500, 10100));
	// A leader whose status stopped moving is stale too.
	st.contact_mono_ms = 10000;
	assert_true(flagd_consensus_stale(&st, 500, 20000));
}

static void
seed(fixture *fx, uint64_t index)
{
	Sluice__V1__Key *k =
	    fx_key("root", SLUICE__V1__ROLE__ROLE_ADMIN, "", 1);
	flagd_result res;

	assert_int_equal(
	    flagd_machine_bootstrap_keys_at(fx->store, k, 1, T0, index, &res),
	    SLUICE_OK);
	assert_true(res.changed);
	flagd_result_fini(&res);
	sluice__v1__key__free_unpacked(k, NULL);
}

static void
test_consensus_applied_index_in_same_txn(void **state)
{
	fixture             *fx = fx_new();
	flagd_machine_opts   o  = { 0, 7 };
	Sluice__V1__Command *cmd;
	flagd_result         res;
	flagd_txn           *t;

	(void) state;
	seed(fx, 3);
	assert_int_equal(flagd_store_begin(fx->store, false, &t), SLUICE_OK);
	assert_int_equal(flagd_txn_applied(t), 3);
	flagd_txn_abort(t);

	cmd = fx_cmd_apply(T0 + 1, fx_spec_std("orders.v2", "o"), false);
	assert_int_equal(
	    flagd_machine_apply(fx->store, &o, "root", cmd, T0 + 2, &res),
	    SLUICE_OK);
	flagd_result_fini(&res);
	// A refused command (a replay) records nothing, index included.
	o.log_index = 8;
	assert_int_equal(
	    flagd_machine_apply(fx->store, &o, "root", cmd, T0 + 3, &res),
	    SLUICE_EREPLAY);
	flagd_result_fini(&res);
	sluice__v1__command__free_unpacked(cmd, NULL);
	assert_int_equal(flagd_store_begin(fx->store, false, &t), SLUICE_OK);
	assert_int_equal(flagd_txn_applied(t), 7);
	assert_int_equal(flagd_txn_revision(t), 2);
	flagd_txn_abort(t);
	fx_free(fx);
}

static void
test_consensus_snapshot_restores_whole_store(void **state)
{
	fixture                   *a = fx_new();
	fixture                   *b = fx_new();
	flagd_machine_opts         o = { 0, 9 };
	Sluice__V1__Command       *cmd;
	Sluice__V1__StoreSnapshot *snap;
	Sluice__V1__StoreSnapshot *again;
	Sluice__V1__AuditEntry    *ea;
	Sluice__V1__AuditEntry    *eb;
	flagd_result               res;
	flagd_txn                 *t;

	(void) state;
	seed(a, 2);
	cmd = fx_cmd_apply(T0 + 1, fx_spec_std("orders.v2", "o"), false);
	assert_int_equal(
	    flagd_machine_apply(a->store, &o, "root", cmd, T0 + 2, &res),
	    SLUICE_OK);
	flagd_result_fini(&res);
	sluice__v1__command__free_unpacked(cmd, NULL);
	// b holds something else, which the restore must replace entirely.
	seed(b, 1);

	assert_int_equal(flagd_store_begin(a->store, false, &t), SLUICE_OK);
	assert_int_equal(flagd_txn_snapshot(t, &snap), SLUICE_OK);
	flagd_txn_abort(t);
	assert_int_equal(snap->applied, 9);
	assert_int_equal(snap->revision, 2);

	assert_int_equal(flagd_store_begin(b->store, true, &t), SLUICE_OK);
	assert_int_equal(flagd_txn_restore(t, snap), SLUICE_OK);
	assert_int_equal(flagd_txn_commit(t), SLUICE_OK);

	assert_int_equal(flagd_store_begin(b->store, false, &t), SLUICE_OK);
	assert_int_equal(flagd_txn_applied(t), 9);
	assert_int_equal(flagd_txn_revision(t), 2);
	assert_int_equal(flagd_txn_snapshot(t, &again), SLUICE_OK);
	assert_int_equal(again->n_records, snap->n_records);
	assert_int_equal(flagd_txn_get_audit(t, 2, &eb), SLUICE_OK);
	flagd_txn_abort(t);
	assert_int_equal(flagd_store_begin(a->store, false, &t), SLUICE_OK);
	assert_int_equal(flagd_txn_get_audit(t, 2, &ea), SLUICE_OK);
	flagd_txn_abort(t);
	assert_int_equal(ea->hash.len, eb->hash.len);
	assert_memory_equal(ea->hash.data, eb->hash.data, ea->hash.len);

	// A record naming no sub-database is refused and changes nothing.
	snap->records[0]->db = (char *) (uintptr_t) "bogus";
	assert_int_equal(flagd_store_begin(b->store, true, &t), SLUICE_OK);
	assert_int_equal(flagd_txn_restore(t, snap), SLUICE_ECORRUPT);
	flagd_txn_abort(t);
	snap->records[0]->db = (char *) (uintptr_t) "meta";

	sluice__v1__audit_entry__free_unpacked(ea, NULL);
	sluice__v1__audit_entry__free_unpacked(eb, NULL);
	flagd_store_snapshot_free(snap);
	flagd_store_snapshot_free(again);
	fx_free(a);
	fx_free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_consensus_peers_parse_valid),
		cmocka_unit_test(test_consensus_peers_parse_rejects_bad_lists),
		cmocka_unit_test(test_consensus_stamp_frames_and_merges_time),
		cmocka_unit_test(test_consensus_unframe_rejects_damage),
		cmocka_unit_test(test_consensus_stale_after_election_timeout),
		cmocka_unit_test(test_consensus_applied_index_in_same_txn),
		cmocka_unit_test(test_consensus_snapshot_restores_whole_store),
	};

	return (
	    cmocka_run_group_tests_name("flagd/consensus", tests, NULL, NULL));
}
