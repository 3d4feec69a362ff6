/* SPDX-License-Identifier: MIT */
/*
 * api.c — gatekeeper's nng REP API: one context per worker thread, each
 * receiving, handling through gk_core_handle and replying in a loop
 * until the socket closes.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "api.h"

// The largest request read: a report envelope plus headroom. nng drops a
// connection that sends more without reading it.
#define API_RECV_MAX ((size_t) SL_MAX_REPORT_BYTES + 8192u)

typedef struct worker {
	struct gk_api *api;
	nng_ctx        ctx;
	nng_aio       *aio;
	pthread_t      thr;
	bool           ctx_open;
	bool           started;
} worker;

struct gk_api {
	gk_core     *core;
	nng_socket   sock;
	nng_listener listener;
	bool         sock_open;
	bool         closed;
	worker      *w;
	size_t       nw;
};

static void *
work(void *arg)
{
	worker  *w = arg;
	nng_msg *msg;
	uint8_t *buf;
	size_t   len;
	int      rv;

	for (;;) {
		nng_ctx_recv(w->ctx, w->aio);
		nng_aio_wait(w->aio);
		if ((rv = nng_aio_result(w->aio)) != 0) {
			if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
				break;
			}
			continue;
		}
		msg = nng_aio_get_msg(w->aio);
		rv  = gk_core_handle(w->api->core, nng_msg_body(msg),
		     nng_msg_len(msg), &buf, &len);
		nng_msg_free(msg);
		if (rv != SLUICE_OK) {
			sl_log_err("api.reply", "cannot build a reply: %s",
			    sluice_strerror(rv));
			continue;
		}
		if (nng_msg_alloc(&msg, len) != 0) {
			free(buf);
			continue;
		}
		memcpy(nng_msg_body(msg), buf, len);
		free(buf);
		nng_aio_set_msg(w->aio, msg);
		nng_ctx_send(w->ctx, w->aio);
		nng_aio_wait(w->aio);
		if ((rv = nng_aio_result(w->aio)) != 0) {
			nng_msg_free(msg);
			if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
				break;
			}
		}
	}
	return (NULL);
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
	if ((a->w = calloc(ncontexts, sizeof(*a->w))) == NULL) {
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
		worker *w = &a->w[i];
		w->api    = a;
		if (nng_aio_alloc(&w->aio, NULL, NULL) != 0 ||
		    nng_ctx_open(&w->ctx, a->sock) != 0) {
			rv = SLUICE_ENOMEM;
			goto fail;
		}
		w->ctx_open = true;
	}
	if ((rv = nng_listen(a->sock, url, &a->listener, 0)) != 0) {
		sl_log_err("api.listen", "cannot listen on %s: %s", url,
		    nng_strerror(rv));
		rv = SLUICE_EIO;
		goto fail;
	}
	for (size_t i = 0; i < a->nw; i++) {
		if (pthread_create(&a->w[i].thr, NULL, work, &a->w[i]) != 0) {
			rv = SLUICE_EINTERNAL;
			goto fail;
		}
		a->w[i].started = true;
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
	if (a != NULL && a->sock_open) {
		nng_listener_close(a->listener);
	}
}

void
gk_api_close(gk_api *a)
{
	if (a == NULL) {
		return;
	}
	// Closing the socket fails every pending receive with NNG_ECLOSED;
	// a worker busy with a request answers it (the send then fails)
	// and leaves its loop.
	if (a->sock_open) {
		nng_close(a->sock);
	}
	for (size_t i = 0; i < a->nw; i++) {
		if (a->w[i].started) {
			pthread_join(a->w[i].thr, NULL);
		}
	}
	for (size_t i = 0; i < a->nw; i++) {
		if (a->w[i].aio != NULL) {
			nng_aio_free(a->w[i].aio);
		}
	}
	free(a->w);
	free(a);
}
