// SPDX-License-Identifier: MIT
//
// api.c — the REP side of flagd. Each context loops: receive a request,
// decode it with a size limit, answer it, send the reply. Reads are served
// from an LMDB read transaction on the nng thread that received them.
// A write is handed to the node's writer and the context waits, without a
// pending aio, until the writer's callback sends the reply.

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>

#include "api.h"
#include "consensus.h"
#include "codec.h"
#include "envelope.h"
#include "sock.h"

// Requests above SL_MAX_REQUEST_BYTES get an ETOOBIG reply; nng drops the
// connection only above this hard cap, which bounds memory per request.
#define API_RECV_MAX (1024u * 1024u)
#define API_AUDIT_DEFAULT 500u
#define API_AUDIT_MAX 5000u
#define API_WAIT_DEFAULT_MS 5000u
#define API_WAIT_MAX_MS 60000u
// A forwarded write waits for the leader's answer this long by default:
// long enough to ride out one leader election.
#define API_FORWARD_DEFAULT_MS 10000u
// At close, how long the API's pipes may take to end themselves (sock.c)
// before the socket is closed: a client still sending ends its pipe at
// its next request at once; an idle one is waited for this long.
#define API_PIPES_GRACE_MS 500u

typedef enum {
	CTX_RECV,
	CTX_WRITE,
	CTX_SEND,
	CTX_FWD_SEND,  // a write forwarded to the leader, being sent
	CTX_FWD_RECV,  // waiting for the leader's reply
	CTX_FWD_PAUSE, // no leader to forward to yet: waiting (held_req)
	CTX_WAIT, // parked until the node applies wait_rev (no thread held)
} ctx_state;

typedef struct api_ctx {
	flagd_api   *api;
	nng_ctx      ctx;
	nng_aio     *aio;
	nng_aio     *fwd_aio;
	nng_ctx      fwd_ctx;
	uint64_t     fwd_leader;
	char         fwd_url[256]; // the leader's API, for messages
	nng_duration fwd_budget;
	uint64_t     fwd_until_ms; // monotonic: re-route until then
	ctx_state    state;
	uint64_t     request_id;
	bool         open;
	// CTX_WAIT: what the context waits for and what it answers then.
	uint64_t             wait_rev;
	uint64_t             wait_until_ms; // monotonic
	Sluice__V1__Request *held_req;      // a read with min_revision, a
	                                    // write waiting for a leader, or
	nng_msg *held_reply;                // a forwarded write's reply
} api_ctx;

struct flagd_api {
	flagd_node *node;
	nng_socket  sock;
	bool        sock_open;
	sl_sock     k; // sock once listening: closed through sock.c
	api_ctx    *ctxs;
	size_t      nctx;
	size_t      ncap;
	// One REQ socket per peer (id and API URL), dialled on first use,
	// for forwarding. Members come and go at run time: room for twice
	// the most there can be at once.
	nng_mtx   *fwd_mtx;
	nng_socket fwd[2 * FLAGD_PEERS_MAX];
	bool       fwd_open[2 * FLAGD_PEERS_MAX];
	uint64_t   fwd_id[2 * FLAGD_PEERS_MAX];
	char       fwd_url[2 * FLAGD_PEERS_MAX][256];
};

// ------------------------------------------------------------- replies

static void
reply_error(
    Sluice__V1__Reply *rep, Sluice__V1__Error *e, int code, const char *msg)
{
	e->code          = (uint32_t) code;
	e->message       = (char *) (uintptr_t) msg;
	rep->result_case = SLUICE__V1__REPLY__RESULT_ERROR;
	rep->error       = e;
}

// Packs rep into a malloc'd buffer. On failure, packs a bare EINTERNAL.
static int
pack_reply(const Sluice__V1__Reply *rep, uint8_t **bufp, size_t *lenp)
{
	return (sl_pack(&rep->base, bufp, lenp));
}

static flagd_op
op_of(const Sluice__V1__Request *req)
{
	switch (req->op_case) {
	case SLUICE__V1__REQUEST__OP_WRITE:
		return (FLAGD_OP_WRITE);
	case SLUICE__V1__REQUEST__OP_GET:
		return (FLAGD_OP_GET);
	case SLUICE__V1__REQUEST__OP_LIST:
		return (FLAGD_OP_LIST);
	case SLUICE__V1__REQUEST__OP_SNAPSHOT:
		return (FLAGD_OP_SNAPSHOT);
	case SLUICE__V1__REQUEST__OP_AUDIT:
		return (FLAGD_OP_AUDIT);
	case SLUICE__V1__REQUEST__OP_KEYS:
		return (FLAGD_OP_KEYS);
	case SLUICE__V1__REQUEST__OP_INFO:
		return (FLAGD_OP_INFO);
	case SLUICE__V1__REQUEST__OP_ACK:
		return (FLAGD_OP_ACK);
	case SLUICE__V1__REQUEST__OP_CLIENTS:
		return (FLAGD_OP_CLIENTS);
	case SLUICE__V1__REQUEST__OP_CLUSTER:
		return (FLAGD_OP_CLUSTER);
	case SLUICE__V1__REQUEST__OP__NOT_SET:
	case _SLUICE__V1__REQUEST__OP__CASE_IS_INT_SIZE:
		break;
	}
	return (FLAGD_OP_INVALID);
}

// Answers a read request into rep. Everything rep points at is owned by
// the caller's cleanup (*rsp/*esp/*ksp arrays), freed after packing.
typedef struct read_scratch {
	Sluice__V1__Rollout    **rs;
	size_t                   nrs;
	Sluice__V1__Rollout     *one;
	Sluice__V1__AuditEntry **es;
	size_t                   nes;
	Sluice__V1__Key        **ks;
	size_t                   nks;
	Sluice__V1__ClientList   cl; // when has_cl
	bool                     has_cl;
	Sluice__V1__AckResult    ack;
	char                     msg[256];
	Sluice__V1__ClusterInfo  cluster;
	Sluice__V1__NodeStatus   nodes[FLAGD_PEERS_MAX];
	Sluice__V1__NodeStatus  *node_ptrs[FLAGD_PEERS_MAX];
	char                     raft_buf[FLAGD_PEERS_MAX][200];
	char                     api_buf[FLAGD_PEERS_MAX][256];
} read_scratch;

