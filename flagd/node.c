// SPDX-License-Identifier: MIT
//
// node.c — wires the store, the state machine and the change stream into
// one node, and owns the write path. Writes are verified on the thread
// that received them (signature checks run in parallel across API
// contexts), then applied one at a time by a single writer thread, so
// revisions and change events come out in one order. The replication issue
// replaces the writer thread's direct apply with a consensus round.

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "clients.h"
#include "envelope.h"
#include "keys.h"
#include "node.h"
#include "consensus.h"
#include "publish.h"
#include "codec.h"

typedef struct write_job {
	flagd_node    *node;
	flagd_write_cb cb;
	void          *arg;
	uint64_t       t0;
	flagd_result  *res; // held while a membership change runs
} write_job;

struct flagd_node {
	const flagd_config *cfg;
	flagd_store        *store;
	flagd_publish      *pub;
	flagd_clients      *clients; // acks; in memory, not replicated
	flagd_consensus    *cons;
	flagd_machine_opts  mopts;
	flagd_metrics       metrics;
	_Atomic bool        catching_up; // store rebuilt, not caught up yet
	char                publish_url[256];
	uint64_t            started_ms;

	pthread_mutex_t mtx;
	pthread_cond_t  done_cv; // an entry was applied or a write finished
	size_t          busy;    // writes proposed, not yet answered
	bool            draining;
	uint64_t        applied; // revision applied, under mtx

	// Loop thread only (consensus callbacks).
	uint64_t log_applied;   // raft index the store reflects
	bool     bootstrapping; // a key bootstrap entry is in flight
};

flagd_store *
flagd_node_store(flagd_node *n)
{
	return (n->store);
}

flagd_metrics *
flagd_node_metrics(flagd_node *n)
{
	return (&n->metrics);
}

const flagd_config *
flagd_node_config(flagd_node *n)
{
	return (n->cfg);
}

uint64_t
flagd_node_started_ms(flagd_node *n)
{
	return (n->started_ms);
}

const char *
flagd_node_publish_url(flagd_node *n)
{
	return (n->publish_url);
}

flagd_clients *
flagd_node_clients(flagd_node *n)
{
	return (n->clients);
}

flagd_consensus *
flagd_node_consensus(flagd_node *n)
{
	return (n->cons);
}

// ------------------------------------------------------------ the FSM

static flagd_result *
result_alloc(int code, const char *msg)
{
	flagd_result *res = sl_xcalloc(1, sizeof(*res));

	flagd_result_init(res);
	res->code = code;
	snprintf(res->msg, sizeof(res->msg), "%s", msg);
	return (res);
}

static void
result_free(flagd_result *res)
{
	if (res != NULL) {
		flagd_result_fini(res);
		free(res);
	}
}

// Codes that say the store could not be written, as opposed to a
// command refused by the rules (which every node refuses alike).
static bool
store_failure(int code)
{
	return (code == SLUICE_EIO || code == SLUICE_EFULL ||
	    code == SLUICE_ECORRUPT || code == SLUICE_ENOMEM ||
	    code == SLUICE_EINTERNAL);
}

static void
revision_applied(flagd_node *n, uint64_t rev)
{
	pthread_mutex_lock(&n->mtx);
	if (rev > n->applied) {
		n->applied = rev;
	}
	pthread_cond_broadcast(&n->done_cv);
	pthread_mutex_unlock(&n->mtx);
	atomic_store(&n->metrics.revision, rev);
}

static int
apply_bootstrap(flagd_node *n, const Sluice__V1__LogEntry *e,
    const flagd_machine_opts *o, flagd_result *res)
{
	Sluice__V1__KeyBootstrap *kb = e->bootstrap;
	Sluice__V1__Key          *keys;
	int                       rv;

	keys = sl_xcalloc(kb->n_keys > 0 ? kb->n_keys : 1, sizeof(*keys));
	for (size_t i = 0; i < kb->n_keys; i++) {
		keys[i] = *kb->keys[i];
	}
	rv = flagd_machine_bootstrap_keys_at(
	    n->store, keys, kb->n_keys, e->time_ms, o->log_index, res);
	free(keys);
	if (rv == SLUICE_OK && res->changed) {
		sl_log_notice("keys.bootstrap",
		    "seeded %zu keys at revision %llu", kb->n_keys,
		    (unsigned long long) res->revision);
	}
	return (rv);
}

