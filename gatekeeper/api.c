/* SPDX-License-Identifier: MIT */
/*
 * api.c — gatekeeper's nng REP API: ncontexts REP contexts, each driven
 * by its aio's callback (receive, hand the request to gk_core_submit,
 * send the reply when it comes, receive again). No thread of its own:
 * the callbacks run on nng's task threads, and a reply may be sent from
 * whichever thread finishes the request (the group committer, an aside
 * thread of the core).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "api.h"
#include "sock.h"

// The largest request read: a report envelope plus headroom. nng drops a
// connection that sends more without reading it.
#define API_RECV_MAX ((size_t) SL_MAX_REPORT_BYTES + 8192u)
// At shutdown, how long replies in flight may take before the socket is
// closed under them.
#define API_DRAIN_MS 5000u
// Then how long pipes may take to end themselves (sock.c) before the
// socket is closed: a reporter still sending ends its pipe at its next
// request at once; an idle one is waited for this long.
#define API_PIPES_GRACE_MS 500u

typedef enum ctx_state {
	CTX_RECV, /* a receive pending */
	CTX_WORK, /* a request in the core, no aio operation */
	CTX_SEND, /* its reply being sent */
	CTX_DONE, /* stopped: the socket closed */
} ctx_state;

typedef struct actx {
	struct gk_api *api;
	nng_ctx        ctx;
	nng_aio       *aio;
	ctx_state      state;
	bool           ctx_open;
} actx;

struct gk_api {
	gk_core        *core;
	nng_socket      sock;
	sl_sock         k; // sock once listening: closed through sock.c
	bool            sock_open;
	pthread_mutex_t mtx;
	pthread_cond_t  cv;
	bool            closing; /* no new receive once a reply is sent */
	size_t          busy;    /* contexts in CTX_WORK or CTX_SEND */
	size_t          active;  /* contexts not CTX_DONE */
	actx           *w;
	size_t          nw;
};

// Under a->mtx: w leaves for good.
static void
ctx_stop(actx *w)
{
	gk_api *a = w->api;

	w->state = CTX_DONE;
	a->active--;
	pthread_cond_broadcast(&a->cv);
}

// w's request is over (replied, or no reply possible): receive again
// unless closing.
static void
ctx_next(actx *w)
{
	gk_api *a = w->api;
	bool    stop;

	pthread_mutex_lock(&a->mtx);
	a->busy--;
	if ((stop = a->closing)) {
		ctx_stop(w);
	} else if (a->busy == 0) {
		pthread_cond_broadcast(&a->cv);
	}
	pthread_mutex_unlock(&a->mtx);
	if (!stop) {
		w->state = CTX_RECV;
		nng_ctx_recv(w->ctx, w->aio);
	}
}

// The core's reply to w's request, from any thread.
static void
reply_cb(void *arg, uint8_t *buf, size_t len, int rv)
{
	actx    *w = arg;
	nng_msg *msg;

	if (rv != SLUICE_OK || nng_msg_alloc(&msg, len) != 0) {
		if (rv != SLUICE_OK) {
			sl_log_err("api.reply", "cannot build a reply: %s",
			    sluice_strerror(rv));
		}
		free(buf);
		ctx_next(w);
		return;
	}
	memcpy(nng_msg_body(msg), buf, len);
	free(buf);
	w->state = CTX_SEND;
	nng_aio_set_msg(w->aio, msg);
	nng_ctx_send(w->ctx, w->aio);
}

// w's aio completed: a receive or a send.
static void
ctx_cb(void *arg)
{
	actx    *w  = arg;
	gk_api  *a  = w->api;
	int      rv = nng_aio_result(w->aio);
	nng_msg *msg;

	switch (w->state) {
	case CTX_RECV:
		if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
			pthread_mutex_lock(&a->mtx);
			ctx_stop(w);
			pthread_mutex_unlock(&a->mtx);
			return;
		}
		if (rv != 0) {
			nng_ctx_recv(w->ctx, w->aio);
			return;
		}
		pthread_mutex_lock(&a->mtx);
		a->busy++;
		pthread_mutex_unlock(&a->mtx);
		w->state = CTX_WORK;
		msg      = nng_aio_get_msg(w->aio);
		nng_aio_set_msg(w->aio, NULL);
		// May reply (reply_cb) before it returns, or later from
		// another thread: w is not touched here after this.
		gk_core_submit(
		    a->core, nng_msg_body(msg), nng_msg_len(msg), reply_cb, w);
		nng_msg_free(msg);
		return;
	case CTX_SEND:
		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(w->aio));
			nng_aio_set_msg(w->aio, NULL);
		}
		if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
			pthread_mutex_lock(&a->mtx);
			a->busy--;
			ctx_stop(w);
			pthread_mutex_unlock(&a->mtx);
		} else {
			ctx_next(w);
		}
		return;
	case CTX_WORK:
	case CTX_DONE:
	default:
		sl_log_err(
		    "api.state", "aio completion in state %d", (int) w->state);
		return;
	}
}