static void
scratch_fini(read_scratch *s)
{
	flagd_rollouts_free(s->rs, s->nrs);
	if (s->one != NULL) {
		sluice__v1__rollout__free_unpacked(s->one, NULL);
	}
	flagd_audit_free(s->es, s->nes);
	flagd_keys_free(s->ks, s->nks);
	if (s->has_cl) {
		flagd_clients_list_free(&s->cl);
	}
}

// Client acks and the client list: answered from the node's in-memory
// registry (clients.c), not from the store; not replicated.
static int
answer_clients(flagd_node *node, const Sluice__V1__Request *req,
    Sluice__V1__Reply *rep, read_scratch *s)
{
	flagd_clients *reg = flagd_node_clients(node);
	bool           verified;
	int            rv;

	rep->revision = flagd_store_revision(flagd_node_store(node));
	if (req->op_case == SLUICE__V1__REQUEST__OP_ACK) {
		if ((rv = flagd_clients_ack(reg, flagd_node_store(node),
		         flagd_node_config(node)->skew_ms, req->ack,
		         sl_now_ms(), &verified, s->msg, sizeof(s->msg))) !=
		    SLUICE_OK) {
			return (rv);
		}
		sluice__v1__ack_result__init(&s->ack);
		s->ack.verified    = verified;
		s->ack.liveness_ms = flagd_clients_liveness_ms(reg);
		rep->result_case   = SLUICE__V1__REPLY__RESULT_ACK;
		rep->ack           = &s->ack;
		return (SLUICE_OK);
	}
	sluice__v1__client_list__init(&s->cl);
	if ((rv = flagd_clients_list(reg, sl_now_ms(), &s->cl)) != SLUICE_OK) {
		return (rv);
	}
	s->has_cl        = true;
	s->cl.node_id    = flagd_node_config(node)->node_id;
	rep->result_case = SLUICE__V1__REPLY__RESULT_CLIENTS;
	rep->clients     = &s->cl;
	return (SLUICE_OK);
}

// The API URL of node id: from libraft's configuration (a member added
// at run time carries it there), else from --peers; "" if unknown.
static void
peer_api_url(flagd_node *node, const flagd_consensus_status *st, uint64_t id,
    char *url, size_t len)
{
	const flagd_peer *p = flagd_config_peer(flagd_node_config(node), id);

	url[0] = '\0';
	for (size_t i = 0; i < st->npeers; i++) {
		if (st->peers[i].id == id && st->peers[i].api[0] != '\0') {
			snprintf(url, len, "%s", st->peers[i].api);
			return;
		}
	}
	if (p != NULL) {
		snprintf(url, len, "%s", p->api);
	}
}

// The cluster as this node sees it: the members of libraft's current
// configuration (before the first configuration is known, --peers). Its
// own row is exact; of the others it knows the leader, and (when it
// leads) their replication progress.
static void
answer_cluster(flagd_node *node, Sluice__V1__Reply *rep, read_scratch *s)
{
	const flagd_config    *cfg = flagd_node_config(node);
	flagd_consensus_status st;
	uint64_t               now = sl_mono_ms();
	size_t                 n;

	flagd_consensus_status_get(flagd_node_consensus(node), &st);
	if (st.npeers == 0) {
		// Not started yet, or a joining node not yet added.
		for (size_t i = 0; i < cfg->npeers; i++) {
			flagd_peer_status *ps = &st.peers[i];
			memset(ps, 0, sizeof(*ps));
			ps->id = cfg->peers[i].id;
			snprintf(ps->raft, sizeof(ps->raft), "%s",
			    cfg->peers[i].raft);
			ps->member = cfg->join && ps->id == cfg->node_id
			    ? FLAGD_MEMBER_SPARE
			    : FLAGD_MEMBER_VOTER;
		}
		st.npeers = cfg->npeers;
	}
	sluice__v1__cluster_info__init(&s->cluster);
	s->cluster.node_id             = cfg->node_id;
	s->cluster.leader_id           = st.leader_id;
	s->cluster.term                = st.term;
	s->cluster.election_timeout_ms = cfg->election_ms;
	s->cluster.heartbeat_ms        = cfg->raft_heartbeat_ms;
	n = st.npeers < FLAGD_PEERS_MAX ? st.npeers : FLAGD_PEERS_MAX;
	for (size_t i = 0; i < n; i++) {
		Sluice__V1__NodeStatus  *ns = &s->nodes[i];
		const flagd_peer_status *p  = &st.peers[i];

		sluice__v1__node_status__init(ns);
		ns->id = p->id;
		snprintf(
		    s->raft_buf[i], sizeof(s->raft_buf[i]), "%s", p->raft);
		peer_api_url(
		    node, &st, p->id, s->api_buf[i], sizeof(s->api_buf[i]));
		ns->raft_address = s->raft_buf[i];
		ns->api_url      = s->api_buf[i];
		ns->role         = (char *) (uintptr_t) "unknown";
		if (p->member != FLAGD_MEMBER_VOTER) {
			// Being added: not yet caught up or not yet promoted.
			ns->role = (char *) (uintptr_t) (p->member ==
			            FLAGD_MEMBER_STANDBY
			        ? "standby"
			        : "spare");
		}
		if (p->id == cfg->node_id) {
			ns->self = true;
			if (p->member == FLAGD_MEMBER_VOTER) {
				ns->role =
				    (char *) (uintptr_t) flagd_role_name(
				        st.role);
			}
			ns->term          = st.term;
			ns->commit_index  = st.commit_index;
			ns->applied_index = st.applied_index;
			ns->match_index   = st.last_index;
			if (st.role != FLAGD_ROLE_LEADER &&
			    st.contact_mono_ms != 0 &&
			    now > st.contact_mono_ms) {
				ns->last_contact_ms = now - st.contact_mono_ms;
			}
		} else if (p->id == st.leader_id) {
			ns->role = (char *) (uintptr_t) "leader";
			ns->term = st.term;
		} else if (st.role == FLAGD_ROLE_LEADER) {
			if (p->member == FLAGD_MEMBER_VOTER) {
				ns->role = (char *) (uintptr_t) (p->recent
				        ? "follower"
				        : "unreachable");
			}
			ns->match_index = p->match_index;
		}
		s->node_ptrs[i] = ns;
	}
	s->cluster.n_nodes = n;
	s->cluster.nodes   = s->node_ptrs;
	rep->result_case   = SLUICE__V1__REPLY__RESULT_CLUSTER;
	rep->cluster       = &s->cluster;
}

