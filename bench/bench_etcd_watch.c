// SPDX-License-Identifier: MIT
//
// bench_etcd_watch.c — etcd's side of the fan-out comparison: a put to
// etcd (v3 JSON gateway, `POST /v3/kv/put`) until the last of N watchers
// (`POST /v3/watch`, one streaming HTTP/1.1 request each) has the event.
// All N streams and the put live in one libcurl multi handle driven from
// this thread (libcurl does the HTTP, chunked transfer included); each
// watch event is parsed with jansson (the gateway sends one JSON object
// per line), and a watcher counts once the event's kv.value is the value
// of this put. The clock is read as soon as a stream's bytes are handed
// over, before parsing. The next put starts only after every watcher has
// it (or after 5 s), so each figure is one change's fan-out, like
// bench_flip's. It prints; it never judges.
//
//   bench_etcd_watch --watch HOST:PORT --put HOST:PORT [--watchers 100]
//                    [--changes 200] [--key bench/watch] [--label TEXT]
//
// The last line is JSON: {"bench":"etcd_watch", ..., "p50":..,"p99":..}.

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>

#include "bench_util.h"

#define MAX_WATCHERS 1000
#define CHANGE_TIMEOUT_NS 5000000000u
#define BUF_MAX (1u << 20)

typedef struct stream {
	CURL    *h;
	char     body[4096]; // request body (the handle borrows it)
	char    *in;         // received, not yet split into lines
	size_t   n_in;
	bool     created;  // watcher: the "created" answer came
	uint64_t seen_ns;  // watcher: when it saw this change's value
	const char *want;  // the value (base64) this change waits for
	bool     overflow; // more than BUF_MAX without a newline
} stream;

static void
fail(const char *what)
{
	fprintf(stderr, "bench_etcd_watch: %s\n", what);
	exit(1);
}

static void
b64(const char *s, char *out, size_t outlen)
{
	sodium_bin2base64(out, outlen, (const unsigned char *) s, strlen(s),
	    sodium_base64_VARIANT_ORIGINAL);
}

// Does one watch message (a JSON object) carry an event whose kv.value
// is s->want? Also notes the "created" answer.
static bool
watch_message(stream *s, const char *line, size_t len)
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
		s->created = true;
	}
	evs = res != NULL ? json_object_get(res, "events") : NULL;
	for (size_t i = 0; s->want != NULL && i < json_array_size(evs); i++) {
		json_t     *kv = json_object_get(json_array_get(evs, i), "kv");
		const char *v =
		    json_string_value(json_object_get(kv, "value"));
		hit = hit || (v != NULL && strcmp(v, s->want) == 0);
	}
	json_decref(doc);
	return (hit);
}

// libcurl hands over de-chunked body bytes: note the time, then split
// complete lines and look at each.
static size_t
watch_write(char *p, size_t size, size_t nmemb, void *arg)
{
	stream  *s   = arg;
	size_t   len = size * nmemb;
	uint64_t now = bench_now_ns();
	char    *nl;
	char    *b;

	if (s->n_in + len > BUF_MAX) {
		s->overflow = true;
		return (0); // aborts the transfer
	}
	if ((b = realloc(s->in, s->n_in + len + 1)) == NULL) {
		return (0);
	}
	s->in = b;
	memcpy(s->in + s->n_in, p, len);
	s->n_in += len;
	while ((nl = memchr(s->in, '\n', s->n_in)) != NULL) {
		size_t ll = (size_t) (nl - s->in);
		if (ll > 0 && watch_message(s, s->in, ll) && s->seen_ns == 0) {
			s->seen_ns = now;
		}
		memmove(s->in, nl + 1, s->n_in - ll - 1);
		s->n_in -= ll + 1;
	}
	return (len);
}

static size_t
discard(char *p, size_t size, size_t nmemb, void *arg)
{
	(void) p;
	(void) arg;
	return (size * nmemb);
}

static CURL *
post_handle(const char *url, const char *body, curl_write_callback cb,
    void *arg)
{
	CURL *h = curl_easy_init();

	if (h == NULL) {
		fail("curl_easy_init");
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, arg);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	return (h);
}

// Runs the transfers until pred says so or the deadline; true if pred.
// done_put, if given, is set when the put's transfer completes.
static bool
drive(CURLM *m, CURL *put, uint64_t *done_put, uint64_t deadline,
    bool (*pred)(void *), void *arg)
{
	int running;

	while (!pred(arg) && bench_now_ns() < deadline) {
		CURLMsg *msg;
		int      q;

		if (curl_multi_perform(m, &running) != CURLM_OK) {
			fail("curl_multi_perform");
		}
		while ((msg = curl_multi_info_read(m, &q)) != NULL) {
			if (msg->msg != CURLMSG_DONE) {
				continue;
			}
			if (msg->easy_handle != put) {
				fprintf(stderr,
				    "bench_etcd_watch: a watch stream ended: "
				    "%s\n",
				    curl_easy_strerror(msg->data.result));
				exit(1);
			}
			if (done_put != NULL && *done_put == 0) {
				*done_put = bench_now_ns();
			}
			curl_multi_remove_handle(m, put);
		}
		if (pred(arg)) {
			break;
		}
		(void) curl_multi_poll(m, NULL, 0, 200, NULL);
	}
	return (pred(arg));
}

