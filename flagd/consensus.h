/* SPDX-License-Identifier: MIT */
/*
 * consensus.h — flagd's replicated log: libraft with its libuv disk I/O
 * and TCP transport, driven by one libuv loop on a thread of its own.
 *
 * Threads. Every libraft call and every FSM callback runs on the loop
 * thread; nothing else ever touches libraft. Other threads (nng's) hand
 * entries to the loop with flagd_consensus_propose(), which appends to a
 * mutex-protected queue and wakes the loop with uv_async_send(); results
 * come back through the propose callback, called on the loop thread. A
 * status snapshot (role, term, leader, indexes, leader contact) is copied
 * out under the same mutex on every loop tick, for the API threads to read.
 *
 * A single node is a cluster of one: the same code path, one voter.
 */
#ifndef FLAGD_CONSENSUS_H
#define FLAGD_CONSENSUS_H

#include "config.h"
#include "sl.h"

typedef struct flagd_consensus flagd_consensus;

/*
 * The replicated state machine, implemented by the node. All callbacks
 * run on the loop thread, one at a time.
 */
typedef struct flagd_consensus_fsm {
	void *arg;
	/*
	 * Applies the committed entry buf (borrowed) at log index. Returns
	 * SLUICE_OK with *resultp (handed to the proposer's callback on
	 * this node, or to free_result elsewhere; may be NULL); any other
	 * code means the node cannot apply committed entries and stops.
	 */
	int (*apply)(void *arg, uint64_t index, const void *buf, size_t len,
	    void **resultp);
	/* Frees an apply result nobody waits for. */
	void (*free_result)(void *arg, void *result);
	/*
	 * A snapshot in three steps, so the loop is not held while the
	 * state is serialised. snapshot_begin (loop thread) pins a
	 * consistent view of the state as of the last applied entry into
	 * *viewp and must be quick; snapshot_write (a libuv worker thread,
	 * while the loop goes on applying) serialises that view into one
	 * malloc'd buffer (freed by consensus); snapshot_end (loop thread)
	 * releases the view, whatever happened.
	 */
	int (*snapshot_begin)(void *arg, void **viewp);
	int (*snapshot_write)(
	    void *arg, void *view, uint8_t **bufp, size_t *lenp);
	void (*snapshot_end)(void *arg, void *view);
	/* Replaces the state with a snapshot's (buf borrowed). */
	int (*restore)(void *arg, const void *buf, size_t len);
	/* This node has just become the leader. */
	void (*leader)(void *arg);
} flagd_consensus_fsm;

/*
 * The outcome of one proposal, on the loop thread. code SLUICE_OK: the
 * entry committed and result is what fsm->apply returned (owned by the
 * callback). Otherwise it did not commit here, or its outcome is unknown
 * (leadership lost): code is ENOTLEADER, EUNAVAIL or ECLOSED, msg says
 * which, result is NULL.
 */
typedef void (*flagd_propose_cb)(
    void *arg, int code, const char *msg, void *result);

/*
 * Opens DATA/raft (creating it), bootstraps the static configuration of
 * cfg->peers when the directory is pristine, and starts the loop thread.
 * cfg and fsm are borrowed for the lifetime of the consensus.
 */
int flagd_consensus_open(flagd_consensus **cp, const flagd_config *cfg,
    const flagd_consensus_fsm *fsm) SLUICE_NODISCARD;

/*
 * Stops the loop (queued proposals fail with ECLOSED), closes libraft and
 * joins the thread. NULL is a no-op. Not from the loop thread.
 */
/*
 * Stops the loop: raft is closed and every write still in flight is
 * failed through its callback, on the loop thread, before this returns.
 * The handle stays readable (status) until flagd_consensus_close.
 * Idempotent; NULL is a no-op.
 */
void flagd_consensus_stop(flagd_consensus *c);

void flagd_consensus_close(flagd_consensus *c);

