// SPDX-License-Identifier: MIT
//
// sldrive.c — a small driver for the cluster tests and the local deploy:
// generates keys, sends signed writes (one, or a stream from several
// writer threads that prints every acknowledged write), and prints what a
// node answers (info, cluster, state) as one JSON object per line. It
// speaks through libsluice's rpc, so it needs no flagctl. Every call has a
// timeout and every loop a bound.

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "codec.h"
#include "envelope.h"
#include "keys.h"
#include "rpc.h"
#include "sl.h"

static pthread_mutex_t out_mtx = PTHREAD_MUTEX_INITIALIZER;

static void
emit(json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);

	pthread_mutex_lock(&out_mtx);
	printf("%s\n", s != NULL ? s : "{}");
	fflush(stdout);
	pthread_mutex_unlock(&out_mtx);
	free(s);
	json_decref(o);
}

static json_t *
reply_json(int rv, const Sluice__V1__Reply *rep)
{
	json_t *o = json_object();

	json_object_set_new(o, "ok", json_boolean(rv == SLUICE_OK));
	json_object_set_new(o, "code", json_integer(rv));
	json_object_set_new(o, "errname", json_string(sluice_errname(rv)));
	if (rep != NULL) {
		json_object_set_new(o, "error", json_string(sl_reply_errmsg(rep)));
		json_object_set_new(
		    o, "revision", json_integer((json_int_t) rep->revision));
		json_object_set_new(o, "leader", json_boolean(rep->leader));
		json_object_set_new(o, "stale", json_boolean(rep->stale));
	} else {
		json_object_set_new(o, "error", json_string(sluice_strerror(rv)));
	}
	return (o);
}

// A valid spec named name: two stages, one bool flag.
static void
spec_fill(Sluice__V1__RolloutSpec *spec, Sluice__V1__Flag *flag,
    Sluice__V1__Flag **flags, Sluice__V1__FlagValue *vals,
    Sluice__V1__FlagValue **valp, char **stages, char *name, char *fkey)
{
	sluice__v1__rollout_spec__init(spec);
	sluice__v1__flag__init(flag);
	for (int i = 0; i < 2; i++) {
		sluice__v1__flag_value__init(&vals[i]);
		vals[i].kind_case  = SLUICE__V1__FLAG_VALUE__KIND_BOOL_VALUE;
		vals[i].bool_value = i == 1;
		valp[i]            = &vals[i];
	}
	flag->key      = fkey;
	flag->n_values = 2;
	flag->values   = valp;
	flags[0]       = flag;
	spec->name     = name;
	spec->stages   = stages;
	spec->n_stages = 2;
	spec->flags    = flags;
	spec->n_flags  = 1;
	spec->owner    = (char *) (uintptr_t) "sldrive";
}

// One apply of a new rollout; SLUICE_OK and *revp when acknowledged.
static int
write_one(sl_rpc *r, const sl_secret *k, const char *name, uint64_t *revp,
    json_t **jp)
{
	Sluice__V1__Command      cmd;
	Sluice__V1__ApplyRollout ap;
	Sluice__V1__RolloutSpec  spec;
	Sluice__V1__Flag         flag;
	Sluice__V1__Flag        *flags[1];
	Sluice__V1__FlagValue    vals[2];
	Sluice__V1__FlagValue   *valp[2];
	char                     n[64];
	char                     fkey[80];
	char                    *stages[2] = { (char *) (uintptr_t) "off",
                           (char *) (uintptr_t) "on" };
	Sluice__V1__Reply       *rep = NULL;
	int                      rv;

	snprintf(n, sizeof(n), "%s", name);
	snprintf(fkey, sizeof(fkey), "%s.on", name);
	spec_fill(&spec, &flag, flags, vals, valp, stages, n, fkey);
	sluice__v1__command__init(&cmd);
	sluice__v1__apply_rollout__init(&ap);
	ap.spec         = &spec;
	cmd.action_case = SLUICE__V1__COMMAND__ACTION_APPLY;
	cmd.apply       = &ap;
	cmd.reason      = (char *) (uintptr_t) "sldrive";
	rv              = sl_rpc_write(r, k, &cmd, &rep);
	if (rv == SLUICE_OK && rep != NULL) {
		*revp = rep->revision;
	}
	if (jp != NULL) {
		*jp = reply_json(rv, rep);
	}
	if (rep != NULL) {
		sluice__v1__reply__free_unpacked(rep, NULL);
	}
	return (rv);
}

