// SPDX-License-Identifier: MIT
//
// bench_eval.c — local evaluation speed of libsluice's client: ns/op and
// evaluations per second per core for bool, int, string and percentage
// flags, with 1 and 2 evaluating threads, on a snapshot of 10 000 flags
// (2 500 rollouts of 4 flags); plus the client's memory for those flags
// and the number of allocations made while evaluating (which must be 0).
// It prints figures; it never asserts on them.
//
// The client is opened offline on a cache file the bench writes first,
// so no flagd is needed. Keys are visited in a shuffled order, so the
// figures include the hash lookup's cache misses rather than one hot
// entry. Each run is 50 batches; median and p99 are over per-batch ns/op.
//
// Allocations are counted by defining malloc, calloc and realloc here:
// the executable's definitions interpose on every caller in the process
// (libsluice, libsodium, protobuf-c), and forward to glibc's
// __libc_malloc family.

#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "cache.h"
#include "codec.h"
#include "sluice.h"

#define N_ROLLOUTS 2500
#define N_FLAGS (4 * N_ROLLOUTS)
#define N_STAGES 3
#define BATCHES 50
#define BATCH_OPS 200000
#define N_UNITS 4096

// ------------------------------------------------------------ malloc count

// Sanitizers bring their own allocator, which these definitions would
// bypass: there the count is not taken.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define BENCH_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define BENCH_SANITIZED 1
#endif
#endif

static atomic_long allocs;

#ifndef BENCH_SANITIZED
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);

void *
malloc(size_t n)
{
	atomic_fetch_add_explicit(&allocs, 1, memory_order_relaxed);
	return (__libc_malloc(n));
}

void *
calloc(size_t n, size_t size)
{
	atomic_fetch_add_explicit(&allocs, 1, memory_order_relaxed);
	return (__libc_calloc(n, size));
}

void *
realloc(void *p, size_t n)
{
	atomic_fetch_add_explicit(&allocs, 1, memory_order_relaxed);
	return (__libc_realloc(p, n));
}
#endif

// ------------------------------------------------------------ fixture

static char *keys[4][N_ROLLOUTS]; // [kind][rollout]
static char *units[N_UNITS];

static Sluice__V1__Rollout *
make_rollout(int i)
{
	static const char      *sfx[4] = { "bool", "int", "str", "pct" };
	Sluice__V1__Rollout     r;
	Sluice__V1__RolloutSpec spec;
	Sluice__V1__Flag        flags[4];
	Sluice__V1__Flag       *fp[4];
	Sluice__V1__FlagValue   vals[4][N_STAGES];
	Sluice__V1__FlagValue  *vp[4][N_STAGES];
	char                    name[32];
	char                    stages[N_STAGES][16];
	char                   *sp[N_STAGES];
	char                    strs[N_STAGES][32];
	uint8_t                *buf;
	size_t                  len;
	ProtobufCMessage       *out;

	sluice__v1__rollout__init(&r);
	sluice__v1__rollout_spec__init(&spec);
	snprintf(name, sizeof(name), "warehouse.rollout_%04d", i);
	spec.name     = name;
	spec.n_stages = N_STAGES;
	spec.stages   = sp;
	for (int s = 0; s < N_STAGES; s++) {
		snprintf(stages[s], sizeof(stages[s]), "st%d", s);
		snprintf(strs[s], sizeof(strs[s]), "schema_v%d_path", s);
		sp[s] = stages[s];
	}
	for (int f = 0; f < 4; f++) {
		char key[64];
		sluice__v1__flag__init(&flags[f]);
		snprintf(key, sizeof(key), "%s.%s", name, sfx[f]);
		keys[f][i]        = strdup(key);
		flags[f].key      = keys[f][i];
		flags[f].n_values = N_STAGES;
		flags[f].values   = vp[f];
		fp[f]             = &flags[f];
		for (int s = 0; s < N_STAGES; s++) {
			Sluice__V1__FlagValue *v = &vals[f][s];
			sluice__v1__flag_value__init(v);
			vp[f][s] = v;
			switch (f) {
			case 0:
				v->kind_case =
				    SLUICE__V1__FLAG_VALUE__KIND_BOOL_VALUE;
				v->bool_value = s > 0;
				break;
			case 1:
				v->kind_case =
				    SLUICE__V1__FLAG_VALUE__KIND_INT_VALUE;
				v->int_value = s;
				break;
			case 2:
				v->kind_case =
				    SLUICE__V1__FLAG_VALUE__KIND_STRING_VALUE;
				v->string_value = strs[s];
				break;
			default:
				// 25 % and 50 %: every evaluation hashes.
				v->kind_case =
				    SLUICE__V1__FLAG_VALUE__KIND_PERCENT_BP;
				v->percent_bp = s == 0 ? 2500 : 5000;
				break;
			}
		}
	}
	spec.n_flags = 4;
	spec.flags   = fp;
	r.spec       = &spec;
	r.stage      = (uint32_t) (i % N_STAGES);
	if (sl_pack(&r.base, &buf, &len) != SLUICE_OK ||
	    sl_unpack(&sluice__v1__rollout__descriptor, buf, len,
	        SL_MAX_REPLY_BYTES, &out) != SLUICE_OK) {
		fprintf(stderr, "bench: cannot build rollout\n");
		exit(1);
	}
	free(buf);
	return ((Sluice__V1__Rollout *) out);
}