// Loop thread: one committed entry, in log order.
static int
fsm_apply(
    void *arg, uint64_t index, const void *buf, size_t len, void **resultp)
{
	flagd_node           *n   = arg;
	Sluice__V1__LogEntry *e   = NULL;
	Sluice__V1__Command  *cmd = NULL;
	flagd_machine_opts    o   = n->mopts;
	flagd_result         *res;

	*resultp = NULL;
	sl_log_debug("raft.entry", "entry %llu (%zu bytes), store at %llu",
	    (unsigned long long) index, len,
	    (unsigned long long) n->log_applied);
	// The store already holds this entry's effects (replay after a
	// restart, or a snapshot newer than the log): applying it twice
	// would double-apply.
	if (index <= n->log_applied) {
		return (SLUICE_OK);
	}
	res         = result_alloc(SLUICE_OK, "");
	o.log_index = index;
	if (sl_unpack(&sluice__v1__log_entry__descriptor, buf, len,
	        SL_MAX_REQUEST_BYTES * 4u,
	        (ProtobufCMessage **) &e) != SLUICE_OK) {
		// Only flagd writes entries; one that does not decode is
		// refused alike on every node.
		res->code = SLUICE_EPROTO;
		snprintf(res->msg, sizeof(res->msg),
		    "log entry %llu is damaged", (unsigned long long) index);
	} else if (e->op_case == SLUICE__V1__LOG_ENTRY__OP_BOOTSTRAP &&
	    e->bootstrap != NULL) {
		(void) apply_bootstrap(n, e, &o, res);
	} else if (e->op_case == SLUICE__V1__LOG_ENTRY__OP_COMMAND &&
	    e->actor != NULL &&
	    sl_unpack(&sluice__v1__command__descriptor, e->command.data,
	        e->command.len, SL_MAX_COMMAND_BYTES,
	        (ProtobufCMessage **) &cmd) == SLUICE_OK) {
		(void) flagd_machine_apply(
		    n->store, &o, e->actor, cmd, e->time_ms, res);
		if (res->code != SLUICE_OK) {
			sl_log_info("write.refused", "%s by %s: %s",
			    sl_action_name(sl_command_action(cmd)), e->actor,
			    res->msg);
		}
	} else {
		res->code = SLUICE_EPROTO;
		snprintf(res->msg, sizeof(res->msg),
		    "log entry %llu holds no command",
		    (unsigned long long) index);
	}
	if (cmd != NULL) {
		sluice__v1__command__free_unpacked(cmd, NULL);
	}
	if (e != NULL) {
		sluice__v1__log_entry__free_unpacked(e, NULL);
	}
	if (store_failure(res->code)) {
		int rv = res->code;
		sl_log_err("raft.apply", "entry %llu: %s",
		    (unsigned long long) index, res->msg);
		result_free(res);
		return (rv);
	}
	n->log_applied = index;
	atomic_fetch_add(&n->metrics.entries_applied, 1);
	if (res->code == SLUICE_OK && res->changed) {
		flagd_publish_change(
		    n->pub, res->revision, res->rollout, res->audit);
		atomic_fetch_add(&n->metrics.writes_committed, 1);
		revision_applied(n, res->revision);
	} else if (res->code == SLUICE_OK) {
		atomic_fetch_add(&n->metrics.writes_noop, 1);
	}
	*resultp = res;
	return (SLUICE_OK);
}

static void
fsm_free_result(void *arg, void *result)
{
	(void) arg;
	result_free(result);
}

// Loop thread: a read transaction is the view — LMDB's MVCC keeps it as of
// the last applied entry while the loop goes on writing.
static int
fsm_snapshot_begin(void *arg, void **viewp)
{
	flagd_node *n = arg;

	return (flagd_store_begin(n->store, false, (flagd_txn **) viewp));
}