static int
answer_read(flagd_node *node, const Sluice__V1__Request *req,
    Sluice__V1__Reply *rep, read_scratch *s, Sluice__V1__RolloutList *list,
    Sluice__V1__Snapshot *snap, Sluice__V1__AuditPage *page,
    Sluice__V1__KeyList *keys, Sluice__V1__NodeInfo *info)
{
	flagd_txn *t;
	int        rv;

	// The context waited (parked, holding no thread) before getting
	// here; a revision still not applied is a timeout.
	if (req->min_revision > 0 &&
	    atomic_load(&flagd_node_metrics(node)->revision) <
	        req->min_revision) {
		snprintf(s->msg, sizeof(s->msg),
		    "revision %llu not reached within the request's deadline",
		    (unsigned long long) req->min_revision);
		return (SLUICE_ETIMEDOUT);
	}
	if (req->op_case == SLUICE__V1__REQUEST__OP_CLUSTER) {
		answer_cluster(node, rep, s);
		rep->revision = flagd_store_revision(flagd_node_store(node));
		return (SLUICE_OK);
	}
	if (req->op_case == SLUICE__V1__REQUEST__OP_INFO) {
		const flagd_config *cfg = flagd_node_config(node);
		info->node_id           = cfg->node_id;
		info->api_url           = cfg->api_url;
		info->publish_url =
		    (char *) (uintptr_t) flagd_node_publish_url(node);
		info->version    = (char *) (uintptr_t) SLUICE_VERSION;
		info->started_ms = flagd_node_started_ms(node);
		rep->result_case = SLUICE__V1__REPLY__RESULT_INFO;
		rep->info        = info;
		rep->revision = flagd_store_revision(flagd_node_store(node));
		return (SLUICE_OK);
	}
	if (req->op_case == SLUICE__V1__REQUEST__OP_ACK ||
	    req->op_case == SLUICE__V1__REQUEST__OP_CLIENTS) {
		return (answer_clients(node, req, rep, s));
	}
	if ((rv = flagd_store_begin(flagd_node_store(node), false, &t)) !=
	    SLUICE_OK) {
		snprintf(
		    s->msg, sizeof(s->msg), "store: %s", sluice_strerror(rv));
		return (rv);
	}
	rep->revision = flagd_txn_revision(t);
	switch (req->op_case) {
	case SLUICE__V1__REQUEST__OP_GET: {
		const char *name = req->get->name;
		rv               = flagd_txn_get_rollout(t, name, &s->one);
		if (rv == SLUICE_ENOENT) {
			snprintf(s->msg, sizeof(s->msg),
			    "rollout \"%.64s\" not found", name);
			break;
		}
		if (rv == SLUICE_OK) {
			rep->result_case = SLUICE__V1__REPLY__RESULT_ROLLOUT;
			rep->rollout     = s->one;
		}
		break;
	}
	case SLUICE__V1__REQUEST__OP_LIST:
	case SLUICE__V1__REQUEST__OP_SNAPSHOT:
		rv = flagd_txn_list_rollouts(t, &s->rs, &s->nrs);
		if (rv != SLUICE_OK) {
			break;
		}
		if (req->op_case == SLUICE__V1__REQUEST__OP_LIST) {
			list->n_rollouts = s->nrs;
			list->rollouts   = s->rs;
			rep->result_case = SLUICE__V1__REPLY__RESULT_LIST;
			rep->list        = list;
		} else {
			snap->revision   = rep->revision;
			snap->n_rollouts = s->nrs;
			snap->rollouts   = s->rs;
			rep->result_case = SLUICE__V1__REPLY__RESULT_SNAPSHOT;
			rep->snapshot    = snap;
		}
		break;
	case SLUICE__V1__REQUEST__OP_AUDIT: {
		uint32_t limit = req->audit->limit;
		bool     more  = false;
		if (limit == 0) {
			limit = API_AUDIT_DEFAULT;
		}
		if (limit > API_AUDIT_MAX) {
			limit = API_AUDIT_MAX;
		}
		rv = flagd_txn_audit_list(t, req->audit->rollout,
		    req->audit->after_revision, limit, &s->es, &s->nes, &more);
		if (rv == SLUICE_OK) {
			page->n_entries  = s->nes;
			page->entries    = s->es;
			page->more       = more;
			rep->result_case = SLUICE__V1__REPLY__RESULT_AUDIT;
			rep->audit       = page;
		}
		break;
	}
	case SLUICE__V1__REQUEST__OP_KEYS:
		rv = flagd_txn_list_keys(t, &s->ks, &s->nks);
		if (rv == SLUICE_OK) {
			keys->n_keys     = s->nks;
			keys->keys       = s->ks;
			rep->result_case = SLUICE__V1__REPLY__RESULT_KEYS;
			rep->keys        = keys;
		}
		break;
	case SLUICE__V1__REQUEST__OP_WRITE:
	case SLUICE__V1__REQUEST__OP_INFO:
	case SLUICE__V1__REQUEST__OP_ACK:
	case SLUICE__V1__REQUEST__OP_CLIENTS:
	case SLUICE__V1__REQUEST__OP_CLUSTER:
	case SLUICE__V1__REQUEST__OP__NOT_SET:
	case _SLUICE__V1__REQUEST__OP__CASE_IS_INT_SIZE:
		snprintf(s->msg, sizeof(s->msg), "request names no operation");
		rv = SLUICE_EPROTO;
		break;
	}
	flagd_txn_abort(t);
	if (rv != SLUICE_OK && s->msg[0] == '\0') {
		snprintf(s->msg, sizeof(s->msg), "%s", sluice_strerror(rv));
	}
	return (rv);
}

