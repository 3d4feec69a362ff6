/* SPDX-License-Identifier: MIT */
/*
 * http.h — gatekeeper's HTTP endpoints on nng's HTTP server: /metrics
 * (Prometheus text, with rejections per reason), /healthz, /readyz and a
 * plain-text status page at /.
 */
#ifndef GK_HTTP_H
#define GK_HTTP_H

#include "core.h"

typedef struct gk_http gk_http;

int gk_http_open(
    gk_http **hp, gk_core *core, const char *url) SLUICE_NODISCARD;
void gk_http_close(gk_http *h); /* NULL is a no-op */

#endif /* GK_HTTP_H */