// A libuv worker thread: the whole store, packed.
static int
fsm_snapshot_write(void *arg, void *view, uint8_t **bufp, size_t *lenp)
{
	flagd_node                *n = arg;
	Sluice__V1__StoreSnapshot *snap;
	uint8_t                   *buf;
	size_t                     len;
	int                        rv;

	if ((rv = flagd_txn_snapshot(view, &snap)) != SLUICE_OK) {
		return (rv);
	}
	len = sluice__v1__store_snapshot__get_packed_size(snap);
	if ((buf = malloc(len > 0 ? len : 1)) == NULL) {
		flagd_store_snapshot_free(snap);
		return (SLUICE_ENOMEM);
	}
	(void) sluice__v1__store_snapshot__pack(snap, buf);
	flagd_store_snapshot_free(snap);
	atomic_fetch_add(&n->metrics.snapshots_taken, 1);
	*bufp = buf;
	*lenp = len;
	return (SLUICE_OK);
}

static void
fsm_snapshot_end(void *arg, void *view)
{
	(void) arg;
	flagd_txn_abort(view);
}

static int
fsm_restore(void *arg, const void *buf, size_t len)
{
	flagd_node                *n = arg;
	Sluice__V1__StoreSnapshot *snap;
	flagd_txn                 *t;
	uint64_t                   rev;
	int                        rv;

	snap = sluice__v1__store_snapshot__unpack(NULL, len, buf);
	if (snap == NULL) {
		return (SLUICE_ECORRUPT);
	}
	// LMDB is durable on its own: when it already reflects the
	// snapshot's index or a later one (a restart), keep it; the log
	// entries after the snapshot are then skipped up to log_applied.
	if (snap->applied <= n->log_applied) {
		sl_log_info("raft.restore",
		    "store at index %llu is not older than the snapshot "
		    "(%llu): kept",
		    (unsigned long long) n->log_applied,
		    (unsigned long long) snap->applied);
		sluice__v1__store_snapshot__free_unpacked(snap, NULL);
		return (SLUICE_OK);
	}
	if ((rv = flagd_store_begin(n->store, true, &t)) != SLUICE_OK) {
		sluice__v1__store_snapshot__free_unpacked(snap, NULL);
		return (rv);
	}
	if ((rv = flagd_txn_restore(t, snap)) != SLUICE_OK) {
		flagd_txn_abort(t);
		sluice__v1__store_snapshot__free_unpacked(snap, NULL);
		return (rv);
	}
	rev = flagd_txn_revision(t);
	if ((rv = flagd_txn_commit(t)) != SLUICE_OK) {
		sluice__v1__store_snapshot__free_unpacked(snap, NULL);
		return (rv);
	}
	sl_log_notice("raft.restore",
	    "store replaced by a snapshot at index %llu, revision %llu",
	    (unsigned long long) snap->applied, (unsigned long long) rev);
	n->log_applied = snap->applied;
	sluice__v1__store_snapshot__free_unpacked(snap, NULL);
	atomic_fetch_add(&n->metrics.snapshots_restored, 1);
	// Subscribers see the revision jump and re-sync from a snapshot.
	flagd_publish_change(n->pub, rev, NULL, NULL);
	revision_applied(n, rev);
	return (SLUICE_OK);
}

static void
bootstrap_done(void *arg, int code, const char *msg, void *result)
{
	flagd_node   *n   = arg;
	flagd_result *res = result;

	n->bootstrapping = false;
	if (code != SLUICE_OK) {
		sl_log_warn(
		    "keys.bootstrap", "key bootstrap not committed: %s", msg);
	} else if (res != NULL && res->code != SLUICE_OK) {
		sl_log_err("keys.bootstrap", "cannot seed keys: %s", res->msg);
	}
	result_free(res);
}

