// SPDX-License-Identifier: MIT
//
// rpc.c — request/reply with flagd over one nng REQ socket, failing over
// along a comma-separated endpoint list (contract in rpc.h). nng's codes
// are translated to SLUICE_E* here and go no further. Each call is one
// request id; a reply whose request_id differs is a protocol error, since
// REQ/REP already pairs them and a mismatch means a confused peer.

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <sodium.h>

#include "codec.h"
#include "envelope.h"
#include "rpc.h"
#include "sock.h"

#define RPC_DEFAULT_TIMEOUT_MS 5000u
// How long a close waits for a reply that is still on its way after a
// request failed (sock.c); an idle socket has nothing in flight.
#define RPC_CLOSE_GRACE_MS 50u

struct sl_rpc {
	char   **eps;   // endpoint URLs, each malloc'd
	size_t   n_eps; // at least one
	size_t   cur;   // index of the endpoint in use or to try first
	sl_sock  sock;  // .open: dialled to eps[cur]
	bool     busy;  // a request may still be answered on sock
	uint32_t timeout_ms;
	uint64_t next_id;
};

void
sl_rpc_close(sl_rpc *r)
{
	if (r == NULL) {
		return;
	}
	sl_sock_close(&r->sock, r->busy ? RPC_CLOSE_GRACE_MS : 0);
	sl_sock_fini(&r->sock);
	sl_endpoints_free(r->eps, r->n_eps);
	free(r);
}

int
sl_endpoints_split(const char *list, char ***epsp, size_t *np)
{
	const char *p = list;
	const char *end;
	size_t      len;
	size_t      cap = 1;
	size_t      n   = 0;
	char      **eps;

	for (end = list; *end != '\0'; end++) {
		cap += (*end == ',');
	}
	if ((eps = calloc(cap, sizeof(char *))) == NULL) {
		return (SLUICE_ENOMEM);
	}
	for (;;) {
		while (*p == ' ' || *p == '\t') {
			p++;
		}
		end = strchr(p, ',');
		len = end != NULL ? (size_t) (end - p) : strlen(p);
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t')) {
			len--;
		}
		if (len > 0) {
			if ((eps[n] = strndup(p, len)) == NULL) {
				sl_endpoints_free(eps, n);
				return (SLUICE_ENOMEM);
			}
			n++;
		}
		if (end == NULL) {
			break;
		}
		p = end + 1;
	}
	*epsp = eps;
	*np   = n;
	return (SLUICE_OK);
}

void
sl_endpoints_free(char **eps, size_t n)
{
	if (eps == NULL) {
		return;
	}
	for (size_t i = 0; i < n; i++) {
		free(eps[i]);
	}
	free(eps);
}

int
sl_rpc_open(sl_rpc **rp, const char *endpoints, uint32_t timeout_ms)
{
	sl_rpc *r;
	int     rv;

	if (endpoints == NULL) {
		return (SLUICE_EINVAL);
	}
	if ((rv = sl_crypto_init()) != SLUICE_OK) {
		return (rv);
	}
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		return (SLUICE_ENOMEM);
	}
	sl_sock_init(&r->sock);
	r->timeout_ms = timeout_ms != 0 ? timeout_ms : RPC_DEFAULT_TIMEOUT_MS;
	// A random start keeps ids of concurrent clients apart in logs; the
	// top bit stays clear so ids print the same signed or not.
	randombytes_buf(&r->next_id, sizeof(r->next_id));
	r->next_id &= (UINT64_C(1) << 62) - 1;
	if ((rv = sl_endpoints_split(endpoints, &r->eps, &r->n_eps)) !=
	    SLUICE_OK) {
		goto fail;
	}
	if (r->n_eps == 0) {
		rv = SLUICE_EINVAL;
		goto fail;
	}
	*rp = r;
	return (SLUICE_OK);
fail:
	sl_rpc_close(r);
	return (rv);
}

