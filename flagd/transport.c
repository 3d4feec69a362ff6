// SPDX-License-Identifier: MIT
//
// transport.c — a raft_uv_transport that resolves peer host names and
// delegates to libraft's raft_uv_tcp with the literal address. libraft
// only ever sees the names (they are what the raft configuration holds);
// raft_uv_tcp only ever sees IPv4 literals. Loop thread only; RAFT_* codes
// and uv errors stay inside this file and consensus.c.

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "config.h"
#include "transport.h"

typedef struct conn conn;

struct flagd_transport {
	struct raft_uv_transport   outer; // what libraft holds
	struct raft_uv_transport   tcp;   // libraft's raft_uv_tcp
	uv_loop_t                 *loop;
	raft_uv_accept_cb          accept_cb;
	raft_uv_transport_close_cb close_cb;
	conn                      *resolving; // connects waiting for a name
	bool                       tcp_init;
	bool                       closing;
	bool                       tcp_closed;
};

// One connect whose name is being resolved, then (after the callback)
// one connect in flight inside raft_uv_tcp.
struct conn {
	flagd_transport        *t;
	struct raft_uv_connect *req; // libraft's, answered exactly once
	raft_uv_connect_cb      cb;
	raft_id                 id;
	unsigned                port;
	uv_getaddrinfo_t        gai;
	struct raft_uv_connect  inner;
	conn                   *next;
	char                    name[256];   // the peer as configured
	char                    literal[64]; // what raft_uv_tcp dials
};

int
flagd_transport_split(
    const char *addr, char *host, size_t hostlen, unsigned *portp)
{
	const char   *colon = strrchr(addr, ':');
	char         *end;
	unsigned long port;
	size_t        hlen;

	if (colon == NULL || colon == addr) {
		return (SLUICE_EINVAL);
	}
	hlen = (size_t) (colon - addr);
	if (hlen >= hostlen) {
		return (SLUICE_EINVAL);
	}
	errno = 0;
	port  = strtoul(colon + 1, &end, 10);
	if (errno != 0 || end == colon + 1 || *end != '\0' || port == 0 ||
	    port > 65535 || colon[1] == '-' || colon[1] == '+') {
		return (SLUICE_EINVAL);
	}
	memcpy(host, addr, hlen);
	host[hlen] = '\0';
	*portp     = (unsigned) port;
	return (SLUICE_OK);
}

static flagd_transport *
of_tcp(struct raft_uv_transport *tcp)
{
	return ((flagd_transport *) (void *) ((char *) tcp -
	    offsetof(flagd_transport, tcp)));
}

// Fires libraft's close callback once raft_uv_tcp has closed and no name
// resolution is outstanding (a resolution cannot always be cancelled: one
// already running on the thread pool finishes first).
static void
maybe_closed(flagd_transport *t)
{
	raft_uv_transport_close_cb cb = t->close_cb;

	if (!t->closing || !t->tcp_closed || t->resolving != NULL ||
	    cb == NULL) {
		return;
	}
	t->close_cb = NULL;
	cb(&t->outer);
}

static void
resolving_remove(flagd_transport *t, conn *c)
{
	for (conn **pp = &t->resolving; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			return;
		}
	}
}

static void
tr_init_failed(flagd_transport *t, const char *what)
{
	snprintf(t->outer.errmsg, sizeof(t->outer.errmsg), "%s: %.200s", what,
	    t->tcp.errmsg);
}

static int
tr_init(struct raft_uv_transport *outer, raft_id id, const char *address)
{
	flagd_transport *t = outer->impl;
	int              rv;

	// raft_uv_tcp keeps the name for its handshake (peers see who is
	// calling) and listens on the bind address, never parsing the name.
	if ((rv = t->tcp.init(&t->tcp, id, address)) != 0) {
		tr_init_failed(t, "init");
	}
	return (rv);
}