static bool
store_has_keys(flagd_node *n)
{
	flagd_txn        *t;
	Sluice__V1__Key **ks  = NULL;
	size_t            nks = 0;

	if (flagd_store_begin(n->store, false, &t) != SLUICE_OK) {
		return (true);
	}
	if (flagd_txn_list_keys(t, &ks, &nks) != SLUICE_OK) {
		nks = 1;
	}
	flagd_keys_free(ks, nks);
	flagd_txn_abort(t);
	return (nks > 0);
}

// Loop thread, on becoming leader: seed an empty key store through the
// log, so that every node holds the same bootstrap revision (the audit
// chain hashes its time). Applying it is a no-op once keys exist, so a
// second leader proposing it again changes nothing.
static void
fsm_leader(void *arg)
{
	flagd_node              *n     = arg;
	Sluice__V1__Key         *keys  = NULL;
	size_t                   nkeys = 0;
	Sluice__V1__Key        **ptrs;
	Sluice__V1__KeyBootstrap kb;
	Sluice__V1__LogEntry     e;
	uint8_t                 *buf;
	size_t                   len;
	char                     err[256];

	if (n->bootstrapping || n->cfg->authorized_keys[0] == '\0' ||
	    store_has_keys(n)) {
		return;
	}
	if (sl_authkeys_load(n->cfg->authorized_keys, &keys, &nkeys, err,
	        sizeof(err)) != SLUICE_OK) {
		sl_log_err("keys.load", "%s", err);
		return;
	}
	ptrs = sl_xcalloc(nkeys > 0 ? nkeys : 1, sizeof(*ptrs));
	for (size_t i = 0; i < nkeys; i++) {
		ptrs[i] = &keys[i];
	}
	sluice__v1__key_bootstrap__init(&kb);
	sluice__v1__log_entry__init(&e);
	kb.n_keys   = nkeys;
	kb.keys     = ptrs;
	e.op_case   = SLUICE__V1__LOG_ENTRY__OP_BOOTSTRAP;
	e.bootstrap = &kb;
	e.actor     = (char *) (uintptr_t) "flagd";
	len         = sluice__v1__log_entry__get_packed_size(&e);
	buf         = sl_xmalloc(len > 0 ? len : 1);
	(void) sluice__v1__log_entry__pack(&e, buf);
	free(ptrs);
	sl_keys_free(keys, nkeys);
	if (flagd_consensus_propose(n->cons, buf, len, bootstrap_done, n) ==
	    SLUICE_OK) {
		n->bootstrapping = true;
		sl_log_notice("keys.bootstrap", "proposing %zu keys from %s",
		    nkeys, n->cfg->authorized_keys);
	}
}

// ------------------------------------------------------------ writes

static void write_finish(write_job *j, flagd_result *res);

// Loop thread: the configuration change a committed membership entry
// asked for has ended; the client learns both outcomes.
static void
member_changed(void *arg, int code, const char *msg)
{
	write_job    *j   = arg;
	flagd_result *res = j->res;

	j->res = NULL;
	if (code != SLUICE_OK) {
		char m[sizeof(res->msg)];

		snprintf(m, sizeof(m), "recorded at revision %llu, but %s",
		    (unsigned long long) res->revision, msg);
		res->code = code;
		memcpy(res->msg, m, sizeof(m));
	}
	write_finish(j, res);
}

static void
write_done(void *arg, int code, const char *msg, void *result)
{
	write_job    *j   = arg;
	flagd_result *res = result;

	if (res != NULL && res->code == SLUICE_OK && res->changed &&
	    res->member_op != 0) {
		j->res = res;
		flagd_consensus_member(j->node->cons, res->member_op,
		    res->member_id, res->member_address, member_changed, j);
		return;
	}
	if (res == NULL) {
		res = result_alloc(code == SLUICE_OK ? SLUICE_EINTERNAL : code,
		    code == SLUICE_OK ? "entry applied before this start"
		                      : msg);
		res->revision = atomic_load(&j->node->metrics.revision);
	}
	write_finish(j, res);
}