static int
cmd_keygen(int argc, char **argv)
{
	sl_secret *k;
	char       b64[64];

	if (argc != 4) {
		fprintf(stderr, "usage: sldrive keygen OUT ID\n");
		return (2);
	}
	if (sl_secret_generate(&k, argv[3]) != SLUICE_OK ||
	    sl_secret_save(k, argv[2]) != SLUICE_OK) {
		fprintf(stderr, "sldrive: cannot write %s\n", argv[2]);
		return (1);
	}
	sl_pubkey_base64(k->pk, b64, sizeof(b64));
	printf("admin %s %s\n", k->id, b64);
	sl_secret_free(k);
	return (0);
}

static int
load_key(const char *path, sl_secret **kp)
{
	char err[256];

	if (sl_secret_load(kp, path, err, sizeof(err)) != SLUICE_OK) {
		fprintf(stderr, "sldrive: %s: %s\n", path, err);
		return (-1);
	}
	return (0);
}

static int
cmd_write(int argc, char **argv)
{
	sl_rpc    *r;
	sl_secret *k;
	uint64_t   rev = 0;
	json_t    *j   = NULL;
	int        rv;

	if (argc != 5) {
		fprintf(stderr, "usage: sldrive write SERVERS KEY NAME\n");
		return (2);
	}
	if (load_key(argv[3], &k) != 0 ||
	    sl_rpc_open(&r, argv[2], 15000) != SLUICE_OK) {
		return (1);
	}
	rv = write_one(r, k, argv[4], &rev, &j);
	json_object_set_new(j, "name", json_string(argv[4]));
	emit(j);
	sl_rpc_close(r);
	sl_secret_free(k);
	return (rv == SLUICE_OK ? 0 : 1);
}

typedef struct load_arg {
	const char      *servers;
	const sl_secret *key;
	const char      *prefix;
	unsigned         id;
	unsigned         count;
	uint64_t         deadline_ms;
	unsigned         acked;
	unsigned         failed;
} load_arg;

// Writes count new rollouts; each failed attempt is retried with a new
// name (so an unknown outcome never hides behind a retry) until the
// deadline. Prints every acknowledged write.
static void *
load_main(void *arg)
{
	load_arg *a = arg;
	sl_rpc   *r;
	unsigned  seq = 0;

	if (sl_rpc_open(&r, a->servers, 10000) != SLUICE_OK) {
		return (NULL);
	}
	while (a->acked < a->count && sl_mono_ms() < a->deadline_ms) {
		char     name[64];
		uint64_t rev = 0;
		json_t  *j   = NULL;
		int      rv;

		uint64_t t0 = sl_mono_ns();
		uint64_t t1;

		snprintf(name, sizeof(name), "%s-%u-%u", a->prefix, a->id,
		    seq++);
		rv = write_one(r, a->key, name, &rev, &j);
		// For the bench: the round trip, and when it ended on
		// CLOCK_MONOTONIC (Python's time.monotonic() reads the same).
		t1 = sl_mono_ns();
		json_object_set_new(j, "name", json_string(name));
		json_object_set_new(j, "writer", json_integer(a->id));
		json_object_set_new(
		    j, "us", json_integer((json_int_t) ((t1 - t0) / 1000u)));
		json_object_set_new(
		    j, "t_us", json_integer((json_int_t) (t1 / 1000u)));
		emit(j);
		if (rv == SLUICE_OK) {
			a->acked++;
		} else {
			a->failed++;
			struct timespec ts = { 0, 20 * 1000 * 1000 };
			nanosleep(&ts, NULL);
		}
	}
	sl_rpc_close(r);
	return (NULL);
}