// Whether this node leads, and whether its answers are stale (no leader
// contact for longer than an election timeout).
static void
mark_reply(flagd_node *node, Sluice__V1__Reply *rep)
{
	flagd_consensus_status st;

	flagd_consensus_status_get(flagd_node_consensus(node), &st);
	rep->leader = st.role == FLAGD_ROLE_LEADER;
	rep->stale  = flagd_node_stale(node, &st);
}

// How long a node may wait on a client's behalf (a revision to apply, the
// leader's answer) out of the client's deadline: its answer — even "not
// reached" or "timed out" — must arrive while the client still listens.
static uint64_t
answer_within(uint64_t deadline_ms)
{
	return (deadline_ms - (deadline_ms / 10 > 50 ? 50 : deadline_ms / 10));
}

// Validates the header; SLUICE_OK or an error with msg.
static int
check_header(const Sluice__V1__Request *req, char *msg, size_t len)
{
	if (req->header == NULL) {
		snprintf(msg, len, "request has no header");
		return (SLUICE_EPROTO);
	}
	if (req->header->api_version != SL_API_VERSION) {
		snprintf(msg, len,
		    "API version %u is not supported (flagd speaks %u)",
		    req->header->api_version, SL_API_VERSION);
		return (SLUICE_EVERSION);
	}
	return (SLUICE_OK);
}

// Handles a decoded read request, or a request that failed to decode
// (req == NULL, code = decode error), into a packed reply.
static int
handle_read(flagd_node *node, const Sluice__V1__Request *req, int code,
    uint8_t **bufp, size_t *lenp)
{
	flagd_metrics          *m   = flagd_node_metrics(node);
	Sluice__V1__Reply       rep = SLUICE__V1__REPLY__INIT;
	Sluice__V1__Error       err;
	Sluice__V1__RolloutList list = SLUICE__V1__ROLLOUT_LIST__INIT;
	Sluice__V1__Snapshot    snap = SLUICE__V1__SNAPSHOT__INIT;
	Sluice__V1__AuditPage   page = SLUICE__V1__AUDIT_PAGE__INIT;
	Sluice__V1__KeyList     keys = SLUICE__V1__KEY_LIST__INIT;
	Sluice__V1__NodeInfo    info;
	read_scratch            s;
	int                     rv;

	// The _INIT macros of messages with strings cast away const.
	sluice__v1__error__init(&err);
	sluice__v1__node_info__init(&info);
	memset(&s, 0, sizeof(s));
	mark_reply(node, &rep);
	if (req == NULL) {
		atomic_fetch_add(&m->bad_input, 1);
		atomic_fetch_add(&m->requests[FLAGD_OP_INVALID], 1);
		snprintf(s.msg, sizeof(s.msg),
		    code == SLUICE_ETOOBIG
		        ? "request exceeds the size limit"
		        : "request is not a well-formed sluice message");
		rv = code;
	} else {
		rep.request_id =
		    req->header != NULL ? req->header->request_id : 0;
		atomic_fetch_add(&m->requests[op_of(req)], 1);
		if ((rv = check_header(req, s.msg, sizeof(s.msg))) ==
		    SLUICE_OK) {
			rv = answer_read(node, req, &rep, &s, &list, &snap,
			    &page, &keys, &info);
		} else {
			atomic_fetch_add(&m->bad_input, 1);
		}
	}
	if (rv != SLUICE_OK) {
		flagd_metrics_count_error(m, rv);
		rep.revision = atomic_load(&m->revision);
		reply_error(&rep, &err, rv, s.msg);
	}
	rv = pack_reply(&rep, bufp, lenp);
	scratch_fini(&s);
	return (rv);
}

int
flagd_api_handle_read(flagd_node *node, const void *buf, size_t len,
    uint8_t **replyp, size_t *replylenp)
{
	Sluice__V1__Request *req = NULL;
	int                  rv;

	rv = sl_request_decode(buf, len, &req);
	if (rv == SLUICE_OK && req->op_case == SLUICE__V1__REQUEST__OP_WRITE) {
		sluice__v1__request__free_unpacked(req, NULL);
		return (SLUICE_EINVAL);
	}
	rv = handle_read(
	    node, rv == SLUICE_OK ? req : NULL, rv, replyp, replylenp);
	if (req != NULL) {
		sluice__v1__request__free_unpacked(req, NULL);
	}
	return (rv);
}

// ------------------------------------------------------------- contexts

static void
ctx_send(api_ctx *c, uint8_t *buf, size_t len)
{
	nng_msg *msg;

	if (nng_msg_alloc(&msg, len) != 0) {
		free(buf);
		sl_log_err("api.alloc", "cannot allocate a reply");
		c->state = CTX_RECV;
		nng_ctx_recv(c->ctx, c->aio);
		return;
	}
	memcpy(nng_msg_body(msg), buf, len);
	free(buf);
	nng_aio_set_msg(c->aio, msg);
	c->state = CTX_SEND;
	nng_ctx_send(c->ctx, c->aio);
}

static void
write_done(void *arg, const flagd_result *res)
{
	api_ctx                *c   = arg;
	flagd_metrics          *m   = flagd_node_metrics(c->api->node);
	Sluice__V1__Reply       rep = SLUICE__V1__REPLY__INIT;
	Sluice__V1__Error       err;
	Sluice__V1__WriteResult wr = SLUICE__V1__WRITE_RESULT__INIT;
	uint8_t                *buf;
	size_t                  len;

	sluice__v1__error__init(&err);
	rep.request_id = c->request_id;
	mark_reply(c->api->node, &rep);
	if (res->code == SLUICE_OK) {
		rep.revision    = res->revision;
		wr.changed      = res->changed;
		wr.rollout      = res->rollout;
		rep.result_case = SLUICE__V1__REPLY__RESULT_WRITE;
		rep.write       = &wr;
	} else {
		rep.revision = atomic_load(&m->revision);
		reply_error(&rep, &err, res->code, res->msg);
	}
	if (pack_reply(&rep, &buf, &len) != SLUICE_OK) {
		sl_log_err("api.pack", "cannot pack a write reply");
		c->state = CTX_RECV;
		nng_ctx_recv(c->ctx, c->aio);
		return;
	}
	ctx_send(c, buf, len);
}