static void
write_finish(write_job *j, flagd_result *res)
{
	flagd_node *n = j->node;

	if (res->code == SLUICE_OK && res->changed) {
		atomic_fetch_add(
		    &n->metrics.write_ns_sum, sl_mono_ns() - j->t0);
	} else if (res->code != SLUICE_OK) {
		flagd_metrics_count_error(&n->metrics, res->code);
	}
	j->cb(j->arg, res);
	result_free(res);
	free(j);

	pthread_mutex_lock(&n->mtx);
	n->busy--;
	pthread_cond_broadcast(&n->done_cv);
	pthread_mutex_unlock(&n->mtx);
}

// A membership change that cannot work is refused before it is proposed
// (and audited): adding a voter twice, removing a stranger or the last
// voter. Removing the leader itself hands leadership on first.
static int
member_precheck(
    flagd_node *n, const Sluice__V1__Command *cmd, char *err, size_t errlen)
{
	flagd_consensus_status   st;
	const flagd_peer_status *p      = NULL;
	size_t                   voters = 0;
	uint64_t                 id;
	sl_action                act = sl_command_action(cmd);

	if (act != SL_ACT_MEMBER_ADD && act != SL_ACT_MEMBER_REMOVE) {
		return (SLUICE_OK);
	}
	id = act == SL_ACT_MEMBER_ADD ? cmd->member_add->id
	                              : cmd->member_remove->id;
	flagd_consensus_status_get(n->cons, &st);
	for (size_t i = 0; i < st.npeers; i++) {
		if (st.peers[i].member == FLAGD_MEMBER_VOTER) {
			voters++;
		}
		if (st.peers[i].id == id) {
			p = &st.peers[i];
		}
	}
	if (act == SL_ACT_MEMBER_ADD) {
		if (p != NULL && p->member == FLAGD_MEMBER_VOTER) {
			snprintf(err, errlen, "node %llu is already a voter",
			    (unsigned long long) id);
			return (SLUICE_EEXIST);
		}
		if (p == NULL && st.npeers >= FLAGD_PEERS_MAX) {
			snprintf(err, errlen,
			    "the cluster has %zu members, "
			    "the most flagd supports",
			    st.npeers);
			return (SLUICE_ESTATE);
		}
		return (SLUICE_OK);
	}
	if (p == NULL) {
		snprintf(err, errlen, "node %llu is not a member",
		    (unsigned long long) id);
		return (SLUICE_ENOENT);
	}
	if (p->member == FLAGD_MEMBER_VOTER && voters <= 1) {
		snprintf(err, errlen, "node %llu is the last voter",
		    (unsigned long long) id);
		return (SLUICE_ESTATE);
	}
	if (id == n->cfg->node_id) {
		flagd_consensus_transfer(n->cons);
		snprintf(err, errlen,
		    "node %llu leads the cluster: leadership is being handed "
		    "to another voter; run the command again in a moment",
		    (unsigned long long) id);
		return (SLUICE_ENOTLEADER);
	}
	return (SLUICE_OK);
}