// Raft streams always carry traffic (heartbeats every few tens of ms), so
// data left unacknowledged this long means the peer is gone or cut off.
// Without a bound the kernel keeps retransmitting with exponential
// backoff (up to ~2 minutes between tries) on a dead connection, and a
// node back from a partition rejoins only at the next retry. With it the
// connection fails, and libraft dials again at once.
#define RAFT_TCP_USER_TIMEOUT_MS 3000u

static void
bound_stream(struct uv_stream_s *stream)
{
	uv_os_fd_t   fd;
	unsigned int ms = RAFT_TCP_USER_TIMEOUT_MS;

	if (stream == NULL ||
	    uv_fileno((const uv_handle_t *) stream, &fd) != 0) {
		return;
	}
	if (setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof(ms)) !=
	    0) {
		sl_log_debug(
		    "raft.tcp", "TCP_USER_TIMEOUT: %s", strerror(errno));
	}
}

static void
accept_cb(struct raft_uv_transport *tcp, raft_id id, const char *address,
    struct uv_stream_s *stream)
{
	flagd_transport *t = of_tcp(tcp);

	bound_stream(stream);
	t->accept_cb(&t->outer, id, address, stream);
}

static int
tr_listen(struct raft_uv_transport *outer, raft_uv_accept_cb cb)
{
	flagd_transport *t = outer->impl;
	int              rv;

	t->accept_cb = cb;
	if ((rv = t->tcp.listen(&t->tcp, accept_cb)) != 0) {
		tr_init_failed(t, "listen");
	}
	return (rv);
}

static void
inner_connect_cb(
    struct raft_uv_connect *inner, struct uv_stream_s *stream, int status)
{
	conn                   *c   = inner->data;
	struct raft_uv_connect *req = c->req;
	raft_uv_connect_cb      cb  = c->cb;

	if (status != 0 && status != RAFT_CANCELED) {
		sl_log_debug("raft.connect", "peer %llu at %s (%s): %s",
		    (unsigned long long) c->id, c->name, c->literal,
		    raft_strerror(status));
	}
	free(c);
	if (status == 0) {
		bound_stream(stream);
	}
	cb(req, stream, status);
}

static void
gai_cb(uv_getaddrinfo_t *g, int status, struct addrinfo *res)
{
	conn            *c = g->data;
	flagd_transport *t = c->t;
	char             ip[INET_ADDRSTRLEN];
	int              rv;

	resolving_remove(t, c);
	if (t->closing || status == UV_ECANCELED) {
		rv = RAFT_CANCELED;
		goto fail;
	}
	if (status != 0 || res == NULL || res->ai_family != AF_INET) {
		// libraft retries the connect on its own (about once a
		// second); each retry resolves the name again.
		sl_log_info("raft.resolve", "peer %llu: cannot resolve %s: %s",
		    (unsigned long long) c->id, c->name,
		    status != 0 ? uv_strerror(status) : "no IPv4 address");
		rv = RAFT_NOCONNECTION;
		goto fail;
	}
	if (uv_ip4_name(
	        (const struct sockaddr_in *) (const void *) res->ai_addr, ip,
	        sizeof(ip)) != 0) {
		rv = RAFT_NOCONNECTION;
		goto fail;
	}
	snprintf(c->literal, sizeof(c->literal), "%s:%u", ip, c->port);
	uv_freeaddrinfo(res);
	res           = NULL;
	c->inner.data = c;
	if ((rv = t->tcp.connect(&t->tcp, &c->inner, c->id, c->literal,
	         inner_connect_cb)) != 0) {
		goto fail;
	}
	return;
fail:
	if (res != NULL) {
		uv_freeaddrinfo(res);
	}
	{
		struct raft_uv_connect *req = c->req;
		raft_uv_connect_cb      cb  = c->cb;

		free(c);
		cb(req, NULL, rv);
	}
	maybe_closed(t);
}

