/* SPDX-License-Identifier: MIT */
/*
 * http.c — /metrics, /healthz, /readyz and a status page for gatekeeper,
 * served by nng's HTTP server. Handlers render into a memory stream.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include "http.h"

struct gk_http {
	gk_core         *core;
	nng_http_server *srv;
	nng_url         *url;
	bool             started;
};

typedef enum { PAGE_METRICS, PAGE_HEALTH, PAGE_READY, PAGE_STATUS } page;

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
serve(nng_aio *aio, page p)
{
	nng_http_handler *h     = nng_aio_get_input(aio, 1);
	gk_core          *c     = nng_http_handler_get_data(h);
	char             *buf   = NULL;
	size_t            len   = 0;
	uint16_t          st    = 200;
	int               ready = atomic_load(&c->m.ready);
	FILE             *f;

	if ((f = open_memstream(&buf, &len)) == NULL) {
		nng_aio_finish(aio, NNG_ENOMEM);
		return;
	}
	switch (p) {
	case PAGE_METRICS:
		gk_core_metrics(c, f);
		break;
	case PAGE_HEALTH:
		fprintf(f, "ok\n");
		break;
	case PAGE_READY:
		st = ready ? 200 : 503;
		fprintf(f, "%s\n", ready ? "ready" : "not ready");
		break;
	case PAGE_STATUS:
		fprintf(
		    f, "sluice gatekeeper\nready: %s\n", ready ? "yes" : "no");
		pthread_mutex_lock(&c->mtx);
		for (size_t i = 0; i < c->nro; i++) {
			gk_ro *ro = c->ros[i];
			fprintf(f, "%s: stage %u, %s, %zu reports in window\n",
			    ro->name, ro->st.gate.stage,
			    gk_core_gate(ro) == NULL
			        ? "no gate"
			        : gk_status_name(ro->last.status),
			    ro->n);
		}
		pthread_mutex_unlock(&c->mtx);
		break;
	}
	fclose(f);
	respond(aio, st,
	    p == PAGE_METRICS ? "text/plain; version=0.0.4" : "text/plain",
	    buf, len);
	free(buf);
}

static void
metrics_cb(nng_aio *aio)
{
	serve(aio, PAGE_METRICS);
}

static void
health_cb(nng_aio *aio)
{
	serve(aio, PAGE_HEALTH);
}

static void
ready_cb(nng_aio *aio)
{
	serve(aio, PAGE_READY);
}

static void
status_cb(nng_aio *aio)
{
	serve(aio, PAGE_STATUS);
}

static int
add(gk_http *h, const char *path, void (*cb)(nng_aio *))
{
	nng_http_handler *hd;
	int               rv;

	if ((rv = nng_http_handler_alloc(&hd, path, cb)) != 0) {
		return (rv);
	}
	if ((rv = nng_http_handler_set_data(hd, h->core, NULL)) != 0 ||
	    (rv = nng_http_server_add_handler(h->srv, hd)) != 0) {
		nng_http_handler_free(hd);
		return (rv);
	}
	return (0);
}

int
gk_http_open(gk_http **hp, gk_core *core, const char *url)
{
	gk_http *h;
	int      rv;

	if ((h = calloc(1, sizeof(*h))) == NULL) {
		return (SLUICE_ENOMEM);
	}
	h->core = core;
	if ((rv = nng_url_parse(&h->url, url)) != 0 ||
	    (rv = nng_http_server_hold(&h->srv, h->url)) != 0 ||
	    (rv = add(h, "/metrics", metrics_cb)) != 0 ||
	    (rv = add(h, "/healthz", health_cb)) != 0 ||
	    (rv = add(h, "/readyz", ready_cb)) != 0 ||
	    (rv = add(h, "/", status_cb)) != 0 ||
	    (rv = nng_http_server_start(h->srv)) != 0) {
		sl_log_err("http.open", "cannot serve HTTP on %s: %s", url,
		    nng_strerror(rv));
		gk_http_close(h);
		return (SLUICE_EIO);
	}
	h->started = true;
	*hp        = h;
	return (SLUICE_OK);
}

void
gk_http_close(gk_http *h)
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
