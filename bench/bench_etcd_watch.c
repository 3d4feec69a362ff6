// SPDX-License-Identifier: MIT
//
// bench_etcd_watch.c — etcd's side of the fan-out comparison: a put to
// etcd (v3 JSON gateway, `POST /v3/kv/put`) until the last of N watchers
// (`POST /v3/watch`, one raw HTTP/1.1 stream each) has the event. All N
// streams and the put's keep-alive connection live in one epoll loop in
// this thread; each watch event is parsed with jansson (the gateway sends
// one JSON object per line, in HTTP chunks), and a watcher counts once
// the event's kv.value is the value of this put. The next put starts only
// after every watcher has it (or after 5 s), so each figure is one
// change's fan-out, like bench_flip's. It prints; it never judges.
//
//   bench_etcd_watch --watch HOST:PORT --put HOST:PORT [--watchers 100]
//                    [--changes 200] [--key bench/watch] [--label TEXT]
//
// The last line is JSON: {"bench":"etcd_watch", ..., "p50":..,"p99":..}.

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <sodium.h>

#include "bench_util.h"

#define MAX_WATCHERS 1000
#define CHANGE_TIMEOUT_NS 5000000000u
#define BUF_MAX (1u << 20)

// One HTTP/1.1 response stream: headers, then chunked (or sized) body.
typedef enum { ST_HEAD, ST_SIZE, ST_DATA, ST_DATA_END, ST_PLAIN } hstate;

typedef struct conn {
	int      fd;
	hstate   st;
	bool     chunked;
	size_t   left; // bytes left in this chunk / sized body
	char    *raw;  // received, not yet framed
	size_t   n_raw;
	char    *body; // de-chunked body, not yet split into lines
	size_t   n_body;
	bool     created; // watcher: the "created" answer came
	uint64_t seen_ns; // watcher: when it saw this change's value
	bool     done;    // put: the reply is complete
} conn;

static void
die(const char *what)
{
	fprintf(stderr, "bench_etcd_watch: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void
append(char **buf, size_t *n, const char *p, size_t len)
{
	char *b;

	if (*n + len > BUF_MAX) {
		fprintf(stderr, "bench_etcd_watch: stream buffer overflow\n");
		exit(1);
	}
	if ((b = realloc(*buf, *n + len + 1)) == NULL) {
		die("realloc");
	}
	memcpy(b + *n, p, len);
	*n += len;
	b[*n] = '\0';
	*buf  = b;
}

static void
consume(char **buf, size_t *n, size_t k)
{
	memmove(*buf, *buf + k, *n - k);
	*n -= k;
	(*buf)[*n] = '\0';
}

static int
dial(const char *hostport)
{
	struct sockaddr_in sa;
	char               host[64];
	const char        *colon = strrchr(hostport, ':');
	int                fd;
	int                one = 1;

	if (colon == NULL || (size_t) (colon - hostport) >= sizeof(host)) {
		fprintf(
		    stderr, "bench_etcd_watch: bad address %s\n", hostport);
		exit(2);
	}
	memcpy(host, hostport, (size_t) (colon - hostport));
	host[colon - hostport] = '\0';
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port   = htons((uint16_t) atoi(colon + 1));
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		fprintf(stderr, "bench_etcd_watch: bad host %s\n", host);
		exit(2);
	}
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0) {
		die("socket");
	}
	(void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0) {
		die("connect");
	}
	return (fd);
}

static void
send_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR) {
				continue;
			}
			die("send");
		}
		p += w;
		len -= (size_t) w;
	}
}

static void
post(int fd, const char *path, const char *json)
{
	char   req[1024];
	int    n;
	size_t len = strlen(json);

	n = snprintf(req, sizeof(req),
	    "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	    "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
	    path, len, json);
	if (n < 0 || (size_t) n >= sizeof(req)) {
		fprintf(stderr, "bench_etcd_watch: request too long\n");
		exit(2);
	}
	send_all(fd, req, (size_t) n);
}

