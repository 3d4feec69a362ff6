/* SPDX-License-Identifier: MIT */
/*
 * http.h — flagd's HTTP endpoints on nng's own HTTP server: /metrics
 * (Prometheus text), /healthz (the process is up), /readyz (the node has
 * applied the committed state and takes requests), and / (a plain-text
 * status page).
 */
#ifndef FLAGD_HTTP_H
#define FLAGD_HTTP_H

#include "node.h"

typedef struct flagd_http flagd_http;

int flagd_http_open(
    flagd_http **hp, flagd_node *node, const char *url) SLUICE_NODISCARD;
void flagd_http_close(flagd_http *h); /* NULL is a no-op */

#endif /* FLAGD_HTTP_H */
