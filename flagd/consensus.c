// SPDX-License-Identifier: MIT
//
// consensus.c — libraft on its own libuv loop thread. The loop owns the
// raft instance, its disk I/O (raft_uv) and its TCP transport; the only
// ways in from other threads are the proposal queue (mutex + uv_async_t)
// and the status snapshot (mutex), so no other thread ever calls libraft.
// RAFT_* codes stay inside this file.

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "consensus.h"
#include "keys.h"
#include "transport.h"

typedef struct prop {
	uint8_t                *buf;
	size_t                  len;
	flagd_propose_cb        cb;
	void                   *arg;
	struct flagd_consensus *owner;
	struct raft_apply       req;
	struct prop            *next;
	struct prop            *inext; // in flight: proposed, not yet answered
} prop;

struct flagd_consensus {
	const flagd_config *cfg;
	flagd_consensus_fsm fsm;
	char                dir[1024];

	uv_loop_t        loop;
	uv_async_t       async;
	uv_timer_t       tick;
	flagd_transport *transport;
	struct raft_io   io;
	struct raft_fsm  rfsm;
	struct raft      raft;
	bool             loop_init;
	bool             io_init;
	bool             raft_init;
	bool             handles_init;

	pthread_t thread;
	bool      thread_started;
	bool      joined; // the loop thread has been joined

	pthread_mutex_t        mtx;
	prop                  *head; // proposals waiting for the loop
	prop                  *tail;
	bool                   stopping;
	flagd_consensus_status status;

	// Loop thread only.
	prop                *inflight;   // proposals handed to raft_apply
	uint64_t             last_stamp; // time stamped into the last proposal
	bool                 was_leader;
	struct raft_barrier  notify; // see notify_commit()
	bool                 notify_pending;
	uv_timer_t           notify_timer; // see notify_after_commit()
	bool                 notify_armed;
	uint64_t             last_propose_ns; // the last two proposals' gap
	uint64_t             propose_gap_ns;
	void                *snap_view;  // the snapshot in flight's view
	uint64_t             snap_index; // and the index it reflects
	struct raft_transfer transfer;
	bool                 transfer_pending;
	bool                 transfer_wanted; // under mtx
};

const char *
flagd_role_name(flagd_role r)
{
	switch (r) {
	case FLAGD_ROLE_LEADER:
		return ("leader");
	case FLAGD_ROLE_FOLLOWER:
		return ("follower");
	case FLAGD_ROLE_CANDIDATE:
		return ("candidate");
	case FLAGD_ROLE_UNKNOWN:
		break;
	}
	return ("unknown");
}

bool
flagd_consensus_stale(
    const flagd_consensus_status *st, uint64_t election_ms, uint64_t now_ms)
{
	if (st->role == FLAGD_ROLE_LEADER &&
	    st->updated_mono_ms + election_ms >= now_ms) {
		return (false);
	}
	if (st->leader_id == 0 || st->contact_mono_ms == 0) {
		return (true);
	}
	return (now_ms > st->contact_mono_ms + election_ms);
}

static void
le64_put(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++) {
		p[i] = (uint8_t) (v >> (8 * i));
	}
}

static uint64_t
le64_get(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--) {
		v = (v << 8) | p[i];
	}
	return (v);
}

// libraft's disk format pads entry data to 8 bytes when writing but not
// when reading it back: an entry whose length is not a multiple of 8
// corrupts the segment. So every buffer handed to libraft is framed as
// [payload length, u64 LE][payload][zero padding to 8].
static int
frame(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
    void **outp, size_t *outlenp)
{
	size_t   plen = alen + blen;
	size_t   tot  = 8 + ((plen + 7u) & ~(size_t) 7u);
	uint8_t *out;

	if ((out = raft_malloc(tot)) == NULL) {
		return (SLUICE_ENOMEM);
	}
	memset(out, 0, tot);
	le64_put(out, plen);
	if (alen > 0) {
		memcpy(out + 8, a, alen);
	}
	if (blen > 0) {
		memcpy(out + 8 + alen, b, blen);
	}
	*outp    = out;
	*outlenp = tot;
	return (SLUICE_OK);
}

int
flagd_consensus_unframe(
    const void *buf, size_t len, const void **payloadp, size_t *plenp)
{
	uint64_t plen;

	if (len < 8 || len % 8 != 0) {
		return (SLUICE_ECORRUPT);
	}
	plen = le64_get(buf);
	if (plen > len - 8 || len - 8 - plen >= 8) {
		return (SLUICE_ECORRUPT);
	}
	*payloadp = (const uint8_t *) buf + 8;
	*plenp    = (size_t) plen;
	return (SLUICE_OK);
}