static void
disconnect(sl_rpc *r)
{
	sl_sock_close(&r->sock, r->busy ? RPC_CLOSE_GRACE_MS : 0);
	r->busy = false;
}

// Opens a REQ socket and dials eps[idx] synchronously, so a refused
// connection fails now instead of after the send timeout.
static int
connect_to(sl_rpc *r, size_t idx)
{
	nng_socket s;
	int        nrv;

	if (r->sock.open && r->cur == idx) {
		return (SLUICE_OK);
	}
	disconnect(r);
	if ((nrv = nng_req0_open(&s)) != 0) {
		return (nrv == NNG_ENOMEM ? SLUICE_ENOMEM : SLUICE_EINTERNAL);
	}
	// Resending is ours to decide (writes must not be resent blindly),
	// so nng's own resend timer is switched off.
	if ((nrv = nng_socket_set_ms(
	         s, NNG_OPT_RECVTIMEO, (nng_duration) r->timeout_ms)) != 0 ||
	    (nrv = nng_socket_set_ms(
	         s, NNG_OPT_SENDTIMEO, (nng_duration) r->timeout_ms)) != 0 ||
	    (nrv = nng_socket_set_ms(
	         s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE)) != 0 ||
	    (nrv = nng_socket_set_size(
	         s, NNG_OPT_RECVMAXSZ, SL_MAX_REPLY_BYTES)) != 0) {
		nng_close(s);
		return (SLUICE_EINTERNAL);
	}
	// sl_sock_dial closes s when it fails.
	if ((nrv = sl_sock_dial(&r->sock, s, r->eps[idx])) != 0) {
		sl_log_debug(
		    "rpc-dial", "%s: %s", r->eps[idx], nng_strerror(nrv));
		return (nrv == NNG_EADDRINVAL || nrv == NNG_ENOTSUP
		        ? SLUICE_EINVAL
		        : SLUICE_EUNAVAIL);
	}
	r->cur = idx;
	return (SLUICE_OK);
}

// One attempt on the connected endpoint. *sentp tells whether the request
// left this process (after which a write must not be tried elsewhere).
static int
attempt(sl_rpc *r, const uint8_t *buf, size_t len, uint64_t id,
    Sluice__V1__Reply **replyp, bool *sentp)
{
	Sluice__V1__Reply *rep;
	void              *rbuf = NULL;
	size_t             rlen = 0;
	int                nrv;
	int                rv;

	*sentp = false;
	// nng_send copies buf; it does not take it over without
	// NNG_FLAG_ALLOC.
	if ((nrv = nng_send(r->sock.s, (void *) (uintptr_t) buf, len, 0)) !=
	    0) {
		sl_log_debug(
		    "rpc-send", "%s: %s", r->eps[r->cur], nng_strerror(nrv));
		return (nrv == NNG_ENOMEM ? SLUICE_ENOMEM : SLUICE_EUNAVAIL);
	}
	*sentp  = true;
	r->busy = true;
	if ((nrv = nng_recv(r->sock.s, &rbuf, &rlen, NNG_FLAG_ALLOC)) != 0) {
		sl_log_debug(
		    "rpc-recv", "%s: %s", r->eps[r->cur], nng_strerror(nrv));
		if (nrv == NNG_ETIMEDOUT) {
			return (SLUICE_ETIMEDOUT);
		}
		return (nrv == NNG_ENOMEM ? SLUICE_ENOMEM : SLUICE_EUNAVAIL);
	}
	r->busy = false;
	rv      = sl_reply_decode(rbuf, rlen, &rep);
	nng_free(rbuf, rlen);
	if (rv != SLUICE_OK) {
		return (rv == SLUICE_ENOMEM ? rv : SLUICE_EPROTO);
	}
	if (rep->request_id != id) {
		sl_log_warn("rpc-id",
		    "%s answered request %llu with the reply to %llu",
		    r->eps[r->cur], (unsigned long long) id,
		    (unsigned long long) rep->request_id);
		sluice__v1__reply__free_unpacked(rep, NULL);
		return (SLUICE_EPROTO);
	}
	*replyp = rep;
	return (SLUICE_OK);
}