int
flagd_node_write(flagd_node *n, const Sluice__V1__SignedCommand *sc,
    flagd_write_cb cb, void *arg, char *err, size_t errlen)
{
	flagd_txn           *t;
	Sluice__V1__Key     *key = NULL;
	Sluice__V1__Command *cmd = NULL;
	Sluice__V1__LogEntry e;
	write_job           *j;
	uint8_t             *buf;
	size_t               len;
	uint64_t             now;
	int                  rv;

	if (sc->key_id == NULL || !sl_key_id_valid(sc->key_id)) {
		snprintf(err, errlen, "command has no valid key id");
		return (SLUICE_EPROTO);
	}
	if ((rv = flagd_store_begin(n->store, false, &t)) != SLUICE_OK) {
		snprintf(
		    err, errlen, "store unavailable: %s", sluice_strerror(rv));
		return (rv);
	}
	rv = flagd_txn_get_key(t, sc->key_id, &key);
	flagd_txn_abort(t);
	if (rv == SLUICE_ENOENT) {
		snprintf(err, errlen, "unknown key \"%s\"", sc->key_id);
		return (SLUICE_EUNKNOWNKEY);
	}
	if (rv != SLUICE_OK) {
		snprintf(
		    err, errlen, "key lookup failed: %s", sluice_strerror(rv));
		return (rv);
	}
	rv = sl_command_verify(sc, key->public_key.data, key->public_key.len);
	sluice__v1__key__free_unpacked(key, NULL);
	if (rv == SLUICE_ETOOBIG) {
		snprintf(err, errlen,
		    "command body of %zu bytes exceeds the %u-byte limit",
		    sc->body.len, SL_MAX_COMMAND_BYTES);
		return (rv);
	}
	if (rv != SLUICE_OK) {
		snprintf(err, errlen,
		    "signature does not verify for key \"%s\"", sc->key_id);
		return (SLUICE_EBADSIG);
	}
	if ((rv = sl_command_open(sc, &cmd)) != SLUICE_OK) {
		snprintf(err, errlen, "command body: %s", sluice_strerror(rv));
		return (rv);
	}
	now = sl_now_ms();
	if (!sl_timestamp_fresh(cmd->timestamp_ms, now, n->cfg->skew_ms)) {
		snprintf(err, errlen,
		    "command time is %lld ms from flagd's clock (allowed: "
		    "%llu ms)",
		    (long long) cmd->timestamp_ms - (long long) now,
		    (unsigned long long) n->cfg->skew_ms);
		sluice__v1__command__free_unpacked(cmd, NULL);
		return (SLUICE_EEXPIRED);
	}
	rv = member_precheck(n, cmd, err, errlen);
	sluice__v1__command__free_unpacked(cmd, NULL);
	if (rv != SLUICE_OK) {
		return (rv);
	}

	// The entry carries the body exactly as signed; every node decodes
	// it again when the entry commits. The loop stamps the time.
	sluice__v1__log_entry__init(&e);
	e.actor   = sc->key_id;
	e.op_case = SLUICE__V1__LOG_ENTRY__OP_COMMAND;
	e.command = sc->body;
	len       = sluice__v1__log_entry__get_packed_size(&e);
	buf       = sl_xmalloc(len > 0 ? len : 1);
	(void) sluice__v1__log_entry__pack(&e, buf);

	j       = sl_xcalloc(1, sizeof(*j));
	j->node = n;
	j->cb   = cb;
	j->arg  = arg;
	j->t0   = sl_mono_ns();

	pthread_mutex_lock(&n->mtx);
	if (n->draining) {
		pthread_mutex_unlock(&n->mtx);
		free(buf);
		free(j);
		snprintf(err, errlen, "flagd is shutting down");
		return (SLUICE_ECLOSED);
	}
	n->busy++;
	pthread_mutex_unlock(&n->mtx);
	if ((rv = flagd_consensus_propose(n->cons, buf, len, write_done, j)) !=
	    SLUICE_OK) {
		free(j);
		pthread_mutex_lock(&n->mtx);
		n->busy--;
		pthread_cond_broadcast(&n->done_cv);
		pthread_mutex_unlock(&n->mtx);
		snprintf(err, errlen, "flagd is shutting down");
		return (rv);
	}
	return (SLUICE_OK);
}

int
flagd_node_wait_revision(flagd_node *n, uint64_t rev, uint64_t timeout_ms)
{
	struct timespec ts;
	int             rv = SLUICE_OK;

	sl_deadline_after(&ts, timeout_ms);
	pthread_mutex_lock(&n->mtx);
	while (n->applied < rev) {
		if (pthread_cond_timedwait(&n->done_cv, &n->mtx, &ts) ==
		    ETIMEDOUT) {
			rv = n->applied < rev ? SLUICE_ETIMEDOUT : SLUICE_OK;
			break;
		}
	}
	pthread_mutex_unlock(&n->mtx);
	return (rv);
}

void
flagd_node_drain(flagd_node *n, uint64_t timeout_ms)
{
	struct timespec ts;

	sl_deadline_after(&ts, timeout_ms);
	pthread_mutex_lock(&n->mtx);
	n->draining = true;
	while (n->busy > 0) {
		if (pthread_cond_timedwait(&n->done_cv, &n->mtx, &ts) ==
		    ETIMEDOUT) {
			sl_log_warn("node.drain",
			    "%zu writes still queued after %llu ms", n->busy,
			    (unsigned long long) timeout_ms);
			break;
		}
	}
	pthread_mutex_unlock(&n->mtx);
}