static void
b64(const char *s, char *out, size_t outlen)
{
	sodium_bin2base64(out, outlen, (const unsigned char *) s, strlen(s),
	    sodium_base64_VARIANT_ORIGINAL);
}

// Frames what arrived on c into c->body (HTTP/1.1 response headers,
// then chunked or Content-Length). Returns false on a framing error.
static bool
frame(conn *c)
{
	for (;;) {
		char  *eol;
		size_t k;

		switch (c->st) {
		case ST_HEAD:
			if ((eol = strstr(c->raw, "\r\n\r\n")) == NULL) {
				return (true);
			}
			*eol       = '\0';
			c->chunked = strstr(c->raw, "chunked") != NULL ||
			    strstr(c->raw, "Chunked") != NULL;
			if (!c->chunked) {
				const char *cl =
				    strstr(c->raw, "Content-Length:");
				if (cl == NULL) {
					cl = strstr(c->raw, "content-length:");
				}
				c->left = cl != NULL
				    ? strtoul(cl + 15, NULL, 10)
				    : 0;
			}
			consume(
			    &c->raw, &c->n_raw, (size_t) (eol - c->raw) + 4);
			c->st = c->chunked ? ST_SIZE : ST_PLAIN;
			break;
		case ST_SIZE:
			if ((eol = strstr(c->raw, "\r\n")) == NULL) {
				return (true);
			}
			c->left = strtoul(c->raw, NULL, 16);
			consume(
			    &c->raw, &c->n_raw, (size_t) (eol - c->raw) + 2);
			if (c->left == 0) {
				c->done = true; // the last chunk
				c->st   = ST_DATA_END;
				break;
			}
			c->st = ST_DATA;
			break;
		case ST_DATA:
			if (c->n_raw == 0) {
				return (true);
			}
			k = c->n_raw < c->left ? c->n_raw : c->left;
			append(&c->body, &c->n_body, c->raw, k);
			consume(&c->raw, &c->n_raw, k);
			if ((c->left -= k) == 0) {
				c->st = ST_DATA_END;
			}
			break;
		case ST_DATA_END:
			if (c->n_raw < 2) {
				return (true);
			}
			if (c->raw[0] != '\r' || c->raw[1] != '\n') {
				return (false);
			}
			consume(&c->raw, &c->n_raw, 2);
			if (c->done) {
				// A complete chunked reply: ready for the
				// next.
				c->st = ST_HEAD;
				return (true);
			}
			c->st = ST_SIZE;
			break;
		case ST_PLAIN:
			if (c->n_raw == 0) {
				return (true);
			}
			k = c->n_raw < c->left ? c->n_raw : c->left;
			append(&c->body, &c->n_body, c->raw, k);
			consume(&c->raw, &c->n_raw, k);
			if ((c->left -= k) == 0) {
				c->done = true;
				c->st   = ST_HEAD;
			}
			return (true);
		}
	}
}

// Reads what the socket has; false when it closed or failed.
static bool
pull(conn *c)
{
	char buf[65536];

	for (;;) {
		ssize_t r = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (r > 0) {
			append(&c->raw, &c->n_raw, buf, (size_t) r);
			continue;
		}
		if (r < 0 && errno == EAGAIN) { // = EWOULDBLOCK on Linux
			return (frame(c));
		}
		if (r < 0 && errno == EINTR) {
			continue;
		}
		return (false);
	}
}

// Does one watch message (a JSON object) carry an event whose kv.value
// is want? Also notes the "created" answer.
static bool
watch_message(conn *c, const char *line, size_t len, const char *want)
{
	json_error_t err;
	json_t      *doc = json_loadb(line, len, 0, &err);
	json_t      *res;
	json_t      *evs;
	bool         hit = false;

	if (doc == NULL) {
		fprintf(stderr, "bench_etcd_watch: bad watch message: %s\n",
		    err.text);
		return (false);
	}
	res = json_object_get(doc, "result");
	if (res != NULL && json_is_true(json_object_get(res, "created"))) {
		c->created = true;
	}
	evs = res != NULL ? json_object_get(res, "events") : NULL;
	for (size_t i = 0; want != NULL && i < json_array_size(evs); i++) {
		json_t     *kv = json_object_get(json_array_get(evs, i), "kv");
		const char *v =
		    json_string_value(json_object_get(kv, "value"));
		hit = hit || (v != NULL && strcmp(v, want) == 0);
	}
	json_decref(doc);
	return (hit);
}