int
flagd_consensus_stamp(const uint8_t *buf, size_t len, uint64_t time_ms,
    void **outp, size_t *outlenp)
{
	Sluice__V1__LogEntry e;
	uint8_t              t[16];
	size_t               tlen;

	sluice__v1__log_entry__init(&e);
	e.time_ms = time_ms;
	tlen      = sluice__v1__log_entry__pack(&e, t);
	return (frame(buf, len, t, tlen, outp, outlenp));
}

// ------------------------------------------------------------ the FSM

static void
inflight_remove(flagd_consensus *c, prop *p)
{
	for (prop **pp = &c->inflight; *pp != NULL; pp = &(*pp)->inext) {
		if (*pp == p) {
			*pp = p->inext;
			return;
		}
	}
}

static bool
inflight_has(const flagd_consensus *c, uint64_t index)
{
	for (const prop *p = c->inflight; p != NULL; p = p->inext) {
		if (p->req.index == index) {
			return (true);
		}
	}
	return (false);
}

static int
fsm_apply(struct raft_fsm *f, const struct raft_buffer *buf, void **result)
{
	flagd_consensus *c = f->data;
	// libraft applies entry last_applied + 1 and only then advances
	// last_applied: that is the index of the entry in hand.
	uint64_t    index = raft_last_applied(&c->raft) + 1;
	const void *payload;
	size_t      plen;
	int         rv;

	*result = NULL;
	rv = flagd_consensus_unframe(buf->base, buf->len, &payload, &plen);
	if (rv == SLUICE_OK) {
		rv = c->fsm.apply(c->fsm.arg, index, payload, plen, result);
	}
	if (rv != SLUICE_OK) {
		// A node that skipped a committed entry would diverge from the
		// others for good; stop, and let the log replay on restart.
		sl_log_err("raft.apply",
		    "cannot apply committed entry %llu: %s; stopping so that "
		    "it is replayed after a restart",
		    (unsigned long long) index, sluice_strerror(rv));
		abort();
	}
	// libraft hands the result to the proposer's request, if this node
	// has one for the index; otherwise it would be dropped.
	if (*result != NULL && !inflight_has(c, index)) {
		c->fsm.free_result(c->fsm.arg, *result);
		*result = NULL;
	}
	return (0);
}

// Snapshots use libraft's version-3 FSM: fsm_snapshot pins the view on
// the loop thread, fsm_snapshot_async serialises it on a libuv worker, and
// fsm_snapshot_finalize (loop thread) frees what the first two made. One
// snapshot is in flight at a time (libraft's rule), so one view slot.
static int fsm_snapshot_async(
    struct raft_fsm *f, struct raft_buffer *bufs[], unsigned *n);

static int
fsm_snapshot(struct raft_fsm *f, struct raft_buffer *bufs[], unsigned *n)
{
	flagd_consensus *c = f->data;

	*bufs = NULL;
	*n    = 0;
	if (c->fsm.snapshot_begin(c->fsm.arg, &c->snap_view) != SLUICE_OK) {
		c->snap_view = NULL;
		return (RAFT_IOERR);
	}
	c->snap_index = raft_last_applied(&c->raft);
	if (c->rfsm.snapshot_async == NULL) {
		return (fsm_snapshot_async(f, bufs, n)); // no worker: here
	}
	return (0);
}

static int
fsm_snapshot_async(struct raft_fsm *f, struct raft_buffer *bufs[], unsigned *n)
{
	flagd_consensus *c = f->data;
	uint8_t         *data;
	size_t           len;
	size_t           flen;
	void            *copy;
	uint64_t         t0 = sl_mono_ms();

	if (c->fsm.snapshot_write(c->fsm.arg, c->snap_view, &data, &len) !=
	    SLUICE_OK) {
		return (RAFT_IOERR);
	}
	if ((*bufs = raft_malloc(sizeof(**bufs))) == NULL ||
	    frame(data, len, NULL, 0, &copy, &flen) != SLUICE_OK) {
		raft_free(*bufs);
		*bufs = NULL;
		free(data);
		return (RAFT_NOMEM);
	}
	free(data);
	(*bufs)[0].base = copy;
	(*bufs)[0].len  = flen;
	*n              = 1;
	sl_log_info("raft.snapshot",
	    "store snapshot at index %llu: %zu bytes, serialised in %llu ms "
	    "off the loop",
	    (unsigned long long) c->snap_index, len,
	    (unsigned long long) (sl_mono_ms() - t0));
	return (0);
}

