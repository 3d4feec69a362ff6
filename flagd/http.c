// SPDX-License-Identifier: MIT
//
// http.c — /metrics, /healthz, /readyz and a status page, served by nng's
// HTTP server. Handlers render into a memory stream and copy it into the
// response; they never touch the write path.

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include "http.h"

struct flagd_http {
	flagd_node      *node;
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
	nng_http_handler *h    = nng_aio_get_input(aio, 1);
	flagd_node       *node = nng_http_handler_get_data(h);
	flagd_metrics    *m    = flagd_node_metrics(node);
	char             *buf  = NULL;
	size_t            len  = 0;
	FILE             *f;
	uint16_t          status = 200;
	int               ready  = atomic_load(&m->ready);

	if ((f = open_memstream(&buf, &len)) == NULL) {
		nng_aio_finish(aio, NNG_ENOMEM);
		return;
	}
	switch (p) {
	case PAGE_METRICS:
		flagd_metrics_render(m, f);
		break;
	case PAGE_HEALTH:
		fprintf(f, "ok\n");
		break;
	case PAGE_READY:
		status = ready ? 200 : 503;
		fprintf(f, "%s\n", ready ? "ready" : "not ready");
		break;
	case PAGE_STATUS: {
		const flagd_config *cfg = flagd_node_config(node);
		fprintf(f,
		    "sluice flagd\n"
		    "node:      %llu\n"
		    "ready:     %s\n"
		    "revision:  %llu\n"
		    "api:       %s\n"
		    "publish:   %s\n"
		    "uptime:    %llu s\n",
		    (unsigned long long) cfg->node_id, ready ? "yes" : "no",
		    (unsigned long long) atomic_load(&m->revision),
		    cfg->api_url, flagd_node_publish_url(node),
		    (unsigned long long) (sl_now_ms() -
		        flagd_node_started_ms(node)) /
		        1000);
		break;
	}
	}
	fclose(f);
	respond(aio, status,
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
add(flagd_http *h, const char *path, void (*cb)(nng_aio *))
{
	nng_http_handler *hd;
	int               rv;

	if ((rv = nng_http_handler_alloc(&hd, path, cb)) != 0) {
		return (rv);
	}
	if ((rv = nng_http_handler_set_data(hd, h->node, NULL)) != 0 ||
	    (rv = nng_http_server_add_handler(h->srv, hd)) != 0) {
		nng_http_handler_free(hd);
		return (rv);
	}
	return (0);
}

int
flagd_http_open(flagd_http **hp, flagd_node *node, const char *url)
{
	flagd_http *h;
	int         rv;

	if ((h = calloc(1, sizeof(*h))) == NULL) {
		return (SLUICE_ENOMEM);
	}
	h->node = node;
	if ((rv = nng_url_parse(&h->url, url)) != 0 ||
	    (rv = nng_http_server_hold(&h->srv, h->url)) != 0 ||
	    (rv = add(h, "/metrics", metrics_cb)) != 0 ||
	    (rv = add(h, "/healthz", health_cb)) != 0 ||
	    (rv = add(h, "/readyz", ready_cb)) != 0 ||
	    (rv = add(h, "/", status_cb)) != 0 ||
	    (rv = nng_http_server_start(h->srv)) != 0) {
		sl_log_err("http.open", "cannot serve HTTP on %s: %s", url,
		    nng_strerror(rv));
		flagd_http_close(h);
		return (SLUICE_EIO);
	}
	h->started = true;
	*hp        = h;
	return (SLUICE_OK);
}

void
flagd_http_close(flagd_http *h)
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
