/* SPDX-License-Identifier: MIT */
/*
 * store.h — flagd's durable state in one LMDB environment. MDB_* codes
 * never leave store.c: every function returns SLUICE_* codes.
 *
 * Sub-databases:
 *   meta      "revision" -> u64, "audit_head" -> 32 bytes, "applied" -> u64
 *   rollouts  name -> packed Rollout (current)
 *   history   name '\0' revision(u64 BE) -> packed Rollout as of revision
 *   flags     flag key -> owning rollout name
 *   keys      key id -> packed Key
 *   audit     revision (u64 BE) -> packed AuditEntry
 *   nonces    nonce -> expiry ms (u64 BE)
 *   nonce_exp expiry ms (u64 BE) || nonce -> "" (for purging)
 *
 * Messages returned by the store are owned by the caller and freed with the
 * matching *__free_unpacked(msg, NULL). A write transaction belongs to one
 * thread; LMDB serialises writers.
 */
#ifndef FLAGD_STORE_H
#define FLAGD_STORE_H

#include "sl.h"

typedef struct flagd_store flagd_store;
typedef struct flagd_txn   flagd_txn;

typedef struct flagd_store_opts {
	size_t map_size; /* bytes; 0 = 1 GiB */
	bool   nosync;   /* MDB_NOSYNC, never synced: benchmarks/tests only */
	/*
	 * The store is derived from a durable log (flagd's raft log) that
	 * can rebuild it: commits are not fsync'd (MDB_NOSYNC); the store is
	 * synced at flagd_store_sync() and at close. A marker file in dir
	 * (STORE_STATE_FILE) records "clean", or "open" and the kernel's
	 * boot id: a store that was open when the machine went down (a
	 * different boot id, so unsynced pages may be lost or torn) is
	 * discarded at open and starts empty; flagd_store_rebuilt() says so.
	 * A process crash alone loses nothing (the pages are in the page
	 * cache) and keeps the store.
	 */
	bool derived;
} flagd_store_opts;

#define STORE_STATE_FILE "store.state"

/* Opens (creating) the environment in dir, which must exist. */
int  flagd_store_open(flagd_store **sp, const char *dir,
     const flagd_store_opts *opts) SLUICE_NODISCARD;
void flagd_store_close(flagd_store *s); /* NULL is a no-op */

/* True if opening discarded a store left unsynced by a machine crash. */
bool flagd_store_rebuilt(const flagd_store *s);

/* Forces everything committed to disk (mdb_env_sync). */
int flagd_store_sync(flagd_store *s) SLUICE_NODISCARD;

/* One transaction. Read txns may run on any thread, concurrently. */
int flagd_store_begin(
    flagd_store *s, bool write, flagd_txn **tp) SLUICE_NODISCARD;
int  flagd_txn_commit(flagd_txn *t) SLUICE_NODISCARD; /* frees t */
void flagd_txn_abort(flagd_txn *t);                   /* frees t; NULL ok */

/* The committed revision as of this txn (0 for an empty store). */
uint64_t flagd_txn_revision(flagd_txn *t);
int      flagd_txn_set_revision(flagd_txn *t, uint64_t rev) SLUICE_NODISCARD;

/* Convenience: the current revision through a short read txn. */
uint64_t flagd_store_revision(flagd_store *s);

/*
 * The last consensus log index applied to this store (meta "applied"),
 * 0 if never set; written in the same txn as the entry's effects.
 */
uint64_t flagd_txn_applied(flagd_txn *t);
int      flagd_txn_set_applied(flagd_txn *t, uint64_t index) SLUICE_NODISCARD;

/*
 * The whole store as one message: every record of every sub-database, the
 * revision and the applied index, read in t (a read txn is enough). *snapp
 * is freed with flagd_store_snapshot_free() (not *__free_unpacked: the
 * records are built here, their db names are static strings).
 */
int flagd_txn_snapshot(
    flagd_txn *t, Sluice__V1__StoreSnapshot **snapp) SLUICE_NODISCARD;
void flagd_store_snapshot_free(Sluice__V1__StoreSnapshot *snap);

/*
 * Replaces the whole store with snap inside write txn t (the caller
 * commits) and sets the applied index to snap->applied. ECORRUPT (nothing
 * changed) when a record names no known sub-database or has a bad key.
 */