// Replies to the client with an error (write path).
static void
reply_write_error(api_ctx *c, int code, const char *why)
{
	flagd_node       *node = c->api->node;
	flagd_metrics    *m    = flagd_node_metrics(node);
	Sluice__V1__Reply rep  = SLUICE__V1__REPLY__INIT;
	Sluice__V1__Error err;
	uint8_t          *buf;
	size_t            len;

	sluice__v1__error__init(&err);
	flagd_metrics_count_error(m, code);
	rep.request_id = c->request_id;
	mark_reply(node, &rep);
	rep.revision = atomic_load(&m->revision);
	reply_error(&rep, &err, code, why);
	if (pack_reply(&rep, &buf, &len) != SLUICE_OK) {
		sl_log_err("api.pack", "cannot pack a reply");
		c->state = CTX_RECV;
		nng_ctx_recv(c->ctx, c->aio);
		return;
	}
	ctx_send(c, buf, len);
}

static int
fwd_socket(flagd_api *a, uint64_t id, const char *url, nng_socket *sp)
{
	size_t i;
	size_t free_slot = SIZE_MAX;
	int    rv        = 0;

	nng_mtx_lock(a->fwd_mtx);
	for (i = 0; i < 2 * FLAGD_PEERS_MAX; i++) {
		if (a->fwd_open[i] && a->fwd_id[i] == id &&
		    strcmp(a->fwd_url[i], url) == 0) {
			break;
		}
		if (!a->fwd_open[i] && free_slot == SIZE_MAX) {
			free_slot = i;
		}
	}
	if (i == 2 * FLAGD_PEERS_MAX) {
		if ((i = free_slot) == SIZE_MAX) {
			nng_mtx_unlock(a->fwd_mtx);
			return (NNG_ENOMEM);
		}
		if ((rv = nng_req0_open(&a->fwd[i])) == 0) {
			// A resent write would come back as a replay: never
			// resend, let the caller see the failure.
			(void) nng_socket_set_ms(a->fwd[i],
			    NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
			(void) nng_socket_set_ms(
			    a->fwd[i], NNG_OPT_RECONNMINT, 20);
			(void) nng_socket_set_ms(
			    a->fwd[i], NNG_OPT_RECONNMAXT, 500);
			(void) nng_socket_set_size(
			    a->fwd[i], NNG_OPT_RECVMAXSZ, API_RECV_MAX);
			if ((rv = nng_dial(a->fwd[i], url, NULL,
			         NNG_FLAG_NONBLOCK)) != 0) {
				nng_close(a->fwd[i]);
			} else {
				a->fwd_open[i] = true;
				a->fwd_id[i]   = id;
				snprintf(a->fwd_url[i], sizeof(a->fwd_url[i]),
				    "%s", url);
			}
		}
	}
	*sp = a->fwd[i];
	nng_mtx_unlock(a->fwd_mtx);
	return (rv);
}

// A forwarded write not taken by the leader within a step is routed again
// (the leader may have died: a new one is elected within about two
// election timeouts, and followers learn it at once); a write waiting for
// a leader checks again every retry interval.
#define API_FWD_STEP_MS 50
#define API_FWD_RETRY_MS 10

// Sends the write on to the leader over its API and relays the answer.
// The request is re-packed with header.forwarded set, so the leader never
// forwards it again; the signed body travels unchanged.
static void
forward_write(api_ctx *c, Sluice__V1__Request *req, uint64_t leader)
{
	flagd_api             *a = c->api;
	flagd_consensus_status st;
	nng_socket             sock;
	nng_msg               *msg;
	uint8_t               *buf;
	size_t                 len;
	char                   why[400];
	nng_duration           budget = API_FORWARD_DEFAULT_MS;

	flagd_consensus_status_get(flagd_node_consensus(a->node), &st);
	peer_api_url(a->node, &st, leader, c->fwd_url, sizeof(c->fwd_url));
	if (c->fwd_url[0] == '\0') {
		snprintf(why, sizeof(why),
		    "the API URL of leader %llu is not known here (not in "
		    "--peers nor in the configuration)",
		    (unsigned long long) leader);
		reply_write_error(c, SLUICE_EUNAVAIL, why);
		return;
	}
	if (req->header->deadline_ms > 0 &&
	    req->header->deadline_ms < API_WAIT_MAX_MS) {
		budget =
		    (nng_duration) answer_within(req->header->deadline_ms);
	}
	req->header->forwarded = true;
	if (sl_pack(&req->base, &buf, &len) != SLUICE_OK) {
		reply_write_error(c, SLUICE_ENOMEM, "out of memory");
		return;
	}
	if (fwd_socket(a, leader, c->fwd_url, &sock) != 0 ||
	    nng_ctx_open(&c->fwd_ctx, sock) != 0) {
		free(buf);
		snprintf(why, sizeof(why),
		    "cannot forward the write to leader %llu at %s",
		    (unsigned long long) leader, c->fwd_url);
		reply_write_error(c, SLUICE_EUNAVAIL, why);
		return;
	}
	if (nng_msg_alloc(&msg, len) != 0) {
		free(buf);
		nng_ctx_close(c->fwd_ctx);
		reply_write_error(c, SLUICE_ENOMEM, "out of memory");
		return;
	}
	memcpy(nng_msg_body(msg), buf, len);
	free(buf);
	atomic_fetch_add(&flagd_node_metrics(a->node)->writes_forwarded, 1);
	c->fwd_leader = leader;
	c->fwd_budget = budget;
	c->state      = CTX_FWD_SEND;
	nng_aio_set_msg(c->fwd_aio, msg);
	// A live leader takes the message at once; one that does not within
	// a step may be dead: the write is routed again (reroute_write).
	nng_aio_set_timeout(c->fwd_aio, API_FWD_STEP_MS);
	nng_ctx_send(c->fwd_ctx, c->fwd_aio);
}

// How long a follower holds a forwarded write's reply for the revision to
// be applied locally (read your writes on the node you wrote through).
#define API_FWD_APPLY_WAIT_MS 1000u

static uint64_t fwd_reply_revision(nng_msg *msg);
static void     reroute_write(api_ctx *c, Sluice__V1__Request *req);
static void     park(api_ctx *c, uint64_t rev, uint64_t wait_ms);
static void answer_and_send(api_ctx *c, Sluice__V1__Request *req, int code);

static void
fwd_cb(void *arg)
{
	api_ctx    *c   = arg;
	const char *url = c->fwd_url;
	char        why[500];
	int         rv = nng_aio_result(c->fwd_aio);

	if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
		if (c->state == CTX_FWD_SEND) {
			nng_msg_free(nng_aio_get_msg(c->fwd_aio));
		}
		if (c->state == CTX_FWD_PAUSE && c->held_req != NULL) {
			sluice__v1__request__free_unpacked(c->held_req, NULL);
			c->held_req = NULL;
		}
		return; // shutting down
	}
	switch (c->state) {
	case CTX_FWD_PAUSE: {
		Sluice__V1__Request *req = c->held_req;

		c->held_req = NULL;
		reroute_write(c, req);
		return;
	}
	case CTX_FWD_SEND:
		if (rv != 0 && sl_mono_ms() < c->fwd_until_ms) {
			// Never delivered, so nothing was written: route it
			// again, to whoever leads now.
			nng_msg             *msg = nng_aio_get_msg(c->fwd_aio);
			Sluice__V1__Request *req = NULL;

			nng_ctx_close(c->fwd_ctx);
			if (sl_request_decode(nng_msg_body(msg),
			        nng_msg_len(msg), &req) == SLUICE_OK &&
			    req->header != NULL) {
				nng_msg_free(msg);
				req->header->forwarded = false;
				atomic_fetch_add(
				    &flagd_node_metrics(c->api->node)
				         ->writes_rerouted,
				    1);
				reroute_write(c, req);
				return;
			}
			if (req != NULL) {
				sluice__v1__request__free_unpacked(req, NULL);
			}
			nng_msg_free(msg);
			reply_write_error(c, SLUICE_EINTERNAL,
			    "cannot re-read a forwarded write");
			return;
		}
		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(c->fwd_aio));
			nng_ctx_close(c->fwd_ctx);
			snprintf(why, sizeof(why),
			    "cannot reach leader %llu at %s to forward the "
			    "write: %s; nothing was written",
			    (unsigned long long) c->fwd_leader, url,
			    nng_strerror(rv));
			reply_write_error(c, SLUICE_EUNAVAIL, why);
			return;
		}
		c->state = CTX_FWD_RECV;
		nng_aio_set_timeout(c->fwd_aio, c->fwd_budget);
		nng_ctx_recv(c->fwd_ctx, c->fwd_aio);
		return;
	case CTX_FWD_RECV:
		nng_ctx_close(c->fwd_ctx);
		if (rv != 0) {
			snprintf(why, sizeof(why),
			    "leader %llu at %s did not answer the forwarded "
			    "write (%s); it may or may not have been "
			    "committed",
			    (unsigned long long) c->fwd_leader, url,
			    nng_strerror(rv));
			reply_write_error(c,
			    rv == NNG_ETIMEDOUT ? SLUICE_ETIMEDOUT
			                        : SLUICE_EUNAVAIL,
			    why);
			return;
		}
		// The leader's reply goes back as it came, once this node has
		// applied the revision it names: a client that wrote through
		// this node and then reads from it sees its own write.
		{
			nng_msg *msg = nng_aio_get_msg(c->fwd_aio);
			uint64_t rev = fwd_reply_revision(msg);
			if (rev >
			    atomic_load(
			        &flagd_node_metrics(c->api->node)->revision)) {
				c->held_reply = msg;
				park(c, rev, API_FWD_APPLY_WAIT_MS);
				return;
			}
			nng_aio_set_msg(c->aio, msg);
		}
		c->state = CTX_SEND;
		nng_ctx_send(c->ctx, c->aio);
		return;
	case CTX_RECV:
	case CTX_WRITE:
	case CTX_SEND:
	case CTX_WAIT:
		break;
	}
}