/*
 * Proposes one entry: buf (malloc'd, ownership transferred, also on
 * error) is a packed LogEntry without time; the loop stamps the leader's
 * time into it. Thread-safe, never blocks on I/O. SLUICE_OK: cb is called
 * exactly once, on the loop thread. ECLOSED: the consensus is stopping,
 * cb is never called.
 */
int flagd_consensus_propose(flagd_consensus *c, uint8_t *buf, size_t len,
    flagd_propose_cb cb, void *arg) SLUICE_NODISCARD;

typedef enum {
	FLAGD_ROLE_UNKNOWN = 0,
	FLAGD_ROLE_FOLLOWER,
	FLAGD_ROLE_CANDIDATE,
	FLAGD_ROLE_LEADER,
} flagd_role;

typedef enum {
	FLAGD_MEMBER_VOTER = 0,
	FLAGD_MEMBER_STANDBY, /* replicated, not voting (being promoted) */
	FLAGD_MEMBER_SPARE,   /* added, not replicated yet */
} flagd_member_role;

/* A server of libraft's current configuration. */
typedef struct flagd_peer_status {
	uint64_t          id;
	flagd_member_role member;
	char              raft[200]; /* HOST:PORT of its consensus transport */
	char     api[256];    /* from the configuration, "" if not there */
	uint64_t match_index; /* leader only */
	bool     recent;      /* leader only: heard from it lately */
} flagd_peer_status;

typedef struct flagd_consensus_status {
	flagd_role role;
	uint64_t   leader_id; /* 0: none known */
	uint64_t   term;
	uint64_t   commit_index;
	uint64_t   applied_index;
	uint64_t   last_index;
	uint64_t   contact_mono_ms; /* sl_mono_ms() of last leader contact */
	uint64_t   updated_mono_ms; /* when this status was taken */
	size_t     npeers;
	flagd_peer_status peers[FLAGD_PEERS_MAX];
} flagd_consensus_status;

/*
 * Membership, on the loop thread only (from a propose callback). op is
 * SL_ACT_MEMBER_ADD (address "HOST:PORT@APIURL": added as a spare if
 * absent, then promoted to voter once it has caught up) or
 * SL_ACT_MEMBER_REMOVE. cb is called once, on the loop thread, with
 * SLUICE_OK or an error and a message; it is called before this returns
 * when the change cannot start (not the leader, another change pending).
 */
typedef void (*flagd_member_cb)(void *arg, int code, const char *msg);
void flagd_consensus_member(flagd_consensus *c, int op, uint64_t id,
    const char *address, flagd_member_cb cb, void *arg);

/*
 * Asks the leader (this node) to hand leadership to the most up-to-date
 * voter. Thread-safe; asynchronous; a no-op unless this node leads.
 */
void flagd_consensus_transfer(flagd_consensus *c);

/* Copies the latest status (at most one loop tick old). Thread-safe. */
void flagd_consensus_status_get(
    flagd_consensus *c, flagd_consensus_status *stp);

/*
 * Whether a node with status st has lost its leader for longer than the
 * election timeout at mono time now_ms (a leader is never stale).
 */
bool flagd_consensus_stale(
    const flagd_consensus_status *st, uint64_t election_ms, uint64_t now_ms);

/* "leader", "follower", "candidate", "unknown". */
const char *flagd_role_name(flagd_role r);

/*
 * Builds the raft buffer of an entry (raft_malloc'd, into *outp): buf
 * followed by the encoding of LogEntry.time_ms = time_ms (protobuf merges
 * concatenated messages, so the payload decodes as the entry with its time
 * set), framed as [u64 LE payload length][payload][zero pad to 8 bytes]
 * because libraft's segments need 8-byte multiples.
 */
int flagd_consensus_stamp(const uint8_t *buf, size_t len, uint64_t time_ms,
    void **outp, size_t *outlenp) SLUICE_NODISCARD;

/* The payload of a framed buffer (borrowed); ECORRUPT when malformed. */
int flagd_consensus_unframe(const void *buf, size_t len, const void **payloadp,
    size_t *plenp) SLUICE_NODISCARD;

#endif /* FLAGD_CONSENSUS_H */
