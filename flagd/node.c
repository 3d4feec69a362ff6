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
#include "publish.h"

typedef struct write_job {
	Sluice__V1__Command *cmd;
	char                 actor[SL_KEY_ID_MAX];
	flagd_write_cb       cb;
	void                *arg;
	struct write_job    *next;
} write_job;

struct flagd_node {
	const flagd_config *cfg;
	flagd_store        *store;
	flagd_publish      *pub;
	flagd_clients      *clients; // acks; in memory, not replicated
	flagd_machine_opts  mopts;
	flagd_metrics       metrics;
	char                publish_url[256];
	uint64_t            started_ms;

	pthread_mutex_t mtx;
	pthread_cond_t  work_cv; // a job was queued, or stopping
	pthread_cond_t  done_cv; // a job finished: revision or queue moved
	write_job      *head;
	write_job      *tail;
	size_t          busy; // queued + being applied
	bool            draining;
	bool            stopping;
	pthread_t       writer;
	bool            writer_started;
	uint64_t        applied; // revision applied, under mtx
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

static void
apply_job(flagd_node *n, write_job *j)
{
	flagd_result res;
	uint64_t     t0 = sl_mono_ns();

	flagd_result_init(&res);
	// The time stamped here is the one the machine uses for stage_since,
	// settling and the audit entry; with consensus it travels in the log.
	(void) flagd_machine_apply(
	    n->store, &n->mopts, j->actor, j->cmd, sl_now_ms(), &res);
	if (res.code == SLUICE_OK && res.changed) {
		flagd_publish_change(
		    n->pub, res.revision, res.rollout, res.audit);
		atomic_fetch_add(&n->metrics.writes_committed, 1);
		atomic_fetch_add(&n->metrics.write_ns_sum, sl_mono_ns() - t0);
		atomic_store(&n->metrics.revision, res.revision);
	} else if (res.code == SLUICE_OK) {
		atomic_fetch_add(&n->metrics.writes_noop, 1);
	} else {
		flagd_metrics_count_error(&n->metrics, res.code);
		sl_log_info("write.refused", "%s by %s: %s",
		    sl_action_name(sl_command_action(j->cmd)), j->actor,
		    res.msg);
	}
	j->cb(j->arg, &res);

	pthread_mutex_lock(&n->mtx);
	if (res.code == SLUICE_OK && res.revision > n->applied) {
		n->applied = res.revision;
	}
	n->busy--;
	pthread_cond_broadcast(&n->done_cv);
	pthread_mutex_unlock(&n->mtx);
	flagd_result_fini(&res);
}

static void *
writer_main(void *arg)
{
	flagd_node *n = arg;
	write_job  *j;

	pthread_mutex_lock(&n->mtx);
	for (;;) {
		while (n->head == NULL && !n->stopping) {
			pthread_cond_wait(&n->work_cv, &n->mtx);
		}
		if (n->head == NULL) {
			break;
		}
		j       = n->head;
		n->head = j->next;
		if (n->head == NULL) {
			n->tail = NULL;
		}
		pthread_mutex_unlock(&n->mtx);
		apply_job(n, j);
		sluice__v1__command__free_unpacked(j->cmd, NULL);
		free(j);
		pthread_mutex_lock(&n->mtx);
	}
	pthread_mutex_unlock(&n->mtx);
	return (NULL);
}

int
flagd_node_write(flagd_node *n, const Sluice__V1__SignedCommand *sc,
    flagd_write_cb cb, void *arg, char *err, size_t errlen)
{
	flagd_txn           *t;
	Sluice__V1__Key     *key = NULL;
	Sluice__V1__Command *cmd = NULL;
	write_job           *j;
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
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		sluice__v1__command__free_unpacked(cmd, NULL);
		snprintf(err, errlen, "out of memory");
		return (SLUICE_ENOMEM);
	}
	j->cmd = cmd;
	j->cb  = cb;
	j->arg = arg;
	snprintf(j->actor, sizeof(j->actor), "%s", sc->key_id);

	pthread_mutex_lock(&n->mtx);
	if (n->draining || n->stopping) {
		pthread_mutex_unlock(&n->mtx);
		sluice__v1__command__free_unpacked(cmd, NULL);
		free(j);
		snprintf(err, errlen, "flagd is shutting down");
		return (SLUICE_ECLOSED);
	}
	if (n->tail != NULL) {
		n->tail->next = j;
	} else {
		n->head = j;
	}
	n->tail = j;
	n->busy++;
	pthread_cond_signal(&n->work_cv);
	pthread_mutex_unlock(&n->mtx);
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

static int
bootstrap_keys(flagd_node *n)
{
	Sluice__V1__Key *keys  = NULL;
	size_t           nkeys = 0;
	flagd_result     res;
	char             err[256];
	int              rv;

	if (n->cfg->authorized_keys == NULL ||
	    n->cfg->authorized_keys[0] == '\0') {
		return (SLUICE_OK);
	}
	if ((rv = sl_authkeys_load(n->cfg->authorized_keys, &keys, &nkeys, err,
	         sizeof(err))) != SLUICE_OK) {
		sl_log_err("keys.load", "%s", err);
		return (rv);
	}
	flagd_result_init(&res);
	rv = flagd_machine_bootstrap_keys(
	    n->store, keys, nkeys, sl_now_ms(), &res);
	if (rv != SLUICE_OK) {
		sl_log_err("keys.bootstrap", "cannot seed keys: %s", res.msg);
	} else if (res.changed) {
		sl_log_notice("keys.bootstrap",
		    "seeded %zu keys from %s at revision %llu", nkeys,
		    n->cfg->authorized_keys,
		    (unsigned long long) res.revision);
	}
	flagd_result_fini(&res);
	sl_keys_free(keys, nkeys);
	return (rv);
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

int
flagd_node_open(flagd_node **np, const flagd_config *cfg)
{
	flagd_node      *n;
	flagd_store_opts so;
	int              rv;

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
		pthread_cond_init(&n->work_cv, &ca);
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
	if ((rv = flagd_store_open(&n->store, cfg->data_dir, &so)) !=
	    SLUICE_OK) {
		sl_log_err("node.store", "cannot open the store in %s: %s",
		    cfg->data_dir, sluice_strerror(rv));
		goto fail;
	}
	if ((rv = bootstrap_keys(n)) != SLUICE_OK) {
		goto fail;
	}
	warn_if_keyless(n);
	n->applied = flagd_store_revision(n->store);
	atomic_store(&n->metrics.revision, n->applied);
	if ((rv = flagd_publish_open(&n->pub, cfg->publish_url, cfg->node_id,
	         cfg->heartbeat_ms, n->applied, &n->metrics)) != SLUICE_OK) {
		goto fail;
	}
	if (pthread_create(&n->writer, NULL, writer_main, n) != 0) {
		rv = SLUICE_EINTERNAL;
		goto fail;
	}
	n->writer_started = true;
	*np               = n;
	return (SLUICE_OK);
fail:
	flagd_node_close(n);
	return (rv);
}

void
flagd_node_close(flagd_node *n)
{
	if (n == NULL) {
		return;
	}
	if (n->writer_started) {
		pthread_mutex_lock(&n->mtx);
		n->stopping = true;
		pthread_cond_broadcast(&n->work_cv);
		pthread_mutex_unlock(&n->mtx);
		pthread_join(n->writer, NULL);
	}
	flagd_publish_close(n->pub);
	flagd_store_close(n->store);
	flagd_clients_close(n->clients);
	pthread_cond_destroy(&n->work_cv);
	pthread_cond_destroy(&n->done_cv);
	pthread_mutex_destroy(&n->mtx);
	free(n);
}