// The revision a forwarded write's successful reply names, or 0 (an
// error, or a reply that does not decode: relay it at once).
static uint64_t
fwd_reply_revision(nng_msg *msg)
{
	Sluice__V1__Reply *rep;
	uint64_t           rev = 0;

	if (sl_reply_decode(nng_msg_body(msg), nng_msg_len(msg), &rep) !=
	    SLUICE_OK) {
		return (0);
	}
	if (rep->result_case == SLUICE__V1__REPLY__RESULT_WRITE) {
		rev = rep->revision;
	}
	sluice__v1__reply__free_unpacked(rep, NULL);
	return (rev);
}

// A write reached a node that does not lead: forward it to the leader,
// or say why it cannot be written now.
static void
route_write(api_ctx *c, Sluice__V1__Request *req)
{
	flagd_node            *node = c->api->node;
	const flagd_config    *cfg  = flagd_node_config(node);
	flagd_consensus_status st;
	char                   why[300];

	flagd_consensus_status_get(flagd_node_consensus(node), &st);
	if (req->header->forwarded) {
		snprintf(why, sizeof(why),
		    "node %llu received a forwarded write but is not the "
		    "leader (leadership is moving); retry",
		    (unsigned long long) cfg->node_id);
		reply_write_error(c, SLUICE_ENOTLEADER, why);
		return;
	}
	if (st.leader_id == 0 || st.leader_id == cfg->node_id ||
	    flagd_consensus_stale(&st, cfg->election_ms, sl_mono_ms())) {
		snprintf(why, sizeof(why),
		    "no leader: node %llu (%s, term %llu) has no contact "
		    "with a leader, so the cluster cannot commit writes now "
		    "(is a majority of the %zu voters up and reachable?)",
		    (unsigned long long) cfg->node_id,
		    flagd_role_name(st.role), (unsigned long long) st.term,
		    cfg->npeers);
		reply_write_error(c, SLUICE_EUNAVAIL, why);
		return;
	}
	forward_write(c, req, st.leader_id);
}

