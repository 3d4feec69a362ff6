/* SPDX-License-Identifier: MIT */
/*
 * api.h — gatekeeper's request/reply API: an nng REP socket served by
 * several contexts, each driven by its aio callback on nng's task
 * threads (no thread of its own). Requests and replies are
 * GkRequest/GkReply; gk_core_submit answers them, possibly later and
 * from another thread, and never blocks the callback on flagd or on
 * another thread's commit. nng codes stay inside api.c.
 */
#ifndef GK_API_H
#define GK_API_H

#include "core.h"

typedef struct gk_api gk_api;

/* Listens on url with ncontexts contexts (requests in hand at once). */
int gk_api_open(gk_api **ap, gk_core *core, const char *url,
    size_t ncontexts) SLUICE_NODISCARD;

/*
 * Stops accepting: a peer that connects is turned away, and a connection
 * ends at its next request (requests in hand are still answered on it).
 * The listener is not closed under live connections (see proto/sock.c).
 */
void gk_api_stop_listening(gk_api *a);

/*
 * Lets the requests in hand be answered (their replies sent; at most
 * 5 s for replies a peer does not read) while receiving no more, closes
 * the contexts, waits until no callback runs, then closes the socket
 * once its connections have ended (at most 0.5 s more for idle ones).
 * NULL is a no-op.
 */
void gk_api_close(gk_api *a);

#endif /* GK_API_H */
