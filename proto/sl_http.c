// SPDX-License-Identifier: MIT
//
// sl_http.c — the status HTTP server flagd and gatekeeper share (/metrics,
// /healthz, /readyz, /), on nng's HTTP server. Each page renders into an
// open_memstream buffer that is copied into the response.

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include "sl_http.h"

struct sl_http {
	nng_http_server *srv;
	nng_url         *url;
	bool             started;
};

// What one handler needs. It is the handler's data, freed by nng with the
// handler, so a request still in flight never sees it freed.
typedef struct binding {
	const char       *ctype;
	sl_http_render_cb render_cb;
	void             *arg;
} binding;

static void
respond(nng_aio *aio, uint16_t status, const char *ctype, const char *body,
    size_t len)
{
	nng_http_res *res;
	int           rv;

	if ((rv = nng_http_res_alloc(&res)) != 0) {
		nng_aio_finish(aio, rv);
		return;
	}
	if ((rv = nng_http_res_set_status(res, status)) != 0 ||
	    (rv = nng_http_res_set_header(res, "Content-Type", ctype)) != 0 ||
	    (rv = nng_http_res_copy_data(res, body, len)) != 0) {
		nng_http_res_free(res);
		nng_aio_finish(aio, rv);
		return;
	}
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
}

static void
serve_cb(nng_aio *aio)
{
	nng_http_handler *h      = nng_aio_get_input(aio, 1);
	const binding    *b      = nng_http_handler_get_data(h);
	char             *buf    = NULL;
	size_t            len    = 0;
	uint16_t          status = 200;
	FILE             *f;

	if ((f = open_memstream(&buf, &len)) == NULL) {
		nng_aio_finish(aio, NNG_ENOMEM);
		return;
	}
	b->render_cb(f, b->arg, &status);
	fclose(f);
	respond(aio, status, b->ctype, buf, len);
	free(buf);
}

static int
add(sl_http *h, const sl_http_page *p, void *arg)
{
	nng_http_handler *hd;
	binding          *b;
	int               rv;

	if ((b = malloc(sizeof(*b))) == NULL) {
		return (NNG_ENOMEM);
	}
	b->ctype     = p->ctype;
	b->render_cb = p->render_cb;
	b->arg       = arg;
	if ((rv = nng_http_handler_alloc(&hd, p->path, serve_cb)) != 0) {
		free(b);
		return (rv);
	}
	if ((rv = nng_http_handler_set_data(hd, b, free)) != 0) {
		free(b);
		nng_http_handler_free(hd);
		return (rv);
	}
	// From here the handler owns b.
	if ((rv = nng_http_server_add_handler(h->srv, hd)) != 0) {
		nng_http_handler_free(hd);
		return (rv);
	}
	return (0);
}

int
sl_http_open(sl_http **hp, const char *url, const sl_http_page *pages,
    size_t npages, void *arg)
{
	sl_http *h;
	int      rv;

	if ((h = calloc(1, sizeof(*h))) == NULL) {
		return (SLUICE_ENOMEM);
	}
	if ((rv = nng_url_parse(&h->url, url)) != 0 ||
	    (rv = nng_http_server_hold(&h->srv, h->url)) != 0) {
		goto fail;
	}
	for (size_t i = 0; i < npages; i++) {
		if ((rv = add(h, &pages[i], arg)) != 0) {
			goto fail;
		}
	}
	if ((rv = nng_http_server_start(h->srv)) != 0) {
		goto fail;
	}
	h->started = true;
	*hp        = h;
	return (SLUICE_OK);
fail:
	sl_log_err(
	    "http.open", "cannot serve HTTP on %s: %s", url, nng_strerror(rv));
	sl_http_close(h);
	return (SLUICE_EIO);
}

void
sl_http_close(sl_http *h)
{
	if (h == NULL) {
		return;
	}
	if (h->srv != NULL) {
		if (h->started) {
			nng_http_server_stop(h->srv);
		}
		nng_http_server_release(h->srv);
	}
	if (h->url != NULL) {
		nng_url_free(h->url);
	}
	free(h);
}

void
sl_http_health_cb(FILE *f, void *arg, uint16_t *statusp)
{
	(void) arg;
	(void) statusp;
	fprintf(f, "ok\n");
}

void
sl_http_ready(FILE *f, int ready, uint16_t *statusp)
{
	*statusp = ready ? 200 : 503;
	fprintf(f, "%s\n", ready ? "ready" : "not ready");
}