static int
fsm_snapshot_finalize(
    struct raft_fsm *f, struct raft_buffer *bufs[], unsigned *n)
{
	flagd_consensus *c = f->data;

	if (*bufs != NULL) {
		for (unsigned i = 0; i < *n; i++) {
			raft_free((*bufs)[i].base);
		}
		raft_free(*bufs);
	}
	*bufs = NULL;
	*n    = 0;
	if (c->snap_view != NULL) {
		c->fsm.snapshot_end(c->fsm.arg, c->snap_view);
		c->snap_view = NULL;
	}
	return (0);
}

static int
fsm_restore(struct raft_fsm *f, struct raft_buffer *buf)
{
	flagd_consensus *c = f->data;
	const void      *payload;
	size_t           plen;
	int              rv;

	if ((rv = flagd_consensus_unframe(
	         buf->base, buf->len, &payload, &plen)) != SLUICE_OK ||
	    (rv = c->fsm.restore(c->fsm.arg, payload, plen)) != SLUICE_OK) {
		sl_log_err("raft.restore", "cannot restore a snapshot: %s",
		    sluice_strerror(rv));
		return (RAFT_MALFORMED);
	}
	raft_free(buf->base);
	return (0);
}

// ------------------------------------------------------------ proposals

static void
prop_free(prop *p)
{
	free(p->buf);
	free(p);
}

static void
notify_cb(struct raft_barrier *req, int status)
{
	flagd_consensus *c = req->data;

	(void) status;
	c->notify_pending = false;
}

// Followers learn the commit index only from the leader's next
// AppendEntries; libraft 0.15 sends that at the next heartbeat, up to two
// heartbeat intervals later (followers' subscribers saw a change ~100 ms
// after the leader's). A barrier appended right after a write commits
// carries the new commit index to every follower at once, so they apply
// and publish one round trip after the leader. One barrier covers every
// write that commits while it is in flight, so a burst costs one extra
// entry, not one per write. Barrier entries never reach the FSM.
static void
notify_commit(flagd_consensus *c)
{
	if (c->notify_pending || c->cfg->npeers < 2 ||
	    raft_state(&c->raft) != RAFT_LEADER) {
		return;
	}
	c->notify.data = c;
	if (c->notify_armed) {
		uv_timer_stop(&c->notify_timer);
		c->notify_armed = false;
	}
	if (raft_barrier(&c->raft, &c->notify, notify_cb) == 0) {
		c->notify_pending = true;
	}
}

// When writes come one after another, the next write's AppendEntries
// carries the commit index anyway, and a barrier would only make it wait
// for one more disk write on every node (~0.15 ms of a 0.8 ms write). So
// a commit that follows a proposal gap shorter than NOTIFY_STREAM_NS
// arms a timer instead, cancelled by the next proposal; only the last
// write of a stream pays the timer (1 ms, libuv's resolution) before its
// barrier. An isolated write gets its barrier at once.
#define NOTIFY_STREAM_NS (2u * 1000u * 1000u)
#define NOTIFY_DELAY_MS 1u

static void
notify_timer_cb(uv_timer_t *t)
{
	flagd_consensus *c = t->data;

	c->notify_armed = false;
	notify_commit(c);
}

static void
notify_after_commit(flagd_consensus *c)
{
	if (c->cfg->npeers < 2 || c->notify_pending || c->notify_armed) {
		return;
	}
	if (c->propose_gap_ns != 0 && c->propose_gap_ns < NOTIFY_STREAM_NS &&
	    uv_timer_start(
	        &c->notify_timer, notify_timer_cb, NOTIFY_DELAY_MS, 0) == 0) {
		c->notify_armed = true;
		return;
	}
	notify_commit(c);
}