int
sl_rpc_call(sl_rpc *r, Sluice__V1__Request *req, Sluice__V1__Reply **replyp)
{
	Sluice__V1__Header  hdr;
	Sluice__V1__Header *saved = req->header;
	Sluice__V1__Reply  *rep   = NULL;
	uint8_t            *buf   = NULL;
	size_t              len   = 0;
	size_t              i;
	size_t              idx;
	bool                sent = false;
	bool                write;
	int                 last = SLUICE_EUNAVAIL;
	int                 rv;

	sluice__v1__header__init(&hdr);
	write           = req->op_case == SLUICE__V1__REQUEST__OP_WRITE;
	hdr.api_version = SL_API_VERSION;
	hdr.request_id  = ++r->next_id;
	hdr.deadline_ms = r->timeout_ms;
	req->header     = &hdr;
	rv              = sl_pack(&req->base, &buf, &len);
	req->header     = saved;
	if (rv != SLUICE_OK) {
		return (rv);
	}
	for (i = 0; i < r->n_eps; i++) {
		idx = (r->cur + i) % r->n_eps;
		if ((rv = connect_to(r, idx)) != SLUICE_OK) {
			if (rv == SLUICE_ENOMEM) {
				goto done;
			}
			// A malformed URL among good ones is a
			// configuration error, but failing over still
			// serves the caller.
			last = last == SLUICE_ETIMEDOUT ? last : rv;
			continue;
		}
		rv = attempt(r, buf, len, hdr.request_id, &rep, &sent);
		if (rv == SLUICE_OK || rv == SLUICE_ENOMEM ||
		    rv == SLUICE_EPROTO) {
			goto done;
		}
		disconnect(r);
		if (sent && write) {
			// The write may have committed: do not send it to
			// another node (rpc.h).
			goto done;
		}
		last = rv;
	}
	rv = last;
done:
	free(buf);
	if (rv != SLUICE_OK) {
		return (rv);
	}
	*replyp = rep;
	if (rep->result_case == SLUICE__V1__REPLY__RESULT_ERROR) {
		if (rep->error == NULL || rep->error->code == 0) {
			return (SLUICE_EPROTO);
		}
		return ((int) rep->error->code);
	}
	return (SLUICE_OK);
}

int
sl_rpc_write(sl_rpc *r, const sl_secret *k, Sluice__V1__Command *cmd,
    Sluice__V1__Reply **replyp)
{
	Sluice__V1__Request       req;
	Sluice__V1__SignedCommand sc;
	int                       rv;

	sluice__v1__request__init(&req);
	sluice__v1__signed_command__init(&sc);
	if ((rv = sl_command_seal(k, cmd, &sc)) != SLUICE_OK) {
		sl_command_clear_nonce(cmd);
		return (rv);
	}
	req.op_case = SLUICE__V1__REQUEST__OP_WRITE;
	req.write   = &sc;
	rv          = sl_rpc_call(r, &req, replyp);
	sl_signed_command_clear(&sc);
	sl_command_clear_nonce(cmd);
	return (rv);
}

const char *
sl_rpc_endpoint(const sl_rpc *r)
{
	return (r->eps[r->cur]);
}

const char *
sl_reply_errmsg(const Sluice__V1__Reply *rep)
{
	if (rep == NULL ||
	    rep->result_case != SLUICE__V1__REPLY__RESULT_ERROR ||
	    rep->error == NULL) {
		return ("");
	}
	if (rep->error->message != NULL && rep->error->message[0] != '\0') {
		return (rep->error->message);
	}
	return (sluice_strerror((int) rep->error->code));
}