static int
cmd_load(int argc, char **argv)
{
	sl_secret *k;
	load_arg   args[64];
	pthread_t  th[64];
	unsigned   writers;
	unsigned   count;
	unsigned   secs;
	unsigned   acked = 0, failed = 0;
	json_t    *o;

	if (argc != 8) {
		fprintf(stderr, "usage: sldrive load SERVERS KEY PREFIX "
		                "WRITERS COUNT SECONDS\n");
		return (2);
	}
	writers = (unsigned) strtoul(argv[5], NULL, 10);
	count   = (unsigned) strtoul(argv[6], NULL, 10);
	secs    = (unsigned) strtoul(argv[7], NULL, 10);
	if (writers == 0 || writers > 64 || load_key(argv[3], &k) != 0) {
		return (2);
	}
	for (unsigned i = 0; i < writers; i++) {
		memset(&args[i], 0, sizeof(args[i]));
		args[i].servers     = argv[2];
		args[i].key         = k;
		args[i].prefix      = argv[4];
		args[i].id          = i;
		args[i].count       = count / writers + (i < count % writers);
		args[i].deadline_ms = sl_mono_ms() + secs * 1000ull;
		pthread_create(&th[i], NULL, load_main, &args[i]);
	}
	for (unsigned i = 0; i < writers; i++) {
		pthread_join(th[i], NULL);
		acked += args[i].acked;
		failed += args[i].failed;
	}
	o = json_object();
	json_object_set_new(o, "done", json_true());
	json_object_set_new(o, "acked", json_integer(acked));
	json_object_set_new(o, "failed", json_integer(failed));
	emit(o);
	sl_secret_free(k);
	return (acked == count ? 0 : 1);
}

static json_t *
cluster_json(const Sluice__V1__ClusterInfo *ci)
{
	json_t *o     = json_object();
	json_t *nodes = json_array();

	json_object_set_new(o, "node_id", json_integer((json_int_t) ci->node_id));
	json_object_set_new(
	    o, "leader_id", json_integer((json_int_t) ci->leader_id));
	json_object_set_new(o, "term", json_integer((json_int_t) ci->term));
	for (size_t i = 0; i < ci->n_nodes; i++) {
		const Sluice__V1__NodeStatus *n = ci->nodes[i];
		json_t                       *x = json_object();
		json_object_set_new(x, "id", json_integer((json_int_t) n->id));
		json_object_set_new(x, "role", json_string(n->role));
		json_object_set_new(x, "self", json_boolean(n->self));
		json_object_set_new(
		    x, "applied_index", json_integer((json_int_t) n->applied_index));
		json_object_set_new(
		    x, "commit_index", json_integer((json_int_t) n->commit_index));
		json_object_set_new(x, "api_url", json_string(n->api_url));
		json_object_set_new(
		    x, "raft_address", json_string(n->raft_address));
		json_array_append_new(nodes, x);
	}
	json_object_set_new(o, "nodes", nodes);
	return (o);
}

// state: revision, rollout names and the audit head, to compare nodes.
static void
add_state(sl_rpc *r, json_t *o)
{
	Sluice__V1__Request req;
	Sluice__V1__Reply  *rep = NULL;
	Sluice__V1__AuditQuery aq;
	Sluice__V1__ListRollouts lr = SLUICE__V1__LIST_ROLLOUTS__INIT;
	json_t             *names = json_array();

	sluice__v1__request__init(&req);
	req.op_case = SLUICE__V1__REQUEST__OP_LIST;
	req.list    = &lr;
	if (sl_rpc_call(r, &req, &rep) == SLUICE_OK &&
	    rep->result_case == SLUICE__V1__REPLY__RESULT_LIST) {
		for (size_t i = 0; i < rep->list->n_rollouts; i++) {
			json_array_append_new(names,
			    json_string(rep->list->rollouts[i]->spec->name));
		}
		json_object_set_new(o, "list_revision",
		    json_integer((json_int_t) rep->revision));
	}
	json_object_set_new(o, "rollouts", names);
	if (rep != NULL) {
		sluice__v1__reply__free_unpacked(rep, NULL);
		rep = NULL;
	}
	// The audit chain: walk all pages, report the count and the last
	// hash (hashes chain, so equal heads mean equal histories).
	{
		uint64_t after = 0;
		uint64_t count = 0;
		char     head[2 * SL_HASH_BYTES + 1] = "";

		for (int page = 0; page < 10000; page++) {
			bool more;
			sluice__v1__request__init(&req);
			sluice__v1__audit_query__init(&aq);
			aq.after_revision = after;
			aq.limit          = 5000;
			req.op_case       = SLUICE__V1__REQUEST__OP_AUDIT;
			req.audit         = &aq;
			if (sl_rpc_call(r, &req, &rep) != SLUICE_OK ||
			    rep->result_case != SLUICE__V1__REPLY__RESULT_AUDIT) {
				break;
			}
			for (size_t i = 0; i < rep->audit->n_entries; i++) {
				const Sluice__V1__AuditEntry *e =
				    rep->audit->entries[i];
				count++;
				after = e->revision;
				for (size_t b = 0; b < e->hash.len &&
				     b < SL_HASH_BYTES; b++) {
					snprintf(head + 2 * b, 3, "%02x",
					    e->hash.data[b]);
				}
			}
			more = rep->audit->more && rep->audit->n_entries > 0;
			sluice__v1__reply__free_unpacked(rep, NULL);
			rep = NULL;
			if (!more) {
				break;
			}
		}
		if (rep != NULL) {
			sluice__v1__reply__free_unpacked(rep, NULL);
		}
		json_object_set_new(o, "audit_count", json_integer((json_int_t) count));
		json_object_set_new(o, "audit_last", json_integer((json_int_t) after));
		json_object_set_new(o, "audit_head", json_string(head));
	}
}