static void
apply_cb(struct raft_apply *req, int status, void *result)
{
	prop            *p = req->data;
	flagd_consensus *c = p->owner;

	inflight_remove(c, p);

	if (status == 0) {
		p->cb(p->arg, SLUICE_OK, "", result);
		notify_after_commit(c);
	} else if (status == RAFT_NOTLEADER) {
		p->cb(p->arg, SLUICE_ENOTLEADER,
		    "this node lost the leadership before the write was "
		    "proposed; retry",
		    NULL);
	} else if (status == RAFT_SHUTDOWN) {
		p->cb(p->arg, SLUICE_ECLOSED,
		    "flagd is shutting down; the write may or may not have "
		    "been committed",
		    NULL);
	} else {
		// LEADERSHIPLOST and the rest: the entry may still commit
		// under the next leader. The nonce keeps a retry harmless.
		p->cb(p->arg, SLUICE_EUNAVAIL,
		    "leadership changed before the write was acknowledged; "
		    "it may or may not have been committed (a retry with "
		    "the same command is refused as a replay if it was)",
		    NULL);
	}
	free(p);
}

// Loop thread: hands queued proposals to libraft.
static void
propose_queued(flagd_consensus *c, prop *list)
{
	while (list != NULL) {
		prop              *p = list;
		struct raft_buffer b;
		uint64_t           now = sl_now_ms();
		int                rv;

		list    = p->next;
		p->next = NULL;
		if (raft_state(&c->raft) != RAFT_LEADER) {
			p->cb(p->arg, SLUICE_ENOTLEADER,
			    "this node is not the leader; retry", NULL);
			prop_free(p);
			continue;
		}
		// Times never run backwards within one leader's term of
		// office, whatever the wall clock does.
		if (now < c->last_stamp) {
			now = c->last_stamp;
		}
		c->last_stamp = now;
		if (flagd_consensus_stamp(
		        p->buf, p->len, now, &b.base, &b.len) != SLUICE_OK) {
			p->cb(p->arg, SLUICE_ENOMEM, "out of memory", NULL);
			prop_free(p);
			continue;
		}
		free(p->buf);
		p->buf      = NULL;
		p->req.data = p;
		p->owner    = c;
		if ((rv = raft_apply(&c->raft, &p->req, &b, 1, apply_cb)) ==
		    0) {
			uint64_t ns = sl_mono_ns();

			p->inext    = c->inflight;
			c->inflight = p;
			// Its AppendEntries carries the commit index: no
			// barrier needed for what committed before it.
			if (c->notify_armed) {
				uv_timer_stop(&c->notify_timer);
				c->notify_armed = false;
			}
			c->propose_gap_ns  = c->last_propose_ns != 0
			     ? ns - c->last_propose_ns
			     : 0;
			c->last_propose_ns = ns;
		} else {
			raft_free(b.base);
			p->cb(p->arg,
			    rv == RAFT_NOTLEADER ? SLUICE_ENOTLEADER
			                         : SLUICE_EUNAVAIL,
			    raft_errmsg(&c->raft), NULL);
			free(p);
		}
	}
}

static void
fail_all(prop *list, int code, const char *msg)
{
	while (list != NULL) {
		prop *p = list;
		list    = p->next;
		p->cb(p->arg, code, msg, NULL);
		prop_free(p);
	}
}

int
flagd_consensus_propose(flagd_consensus *c, uint8_t *buf, size_t len,
    flagd_propose_cb cb, void *arg)
{
	prop *p;

	if ((p = calloc(1, sizeof(*p))) == NULL) {
		free(buf);
		return (SLUICE_ENOMEM);
	}
	p->buf = buf;
	p->len = len;
	p->cb  = cb;
	p->arg = arg;
	pthread_mutex_lock(&c->mtx);
	if (c->stopping) {
		pthread_mutex_unlock(&c->mtx);
		prop_free(p);
		return (SLUICE_ECLOSED);
	}
	if (c->tail != NULL) {
		c->tail->next = p;
	} else {
		c->head = p;
	}
	c->tail = p;
	pthread_mutex_unlock(&c->mtx);
	uv_async_send(&c->async);
	return (SLUICE_OK);
}

// ------------------------------------------------------------ status

static flagd_role
role_of(int state)
{
	switch (state) {
	case RAFT_LEADER:
		return (FLAGD_ROLE_LEADER);
	case RAFT_FOLLOWER:
		return (FLAGD_ROLE_FOLLOWER);
	case RAFT_CANDIDATE:
		return (FLAGD_ROLE_CANDIDATE);
	default:
		return (FLAGD_ROLE_UNKNOWN);
	}
}

