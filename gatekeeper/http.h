/* SPDX-License-Identifier: MIT */
/*
 * http.h — gatekeeper's HTTP endpoints on the shared status server
 * (proto/sl_http.h): /metrics (Prometheus text, with rejections per
 * reason), /healthz, /readyz and a plain-text status page at /.
 */
#ifndef GK_HTTP_H
#define GK_HTTP_H

#include "core.h"
#include "sl_http.h"

/*
 * Serves gatekeeper's pages for core at url. core is borrowed and must
 * outlive the server; close it with sl_http_close. Returns what
 * sl_http_open does.
 */
int gk_http_open(
    sl_http **hp, gk_core *core, const char *url) SLUICE_NODISCARD;

#endif /* GK_HTTP_H */
