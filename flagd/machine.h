/* SPDX-License-Identifier: MIT */
/*
 * machine.h — the state machine: applies one verified command to the store
 * in one write transaction. It is deterministic: the outcome depends only
 * on the store, the command, the actor and now_ms (which the caller stamps
 * once; with consensus it travels in the log entry), never on the clock.
 *
 * The caller has already checked the signature and the timestamp skew
 * (flagd_node). Inside the transaction the machine re-reads the key (it
 * may have been removed), checks role and scope, records the nonce, runs
 * the action, bumps the revision and appends the audit entry.
 */
#ifndef FLAGD_MACHINE_H
#define FLAGD_MACHINE_H

#include "store.h"

typedef struct flagd_result {
	int      code;     /* SLUICE_OK or SLUICE_E* */
	char     msg[256]; /* the reason when code != OK, for the client */
	bool     changed;  /* false: a no-op (same spec), no new revision */
	uint64_t revision; /* revision after the command */
	/* Owned by the result when set; released by flagd_result_fini(). */
	Sluice__V1__Rollout    *rollout; /* the rollout after the write */
	Sluice__V1__AuditEntry *audit;   /* the entry appended */
	/*
	 * A committed membership change (SL_ACT_MEMBER_ADD/_REMOVE, else 0)
	 * that the proposing node carries out in libraft's configuration
	 * after the commit: member_address is "HOST:PORT@APIURL" for an add.
	 */
	int      member_op;
	uint64_t member_id;
	char     member_address[520];
} flagd_result;

void flagd_result_init(flagd_result *res);
void flagd_result_fini(flagd_result *res);

typedef struct flagd_machine_opts {
	uint64_t nonce_ttl_ms; /* how long nonces are remembered: 2 x skew */
	/*
	 * Consensus log index of the entry being applied, stored (meta
	 * "applied") in the same transaction as the command's effects;
	 * 0 = none. Refused and no-op commands write nothing, index included.
	 */
	uint64_t log_index;
} flagd_machine_opts;

/*
 * Applies cmd as actor (a key id). Always fills res (overwriting it: fini
 * a previous result first); returns res->code. On any error nothing is
 * written (the transaction is aborted) and res->revision is the current
 * one. A no-op apply returns SLUICE_OK with changed = false, res->rollout
 * set to the current rollout and no audit entry; its nonce is not kept.
 * A command whose timestamp_ms + nonce_ttl_ms <= now_ms is refused with
 * SLUICE_EEXPIRED (its nonce could not be remembered). nonce_ttl_ms 0
 * means 2 x SL_DEFAULT_SKEW_MS.
 */
int flagd_machine_apply(flagd_store *s, const flagd_machine_opts *o,
    const char *actor, const Sluice__V1__Command *cmd, uint64_t now_ms,
    flagd_result *res);

/*
 * Seeds an empty key store from the authorized-keys file: when the store
 * has no keys, writes all of keys in one revision audited as action
 * "bootstrap" by actor "flagd". Otherwise (or when n is 0) does nothing.
 * SLUICE_EINVAL when a key is malformed, listed twice, or none of them is
 * an admin (nobody could ever manage keys). res as above.
 */
int flagd_machine_bootstrap_keys(flagd_store *s, const Sluice__V1__Key *keys,
    size_t n, uint64_t now_ms, flagd_result *res);

/*
 * As flagd_machine_bootstrap_keys, and stores log_index (when not 0) as the
 * applied consensus index in the same transaction.
 */
int flagd_machine_bootstrap_keys_at(flagd_store *s,
    const Sluice__V1__Key *keys, size_t n, uint64_t now_ms, uint64_t log_index,
    flagd_result *res);

#endif /* FLAGD_MACHINE_H */