static void
derive_publish_url(flagd_node *n)
{
	const char *src = n->cfg->advertise_publish;
	const char *any;

	if (src != NULL && src[0] != '\0') {
		snprintf(n->publish_url, sizeof(n->publish_url), "%s", src);
		return;
	}
	src = n->cfg->publish_url;
	if ((any = strstr(src, "0.0.0.0")) != NULL) {
		snprintf(n->publish_url, sizeof(n->publish_url), "%.*s%s%s",
		    (int) (any - src), src, "127.0.0.1", any + 7);
	} else {
		snprintf(n->publish_url, sizeof(n->publish_url), "%s", src);
	}
}

// Checks the authorized-keys file at start, so a bad file stops flagd
// with a clear message instead of failing later on the leader.
static int
check_keys_file(flagd_node *n)
{
	Sluice__V1__Key *keys  = NULL;
	size_t           nkeys = 0;
	char             err[256];
	int              rv;

	if (n->cfg->authorized_keys[0] == '\0') {
		return (SLUICE_OK);
	}
	if ((rv = sl_authkeys_load(n->cfg->authorized_keys, &keys, &nkeys, err,
	         sizeof(err))) != SLUICE_OK) {
		sl_log_err("keys.load", "%s", err);
		return (rv);
	}
	sl_keys_free(keys, nkeys);
	return (SLUICE_OK);
}

// A cluster of one seeds its keys before it answers, as flagd did before
// consensus; a larger cluster seeds them once it has a leader.
static void
wait_for_keys(flagd_node *n)
{
	if (n->cfg->npeers != 1 || n->cfg->authorized_keys[0] == '\0') {
		return;
	}
	for (int i = 0; i < 1000 && !store_has_keys(n); i++) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}

// A store without keys refuses every write; say so once, at start.
static void
warn_if_keyless(flagd_node *n)
{
	flagd_txn        *t;
	Sluice__V1__Key **ks  = NULL;
	size_t            nks = 0;

	if (flagd_store_begin(n->store, false, &t) != SLUICE_OK) {
		return;
	}
	if (flagd_txn_list_keys(t, &ks, &nks) == SLUICE_OK && nks == 0) {
		sl_log_warn("keys.none",
		    "the key store is empty: every write will be refused; "
		    "start once with --authorized-keys FILE to seed it");
	}
	flagd_keys_free(ks, nks);
	flagd_txn_abort(t);
}

bool
flagd_node_stale(flagd_node *n, const flagd_consensus_status *st)
{
	if (flagd_consensus_stale(st, n->cfg->election_ms, sl_mono_ms())) {
		return (true);
	}
	// A store rebuilt after a machine crash starts empty: its answers
	// are stale until it has applied what the cluster had committed.
	if (atomic_load(&n->catching_up)) {
		if (st->commit_index == 0 ||
		    st->applied_index < st->commit_index) {
			return (true);
		}
		atomic_store(&n->catching_up, false);
		sl_log_notice("store.rebuild",
		    "caught up at index %llu: answers are current again",
		    (unsigned long long) st->applied_index);
	}
	return (false);
}

// Heartbeats carry this: a node without a leader for longer than an
// election timeout may be behind, and its clients should look elsewhere.
static bool
node_stale(void *arg)
{
	flagd_node            *n = arg;
	flagd_consensus_status st;

	flagd_consensus_status_get(n->cons, &st);
	return (flagd_node_stale(n, &st));
}