// This node leads: the write goes to consensus; frees req.
static void
write_local(api_ctx *c, Sluice__V1__Request *req)
{
	char why[256];
	int  rv;

	why[0] = '\0';
	// The reply may be sent from the loop thread before flagd_node_write
	// returns: set the state first and do not touch c after a successful
	// hand-off.
	c->state = CTX_WRITE;
	rv       = flagd_node_write(
	          c->api->node, req->write, write_done, c, why, sizeof(why));
	sluice__v1__request__free_unpacked(req, NULL);
	if (rv != SLUICE_OK) {
		reply_write_error(c, rv, why);
	}
}

// A write this node received and could not hand to the leader (not taken
// within a step, or no leader known): written here if this node now
// leads, forwarded if another node does, else held for API_FWD_RETRY_MS
// while time remains, and refused like route_write once it has run out.
// Frees req.
static void
reroute_write(api_ctx *c, Sluice__V1__Request *req)
{
	flagd_node            *node = c->api->node;
	const flagd_config    *cfg  = flagd_node_config(node);
	flagd_consensus_status st;
	uint64_t               now = sl_mono_ms();

	flagd_consensus_status_get(flagd_node_consensus(node), &st);
	if (st.role == FLAGD_ROLE_LEADER) {
		write_local(c, req);
		return;
	}
	if (now + API_FWD_RETRY_MS < c->fwd_until_ms &&
	    (st.leader_id == 0 || st.leader_id == cfg->node_id ||
	        flagd_consensus_stale(&st, cfg->election_ms, now))) {
		c->held_req = req;
		c->state    = CTX_FWD_PAUSE;
		nng_sleep_aio(API_FWD_RETRY_MS, c->fwd_aio);
		return;
	}
	route_write(c, req);
	sluice__v1__request__free_unpacked(req, NULL);
}

static void
handle_request(api_ctx *c, nng_msg *msg)
{
	flagd_node          *node = c->api->node;
	flagd_metrics       *m    = flagd_node_metrics(node);
	Sluice__V1__Request *req  = NULL;
	int                  rv;

	rv = sl_request_decode(nng_msg_body(msg), nng_msg_len(msg), &req);
	if (rv == SLUICE_OK && req->op_case == SLUICE__V1__REQUEST__OP_WRITE) {
		flagd_consensus_status st;
		char                   why[256];

		atomic_fetch_add(&m->requests[FLAGD_OP_WRITE], 1);
		c->request_id =
		    req->header != NULL ? req->header->request_id : 0;
		why[0] = '\0';
		if ((rv = check_header(req, why, sizeof(why))) != SLUICE_OK) {
			atomic_fetch_add(&m->bad_input, 1);
			sluice__v1__request__free_unpacked(req, NULL);
			reply_write_error(c, rv, why);
			return;
		}
		flagd_consensus_status_get(flagd_node_consensus(node), &st);
		if (st.role != FLAGD_ROLE_LEADER) {
			uint64_t until =
			    2 * flagd_node_config(node)->election_ms + 100;
			if (req->header->deadline_ms > 0 &&
			    answer_within(req->header->deadline_ms) < until) {
				until =
				    answer_within(req->header->deadline_ms);
			}
			c->fwd_until_ms = sl_mono_ms() + until;
			route_write(c, req);
			sluice__v1__request__free_unpacked(req, NULL);
			return;
		}
		write_local(c, req);
		return;
	}
	if (rv == SLUICE_OK && req->min_revision > 0 && req->header != NULL &&
	    atomic_load(&m->revision) < req->min_revision) {
		uint64_t wait = req->header->deadline_ms;
		if (wait == 0) {
			wait = API_WAIT_DEFAULT_MS;
		}
		if (wait > API_WAIT_MAX_MS) {
			wait = API_WAIT_MAX_MS;
		}
		wait        = answer_within(wait);
		c->held_req = req;
		park(c, req->min_revision, wait);
		return;
	}
	answer_and_send(c, req, rv);
}

// Answers a read (or an undecodable request, req == NULL, code = why)
// and sends the reply; frees req.
static void
answer_and_send(api_ctx *c, Sluice__V1__Request *req, int code)
{
	uint8_t *buf;
	size_t   len;
	int      rv;

	rv = handle_read(c->api->node, req, code, &buf, &len);
	if (req != NULL) {
		sluice__v1__request__free_unpacked(req, NULL);
	}
	if (rv != SLUICE_OK) {
		sl_log_err("api.pack", "cannot pack a reply");
		c->state = CTX_RECV;
		nng_ctx_recv(c->ctx, c->aio);
		return;
	}
	ctx_send(c, buf, len);
}

// Parks the context until the node has applied rev or wait_ms passed:
// it polls on an nng timer, so no nng thread is held while it waits
// (many waiting reads must not starve the thread pool).
#define API_PARK_POLL_MS 2
static void
park(api_ctx *c, uint64_t rev, uint64_t wait_ms)
{
	c->wait_rev      = rev;
	c->wait_until_ms = sl_mono_ms() + wait_ms;
	c->state         = CTX_WAIT;
	nng_sleep_aio(API_PARK_POLL_MS, c->aio);
}

// A parked context's timer fired: answer if the revision is applied or
// the time is up, else wait on.
static void
park_cb(api_ctx *c, int rv)
{
	flagd_metrics *m = flagd_node_metrics(c->api->node);
	nng_msg       *reply;

	if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
		if (c->held_req != NULL) {
			sluice__v1__request__free_unpacked(c->held_req, NULL);
			c->held_req = NULL;
		}
		if (c->held_reply != NULL) {
			nng_msg_free(c->held_reply);
			c->held_reply = NULL;
		}
		return;
	}
	if (atomic_load(&m->revision) < c->wait_rev &&
	    sl_mono_ms() < c->wait_until_ms) {
		nng_sleep_aio(API_PARK_POLL_MS, c->aio);
		return;
	}
	if (c->held_req != NULL) {
		Sluice__V1__Request *req = c->held_req;
		c->held_req              = NULL;
		answer_and_send(c, req, SLUICE_OK);
		return;
	}
	reply         = c->held_reply;
	c->held_reply = NULL;
	if (atomic_load(&m->revision) < c->wait_rev) {
		sl_log_info("api.fwd",
		    "revision %llu not applied here in time; relaying the "
		    "leader's answer anyway",
		    (unsigned long long) c->wait_rev);
	}
	nng_aio_set_msg(c->aio, reply);
	c->state = CTX_SEND;
	nng_ctx_send(c->ctx, c->aio);
}