// Loop thread: copies what the API may ask about into c->status.
static void
status_take(flagd_consensus *c)
{
	struct raft           *r = &c->raft;
	flagd_consensus_status st;
	raft_id                lid = 0;
	const char            *laddr;
	uint64_t               mono = sl_mono_ms();

	memset(&st, 0, sizeof(st));
	raft_leader(r, &lid, &laddr);
	st.role            = role_of(raft_state(r));
	st.leader_id       = lid;
	st.term            = r->current_term;
	st.commit_index    = r->commit_index;
	st.applied_index   = raft_last_applied(r);
	st.last_index      = raft_last_index(r);
	st.updated_mono_ms = mono;
	if (st.role == FLAGD_ROLE_LEADER) {
		st.contact_mono_ms = mono;
	} else if (st.role == FLAGD_ROLE_FOLLOWER && lid != 0) {
		// election_timer_start is reset on every message from the
		// leader: it is the follower's last leader contact.
		uint64_t now       = r->io->time(r->io);
		uint64_t ago       = now > r->election_timer_start
		          ? now - r->election_timer_start
		          : 0;
		st.contact_mono_ms = mono > ago ? mono - ago : 1;
	}
	for (unsigned i = 0;
	     i < r->configuration.n && st.npeers < FLAGD_PEERS_MAX; i++) {
		const struct raft_server *sv = &r->configuration.servers[i];
		flagd_peer_status        *ps = &st.peers[st.npeers++];
		ps->id                       = sv->id;
		ps->member = sv->role == RAFT_VOTER ? FLAGD_MEMBER_VOTER
		    : sv->role == RAFT_STANDBY      ? FLAGD_MEMBER_STANDBY
		                                    : FLAGD_MEMBER_SPARE;
		flagd_peer_address_split(sv->address, ps->raft,
		    sizeof(ps->raft), ps->api, sizeof(ps->api));
		if (st.role == FLAGD_ROLE_LEADER &&
		    r->leader_state.progress != NULL) {
			ps->match_index =
			    r->leader_state.progress[i].match_index;
			ps->recent = r->leader_state.progress[i].recent_recv;
		}
	}
	pthread_mutex_lock(&c->mtx);
	// Keep the last contact when the leader is momentarily unknown, so
	// staleness runs from the last real contact.
	if (st.contact_mono_ms == 0) {
		st.contact_mono_ms = c->status.contact_mono_ms;
	}
	c->status = st;
	pthread_mutex_unlock(&c->mtx);

	if (st.role == FLAGD_ROLE_LEADER && !c->was_leader) {
		sl_log_notice("raft.leader",
		    "node %llu is the leader (term %llu)",
		    (unsigned long long) c->cfg->node_id,
		    (unsigned long long) st.term);
		c->was_leader = true;
		if (c->fsm.leader != NULL) {
			c->fsm.leader(c->fsm.arg);
		}
	} else if (st.role != FLAGD_ROLE_LEADER && c->was_leader) {
		sl_log_notice("raft.follower",
		    "node %llu is no longer the "
		    "leader (term %llu)",
		    (unsigned long long) c->cfg->node_id,
		    (unsigned long long) st.term);
		c->was_leader = false;
	}
}

void
flagd_consensus_status_get(flagd_consensus *c, flagd_consensus_status *stp)
{
	pthread_mutex_lock(&c->mtx);
	*stp = c->status;
	pthread_mutex_unlock(&c->mtx);
}

// ------------------------------------------------------------ the loop

static void
raft_closed_cb(struct raft *r)
{
	flagd_consensus *c = r->data;

	raft_uv_close(&c->io);
	flagd_transport_free(c->transport);
	c->transport = NULL;
}

static void transfer_cb(struct raft_transfer *req);

static void
tick_cb(uv_timer_t *t)
{
	status_take(t->data);
}

static void
async_cb(uv_async_t *a)
{
	flagd_consensus *c = a->data;
	prop            *list;
	bool             stop;
	bool             transfer;

	pthread_mutex_lock(&c->mtx);
	list    = c->head;
	c->head = c->tail  = NULL;
	stop               = c->stopping;
	transfer           = c->transfer_wanted;
	c->transfer_wanted = false;
	pthread_mutex_unlock(&c->mtx);
	if (stop) {
		fail_all(list, SLUICE_ECLOSED, "flagd is shutting down");
		uv_timer_stop(&c->tick);
		uv_timer_stop(&c->notify_timer);
		c->notify_armed = false;
		uv_close((uv_handle_t *) &c->tick, NULL);
		uv_close((uv_handle_t *) &c->notify_timer, NULL);
		uv_close((uv_handle_t *) &c->async, NULL);
		raft_close(&c->raft, raft_closed_cb);
		return;
	}
	propose_queued(c, list);
	if (transfer && !c->transfer_pending &&
	    raft_state(&c->raft) == RAFT_LEADER) {
		c->transfer.data = c;
		if (raft_transfer(&c->raft, &c->transfer, 0, transfer_cb) ==
		    0) {
			c->transfer_pending = true;
			sl_log_notice("raft.transfer",
			    "node %llu hands leadership to another voter",
			    (unsigned long long) c->cfg->node_id);
		}
	}
	// A proposal may have changed nothing visible, but a fresh status
	// right after leadership moves keeps forwarding accurate.
	status_take(c);
}