static void
write_fixture(const char *path)
{
	static Sluice__V1__Rollout *rs[N_ROLLOUTS];
	Sluice__V1__Snapshot        snap;

	sluice__v1__snapshot__init(&snap);
	for (int i = 0; i < N_ROLLOUTS; i++) {
		rs[i] = make_rollout(i);
	}
	snap.revision   = 1;
	snap.n_rollouts = N_ROLLOUTS;
	snap.rollouts   = rs;
	if (sl_cache_write(path, &snap, sl_now_ms()) != SLUICE_OK) {
		fprintf(stderr, "bench: cannot write %s\n", path);
		exit(1);
	}
	for (int i = 0; i < N_ROLLOUTS; i++) {
		sluice__v1__rollout__free_unpacked(rs[i], NULL);
	}
	for (int u = 0; u < N_UNITS; u++) {
		char unit[64];
		snprintf(unit, sizeof(unit),
		    "warehouse.orders/dt=2026-%02d-%02d", 1 + u % 12,
		    1 + u % 28);
		snprintf(unit + strlen(unit), sizeof(unit) - strlen(unit),
		    "/part-%04d", u);
		units[u] = strdup(unit);
	}
}

// ------------------------------------------------------------ runs

enum kind { K_BOOL, K_INT, K_STRING, K_PERCENT };
static const char *kind_names[] = { "bool", "int", "string", "percentage" };

typedef struct run {
	sluice_client     *c;
	enum kind          kind;
	uint32_t          *order; // shuffled rollout indexes, BATCH_OPS long
	pthread_barrier_t *bar;
	double             ns[BATCHES];
	long               sink;
} run;

static void *
run_main(void *arg)
{
	run *r    = arg;
	long sink = 0;
	char buf[64];

	pthread_barrier_wait(r->bar);
	for (int b = 0; b < BATCHES; b++) {
		uint64_t t0 = bench_now_ns();
		for (int i = 0; i < BATCH_OPS; i++) {
			uint32_t k = r->order[i];
			switch (r->kind) {
			case K_BOOL:
				sink +=
				    sluice_bool(r->c, keys[0][k], NULL, false);
				break;
			case K_INT:
				sink += sluice_int(r->c, keys[1][k], NULL, -1);
				break;
			case K_STRING:
				sink += sluice_string(r->c, keys[2][k], NULL,
				    "", buf, sizeof(buf));
				sink += buf[0];
				break;
			case K_PERCENT:
				sink += sluice_bool(r->c, keys[3][k],
				    units[(uint32_t) i % N_UNITS], false);
				break;
			}
		}
		r->ns[b] = (double) (bench_now_ns() - t0) / BATCH_OPS;
	}
	r->sink = sink;
	return (NULL);
}

static void
measure(sluice_client *c, enum kind kind, int threads, uint32_t *order)
{
	pthread_barrier_t bar;
	pthread_t         th[2];
	run               rs[2];
	double            all[2 * BATCHES];
	int               n = 0;
	double            med;
	double            p99;

	pthread_barrier_init(&bar, NULL, (unsigned) threads);
	for (int t = 0; t < threads; t++) {
		memset(&rs[t], 0, sizeof(rs[t]));
		rs[t].c     = c;
		rs[t].kind  = kind;
		rs[t].order = order + (size_t) t * 7919u % N_ROLLOUTS;
		rs[t].bar   = &bar;
	}
	// Allocations are counted in allocs_during_evals(), on a warm
	// thread: pthread_create itself allocates.
	for (int t = 0; t < threads; t++) {
		pthread_create(&th[t], NULL, run_main, &rs[t]);
	}
	for (int t = 0; t < threads; t++) {
		pthread_join(th[t], NULL);
	}
	pthread_barrier_destroy(&bar);
	for (int t = 0; t < threads; t++) {
		for (int b = 0; b < BATCHES; b++) {
			all[n++] = rs[t].ns[b];
		}
	}
	qsort(all, (size_t) n, sizeof(double), bench_cmp_double);
	med = all[n / 2];
	p99 = all[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1];
	printf("bench: eval %-10s threads=%d  median %6.1f ns/op  p99 %6.1f "
	       "ns/op  %6.2f M evals/s per core  %6.2f M evals/s total\n",
	    kind_names[kind], threads, med, p99, 1000.0 / med,
	    threads * 1000.0 / med);
}

