/* SPDX-License-Identifier: MIT */
/*
 * http.c — gatekeeper's pages for the shared status server
 * (proto/sl_http.c): /metrics, /healthz, /readyz and a status page.
 */
#include <stdio.h>

#include "http.h"

static void
metrics_cb(FILE *f, void *arg, uint16_t *statusp)
{
	(void) statusp;
	gk_core_metrics(arg, f);
}

static void
ready_cb(FILE *f, void *arg, uint16_t *statusp)
{
	gk_core *c = arg;

	sl_http_ready(f, atomic_load(&c->m.ready), statusp);
}

static void
status_cb(FILE *f, void *arg, uint16_t *statusp)
{
	gk_core *c = arg;

	(void) statusp;
	fprintf(f, "sluice gatekeeper\nready: %s\n",
	    atomic_load(&c->m.ready) ? "yes" : "no");
	pthread_mutex_lock(&c->mtx);
	for (size_t i = 0; i < c->nro; i++) {
		gk_ro *ro = c->ros[i];
		fprintf(f, "%s: stage %u, %s, %zu reports in window\n",
		    ro->name, ro->st.gate.stage,
		    gk_core_gate(ro) == NULL ? "no gate"
		                             : gk_status_name(ro->last.status),
		    ro->n);
	}
	pthread_mutex_unlock(&c->mtx);
}

static const sl_http_page pages[] = {
	{ "/metrics", SL_HTTP_PROMETHEUS, metrics_cb },
	{ "/healthz", SL_HTTP_TEXT, sl_http_health_cb },
	{ "/readyz", SL_HTTP_TEXT, ready_cb },
	{ "/", SL_HTTP_TEXT, status_cb },
};

int
gk_http_open(sl_http **hp, gk_core *core, const char *url)
{
	return (sl_http_open(
	    hp, url, pages, sizeof(pages) / sizeof(pages[0]), core));
}