int
gk_api_open(gk_api **ap, gk_core *core, const char *url, size_t ncontexts)
{
	gk_api *a;
	int     rv;

	if (ncontexts == 0) {
		return (SLUICE_EINVAL);
	}
	if ((a = calloc(1, sizeof(*a))) == NULL) {
		return (SLUICE_ENOMEM);
	}
	a->core = core;
	pthread_mutex_init(&a->mtx, NULL);
	pthread_cond_init(&a->cv, NULL);
	sl_sock_init(&a->k);
	if ((a->w = calloc(ncontexts, sizeof(*a->w))) == NULL) {
		sl_sock_fini(&a->k);
		pthread_cond_destroy(&a->cv);
		pthread_mutex_destroy(&a->mtx);
		free(a);
		return (SLUICE_ENOMEM);
	}
	a->nw = ncontexts;
	if ((rv = nng_rep0_open(&a->sock)) != 0) {
		sl_log_err("api.open", "cannot open REP socket: %s",
		    nng_strerror(rv));
		rv = SLUICE_EINTERNAL;
		goto fail;
	}
	a->sock_open = true;
	(void) nng_socket_set_size(a->sock, NNG_OPT_RECVMAXSZ, API_RECV_MAX);
	for (size_t i = 0; i < a->nw; i++) {
		actx *w  = &a->w[i];
		w->api   = a;
		w->state = CTX_DONE;
		if (nng_aio_alloc(&w->aio, ctx_cb, w) != 0 ||
		    nng_ctx_open(&w->ctx, a->sock) != 0) {
			rv = SLUICE_ENOMEM;
			goto fail;
		}
		w->ctx_open = true;
	}
	// sl_sock_listen closes the socket when it fails.
	if ((rv = sl_sock_listen(&a->k, a->sock, url)) != 0) {
		a->sock_open = false;
		sl_log_err("api.listen", "cannot listen on %s: %s", url,
		    nng_strerror(rv));
		rv = SLUICE_EIO;
		goto fail;
	}
	pthread_mutex_lock(&a->mtx);
	a->active = a->nw;
	pthread_mutex_unlock(&a->mtx);
	for (size_t i = 0; i < a->nw; i++) {
		a->w[i].state = CTX_RECV;
		nng_ctx_recv(a->w[i].ctx, a->w[i].aio);
	}
	*ap = a;
	return (SLUICE_OK);
fail:
	gk_api_close(a);
	return (rv);
}

void
gk_api_stop_listening(gk_api *a)
{
	// Not nng_listener_close(): on nng 1.5.2 closing a pipe while a
	// request arrives on it can hang every later close (sock.c). New
	// peers are turned away, live pipes end at their next request.
	if (a != NULL) {
		sl_sock_refuse(&a->k);
	}
}

void
gk_api_close(gk_api *a)
{
	struct timespec ts;

	if (a == NULL) {
		return;
	}
	// The requests in hand first: each is answered (its commit, or its
	// flagd write, is bounded) and its context receives no more. A
	// reply a peer does not read is not waited for beyond API_DRAIN_MS.
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += API_DRAIN_MS / 1000u;
	pthread_mutex_lock(&a->mtx);
	a->closing = true;
	while (a->busy > 0) {
		if (pthread_cond_timedwait(&a->cv, &a->mtx, &ts) ==
		    ETIMEDOUT) {
			break;
		}
	}
	pthread_mutex_unlock(&a->mtx);
	// Closing the contexts fails their pending receives and sends with
	// NNG_ECLOSED; a request still in the core is answered into the
	// closed context (the send fails) when it is done. Once every
	// context has stopped, no callback of ours runs any more.
	for (size_t i = 0; i < a->nw; i++) {
		if (a->w[i].ctx_open) {
			(void) nng_ctx_close(a->w[i].ctx);
		}
	}
	pthread_mutex_lock(&a->mtx);
	while (a->active > 0) {
		pthread_cond_wait(&a->cv, &a->mtx);
	}
	pthread_mutex_unlock(&a->mtx);
	for (size_t i = 0; i < a->nw; i++) {
		if (a->w[i].aio != NULL) {
			nng_aio_free(a->w[i].aio); // waits for its callback
		}
	}
	if (a->k.open) {
		sl_sock_close(&a->k, API_PIPES_GRACE_MS);
	} else if (a->sock_open) {
		nng_close(a->sock); // never listened: no pipe
	}
	free(a->w);
	sl_sock_fini(&a->k);
	pthread_cond_destroy(&a->cv);
	pthread_mutex_destroy(&a->mtx);
	free(a);
}
