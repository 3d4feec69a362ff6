/* SPDX-License-Identifier: MIT */
/*
 * http.h — flagd's HTTP endpoints on the shared status server
 * (proto/sl_http.h): /metrics (Prometheus text), /healthz (the process is
 * up), /readyz (the node has applied the committed state and takes
 * requests), and / (a plain-text status page).
 */
#ifndef FLAGD_HTTP_H
#define FLAGD_HTTP_H

#include "node.h"
#include "sl_http.h"

/*
 * Serves flagd's pages for node at url. node is borrowed and must outlive
 * the server; close it with sl_http_close. Returns what sl_http_open does.
 */
int flagd_http_open(
    sl_http **hp, flagd_node *node, const char *url) SLUICE_NODISCARD;

#endif /* FLAGD_HTTP_H */
