/* SPDX-License-Identifier: MIT */
/*
 * api.h — gatekeeper's request/reply API: an nng REP socket served by
 * several contexts, each on a worker thread of its own (a request may
 * wait on flagd: a key refresh, a rollout fetch, a decision write).
 * Requests and replies are GkRequest/GkReply; gk_core_handle answers
 * them. nng codes stay inside api.c.
 */
#ifndef GK_API_H
#define GK_API_H

#include "core.h"

typedef struct gk_api gk_api;

/* Listens on url with ncontexts workers. */
int gk_api_open(gk_api **ap, gk_core *core, const char *url,
    size_t ncontexts) SLUICE_NODISCARD;

/* Stops accepting connections (closes the listener). */
void gk_api_stop_listening(gk_api *a);

/*
 * Closes the socket, which ends every worker once its request in hand
 * is answered, and joins them. NULL is a no-op.
 */
void gk_api_close(gk_api *a);

#endif /* GK_API_H */