static int
cmd_call(int argc, char **argv)
{
	sl_rpc             *r;
	Sluice__V1__Request req;
	Sluice__V1__Reply  *rep = NULL;
	Sluice__V1__GetCluster gc  = SLUICE__V1__GET_CLUSTER__INIT;
	Sluice__V1__GetInfo    gi  = SLUICE__V1__GET_INFO__INIT;
	Sluice__V1__GetRollout gr;
	json_t             *o;
	const char         *op;
	int                 rv;

	if (argc < 4) {
		fprintf(stderr, "usage: sldrive call SERVER info|cluster|state|"
		                "get NAME [MIN_REVISION]\n");
		return (2);
	}
	op = argv[3];
	if (sl_rpc_open(&r, argv[2], 5000) != SLUICE_OK) {
		return (1);
	}
	sluice__v1__request__init(&req);
	if (strcmp(op, "cluster") == 0) {
		req.op_case = SLUICE__V1__REQUEST__OP_CLUSTER;
		req.cluster = &gc;
	} else if (strcmp(op, "get") == 0 && argc >= 5) {
		sluice__v1__get_rollout__init(&gr);
		gr.name     = argv[4];
		req.op_case = SLUICE__V1__REQUEST__OP_GET;
		req.get     = &gr;
		if (argc >= 6) {
			req.min_revision = strtoull(argv[5], NULL, 10);
		}
	} else {
		req.op_case = SLUICE__V1__REQUEST__OP_INFO;
		req.info    = &gi;
	}
	rv = sl_rpc_call(r, &req, &rep);
	o  = reply_json(rv, rep);
	if (rv == SLUICE_OK && rep->result_case == SLUICE__V1__REPLY__RESULT_CLUSTER) {
		json_object_set_new(o, "cluster", cluster_json(rep->cluster));
	}
	if (rv == SLUICE_OK && rep->result_case == SLUICE__V1__REPLY__RESULT_ROLLOUT) {
		json_object_set_new(o, "rollout_revision",
		    json_integer((json_int_t) rep->rollout->revision));
	}
	if (rv == SLUICE_OK && rep->result_case == SLUICE__V1__REPLY__RESULT_INFO) {
		json_object_set_new(o, "node_id",
		    json_integer((json_int_t) rep->info->node_id));
	}
	if (rv == SLUICE_OK && strcmp(op, "state") == 0) {
		add_state(r, o);
	}
	if (rep != NULL) {
		sluice__v1__reply__free_unpacked(rep, NULL);
	}
	emit(o);
	sl_rpc_close(r);
	return (0);
}

int
main(int argc, char **argv)
{
	if (sl_crypto_init() != SLUICE_OK) {
		return (1);
	}
	sl_log_level = SL_LOG_ERR;
	if (argc >= 2 && strcmp(argv[1], "keygen") == 0) {
		return (cmd_keygen(argc, argv));
	}
	if (argc >= 2 && strcmp(argv[1], "write") == 0) {
		return (cmd_write(argc, argv));
	}
	if (argc >= 2 && strcmp(argv[1], "load") == 0) {
		return (cmd_load(argc, argv));
	}
	if (argc >= 2 && strcmp(argv[1], "call") == 0) {
		return (cmd_call(argc, argv));
	}
	fprintf(stderr, "usage: sldrive keygen|write|load|call ...\n");
	return (2);
}
