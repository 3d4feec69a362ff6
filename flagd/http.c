// SPDX-License-Identifier: MIT
//
// http.c — flagd's pages for the shared status server (proto/sl_http.c):
// /metrics, /healthz, /readyz and a status page. Pages render from the
// metrics and configuration; they never touch the write path.

#include <stdio.h>

#include "http.h"

static void
metrics_cb(FILE *f, void *arg, uint16_t *statusp)
{
	(void) statusp;
	flagd_metrics_render(flagd_node_metrics(arg), f);
}

static void
ready_cb(FILE *f, void *arg, uint16_t *statusp)
{
	sl_http_ready(
	    f, atomic_load(&flagd_node_metrics(arg)->ready), statusp);
}

static void
status_cb(FILE *f, void *arg, uint16_t *statusp)
{
	flagd_node         *node = arg;
	flagd_metrics      *m    = flagd_node_metrics(node);
	const flagd_config *cfg  = flagd_node_config(node);

	(void) statusp;
	fprintf(f,
	    "sluice flagd\n"
	    "node:      %llu\n"
	    "ready:     %s\n"
	    "revision:  %llu\n"
	    "api:       %s\n"
	    "publish:   %s\n"
	    "uptime:    %llu s\n",
	    (unsigned long long) cfg->node_id,
	    atomic_load(&m->ready) ? "yes" : "no",
	    (unsigned long long) atomic_load(&m->revision), cfg->api_url,
	    flagd_node_publish_url(node),
	    (unsigned long long) (sl_now_ms() - flagd_node_started_ms(node)) /
	        1000);
}

static const sl_http_page pages[] = {
	{ "/metrics", SL_HTTP_PROMETHEUS, metrics_cb },
	{ "/healthz", SL_HTTP_TEXT, sl_http_health_cb },
	{ "/readyz", SL_HTTP_TEXT, ready_cb },
	{ "/", SL_HTTP_TEXT, status_cb },
};

int
flagd_http_open(sl_http **hp, flagd_node *node, const char *url)
{
	return (sl_http_open(
	    hp, url, pages, sizeof(pages) / sizeof(pages[0]), node));
}
