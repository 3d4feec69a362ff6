/* SPDX-License-Identifier: MIT */
/*
 * api.h — flagd's request/reply API: an nng REP socket served by several
 * contexts at once. Reads are answered from the local store on the nng
 * thread that received them; writes go through flagd_node_write and are
 * answered from the writer thread once committed. nng codes stay inside
 * api.c.
 */
#ifndef FLAGD_API_H
#define FLAGD_API_H

#include "node.h"

typedef struct flagd_api flagd_api;

/* Listens on url with ncontexts concurrent contexts. */
int flagd_api_open(flagd_api **ap, flagd_node *node, const char *url,
    size_t ncontexts) SLUICE_NODISCARD;

/*
 * Stops receiving new requests: a peer that connects is turned away, and
 * a connection ends at its next request (requests in hand can still be
 * answered on it). The listener is not closed under live connections
 * (see proto/sock.c).
 */
void flagd_api_stop_listening(flagd_api *a);

/*
 * Closes the socket (once its connections have ended, at most 0.5 s more
 * for idle ones) and frees the contexts. NULL is a no-op.
 */
void flagd_api_close(flagd_api *a);

/*
 * Handles one request's bytes and returns the packed Reply in a malloc'd
 * buffer. Exposed for the fuzzer and for tests that need no sockets; a
 * write is refused with SLUICE_EINVAL here (writes need the async path).
 */
int flagd_api_handle_read(flagd_node *node, const void *req, size_t len,
    uint8_t **replyp, size_t *replylenp) SLUICE_NODISCARD;

#endif /* FLAGD_API_H */