static void
ctx_cb(void *arg)
{
	api_ctx *c = arg;
	nng_msg *msg;
	int      rv;

	switch (c->state) {
	case CTX_RECV:
		if ((rv = nng_aio_result(c->aio)) != 0) {
			if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
				return;
			}
			nng_ctx_recv(c->ctx, c->aio);
			return;
		}
		msg = nng_aio_get_msg(c->aio);
		handle_request(c, msg);
		nng_msg_free(msg);
		return;
	case CTX_SEND:
		if ((rv = nng_aio_result(c->aio)) != 0) {
			nng_msg_free(nng_aio_get_msg(c->aio));
			if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
				return;
			}
		}
		c->state = CTX_RECV;
		nng_ctx_recv(c->ctx, c->aio);
		return;
	case CTX_WAIT:
		park_cb(c, nng_aio_result(c->aio));
		return;
	case CTX_WRITE:
	case CTX_FWD_SEND:
	case CTX_FWD_RECV:
	case CTX_FWD_PAUSE:
		// No aio of c->ctx is pending while a write is with the
		// loop or the leader.
		return;
	}
}

int
flagd_api_open(
    flagd_api **ap, flagd_node *node, const char *url, size_t ncontexts)
{
	flagd_api *a;
	int        rv;

	if ((a = calloc(1, sizeof(*a))) == NULL) {
		return (SLUICE_ENOMEM);
	}
	a->node = node;
	sl_sock_init(&a->k);
	if ((a->ctxs = calloc(ncontexts, sizeof(*a->ctxs))) == NULL) {
		sl_sock_fini(&a->k);
		free(a);
		return (SLUICE_ENOMEM);
	}
	a->ncap = ncontexts;
	if (nng_mtx_alloc(&a->fwd_mtx) != 0) {
		rv = SLUICE_ENOMEM;
		goto fail;
	}
	if ((rv = nng_rep0_open(&a->sock)) != 0) {
		sl_log_err("api.open", "cannot open REP socket: %s",
		    nng_strerror(rv));
		rv = SLUICE_EINTERNAL;
		goto fail;
	}
	a->sock_open = true;
	(void) nng_socket_set_size(a->sock, NNG_OPT_RECVMAXSZ, API_RECV_MAX);
	for (size_t i = 0; i < ncontexts; i++) {
		api_ctx *c = &a->ctxs[i];
		c->api     = a;
		if (nng_aio_alloc(&c->aio, ctx_cb, c) != 0 ||
		    nng_aio_alloc(&c->fwd_aio, fwd_cb, c) != 0 ||
		    nng_ctx_open(&c->ctx, a->sock) != 0) {
			rv = SLUICE_ENOMEM;
			goto fail;
		}
		c->open = true;
		a->nctx++;
	}
	// sl_sock_listen closes the socket when it fails.
	if ((rv = sl_sock_listen(&a->k, a->sock, url)) != 0) {
		a->sock_open = false;
		sl_log_err("api.listen", "cannot listen on %s: %s", url,
		    nng_strerror(rv));
		rv = SLUICE_EIO;
		goto fail;
	}
	for (size_t i = 0; i < a->nctx; i++) {
		a->ctxs[i].state = CTX_RECV;
		nng_ctx_recv(a->ctxs[i].ctx, a->ctxs[i].aio);
	}
	*ap = a;
	return (SLUICE_OK);
fail:
	flagd_api_close(a);
	return (rv);
}

void
flagd_api_stop_listening(flagd_api *a)
{
	// Not nng_listener_close(): on nng 1.5.2 closing a pipe while a
	// request arrives on it can hang every later close (sock.c). New
	// peers are turned away, live pipes end at their next request.
	if (a != NULL) {
		sl_sock_refuse(&a->k);
	}
}

void
flagd_api_close(flagd_api *a)
{
	if (a == NULL) {
		return;
	}
	// Stop every aio first, holding no lock their callbacks take; the
	// callbacks see NNG_ECANCELED/NNG_ECLOSED and do not re-arm.
	// The forwarding aio first: its callback may still park the context
	// on the main aio, which must not be stopped yet.
	for (size_t i = 0; a->ctxs != NULL && i < a->ncap; i++) {
		if (a->ctxs[i].fwd_aio != NULL) {
			nng_aio_stop(a->ctxs[i].fwd_aio);
		}
		if (a->ctxs[i].aio != NULL) {
			nng_aio_stop(a->ctxs[i].aio);
		}
	}
	// A park re-armed while the stop was waiting never calls back:
	// free what such a context still holds.
	for (size_t i = 0; a->ctxs != NULL && i < a->ncap; i++) {
		api_ctx *c = &a->ctxs[i];
		if (c->held_req != NULL) {
			sluice__v1__request__free_unpacked(c->held_req, NULL);
			c->held_req = NULL;
		}
		if (c->held_reply != NULL) {
			nng_msg_free(c->held_reply);
			c->held_reply = NULL;
		}
	}
	for (size_t i = 0; i < 2 * FLAGD_PEERS_MAX; i++) {
		if (a->fwd_open[i]) {
			nng_close(a->fwd[i]);
		}
	}
	for (size_t i = 0; a->ctxs != NULL && i < a->ncap; i++) {
		if (a->ctxs[i].open) {
			nng_ctx_close(a->ctxs[i].ctx);
		}
	}
	if (a->k.open) {
		sl_sock_close(&a->k, API_PIPES_GRACE_MS);
	} else if (a->sock_open) {
		nng_close(a->sock); // never listened: no pipe
	}
	for (size_t i = 0; a->ctxs != NULL && i < a->ncap; i++) {
		if (a->ctxs[i].aio != NULL) {
			nng_aio_free(a->ctxs[i].aio);
		}
		if (a->ctxs[i].fwd_aio != NULL) {
			nng_aio_free(a->ctxs[i].fwd_aio);
		}
	}
	if (a->fwd_mtx != NULL) {
		nng_mtx_free(a->fwd_mtx);
	}
	free(a->ctxs);
	sl_sock_fini(&a->k);
	free(a);
}