int
flagd_node_open(flagd_node **np, const flagd_config *cfg)
{
	flagd_node         *n;
	flagd_store_opts    so;
	flagd_consensus_fsm fsm;
	flagd_txn          *t;
	int                 rv;

	if ((n = calloc(1, sizeof(*n))) == NULL) {
		return (SLUICE_ENOMEM);
	}
	n->cfg        = cfg;
	n->started_ms = sl_now_ms();
	// Nonces are remembered for twice the skew: a command older than the
	// skew is refused by time, a younger one by its nonce.
	n->mopts.nonce_ttl_ms = 2 * cfg->skew_ms;
	pthread_mutex_init(&n->mtx, NULL);
	{
		pthread_condattr_t ca;
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&n->done_cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	derive_publish_url(n);
	if ((rv = flagd_clients_open(&n->clients, (size_t) cfg->max_clients,
	         cfg->client_liveness_ms, &n->metrics)) != SLUICE_OK) {
		goto fail;
	}

	if (mkdir(cfg->data_dir, 0700) != 0 && errno != EEXIST) {
		sl_log_err("node.data", "cannot create %s: %s", cfg->data_dir,
		    strerror(errno));
		rv = SLUICE_EIO;
		goto fail;
	}
	so.map_size = (size_t) cfg->map_size_mb * 1024u * 1024u;
	so.nosync   = cfg->nosync;
	// The raft log (fsync'd by libraft) is the durable record; LMDB is
	// derived from it and commits without fsync (docs/replication.md,
	// "LMDB durability").
	so.derived = true;
	if ((rv = flagd_store_open(&n->store, cfg->data_dir, &so)) !=
	    SLUICE_OK) {
		sl_log_err("node.store", "cannot open the store in %s: %s",
		    cfg->data_dir, sluice_strerror(rv));
		goto fail;
	}
	atomic_store(&n->catching_up, flagd_store_rebuilt(n->store));
	if ((rv = check_keys_file(n)) != SLUICE_OK) {
		goto fail;
	}
	if ((rv = flagd_store_begin(n->store, false, &t)) != SLUICE_OK) {
		goto fail;
	}
	n->log_applied = flagd_txn_applied(t);
	n->applied     = flagd_txn_revision(t);
	flagd_txn_abort(t);
	atomic_store(&n->metrics.revision, n->applied);
	if ((rv = flagd_publish_open(&n->pub, cfg->publish_url, cfg->node_id,
	         cfg->heartbeat_ms, n->applied, &n->metrics)) != SLUICE_OK) {
		goto fail;
	}
	memset(&fsm, 0, sizeof(fsm));
	fsm.arg            = n;
	fsm.apply          = fsm_apply;
	fsm.free_result    = fsm_free_result;
	fsm.snapshot_begin = fsm_snapshot_begin;
	fsm.snapshot_write = fsm_snapshot_write;
	fsm.snapshot_end   = fsm_snapshot_end;
	fsm.restore        = fsm_restore;
	fsm.leader         = fsm_leader;
	if ((rv = flagd_consensus_open(&n->cons, cfg, &fsm)) != SLUICE_OK) {
		goto fail;
	}
	flagd_publish_set_stale_fn(n->pub, node_stale, n);
	wait_for_keys(n);
	if (cfg->npeers == 1 || cfg->authorized_keys[0] == '\0') {
		warn_if_keyless(n);
	}
	*np = n;
	return (SLUICE_OK);
fail:
	flagd_node_close(n);
	return (rv);
}

void
flagd_node_stop(flagd_node *n)
{
	if (n != NULL) {
		if (n->pub != NULL) {
			flagd_publish_set_stale_fn(n->pub, NULL, NULL);
		}
		flagd_consensus_stop(n->cons);
	}
}

void
flagd_node_close(flagd_node *n)
{
	if (n == NULL) {
		return;
	}
	// Heartbeats stop asking consensus first, then the loop stops: no
	// callback runs into the store or the change stream after this.
	if (n->pub != NULL) {
		flagd_publish_set_stale_fn(n->pub, NULL, NULL);
	}
	flagd_consensus_close(n->cons);
	flagd_publish_close(n->pub);
	flagd_store_close(n->store);
	flagd_clients_close(n->clients);
	pthread_cond_destroy(&n->done_cv);
	pthread_mutex_destroy(&n->mtx);
	free(n);
}