static int
tr_connect(struct raft_uv_transport *outer, struct raft_uv_connect *req,
    raft_id id, const char *address, raft_uv_connect_cb cb)
{
	flagd_transport *t = outer->impl;
	struct addrinfo  hints;
	struct in_addr   a4;
	char             host[256];
	char             hp[200];
	char             api[8]; // not needed here
	char             port[8];
	unsigned         p;
	conn            *c;
	int              rv;

	if (t->closing) {
		return (RAFT_CANCELED);
	}
	// A member added at run time carries its API URL after '@'.
	flagd_peer_address_split(address, hp, sizeof(hp), api, sizeof(api));
	address = hp;
	if (flagd_transport_split(address, host, sizeof(host), &p) !=
	    SLUICE_OK) {
		snprintf(outer->errmsg, sizeof(outer->errmsg),
		    "peer %llu: \"%s\" is not HOST:PORT",
		    (unsigned long long) id, address);
		return (RAFT_NOCONNECTION);
	}
	// A literal needs no resolution: raft_uv_tcp takes it as is.
	if (uv_inet_pton(AF_INET, host, &a4) == 0) {
		if ((rv = t->tcp.connect(&t->tcp, req, id, address, cb)) !=
		    0) {
			tr_init_failed(t, "connect");
		}
		return (rv);
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		return (RAFT_NOMEM);
	}
	c->t    = t;
	c->req  = req;
	c->cb   = cb;
	c->id   = id;
	c->port = p;
	snprintf(c->name, sizeof(c->name), "%s", address);
	req->cb     = cb;
	c->gai.data = c;
	snprintf(port, sizeof(port), "%u", p);
	memset(&hints, 0, sizeof(hints));
	// raft_uv_tcp speaks IPv4 only.
	hints.ai_family   = AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	if ((rv = uv_getaddrinfo(
	         t->loop, &c->gai, gai_cb, host, port, &hints)) != 0) {
		snprintf(outer->errmsg, sizeof(outer->errmsg),
		    "peer %llu: cannot resolve %s: %s",
		    (unsigned long long) id, address, uv_strerror(rv));
		free(c);
		return (RAFT_NOCONNECTION);
	}
	c->next      = t->resolving;
	t->resolving = c;
	return (0);
}

static void
tcp_closed_cb(struct raft_uv_transport *tcp)
{
	flagd_transport *t = of_tcp(tcp);

	t->tcp_closed = true;
	maybe_closed(t);
}

static void
tr_close(struct raft_uv_transport *outer, raft_uv_transport_close_cb cb)
{
	flagd_transport *t = outer->impl;

	t->closing  = true;
	t->close_cb = cb;
	// A cancelled resolution calls gai_cb with UV_ECANCELED; one that
	// is already running completes first and sees t->closing.
	for (conn *c = t->resolving; c != NULL; c = c->next) {
		(void) uv_cancel((uv_req_t *) &c->gai);
	}
	t->tcp.close(&t->tcp, tcp_closed_cb);
}

int
flagd_transport_alloc(flagd_transport **tp, uv_loop_t *loop, const char *bind)
{
	flagd_transport *t;
	int              rv;

	if ((t = calloc(1, sizeof(*t))) == NULL) {
		return (SLUICE_ENOMEM);
	}
	t->loop = loop;
	if ((rv = raft_uv_tcp_init(&t->tcp, loop)) != 0) {
		sl_log_err("raft.transport", "raft_uv_tcp_init: %s",
		    raft_strerror(rv));
		rv = SLUICE_EINTERNAL;
		goto fail;
	}
	t->tcp_init = true;
	if (bind != NULL && raft_uv_tcp_set_bind_address(&t->tcp, bind) != 0) {
		rv = SLUICE_EINVAL;
		goto fail;
	}
	t->outer.impl    = t;
	t->outer.init    = tr_init;
	t->outer.listen  = tr_listen;
	t->outer.connect = tr_connect;
	t->outer.close   = tr_close;
	*tp              = t;
	return (SLUICE_OK);
fail:
	flagd_transport_free(t);
	return (rv);
}

struct raft_uv_transport *
flagd_transport_raft(flagd_transport *t)
{
	return (&t->outer);
}

void
flagd_transport_free(flagd_transport *t)
{
	if (t == NULL) {
		return;
	}
	if (t->tcp_init) {
		raft_uv_tcp_close(&t->tcp);
	}
	free(t);
}