static void
transfer_cb(struct raft_transfer *req)
{
	flagd_consensus *c = req->data;

	c->transfer_pending = false;
}

void
flagd_consensus_transfer(flagd_consensus *c)
{
	pthread_mutex_lock(&c->mtx);
	c->transfer_wanted = true;
	pthread_mutex_unlock(&c->mtx);
	uv_async_send(&c->async);
}

// ------------------------------------------------------------ membership

typedef struct member_req {
	struct raft_change change;
	flagd_consensus   *c;
	int                op;
	bool               assigning; // the add's second step
	uint64_t           id;
	flagd_member_cb    cb;
	void              *arg;
} member_req;

static void
member_done(member_req *m, int status)
{
	flagd_consensus *c = m->c;
	char             msg[300];
	int              code = SLUICE_OK;

	msg[0] = '\0';
	if (status == RAFT_NOTLEADER || status == RAFT_LEADERSHIPLOST) {
		code = SLUICE_EUNAVAIL;
		snprintf(msg, sizeof(msg),
		    "leadership moved during the configuration change of node "
		    "%llu; check flagctl cluster and run the command again",
		    (unsigned long long) m->id);
	} else if (status == RAFT_NOCONNECTION) {
		code = SLUICE_EUNAVAIL;
		snprintf(msg, sizeof(msg),
		    "node %llu did not catch up with the log (is it running "
		    "with --join and reachable?); it stays a non-voting "
		    "member until added again",
		    (unsigned long long) m->id);
	} else if (status != 0) {
		code = SLUICE_EUNAVAIL;
		snprintf(msg, sizeof(msg),
		    "configuration change of node %llu failed: %s (%s)",
		    (unsigned long long) m->id, raft_strerror(status),
		    raft_errmsg(&c->raft));
	} else {
		sl_log_notice("raft.member", "node %llu %s",
		    (unsigned long long) m->id,
		    m->op == SL_ACT_MEMBER_ADD ? "is a voter"
		                               : "is no longer a member");
	}
	m->cb(m->arg, code, msg);
	free(m);
	status_take(c);
}

static void
member_cb(struct raft_change *req, int status)
{
	member_req *m = req->data;

	if (status == 0 && m->op == SL_ACT_MEMBER_ADD && !m->assigning) {
		int rv;

		m->assigning   = true;
		m->change.data = m;
		if ((rv = raft_assign(&m->c->raft, &m->change, m->id,
		         RAFT_VOTER, member_cb)) != 0) {
			member_done(m, rv);
		}
		return;
	}
	member_done(m, status);
}

void
flagd_consensus_member(flagd_consensus *c, int op, uint64_t id,
    const char *address, flagd_member_cb cb, void *arg)
{
	const struct raft_server *sv = NULL;
	member_req               *m;
	int                       rv;

	if ((m = calloc(1, sizeof(*m))) == NULL) {
		cb(arg, SLUICE_ENOMEM, "out of memory");
		return;
	}
	m->c           = c;
	m->op          = op;
	m->id          = id;
	m->cb          = cb;
	m->arg         = arg;
	m->change.data = m;
	for (unsigned i = 0; i < c->raft.configuration.n; i++) {
		if (c->raft.configuration.servers[i].id == id) {
			sv = &c->raft.configuration.servers[i];
		}
	}
	if (op == SL_ACT_MEMBER_ADD) {
		if (sv != NULL && sv->role == RAFT_VOTER) {
			member_done(m, 0);
			return;
		}
		if (sv != NULL) {
			// Added before but never promoted: promote now.
			m->assigning = true;
			rv           = raft_assign(
			              &c->raft, &m->change, id, RAFT_VOTER, member_cb);
		} else {
			rv = raft_add(
			    &c->raft, &m->change, id, address, member_cb);
		}
	} else if (sv == NULL) {
		member_done(m, 0); // already gone
		return;
	} else {
		rv = raft_remove(&c->raft, &m->change, id, member_cb);
	}
	if (rv != 0) {
		member_done(m, rv);
	}
}

