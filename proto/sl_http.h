/* SPDX-License-Identifier: MIT */
/*
 * sl_http.h — the small HTTP status server flagd and gatekeeper share, on
 * nng's own HTTP server. A daemon passes a table of pages; each page
 * renders its body into a memory stream, and the server copies it into
 * the response, so a page never touches the write path.
 */
#ifndef SL_HTTP_H
#define SL_HTTP_H

#include <stdint.h>
#include <stdio.h>

#include "sl.h"

/* Content types for sl_http_page.ctype. */
#define SL_HTTP_TEXT "text/plain"
#define SL_HTTP_PROMETHEUS "text/plain; version=0.0.4"

/*
 * Renders one page into f. *statusp is 200 on entry; a page may set it
 * (e.g. 503). arg is the one given to sl_http_open. Called on an nng
 * thread, possibly several at once.
 */
typedef void (*sl_http_render_cb)(FILE *f, void *arg, uint16_t *statusp);

typedef struct sl_http_page {
	const char       *path;  /* "/" serves only "/", not a tree */
	const char       *ctype; /* Content-Type of the response */
	sl_http_render_cb render_cb;
} sl_http_page;

typedef struct sl_http sl_http;

/*
 * Serves GET on each of the npages pages at url ("http://host:port") and
 * starts the server. The page table is copied (its strings must outlive
 * the server); arg is borrowed and must outlive sl_http_close.
 *
 * @param hp     OUT: the server, on success; free with sl_http_close.
 * @return SLUICE_OK, SLUICE_ENOMEM, or SLUICE_EIO if the URL is bad or
 *         the port cannot be bound (logged as "http.open").
 */
int sl_http_open(sl_http **hp, const char *url, const sl_http_page *pages,
    size_t npages, void *arg) SLUICE_NODISCARD;

/* Stops the server and frees it. NULL is a no-op. */
void sl_http_close(sl_http *h);

/* The /healthz page: "ok". */
void sl_http_health_cb(FILE *f, void *arg, uint16_t *statusp);

/* The body of a /readyz page: "ready" (200) or "not ready" (503). */
void sl_http_ready(FILE *f, int ready, uint16_t *statusp);

#endif /* SL_HTTP_H */
