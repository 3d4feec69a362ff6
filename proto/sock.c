// SPDX-License-Identifier: MIT
//
// sock.c — closing an nng socket without hanging on nng 1.5.2's pipe
// close race (contract in sock.h).
//
// The race: in nng 1.5.2 the tcp and ipc transports read a message in
// two steps, its 8-byte length and then its body, and a read callback
// that got a partial read or just the length re-arms the next read
// without checking whether the pipe was closed meanwhile. When
// nng_close() closes a pipe at the moment such a callback is queued (a
// message is arriving), the re-armed read is refused by the closed aio
// and never completes, so the protocol's receive on that pipe never
// finishes: nng's single reaper thread then waits for it forever
// (sub0_pipe_stop / req0_pipe_stop / rep0_pipe_stop -> nni_aio_stop),
// nng_close() waits for the reaper, and so does every later nng_close()
// in the process.
// Upstream fixed it after 1.5.2 (nng pull request 1636, "Finish receive
// aio on close"); Debian 12 ships 1.5.2. A SUB socket receives heartbeats
// and changes it never asked for, so closing one is exposed whenever the
// stream is busy. A REP server is exposed whenever clients keep sending:
// nng_listener_close() (the daemons' "stop accepting" at SIGTERM) closes
// every pipe of the listener at once, and so does nng_close().
//
// The way around it: never let our close be the one that ends a pipe
// with a message in flight. Before closing, the dialer's receive limit
// is lowered to 1 byte, which nng 1.5.2 applies to live pipes: the next
// length that arrives is then refused (NNG_EMSGSIZE) on the read
// callback's error path, which re-arms nothing, and the protocol closes
// the pipe itself. Redialling is pushed a day away first; nng 1.5.2
// draws its back-off as a signed number, so about half the time it
// redials at once anyway, but a redialled pipe inherits the 1-byte limit
// and ends the same way at its first message. Once no pipe is left (or
// after the grace period, when nothing was arriving, so no read is in
// flight and a length that arrives during the close still ends on the
// error path), nng_close() has nothing left to race with. (Closing while
// such a redial is negotiating makes nng 1.5.2 lose that endpoint's
// memory, a few KB, which the sanitizer runs let go; it does not hang.)
//
// A listener is handled the same way, since nng 1.5.2 applies a
// listener's receive limit to its live pipes too: lowered to 1 byte, each
// pipe ends itself at the next request that arrives on it, and a pipe
// accepted afterwards at its first. A request already received is still
// answered: REQ peers send the next request only after the reply. New
// peers are turned away by closing their pipe in the NNG_PIPE_EV_ADD_PRE
// callback, before the protocol starts reading from it; the listener
// itself stays open until nng_close(), since closing it closes every pipe
// at once. A pipe that stays idle is not waited for beyond the grace
// period: with the 1-byte limit, a length that arrives during the close
// ends on the error path. Pipes are counted from ADD_PRE (the first event
// nng delivers for a pipe, also one it turns away) to REM_POST.

#include <time.h>

#include "sl.h"
#include "sock.h"

// Far enough that the dialer never redials before the close.
#define SOCK_NO_REDIAL_MS (24 * 3600 * 1000)

static void
sock_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	sl_sock *k      = arg;
	bool     refuse = false;

	pthread_mutex_lock(&k->mtx);
	if (ev == NNG_PIPE_EV_ADD_PRE) {
		k->pipes++;
		refuse = k->refused;
	} else if (ev == NNG_PIPE_EV_REM_POST) {
		k->pipes--;
		pthread_cond_broadcast(&k->cv);
	}
	pthread_mutex_unlock(&k->mtx);
	if (refuse) {
		// Before pipe_start: nothing is being read from it yet.
		(void) nng_pipe_close(p);
	}
}

// Counts s's pipes in k (and turns new ones away once k is refused).
static int
sock_notify(sl_sock *k, nng_socket s)
{
	int rv;

	pthread_mutex_lock(&k->mtx);
	k->pipes   = 0;
	k->refused = false;
	pthread_mutex_unlock(&k->mtx);
	if ((rv = nng_pipe_notify(s, NNG_PIPE_EV_ADD_PRE, sock_pipe_cb, k)) ==
	    0) {
		rv = nng_pipe_notify(s, NNG_PIPE_EV_REM_POST, sock_pipe_cb, k);
	}
	return (rv);
}

void
sl_sock_init(sl_sock *k)
{
	pthread_condattr_t ca;

	k->open      = false;
	k->listening = false;
	k->pipes     = 0;
	k->refused   = false;
	pthread_mutex_init(&k->mtx, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&k->cv, &ca);
	pthread_condattr_destroy(&ca);
}

void
sl_sock_fini(sl_sock *k)
{
	pthread_cond_destroy(&k->cv);
	pthread_mutex_destroy(&k->mtx);
}

// Dials or listens on url with s, which k takes over (closed on failure).
static int
sock_start(sl_sock *k, nng_socket s, const char *url, bool listening)
{
	int rv;

	if ((rv = sock_notify(k, s)) == 0) {
		rv = listening ? nng_listen(s, url, &k->l, 0)
		               : nng_dial(s, url, &k->d, 0);
	}
	if (rv != 0) {
		nng_close(s);
		return (rv);
	}
	k->s         = s;
	k->listening = listening;
	k->open      = true;
	return (0);
}

int
sl_sock_dial(sl_sock *k, nng_socket s, const char *url)
{
	return (sock_start(k, s, url, false));
}

int
sl_sock_listen(sl_sock *k, nng_socket s, const char *url)
{
	return (sock_start(k, s, url, true));
}

void
sl_sock_refuse(sl_sock *k)
{
	if (!k->open || !k->listening) {
		return;
	}
	pthread_mutex_lock(&k->mtx);
	k->refused = true;
	pthread_mutex_unlock(&k->mtx);
	// An error is ignored: a transport without the option (inproc) has
	// no such race.
	(void) nng_listener_set_size(k->l, NNG_OPT_RECVMAXSZ, 1);
}

void
sl_sock_close(sl_sock *k, uint32_t grace_ms)
{
	struct timespec ts;

	if (!k->open) {
		return;
	}
	if (k->listening) {
		sl_sock_refuse(k);
	} else {
		// Errors are ignored: a transport without the option
		// (inproc) has no such race, and the close below happens
		// anyway.
		(void) nng_dialer_set_ms(
		    k->d, NNG_OPT_RECONNMAXT, SOCK_NO_REDIAL_MS);
		(void) nng_dialer_set_ms(
		    k->d, NNG_OPT_RECONNMINT, SOCK_NO_REDIAL_MS);
		(void) nng_dialer_set_size(k->d, NNG_OPT_RECVMAXSZ, 1);
	}
	k->open = false;
	sl_deadline_after(&ts, grace_ms);
	pthread_mutex_lock(&k->mtx);
	while (k->pipes > 0 &&
	    pthread_cond_timedwait(&k->cv, &k->mtx, &ts) == 0) { }
	pthread_mutex_unlock(&k->mtx);
	nng_close(k->s);
}