// Splits a watcher's body into lines and looks at each complete one.
static bool
watch_scan(conn *c, const char *want)
{
	bool  hit = false;
	char *nl;

	while ((nl = memchr(c->body, '\n', c->n_body)) != NULL) {
		size_t len = (size_t) (nl - c->body);
		if (len > 0) {
			hit = watch_message(c, c->body, len, want) || hit;
		}
		consume(&c->body, &c->n_body, len + 1);
	}
	return (hit);
}

int
main(int argc, char **argv)
{
	const char *watch_at = NULL;
	const char *put_at   = NULL;
	const char *key      = "bench/watch";
	const char *label    = "etcd";
	size_t      n        = 100;
	unsigned    changes  = 200;
	conn       *ws;
	conn        put;
	double     *lat;
	double     *rtt;
	size_t      nlat = 0;
	size_t      nrtt = 0;
	unsigned    lost = 0;
	int         ep;
	char        kb64[256];
	char        json[1024];

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--watch") == 0) {
			watch_at = argv[i + 1];
		} else if (strcmp(argv[i], "--put") == 0) {
			put_at = argv[i + 1];
		} else if (strcmp(argv[i], "--watchers") == 0) {
			n = strtoul(argv[i + 1], NULL, 10);
		} else if (strcmp(argv[i], "--changes") == 0) {
			changes = (unsigned) strtoul(argv[i + 1], NULL, 10);
		} else if (strcmp(argv[i], "--key") == 0) {
			key = argv[i + 1];
		} else if (strcmp(argv[i], "--label") == 0) {
			label = argv[i + 1];
		}
	}
	if (watch_at == NULL || put_at == NULL || n == 0 || n > MAX_WATCHERS ||
	    changes == 0 || sodium_init() < 0) {
		fprintf(stderr,
		    "usage: bench_etcd_watch --watch HOST:PORT --put "
		    "HOST:PORT "
		    "[--watchers N] [--changes N] [--key K] [--label TEXT]\n");
		return (2);
	}
	ws  = calloc(n, sizeof(*ws));
	lat = calloc(changes, sizeof(*lat));
	rtt = calloc(changes, sizeof(*rtt));
	if (ws == NULL || lat == NULL || rtt == NULL ||
	    (ep = epoll_create1(0)) < 0) {
		die("setup");
	}
	b64(key, kb64, sizeof(kb64));

	// The watchers, each on its own connection, all in one epoll set.
	snprintf(
	    json, sizeof(json), "{\"create_request\":{\"key\":\"%s\"}}", kb64);
	for (size_t i = 0; i < n; i++) {
		struct epoll_event ev = { .events = EPOLLIN };
		ws[i].fd              = dial(watch_at);
		post(ws[i].fd, "/v3/watch", json);
		ev.data.ptr = &ws[i];
		if (epoll_ctl(ep, EPOLL_CTL_ADD, ws[i].fd, &ev) != 0) {
			die("epoll_ctl");
		}
	}
	memset(&put, 0, sizeof(put));
	put.fd = dial(put_at);
	{
		struct epoll_event ev = { .events = EPOLLIN,
			.data.ptr                 = &put };
		if (epoll_ctl(ep, EPOLL_CTL_ADD, put.fd, &ev) != 0) {
			die("epoll_ctl");
		}
	}
	// Every watcher has its "created" answer before the first change.
	{
		uint64_t end     = bench_now_ns() + 30000000000u;
		size_t   created = 0;
		while (created < n && bench_now_ns() < end) {
			struct epoll_event evs[128];
			int                k = epoll_wait(ep, evs, 128, 500);
			for (int i = 0; i < k; i++) {
				conn *c = evs[i].data.ptr;
				if (c == &put || !pull(c)) {
					continue;
				}
				(void) watch_scan(c, NULL);
			}
			created = 0;
			for (size_t i = 0; i < n; i++) {
				created += ws[i].created;
			}
		}
		if (created < n) {
			fprintf(stderr,
			    "bench_etcd_watch: only %zu of %zu watchers "
			    "created\n",
			    created, n);
			return (1);
		}
	}

	for (unsigned ch = 0; ch < changes; ch++) {
		char     value[64];
		char     vb64[128];
		uint64_t t0;
		uint64_t t_put = 0;
		uint64_t last  = 0;
		size_t   left  = n;

		snprintf(
		    value, sizeof(value), "chg-%06u-%ld", ch, (long) getpid());
		b64(value, vb64, sizeof(vb64));
		for (size_t i = 0; i < n; i++) {
			ws[i].seen_ns = 0;
		}
		snprintf(json, sizeof(json),
		    "{\"key\":\"%s\",\"value\":\"%s\"}", kb64, vb64);
		put.done = false;
		t0       = bench_now_ns();
		post(put.fd, "/v3/kv/put", json);
		while ((left > 0 || !put.done) &&
		    bench_now_ns() - t0 < CHANGE_TIMEOUT_NS) {
			struct epoll_event evs[128];
			int                k = epoll_wait(ep, evs, 128, 200);
			uint64_t           now;

			if (k <= 0) {
				continue;
			}
			for (int i = 0; i < k; i++) {
				conn *c = evs[i].data.ptr;
				// The clock is read as soon as this stream's
				// bytes are in, before any parsing.
				bool ok = pull(c);
				now     = bench_now_ns();
				if (!ok) {
					fprintf(stderr,
					    "bench_etcd_watch: a stream "
					    "closed\n");
					return (1);
				}
				if (c == &put) {
					if (put.done && t_put == 0) {
						t_put      = now;
						put.n_body = 0;
					}
					continue;
				}
				if (watch_scan(c, vb64) && c->seen_ns == 0) {
					c->seen_ns = now;
					last       = now > last ? now : last;
					left--;
				}
			}
		}
		if (left == 0) {
			lat[nlat++] = (double) (last - t0) / 1e6;
		} else {
			lost++;
		}
		if (t_put != 0) {
			rtt[nrtt++] = (double) (t_put - t0) / 1e6;
		}
	}
	qsort(lat, nlat, sizeof(*lat), bench_cmp_double);
	qsort(rtt, nrtt, sizeof(*rtt), bench_cmp_double);
	printf("bench: %s put -> last of %zu watchers: p50 %.2f ms, p99 %.2f "
	       "ms, max %.2f ms over %zu changes%s; put round trip p50 %.2f "
	       "ms\n",
	    label, n, bench_pct(lat, nlat, 0.50), bench_pct(lat, nlat, 0.99),
	    nlat > 0 ? lat[nlat - 1] : NAN, nlat,
	    lost > 0 ? " (some timed out)" : "", bench_pct(rtt, nrtt, 0.50));
	printf("{\"bench\":\"etcd_watch\",\"label\":\"%s\",\"watchers\":%zu,"
	       "\"p50\":%.3f,\"p99\":%.3f,\"n\":%zu,\"lost\":%u,"
	       "\"put_p50\":%.3f}\n",
	    label, n, bench_pct(lat, nlat, 0.50), bench_pct(lat, nlat, 0.99),
	    nlat, lost, bench_pct(rtt, nrtt, 0.50));
	for (size_t i = 0; i < n; i++) {
		close(ws[i].fd);
		free(ws[i].raw);
		free(ws[i].body);
	}
	close(put.fd);
	free(put.raw);
	free(put.body);
	close(ep);
	free(ws);
	free(lat);
	free(rtt);
	return (0);
}
