/* SPDX-License-Identifier: MIT */
/*
 * sock.h — an nng socket with one dialer or one listener, closed so that
 * nng 1.5.2's pipe-close race cannot hang the process (the why is in
 * sock.c).
 *
 * Dialling: the client's change stream (SUB) and rpc.c (REQ). Listening:
 * the daemons' REP APIs (flagd/api.c, gatekeeper/api.c). The functions
 * return nng codes (0 or NNG_E*); callers translate them. A socket is
 * opened and closed by one thread at a time; the pipe count and the
 * refusal are updated under the struct's own mutex (nng's threads run
 * the pipe callbacks).
 */
#ifndef SL_SOCK_H
#define SL_SOCK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <nng/nng.h>

typedef struct sl_sock {
	nng_socket      s;
	nng_dialer      d;
	nng_listener    l;
	bool            listening; // l, not d (sl_sock_listen)
	bool            open;
	pthread_mutex_t mtx;
	pthread_cond_t  cv;
	int             pipes;   // live pipes (nng pipe events), under mtx
	bool            refused; // sl_sock_refuse() done, under mtx
} sl_sock;

/* Embedded-struct lifecycle: init before the first open, fini after the
 * last close (the struct must outlive every socket opened in it, since
 * nng's pipe callbacks point at it until nng_close() returns). */
void sl_sock_init(sl_sock *k);
void sl_sock_fini(sl_sock *k);

/*
 * Takes over s (just opened by nng_*_open, options set, not dialled),
 * counts its pipes, and dials url synchronously. On failure s is closed
 * and k is left closed. @return 0 or an nng error code.
 */
int sl_sock_dial(sl_sock *k, nng_socket s, const char *url);

/*
 * Takes over s (opened, options set, contexts may be open on it), counts
 * its pipes, and listens on url. On failure s is closed and k is left
 * closed. @return 0 or an nng error code.
 */
int sl_sock_listen(sl_sock *k, nng_socket s, const char *url);

/*
 * A listening socket stops taking work without closing a pipe under a
 * message: a peer that connects from now on is turned away before its
 * pipe reads anything, and a live pipe ends (on nng's error path) at the
 * next message that arrives on it. Requests already received can still
 * be answered on their pipes. For the daemons' SIGTERM ("stop
 * accepting"): nng 1.5.2's nng_listener_close() closes every pipe of the
 * listener at once, which is the race. Idempotent; no-op if not open or
 * dialling.
 */
void sl_sock_refuse(sl_sock *k);

/*
 * Closes the socket, if open, without racing a message that is arriving.
 * Dialling: stops redialling, makes the pipe refuse any further message
 * (so that it ends through nng's error path). Listening: sl_sock_refuse().
 * Then waits up to grace_ms for every pipe to be gone, and nng_close().
 * Blocks for at most grace_ms plus nng_close().
 */
void sl_sock_close(sl_sock *k, uint32_t grace_ms);

#endif /* SL_SOCK_H */