// Evaluations on the calling thread (already warmed up), counting
// allocations across them only.
static long
allocs_during_evals(sluice_client *c, uint32_t *order)
{
	char          buf[64];
	long          sink = 0;
	long          a0   = atomic_load(&allocs);
	sluice_detail d;

	for (int i = 0; i < BATCH_OPS; i++) {
		uint32_t k = order[i];
		sink += sluice_bool(c, keys[0][k], NULL, false);
		sink += sluice_int(c, keys[1][k], NULL, -1);
		sink +=
		    sluice_string(c, keys[2][k], NULL, "", buf, sizeof(buf));
		sink += sluice_bool(c, keys[3][k], units[i % N_UNITS], false);
		sink +=
		    sluice_eval_detail(c, keys[3][k], units[i % N_UNITS], &d);
	}
	if (sink == -1) {
		printf("bench: (sink)\n");
	}
	return (atomic_load(&allocs) - a0);
}

int
main(void)
{
	char               path[] = "/tmp/sluice-bench-XXXXXX";
	char               file[64];
	sluice_client_opts o;
	sluice_client     *c = NULL;
	uint32_t          *order;
	struct mallinfo2   m0;
	struct mallinfo2   m1;
	long               a0;
	long               during;
	sluice_view       *v = NULL;

	if (mkdtemp(path) == NULL) {
		perror("mkdtemp");
		return (1);
	}
	snprintf(file, sizeof(file), "%s/cache", path);
	write_fixture(file);

	// Every thread starts at a different point of one shuffled order,
	// long enough for a batch plus the offsets.
	order = malloc((BATCH_OPS + N_ROLLOUTS) * sizeof(*order));
	srand(42);
	for (uint32_t i = 0; i < BATCH_OPS + N_ROLLOUTS; i++) {
		order[i] = (uint32_t) rand() % N_ROLLOUTS;
	}

	sluice_client_opts_init(&o);
	o.cache_file = file;
	m0           = mallinfo2();
	a0           = atomic_load(&allocs);
	if (sluice_client_open(&c, NULL, &o) != SLUICE_OK ||
	    sluice_client_revision(c) != 1) {
		fprintf(stderr, "bench: cannot open the client on %s\n", file);
		return (1);
	}
	m1 = mallinfo2();
	printf("bench: machine: %ld CPUs online; snapshot of %d flags in %d "
	       "rollouts\n",
	    sysconf(_SC_NPROCESSORS_ONLN), N_FLAGS, N_ROLLOUTS);
	printf("bench: client memory for %d flags: %.2f MiB in use after "
	       "open (%ld allocations; includes the decoded protobuf "
	       "messages, which the snapshot keeps)\n",
	    N_FLAGS, (double) (m1.uordblks - m0.uordblks) / (1024.0 * 1024.0),
	    atomic_load(&allocs) - a0);

	// Warm up (the first evaluation on a thread claims its hazard slot).
	(void) allocs_during_evals(c, order);
	during = allocs_during_evals(c, order);
#ifdef BENCH_SANITIZED
	(void) during;
	printf("bench: allocation count not taken (sanitizer build)\n");
#else
	printf("bench: allocations during %d evaluations (bool, int, string, "
	       "percentage, detail): %ld\n",
	    5 * BATCH_OPS, during);
#endif

	for (int k = K_BOOL; k <= K_PERCENT; k++) {
		measure(c, (enum kind) k, 1, order);
	}
	for (int k = K_BOOL; k <= K_PERCENT; k++) {
		measure(c, (enum kind) k, 2, order);
	}
	if (sluice_view_open(c, &v) == SLUICE_OK) {
		uint64_t t0   = bench_now_ns();
		long     sink = 0;
		for (int i = 0; i < BATCH_OPS; i++) {
			sink +=
			    sluice_view_bool(v, keys[0][order[i]], NULL, 0);
		}
		printf("bench: eval bool via pinned view: %.1f ns/op (one "
		       "batch)%s\n",
		    (double) (bench_now_ns() - t0) / BATCH_OPS,
		    sink < 0 ? "!" : "");
		sluice_view_close(v);
	}
	sluice_client_close(c);
	unlink(file);
	rmdir(path);
	free(order);
	return (0);
}