typedef struct watchers {
	stream  *ws;
	size_t   n;
	uint64_t t_put; // when this change's put completed, 0 before
} watchers;

static bool
all_created(void *arg)
{
	watchers *w = arg;

	for (size_t i = 0; i < w->n; i++) {
		if (!w->ws[i].created) {
			return (false);
		}
	}
	return (true);
}

static bool
never(void *arg)
{
	(void) arg;
	return (false);
}

static bool
all_seen(void *arg)
{
	watchers *w = arg;

	for (size_t i = 0; i < w->n; i++) {
		if (w->ws[i].seen_ns == 0) {
			return (false);
		}
	}
	return (w->t_put != 0);
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
	watchers    w;
	CURLM      *m;
	CURL       *put;
	char        url[256];
	char        put_body[1024];
	double     *lat;
	double     *rtt;
	size_t      nlat = 0;
	size_t      nrtt = 0;
	unsigned    lost = 0;
	char        kb64[256];

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
	    changes == 0 || sodium_init() < 0 ||
	    curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		fprintf(stderr,
		    "usage: bench_etcd_watch --watch HOST:PORT --put "
		    "HOST:PORT "
		    "[--watchers N] [--changes N] [--key K] [--label TEXT]\n");
		return (2);
	}
	memset(&w, 0, sizeof(w));
	w.n  = n;
	w.ws = calloc(n, sizeof(*w.ws));
	lat  = calloc(changes, sizeof(*lat));
	rtt  = calloc(changes, sizeof(*rtt));
	if (w.ws == NULL || lat == NULL || rtt == NULL ||
	    (m = curl_multi_init()) == NULL) {
		fail("setup");
	}
	b64(key, kb64, sizeof(kb64));

	// The watchers, each its own streaming request, all in one multi.
	snprintf(url, sizeof(url), "http://%s/v3/watch", watch_at);
	for (size_t i = 0; i < n; i++) {
		stream *s = &w.ws[i];
		snprintf(s->body, sizeof(s->body),
		    "{\"create_request\":{\"key\":\"%s\"}}", kb64);
		s->h = post_handle(url, s->body, watch_write, s);
		if (curl_multi_add_handle(m, s->h) != CURLM_OK) {
			fail("curl_multi_add_handle");
		}
	}
	if (!drive(m, NULL, NULL, bench_now_ns() + 30000000000u, all_created,
	        &w)) {
		size_t created = 0;
		for (size_t i = 0; i < n; i++) {
			created += w.ws[i].created;
		}
		fprintf(stderr, "bench_etcd_watch: only %zu of %zu watchers "
		                "created\n",
		    created, n);
		return (1);
	}

	// One put handle, re-added for each change (its connection is
	// kept alive between them).
	snprintf(url, sizeof(url), "http://%s/v3/kv/put", put_at);
	put = post_handle(url, put_body, discard, NULL);
	for (unsigned ch = 0; ch < changes; ch++) {
		char     value[64];
		char     vb64[128];
		uint64_t t0;
		uint64_t last = 0;

		snprintf(
		    value, sizeof(value), "chg-%06u-%ld", ch, (long) getpid());
		b64(value, vb64, sizeof(vb64));
		for (size_t i = 0; i < n; i++) {
			w.ws[i].seen_ns = 0;
			w.ws[i].want    = vb64;
		}
		snprintf(put_body, sizeof(put_body),
		    "{\"key\":\"%s\",\"value\":\"%s\"}", kb64, vb64);
		curl_easy_setopt(put, CURLOPT_POSTFIELDS, put_body);
		w.t_put = 0;
		t0      = bench_now_ns();
		if (curl_multi_add_handle(m, put) != CURLM_OK) {
			fail("curl_multi_add_handle (put)");
		}
		(void) drive(m, put, &w.t_put, t0 + CHANGE_TIMEOUT_NS, all_seen,
		    &w);
		if (w.t_put == 0) {
			curl_multi_remove_handle(m, put); // timed out
		}
		for (size_t i = 0; i < n; i++) {
			uint64_t s = w.ws[i].seen_ns;
			last       = s > last ? s : last;
		}
		if (all_seen(&w)) {
			lat[nlat++] = (double) (last - t0) / 1e6;
		} else {
			lost++;
		}
		if (w.t_put != 0) {
			rtt[nrtt++] = (double) (w.t_put - t0) / 1e6;
		}
		// Every change is measured on a settled system, like
		// bench_flip's flips (the watch streams stay open).
		(void) drive(m, NULL, NULL, bench_now_ns() + BENCH_GAP_MS * 1000000u,
		    never, NULL);
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
		curl_multi_remove_handle(m, w.ws[i].h);
		curl_easy_cleanup(w.ws[i].h);
		free(w.ws[i].in);
	}
	curl_easy_cleanup(put);
	curl_multi_cleanup(m);
	curl_global_cleanup();
	free(w.ws);
	free(lat);
	free(rtt);
	return (0);
}