int flagd_txn_restore(
    flagd_txn *t, const Sluice__V1__StoreSnapshot *snap) SLUICE_NODISCARD;

/* Entry counts per sub-database and map usage, for /metrics and tests. */
typedef struct flagd_store_stats {
	uint64_t rollouts;
	uint64_t history;
	uint64_t flags;
	uint64_t keys;
	uint64_t audit;
	uint64_t nonces;
	uint64_t map_size; /* bytes */
	uint64_t map_used; /* bytes: pages in use x page size */
} flagd_store_stats;

int flagd_txn_stats(flagd_txn *t, flagd_store_stats *stp) SLUICE_NODISCARD;

/* Rollouts. get: ENOENT if absent. */
int flagd_txn_get_rollout(
    flagd_txn *t, const char *name, Sluice__V1__Rollout **rp) SLUICE_NODISCARD;
/*
 * Stores r as current, appends it to history under r->revision, and
 * updates the flag index: flag keys of the previous version are dropped,
 * r's flag keys point at r. The caller checked ownership beforehand.
 */
int flagd_txn_put_rollout(
    flagd_txn *t, const Sluice__V1__Rollout *r) SLUICE_NODISCARD;
/* All current rollouts in name order; *rsp malloc'd array of *np. */
int flagd_txn_list_rollouts(
    flagd_txn *t, Sluice__V1__Rollout ***rsp, size_t *np) SLUICE_NODISCARD;
void flagd_rollouts_free(Sluice__V1__Rollout **rs, size_t n);
/* The rollout as it was at revision rev (latest history entry <= rev). */
int flagd_txn_rollout_at(flagd_txn *t, const char *name, uint64_t rev,
    Sluice__V1__Rollout **rp) SLUICE_NODISCARD;
/* Owner of a flag key into buf; ENOENT if no rollout has it. */
int flagd_txn_flag_owner(
    flagd_txn *t, const char *flag, char *buf, size_t buflen) SLUICE_NODISCARD;

/* Keys. */
int flagd_txn_get_key(
    flagd_txn *t, const char *id, Sluice__V1__Key **kp) SLUICE_NODISCARD;
int flagd_txn_put_key(flagd_txn *t, const Sluice__V1__Key *k) SLUICE_NODISCARD;
int flagd_txn_del_key(flagd_txn *t, const char *id) SLUICE_NODISCARD;
int flagd_txn_list_keys(
    flagd_txn *t, Sluice__V1__Key ***ksp, size_t *np) SLUICE_NODISCARD;
void flagd_keys_free(Sluice__V1__Key **ks, size_t n);

/*
 * Replay protection: EREPLAY if nonce is recorded and unexpired, else
 * records it until expires_ms. Purges entries expired at now_ms.
 */
int flagd_txn_nonce_use(flagd_txn *t, const uint8_t *nonce, size_t len,
    uint64_t expires_ms, uint64_t now_ms) SLUICE_NODISCARD;

/*
 * Appends e under e->revision: seals it onto the chain (prev_hash, hash)
 * and advances the head. e->revision must be the txn's revision (EINVAL
 * otherwise). On success e->prev_hash and e->hash point at 32-byte
 * buffers inside t, valid until t ends: copy e (sl_message_copy) before
 * commit to keep it. Do not free them.
 */
int flagd_txn_audit_append(
    flagd_txn *t, Sluice__V1__AuditEntry *e) SLUICE_NODISCARD;
/* The entry of one revision; ENOENT if none. */
int flagd_txn_get_audit(flagd_txn *t, uint64_t revision,
    Sluice__V1__AuditEntry **ep) SLUICE_NODISCARD;
/*
 * Entries with revision > after, optionally only for one rollout ("" or
 * NULL = all), at most limit (0 = no limit); *morep says whether more
 * follow. *esp is a malloc'd array (NULL when *np is 0).
 */
int  flagd_txn_audit_list(flagd_txn *t, const char *rollout, uint64_t after,
     uint32_t limit, Sluice__V1__AuditEntry ***esp, size_t *np,
     bool *morep) SLUICE_NODISCARD;
void flagd_audit_free(Sluice__V1__AuditEntry **es, size_t n);

#endif /* FLAGD_STORE_H */