static void *
loop_main(void *arg)
{
	flagd_consensus *c = arg;

	(void) uv_run(&c->loop, UV_RUN_DEFAULT);
	return (NULL);
}

static int
raft_fail(flagd_consensus *c, const char *what, int rv)
{
	sl_log_err("raft.start", "%s: %s (%s)", what, raft_strerror(rv),
	    c->raft_init ? raft_errmsg(&c->raft) : c->io.errmsg);
	return (SLUICE_EIO);
}

// Tears down whatever open() built, when the thread never started.
static void
teardown(flagd_consensus *c)
{
	if (c->raft_init) {
		raft_close(&c->raft, raft_closed_cb);
	} else {
		if (c->io_init) {
			raft_uv_close(&c->io);
		}
		flagd_transport_free(c->transport);
		c->transport = NULL;
	}
	if (c->handles_init) {
		uv_close((uv_handle_t *) &c->tick, NULL);
		uv_close((uv_handle_t *) &c->notify_timer, NULL);
		uv_close((uv_handle_t *) &c->async, NULL);
	}
	if (c->loop_init) {
		(void) uv_run(&c->loop, UV_RUN_DEFAULT);
		(void) uv_loop_close(&c->loop);
	}
}

int
flagd_consensus_open(flagd_consensus **cp, const flagd_config *cfg,
    const flagd_consensus_fsm *fsm)
{
	flagd_consensus          *c;
	const flagd_peer         *self;
	struct raft_configuration conf;
	int                       rv;

	if ((self = flagd_config_peer(cfg, cfg->node_id)) == NULL) {
		sl_log_err("raft.config", "node %llu is not among the peers",
		    (unsigned long long) cfg->node_id);
		return (SLUICE_EINVAL);
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		return (SLUICE_ENOMEM);
	}
	c->cfg = cfg;
	c->fsm = *fsm;
	pthread_mutex_init(&c->mtx, NULL);
	snprintf(c->dir, sizeof(c->dir), "%s/raft", cfg->data_dir);
	// raft_uv_init wants the directory to exist.
	if (mkdir(c->dir, 0700) != 0 && errno != EEXIST) {
		sl_log_err("raft.dir", "cannot create %s: %s", c->dir,
		    strerror(errno));
		rv = SLUICE_EIO;
		goto fail;
	}
	if (uv_loop_init(&c->loop) != 0) {
		rv = SLUICE_EINTERNAL;
		goto fail;
	}
	c->loop_init = true;
	if (uv_async_init(&c->loop, &c->async, async_cb) != 0 ||
	    uv_timer_init(&c->loop, &c->tick) != 0 ||
	    uv_timer_init(&c->loop, &c->notify_timer) != 0) {
		rv = SLUICE_EINTERNAL;
		goto fail;
	}
	c->async.data        = c;
	c->tick.data         = c;
	c->notify_timer.data = c;
	c->handles_init      = true;
	// Peers are named by host name in the configuration; the wrapper
	// resolves them on each connect (transport.h).
	if ((rv = flagd_transport_alloc(
	         &c->transport, &c->loop, cfg->raft_listen)) != SLUICE_OK) {
		if (rv == SLUICE_EINVAL) {
			sl_log_err("raft.bind", "--raft %s is not IPV4:PORT",
			    cfg->raft_listen);
		}
		goto fail;
	}
	if ((rv = raft_uv_init(&c->io, &c->loop, c->dir,
	         flagd_transport_raft(c->transport))) != 0) {
		rv = raft_fail(c, "raft_uv_init", rv);
		goto fail;
	}
	c->io_init = true;
	// A damaged segment must stop flagd, not be renamed away: losing
	// log entries silently could lose acknowledged writes.
	raft_uv_set_auto_recovery(&c->io, false);
	raft_uv_set_segment_size(
	    &c->io, (size_t) (cfg->segment_kb / 4u * 4u) * 1024u);
	c->rfsm.version           = 3;
	c->rfsm.data              = c;
	c->rfsm.apply             = fsm_apply;
	c->rfsm.snapshot          = fsm_snapshot;
	c->rfsm.snapshot_finalize = fsm_snapshot_finalize;
	c->rfsm.restore           = fsm_restore;
	// libraft 0.15's libuv backend implements async_work (a version-2
	// field of struct raft_io) but still says version 1, and raft_init
	// refuses async snapshots below 2: say what it is. Without the
	// method, snapshots are serialised on the loop as before.
	if (c->io.async_work != NULL) {
		if (c->io.version < 2) {
			c->io.version = 2;
		}
		c->rfsm.snapshot_async = fsm_snapshot_async;
	}
	if ((rv = raft_init(
	         &c->raft, &c->io, &c->rfsm, self->id, self->raft)) != 0) {
		rv = raft_fail(c, "raft_init", rv);
		goto fail;
	}
	c->raft_init = true;
	c->raft.data = c;
	raft_set_election_timeout(&c->raft, (unsigned) cfg->election_ms);
	raft_set_heartbeat_timeout(
	    &c->raft, (unsigned) cfg->raft_heartbeat_ms);
	// Without pre-vote a node back from a partition deposes a healthy
	// leader, and failover takes about three election timeouts.
	raft_set_pre_vote(&c->raft, true);
	raft_set_snapshot_threshold(
	    &c->raft, (unsigned) cfg->snapshot_threshold);
	raft_set_snapshot_trailing(
	    &c->raft, (unsigned) cfg->snapshot_trailing);

	raft_configuration_init(&conf);
	for (size_t i = 0; i < cfg->npeers; i++) {
		if ((rv = raft_configuration_add(&conf, cfg->peers[i].id,
		         cfg->peers[i].raft, RAFT_VOTER)) != 0) {
			raft_configuration_close(&conf);
			rv = raft_fail(c, "configuration", rv);
			goto fail;
		}
	}
	// Bootstrapping succeeds only on a pristine directory; afterwards
	// the configuration comes from the log. A joining node has none
	// until the leader, having added it, sends the log.
	rv = cfg->join ? RAFT_CANTBOOTSTRAP : raft_bootstrap(&c->raft, &conf);
	raft_configuration_close(&conf);
	if (cfg->join) {
		sl_log_notice("raft.join",
		    "node %llu waits to be added (flagctl cluster add %llu "
		    "%s@%s)",
		    (unsigned long long) self->id,
		    (unsigned long long) self->id, self->raft, self->api);
	} else if (rv == 0) {
		sl_log_notice("raft.bootstrap",
		    "bootstrapped a cluster of %zu voters in %s", cfg->npeers,
		    c->dir);
	} else if (rv != RAFT_CANTBOOTSTRAP) {
		rv = raft_fail(c, "raft_bootstrap", rv);
		goto fail;
	}
	if ((rv = raft_start(&c->raft)) != 0) {
		rv = raft_fail(c, "raft_start", rv);
		goto fail;
	}
	{
		uint64_t every = cfg->raft_heartbeat_ms / 2;
		if (every < 5) {
			every = 5;
		}
		if (every > 25) {
			every = 25;
		}
		uv_timer_start(&c->tick, tick_cb, 0, every);
	}
	// The FSM's callbacks reach this handle through the node (e.g. the
	// key bootstrap proposes from the first tick), so it must be
	// published before the loop thread runs: the one out-parameter
	// written ahead of success, and cleared again if the start fails.
	*cp = c;
	if (pthread_create(&c->thread, NULL, loop_main, c) != 0) {
		*cp = NULL;
		rv  = SLUICE_EINTERNAL;
		goto fail;
	}
	c->thread_started = true;
	sl_log_notice("raft.start",
	    "node %llu at %s (listening on %s), %zu voters, election %llu "
	    "ms, heartbeat %llu ms, pre-vote on",
	    (unsigned long long) self->id, self->raft, cfg->raft_listen,
	    cfg->npeers, (unsigned long long) cfg->election_ms,
	    (unsigned long long) cfg->raft_heartbeat_ms);
	return (SLUICE_OK);
fail:
	teardown(c);
	pthread_mutex_destroy(&c->mtx);
	free(c);
	return (rv);
}

void
flagd_consensus_stop(flagd_consensus *c)
{
	if (c == NULL || !c->thread_started || c->joined) {
		return;
	}
	pthread_mutex_lock(&c->mtx);
	c->stopping = true;
	pthread_mutex_unlock(&c->mtx);
	uv_async_send(&c->async);
	pthread_join(c->thread, NULL);
	c->joined = true;
}

void
flagd_consensus_close(flagd_consensus *c)
{
	if (c == NULL) {
		return;
	}
	flagd_consensus_stop(c);
	(void) uv_loop_close(&c->loop);
	pthread_mutex_destroy(&c->mtx);
	free(c);
}
