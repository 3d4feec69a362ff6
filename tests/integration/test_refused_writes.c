// SPDX-License-Identifier: MIT
//
// test_refused_writes.c — starts a real flagd on free loopback ports and
// sends it writes that must be refused: unsigned, signed by the wrong key,
// by an unknown key, by a key without the role, replayed, stale, from the
// future, oversized, garbage, truncated, of the wrong API version, and
// without a header. Each refusal must carry its own SLUICE_E* code and
// change nothing: the revision, the audit trail and the whole snapshot
// are read back after every refusal and compared with what they were.
//
// It talks nng REQ directly (not through libsluice's rpc) so that it can
// send bytes no client would produce. The flagd it starts is stopped by
// the group teardown (SIGTERM, waitpid), also when an assertion failed.

// nftw(3) is an XSI interface.
#define _XOPEN_SOURCE 700

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "audit.h"
#include "codec.h"
#include "envelope.h"
#include "keys.h"
#include "sl.h"

// Generous: flagd may run 2-3x slower under ASan in CI.
#define CALL_TIMEOUT_MS 20000
#define START_TIMEOUT_MS 30000
#define STOP_TIMEOUT_MS 30000

// What must not change when a write is refused.
typedef struct state {
	uint64_t revision;
	size_t   audit_count;
	uint64_t audit_last;
	uint8_t *snap; // packed Snapshot
	size_t   snaplen;
} state;

// A complete ApplyRollout of a two-stage rollout with one bool flag: a
// write that would change the store if it were accepted.
typedef struct apply_cmd {
	Sluice__V1__Command      cmd;
	Sluice__V1__ApplyRollout ap;
	Sluice__V1__RolloutSpec  spec;
	Sluice__V1__Flag         flag;
	Sluice__V1__Flag        *flags[1];
	Sluice__V1__FlagValue    v[2];
	Sluice__V1__FlagValue   *vals[2];
	char                     st0[8];
	char                     st1[8];
	char                    *stages[2];
	char                     name[64];
	char                     key[96];
	char                    *reason; // malloc'd when set
} apply_cmd;

// Everything one test allocates, released by the per-test teardown, so a
// failed assertion (a longjmp out of the test) leaks nothing.
typedef struct scratch {
	apply_cmd                 a;
	Sluice__V1__SignedCommand sc;
	Sluice__V1__Reply        *rep;
	uint8_t                  *buf;
	size_t                    len;
	state                     before;
	state                     after;
	Sluice__V1__Reply        *tmp; // read_state's reply in flight
} scratch;

typedef struct fixture {
	char       dir[256];
	char       log[300];
	char       api_url[64];
	pid_t      pid;
	nng_socket sock;
	bool       sock_open;
	sl_secret *admin;    // authorized, role admin
	sl_secret *reader;   // authorized, role reader
	sl_secret *ghost;    // not authorized at all
	sl_secret *impostor; // id "admin", but another key pair
	uint64_t   request_id;
	int        seq; // distinct rollout names across tests
	scratch    s;
} fixture;

// ------------------------------------------------------------- process

static int
free_port(void)
{
	struct sockaddr_in sa;
	socklen_t          len = sizeof(sa);
	int                fd;
	int                port;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0) {
		return (-1);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sin_family      = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port        = 0;
	if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0 ||
	    getsockname(fd, (struct sockaddr *) &sa, &len) != 0) {
		close(fd);
		return (-1);
	}
	port = ntohs(sa.sin_port);
	close(fd);
	return (port);
}

static int
rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void) st;
	(void) flag;
	(void) ftw;
	return (remove(path));
}

static void
sleep_ms(unsigned ms)
{
	struct timespec ts;

	ts.tv_sec  = (time_t) (ms / 1000);
	ts.tv_nsec = (long) (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) { }
}

// Waits for pid to exit within timeout_ms; its wait status in *statusp.
static bool
wait_exit(pid_t pid, unsigned timeout_ms, int *statusp)
{
	for (unsigned waited = 0; waited <= timeout_ms; waited += 50) {
		pid_t r = waitpid(pid, statusp, WNOHANG);
		if (r == pid) {
			return (true);
		}
		if (r < 0 && errno != EINTR) {
			return (true);
		}
		sleep_ms(50);
	}
	return (false);
}

static int
write_authorized_keys(fixture *f, const char *path)
{
	const sl_secret       *ks[2] = { f->admin, f->reader };
	const Sluice__V1__Role rs[2] = { SLUICE__V1__ROLE__ROLE_ADMIN,
		SLUICE__V1__ROLE__ROLE_READER };
	FILE                  *fp;
	char                   line[512];

	if ((fp = fopen(path, "w")) == NULL) {
		return (-1);
	}
	fprintf(fp, "# written by integration/refused_writes\n");
	for (size_t i = 0; i < 2; i++) {
		Sluice__V1__Key k;
		char            id[SL_KEY_ID_MAX];
		uint8_t         pk[32];

		sluice__v1__key__init(&k);
		memcpy(id, ks[i]->id, sizeof(id));
		memcpy(pk, ks[i]->pk, sizeof(pk));
		k.id              = id;
		k.public_key.data = pk;
		k.public_key.len  = sizeof(pk);
		k.role            = rs[i];
		if (sl_authkey_format(&k, line, sizeof(line)) != SLUICE_OK) {
			fclose(fp);
			return (-1);
		}
		fprintf(fp, "%s\n", line);
	}
	return (fclose(fp) == 0 ? 0 : -1);
}

static pid_t
spawn_flagd(fixture *f, const char *keys)
{
	const char *bin = getenv("FLAGD_BIN");
	char        data[300];
	char        pub[64];
	char        raft[64];
	int         api_port  = free_port();
	int         pub_port  = free_port();
	int         raft_port = free_port();
	pid_t       pid;

	if (bin == NULL || bin[0] == '\0') {
		bin = "build/release/flagd";
	}
	if (api_port < 0 || pub_port < 0 || raft_port < 0 ||
	    api_port == pub_port || raft_port == api_port ||
	    raft_port == pub_port) {
		return (-1);
	}
	// A cluster of one still runs consensus: give it a free port too.
	snprintf(raft, sizeof(raft), "127.0.0.1:%d", raft_port);
	snprintf(data, sizeof(data), "%s/data", f->dir);
	snprintf(
	    f->api_url, sizeof(f->api_url), "tcp://127.0.0.1:%d", api_port);
	snprintf(pub, sizeof(pub), "tcp://127.0.0.1:%d", pub_port);

	if ((pid = fork()) < 0) {
		return (-1);
	}
	if (pid == 0) {
		char *argv[] = { (char *) (uintptr_t) bin,
			(char *) (uintptr_t) "--data", data,
			(char *) (uintptr_t) "--api", f->api_url,
			(char *) (uintptr_t) "--publish", pub,
			(char *) (uintptr_t) "--raft", raft,
			(char *) (uintptr_t) "--authorized-keys",
			(char *) (uintptr_t) keys,
			(char *) (uintptr_t) "--log-level=info",
			// Durability is not under test here.
			(char *) (uintptr_t) "--nosync", NULL };
		int   fd = open(f->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
			close(fd);
		}
		execv(bin, argv);
		fprintf(stderr, "exec %s: %s\n", bin, strerror(errno));
		_exit(127);
	}
	return (pid);
}

// ------------------------------------------------------------- wire

static int
send_raw(fixture *f, const void *buf, size_t len, Sluice__V1__Reply **repp)
{
	void  *in = NULL;
	size_t inlen;
	int    rv;

	*repp = NULL;
	if ((rv = nng_send(f->sock, (void *) (uintptr_t) buf, len, 0)) != 0) {
		print_error("nng_send: %s\n", nng_strerror(rv));
		return (SLUICE_EUNAVAIL);
	}
	if ((rv = nng_recv(f->sock, &in, &inlen, NNG_FLAG_ALLOC)) != 0) {
		print_error("nng_recv: %s\n", nng_strerror(rv));
		return (SLUICE_ETIMEDOUT);
	}
	rv = sl_reply_decode(in, inlen, repp);
	nng_free(in, inlen);
	return (rv);
}

static void
header_init(fixture *f, Sluice__V1__Header *h, uint32_t version)
{
	sluice__v1__header__init(h);
	h->api_version = version;
	h->request_id  = ++f->request_id;
}

// Sends req (its header filled here unless no_header) and decodes the
// reply into *repp.
static int
call(fixture *f, Sluice__V1__Request *req, Sluice__V1__Reply **repp)
{
	Sluice__V1__Header h;
	uint8_t           *buf;
	size_t             len;
	int                rv;

	header_init(f, &h, SL_API_VERSION);
	req->header = &h;
	if ((rv = sl_pack(&req->base, &buf, &len)) != SLUICE_OK) {
		return (rv);
	}
	rv          = send_raw(f, buf, len, repp);
	req->header = NULL;
	free(buf);
	return (rv);
}

static void
state_fini(state *s)
{
	free(s->snap);
	memset(s, 0, sizeof(*s));
}

static void
reply_free(Sluice__V1__Reply **repp)
{
	if (*repp != NULL) {
		sluice__v1__reply__free_unpacked(*repp, NULL);
		*repp = NULL;
	}
}

static void
read_state(fixture *f, state *s)
{
	Sluice__V1__Request     req;
	Sluice__V1__GetSnapshot gs;
	Sluice__V1__AuditQuery  aq;

	state_fini(s);
	sluice__v1__request__init(&req);
	sluice__v1__get_snapshot__init(&gs);
	req.op_case  = SLUICE__V1__REQUEST__OP_SNAPSHOT;
	req.snapshot = &gs;
	reply_free(&f->s.tmp);
	assert_int_equal(call(f, &req, &f->s.tmp), SLUICE_OK);
	assert_non_null(f->s.tmp);
	assert_int_equal(
	    f->s.tmp->result_case, SLUICE__V1__REPLY__RESULT_SNAPSHOT);
	s->revision = f->s.tmp->revision;
	assert_int_equal(f->s.tmp->snapshot->revision, f->s.tmp->revision);
	assert_int_equal(
	    sl_pack(&f->s.tmp->snapshot->base, &s->snap, &s->snaplen),
	    SLUICE_OK);
	reply_free(&f->s.tmp);

	sluice__v1__request__init(&req);
	sluice__v1__audit_query__init(&aq);
	aq.limit    = 5000;
	req.op_case = SLUICE__V1__REQUEST__OP_AUDIT;
	req.audit   = &aq;
	assert_int_equal(call(f, &req, &f->s.tmp), SLUICE_OK);
	assert_non_null(f->s.tmp);
	assert_int_equal(
	    f->s.tmp->result_case, SLUICE__V1__REPLY__RESULT_AUDIT);
	assert_false(f->s.tmp->audit->more);
	s->audit_count = f->s.tmp->audit->n_entries;
	if (s->audit_count > 0) {
		s->audit_last =
		    f->s.tmp->audit->entries[s->audit_count - 1]->revision;
	}
	reply_free(&f->s.tmp);
}

// Reads the state again into f->s.after and compares it with before.
static void
assert_state_unchanged(fixture *f, const state *before)
{
	state *after = &f->s.after;

	read_state(f, after);
	assert_int_equal(after->revision, before->revision);
	assert_int_equal(after->audit_count, before->audit_count);
	assert_int_equal(after->audit_last, before->audit_last);
	assert_int_equal(after->snaplen, before->snaplen);
	assert_memory_equal(after->snap, before->snap, before->snaplen);
}

// ------------------------------------------------------------- commands

static void
apply_init(fixture *f, apply_cmd *a, const char *what)
{
	memset(a, 0, sizeof(*a));
	snprintf(a->name, sizeof(a->name), "refused-%s-%d", what, ++f->seq);
	snprintf(a->key, sizeof(a->key), "%s.enabled", a->name);
	snprintf(a->st0, sizeof(a->st0), "off");
	snprintf(a->st1, sizeof(a->st1), "on");
	sluice__v1__command__init(&a->cmd);
	sluice__v1__apply_rollout__init(&a->ap);
	sluice__v1__rollout_spec__init(&a->spec);
	sluice__v1__flag__init(&a->flag);
	for (size_t i = 0; i < 2; i++) {
		sluice__v1__flag_value__init(&a->v[i]);
		a->v[i].kind_case  = SLUICE__V1__FLAG_VALUE__KIND_BOOL_VALUE;
		a->v[i].bool_value = i == 1;
		a->vals[i]         = &a->v[i];
	}
	a->flag.key        = a->key;
	a->flag.n_values   = 2;
	a->flag.values     = a->vals;
	a->flags[0]        = &a->flag;
	a->stages[0]       = a->st0;
	a->stages[1]       = a->st1;
	a->spec.name       = a->name;
	a->spec.n_stages   = 2;
	a->spec.stages     = a->stages;
	a->spec.n_flags    = 1;
	a->spec.flags      = a->flags;
	a->ap.spec         = &a->spec;
	a->cmd.action_case = SLUICE__V1__COMMAND__ACTION_APPLY;
	a->cmd.apply       = &a->ap;
}

static void
apply_fini(apply_cmd *a)
{
	sl_command_clear_nonce(&a->cmd);
	free(a->reason);
	a->reason     = NULL;
	a->cmd.reason = NULL;
}

// Packs a write request around sc into f->s.buf. version: the header's
// api_version; with_header false leaves the header out.
static void
pack_write(fixture *f, const Sluice__V1__SignedCommand *sc, uint32_t version,
    bool with_header)
{
	Sluice__V1__Request req;
	Sluice__V1__Header  h;

	free(f->s.buf);
	f->s.buf = NULL;
	sluice__v1__request__init(&req);
	header_init(f, &h, version);
	req.header  = with_header ? &h : NULL;
	req.op_case = SLUICE__V1__REQUEST__OP_WRITE;
	req.write   = (Sluice__V1__SignedCommand *) (uintptr_t) sc;
	assert_int_equal(sl_pack(&req.base, &f->s.buf, &f->s.len), SLUICE_OK);
}

// Sends len bytes of f->s.buf; the reply lands in f->s.rep.
static void
send_buf(fixture *f, size_t len)
{
	reply_free(&f->s.rep);
	assert_int_equal(send_raw(f, f->s.buf, len, &f->s.rep), SLUICE_OK);
	assert_non_null(f->s.rep);
}

// Checks that rep is an error reply with code want and a message.
static void
assert_refused(const Sluice__V1__Reply *rep, int want)
{
	assert_non_null(rep);
	if (rep->result_case != SLUICE__V1__REPLY__RESULT_ERROR) {
		print_error("expected error %s, got a reply of kind %d "
		            "(revision %llu)\n",
		    sluice_errname(want), (int) rep->result_case,
		    (unsigned long long) rep->revision);
	}
	assert_int_equal(rep->result_case, SLUICE__V1__REPLY__RESULT_ERROR);
	assert_non_null(rep->error);
	if ((int) rep->error->code != want) {
		print_error("expected %s, got %s: %s\n", sluice_errname(want),
		    sluice_errname((int) rep->error->code),
		    rep->error->message != NULL ? rep->error->message : "");
	}
	assert_int_equal(rep->error->code, want);
	assert_non_null(rep->error->message);
	assert_true(strlen(rep->error->message) > 0);
}

static void
assert_accepted(const Sluice__V1__Reply *rep)
{
	assert_non_null(rep);
	if (rep->result_case == SLUICE__V1__REPLY__RESULT_ERROR) {
		print_error("valid write refused: %s: %s\n",
		    sluice_errname((int) rep->error->code),
		    rep->error->message);
	}
	assert_int_equal(rep->result_case, SLUICE__V1__REPLY__RESULT_WRITE);
	assert_true(rep->write->changed);
}

// Seals f->s.a's command with k into f->s.sc.
static void
seal(fixture *f, const sl_secret *k)
{
	sl_signed_command_clear(&f->s.sc);
	assert_int_equal(sl_command_seal(k, &f->s.a.cmd, &f->s.sc), SLUICE_OK);
}

// Seals f->s.a's command with k, sends it with the given header, expects
// the refusal want and no change.
static void
expect_refused_write(fixture *f, const sl_secret *k, uint32_t version,
    bool with_header, int want)
{
	read_state(f, &f->s.before);
	seal(f, k);
	pack_write(f, &f->s.sc, version, with_header);
	send_buf(f, f->s.len);
	assert_refused(f->s.rep, want);
	assert_state_unchanged(f, &f->s.before);
}

static int
test_setup(void **statep)
{
	fixture *f = *statep;

	memset(&f->s, 0, sizeof(f->s));
	sluice__v1__signed_command__init(&f->s.sc);
	return (0);
}

static int
test_teardown(void **statep)
{
	fixture *f = *statep;

	apply_fini(&f->s.a);
	sl_signed_command_clear(&f->s.sc);
	reply_free(&f->s.rep);
	reply_free(&f->s.tmp);
	free(f->s.buf);
	state_fini(&f->s.before);
	state_fini(&f->s.after);
	memset(&f->s, 0, sizeof(f->s));
	return (0);
}

// ------------------------------------------------------------- setup

static int
group_setup(void **statep)
{
	fixture    *f;
	const char *tmp = getenv("TMPDIR");
	char        keys[300];
	int         status;

	if ((f = calloc(1, sizeof(*f))) == NULL) {
		return (-1);
	}
	f->pid  = -1;
	*statep = f;
	if (sl_crypto_init() != SLUICE_OK) {
		return (-1);
	}
	if (tmp == NULL || tmp[0] == '\0') {
		tmp = "/tmp";
	}
	snprintf(f->dir, sizeof(f->dir), "%s/sluice-refused-XXXXXX", tmp);
	if (mkdtemp(f->dir) == NULL) {
		print_error("mkdtemp %s: %s\n", f->dir, strerror(errno));
		f->dir[0] = '\0';
		return (-1);
	}
	snprintf(f->log, sizeof(f->log), "%s/flagd.log", f->dir);
	snprintf(keys, sizeof(keys), "%s/authorized_keys", f->dir);
	if (sl_secret_generate(&f->admin, "admin") != SLUICE_OK ||
	    sl_secret_generate(&f->reader, "reader") != SLUICE_OK ||
	    sl_secret_generate(&f->ghost, "ghost") != SLUICE_OK ||
	    sl_secret_generate(&f->impostor, "admin") != SLUICE_OK) {
		return (-1);
	}
	if (write_authorized_keys(f, keys) != 0) {
		return (-1);
	}

	// Ports are picked free just before flagd binds them; another
	// process could take one in between, so try a few times.
	for (int attempt = 0; attempt < 3 && f->pid < 0; attempt++) {
		pid_t pid = spawn_flagd(f, keys);
		if (pid < 0) {
			return (-1);
		}
		if (nng_req0_open(&f->sock) != 0) {
			return (-1);
		}
		f->sock_open = true;
		(void) nng_socket_set_ms(f->sock, NNG_OPT_RECVTIMEO, 500);
		(void) nng_socket_set_ms(f->sock, NNG_OPT_SENDTIMEO, 5000);
		(void) nng_socket_set_ms(f->sock, NNG_OPT_RECONNMINT, 20);
		(void) nng_socket_set_ms(f->sock, NNG_OPT_RECONNMAXT, 200);
		if (nng_dial(f->sock, f->api_url, NULL, NNG_FLAG_NONBLOCK) !=
		    0) {
			return (-1);
		}
		// Ready once a GetInfo is answered; bounded in time.
		for (unsigned waited = 0; waited < START_TIMEOUT_MS;
		     waited += 550) {
			Sluice__V1__Request req;
			Sluice__V1__GetInfo gi;
			Sluice__V1__Reply  *rep = NULL;

			if (waitpid(pid, &status, WNOHANG) == pid) {
				print_error("flagd exited during start "
				            "(status %d); see %s\n",
				    status, f->log);
				pid = -1;
				break;
			}
			sluice__v1__request__init(&req);
			sluice__v1__get_info__init(&gi);
			req.op_case = SLUICE__V1__REQUEST__OP_INFO;
			req.info    = &gi;
			if (call(f, &req, &rep) == SLUICE_OK && rep != NULL &&
			    rep->result_case ==
			        SLUICE__V1__REPLY__RESULT_INFO) {
				sluice__v1__reply__free_unpacked(rep, NULL);
				f->pid = pid;
				break;
			}
			if (rep != NULL) {
				sluice__v1__reply__free_unpacked(rep, NULL);
			}
			sleep_ms(50);
		}
		if (f->pid < 0) {
			if (pid > 0) {
				kill(pid, SIGKILL);
				(void) wait_exit(
				    pid, STOP_TIMEOUT_MS, &status);
			}
			nng_close(f->sock);
			f->sock_open = false;
		}
	}
	if (f->pid < 0) {
		print_error("flagd did not answer on %s; see %s\n", f->api_url,
		    f->log);
		return (-1);
	}
	(void) nng_socket_set_ms(f->sock, NNG_OPT_RECVTIMEO, CALL_TIMEOUT_MS);
	return (0);
}

static int
group_teardown(void **statep)
{
	fixture *f  = *statep;
	int      rc = 0;
	int      status;

	if (f == NULL) {
		return (0);
	}
	if (f->sock_open) {
		nng_close(f->sock);
	}
	if (f->pid > 0) {
		kill(f->pid, SIGTERM);
		if (!wait_exit(f->pid, STOP_TIMEOUT_MS, &status)) {
			print_error(
			    "flagd did not stop on SIGTERM; killing\n");
			kill(f->pid, SIGKILL);
			(void) wait_exit(f->pid, STOP_TIMEOUT_MS, &status);
			rc = -1;
		} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			print_error("flagd stopped with status %d; see %s\n",
			    status, f->log);
			rc = -1;
		}
	}
	sl_secret_free(f->admin);
	sl_secret_free(f->reader);
	sl_secret_free(f->ghost);
	sl_secret_free(f->impostor);
	if (rc == 0 && f->dir[0] != '\0') {
		(void) nftw(f->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	} else if (f->dir[0] != '\0') {
		print_error("kept %s for inspection\n", f->dir);
	}
	free(f);
	nng_fini();
	return (rc);
}

// ------------------------------------------------------------- tests

// The control: the same kind of write, well formed, is accepted and moves
// the revision by one with one audit entry. Without it every refusal below
// could be a flagd that refuses everything.
static void
test_refused_writes_valid_write_is_accepted(void **statep)
{
	fixture *f = *statep;
	scratch *s = &f->s;

	read_state(f, &s->before);
	apply_init(f, &s->a, "control");
	seal(f, f->admin);
	pack_write(f, &s->sc, SL_API_VERSION, true);
	send_buf(f, s->len);
	assert_accepted(s->rep);
	assert_int_equal(s->rep->revision, s->before.revision + 1);
	read_state(f, &s->after);
	assert_int_equal(s->after.revision, s->before.revision + 1);
	assert_int_equal(s->after.audit_count, s->before.audit_count + 1);
	assert_int_equal(s->after.audit_last, s->before.revision + 1);
}

static void
test_refused_writes_unsigned_ebadsig(void **statep)
{
	fixture *f = *statep;
	scratch *s = &f->s;

	read_state(f, &s->before);
	apply_init(f, &s->a, "unsigned");
	seal(f, f->admin);
	// Same body and key id, no signature at all.
	free(s->sc.signature.data);
	s->sc.signature.data = NULL;
	s->sc.signature.len  = 0;
	pack_write(f, &s->sc, SL_API_VERSION, true);
	send_buf(f, s->len);
	assert_refused(s->rep, SLUICE_EBADSIG);
	assert_state_unchanged(f, &s->before);
}

static void
test_refused_writes_other_key_signature_ebadsig(void **statep)
{
	fixture *f = *statep;

	// Signed by a key pair that calls itself "admin" but is not the
	// authorized admin key.
	apply_init(f, &f->s.a, "impostor");
	expect_refused_write(
	    f, f->impostor, SL_API_VERSION, true, SLUICE_EBADSIG);
}

static void
test_refused_writes_flipped_body_bit_ebadsig(void **statep)
{
	fixture *f = *statep;
	scratch *s = &f->s;

	read_state(f, &s->before);
	apply_init(f, &s->a, "flipped");
	seal(f, f->admin);
	s->sc.body.data[s->sc.body.len / 2] ^= 0x01; // not the signed bytes
	pack_write(f, &s->sc, SL_API_VERSION, true);
	send_buf(f, s->len);
	assert_refused(s->rep, SLUICE_EBADSIG);
	assert_state_unchanged(f, &s->before);
}

static void
test_refused_writes_unknown_key_eunknownkey(void **statep)
{
	fixture *f = *statep;

	apply_init(f, &f->s.a, "ghost");
	expect_refused_write(
	    f, f->ghost, SL_API_VERSION, true, SLUICE_EUNKNOWNKEY);
}

static void
test_refused_writes_reader_apply_eperm(void **statep)
{
	fixture *f = *statep;

	apply_init(f, &f->s.a, "reader");
	expect_refused_write(f, f->reader, SL_API_VERSION, true, SLUICE_EPERM);
}

static void
test_refused_writes_replayed_command_ereplay(void **statep)
{
	fixture *f = *statep;
	scratch *s = &f->s;

	apply_init(f, &s->a, "replay");
	seal(f, f->admin);
	pack_write(f, &s->sc, SL_API_VERSION, true);

	// The first copy is a valid write.
	send_buf(f, s->len);
	assert_accepted(s->rep);

	// The same bytes again.
	read_state(f, &s->before);
	send_buf(f, s->len);
	assert_refused(s->rep, SLUICE_EREPLAY);
	assert_state_unchanged(f, &s->before);
}

static void
test_refused_writes_stale_timestamp_eexpired(void **statep)
{
	fixture *f = *statep;

	apply_init(f, &f->s.a, "stale");
	f->s.a.cmd.timestamp_ms = sl_now_ms() - 10u * 60u * 1000u;
	expect_refused_write(
	    f, f->admin, SL_API_VERSION, true, SLUICE_EEXPIRED);
}

static void
test_refused_writes_future_timestamp_eexpired(void **statep)
{
	fixture *f = *statep;

	apply_init(f, &f->s.a, "future");
	f->s.a.cmd.timestamp_ms = sl_now_ms() + 10u * 60u * 1000u;
	expect_refused_write(
	    f, f->admin, SL_API_VERSION, true, SLUICE_EEXPIRED);
}

// Builds in f->s.sc a correctly signed command whose body is over
// body_bytes (sl_command_seal refuses to seal above the limit, so this
// signs by hand).
static void
seal_oversized(fixture *f, size_t body_bytes)
{
	apply_cmd                 *a  = &f->s.a;
	Sluice__V1__SignedCommand *sc = &f->s.sc;
	uint8_t                   *nonce;
	size_t                     len;

	a->reason = malloc(body_bytes + 1);
	assert_non_null(a->reason);
	memset(a->reason, 'x', body_bytes);
	a->reason[body_bytes] = '\0';
	a->cmd.reason         = a->reason;
	a->cmd.timestamp_ms   = sl_now_ms();
	nonce                 = malloc(SL_NONCE_BYTES);
	assert_non_null(nonce);
	memset(nonce, 0x5a, SL_NONCE_BYTES);
	nonce[0]          = (uint8_t) f->seq;
	a->cmd.nonce.data = nonce;
	a->cmd.nonce.len  = SL_NONCE_BYTES;

	sl_signed_command_clear(sc);
	assert_int_equal(
	    sl_pack(&a->cmd.base, &sc->body.data, &len), SLUICE_OK);
	sc->body.len = len;
	assert_true(len > body_bytes);
	sc->signature.data = malloc(SLUICE_SIG_BYTES);
	assert_non_null(sc->signature.data);
	sc->signature.len = SLUICE_SIG_BYTES;
	assert_int_equal(sl_sign(f->admin, SL_CTX_COMMAND, sc->body.data, len,
	                     sc->signature.data),
	    SLUICE_OK);
	sc->key_id = strdup(f->admin->id);
	assert_non_null(sc->key_id);
}

// A body just over the 64 KiB command limit, in a request under the
// request limit: the body's own limit must refuse it.
static void
test_refused_writes_oversized_body_etoobig(void **statep)
{
	fixture *f = *statep;
	scratch *s = &f->s;

	read_state(f, &s->before);
	apply_init(f, &s->a, "bigbody");
	seal_oversized(f, SL_MAX_COMMAND_BYTES + 512);
	assert_true(s->sc.body.len > SL_MAX_COMMAND_BYTES);
	pack_write(f, &s->sc, SL_API_VERSION, true);
	assert_true(s->len <= SL_MAX_REQUEST_BYTES);
	send_buf(f, s->len);
	assert_refused(s->rep, SLUICE_ETOOBIG);
	assert_state_unchanged(f, &s->before);
}

// A request far over the request limit (but under nng's hard cap).
static void
test_refused_writes_oversized_request_etoobig(void **statep)
{
	fixture *f = *statep;
	scratch *s = &f->s;

	read_state(f, &s->before);
	apply_init(f, &s->a, "bigrequest");
	seal_oversized(f, 200u * 1024u);
	pack_write(f, &s->sc, SL_API_VERSION, true);
	assert_true(s->len > SL_MAX_REQUEST_BYTES);
	send_buf(f, s->len);
	assert_refused(s->rep, SLUICE_ETOOBIG);
	assert_state_unchanged(f, &s->before);
}

static void
test_refused_writes_garbage_eproto(void **statep)
{
	fixture *f = *statep;
	scratch *s = &f->s;

	read_state(f, &s->before);
	// A varint longer than ten bytes, then text: no protobuf parser
	// accepts it.
	s->len = 64;
	s->buf = malloc(s->len);
	assert_non_null(s->buf);
	memset(s->buf, 0xff, 24);
	memcpy(s->buf + 24, "this is not a sluice request at all!!!!!", 40);
	send_buf(f, s->len);
	assert_refused(s->rep, SLUICE_EPROTO);
	assert_state_unchanged(f, &s->before);
}

static void
test_refused_writes_truncated_eproto(void **statep)
{
	fixture *f = *statep;
	scratch *s = &f->s;

	read_state(f, &s->before);
	apply_init(f, &s->a, "truncated");
	seal(f, f->admin);
	pack_write(f, &s->sc, SL_API_VERSION, true);
	// Cut inside the write field, whose length prefix promises more.
	send_buf(f, s->len / 2);
	assert_refused(s->rep, SLUICE_EPROTO);
	assert_state_unchanged(f, &s->before);
}

static void
test_refused_writes_wrong_api_version_eversion(void **statep)
{
	fixture *f = *statep;

	apply_init(f, &f->s.a, "version");
	expect_refused_write(
	    f, f->admin, SL_API_VERSION + 1, true, SLUICE_EVERSION);
}

static void
test_refused_writes_missing_header_eproto(void **statep)
{
	fixture *f = *statep;

	apply_init(f, &f->s.a, "noheader");
	expect_refused_write(
	    f, f->admin, SL_API_VERSION, false, SLUICE_EPROTO);
}

// After every refusal flagd still takes a valid write, and the audit
// chain it holds is intact: revisions consecutive, hashes recompute.
static void
test_refused_writes_flagd_still_serves(void **statep)
{
	fixture               *f = *statep;
	scratch               *s = &f->s;
	Sluice__V1__Request    req;
	Sluice__V1__AuditQuery aq;
	sl_audit_verifier      v;
	const char            *why = NULL;

	test_refused_writes_valid_write_is_accepted(statep);

	sluice__v1__request__init(&req);
	sluice__v1__audit_query__init(&aq);
	aq.limit    = 5000;
	req.op_case = SLUICE__V1__REQUEST__OP_AUDIT;
	req.audit   = &aq;
	reply_free(&s->rep);
	assert_int_equal(call(f, &req, &s->rep), SLUICE_OK);
	assert_non_null(s->rep);
	assert_int_equal(s->rep->result_case, SLUICE__V1__REPLY__RESULT_AUDIT);
	assert_true(s->rep->audit->n_entries > 0);
	sl_audit_verifier_init(&v);
	for (size_t i = 0; i < s->rep->audit->n_entries; i++) {
		const Sluice__V1__AuditEntry *e = s->rep->audit->entries[i];
		int rv = sl_audit_verifier_next(&v, e, &why);
		if (rv != SLUICE_OK) {
			print_error("audit entry %llu: %s\n",
			    (unsigned long long) e->revision,
			    why != NULL ? why : "?");
		}
		assert_int_equal(rv, SLUICE_OK);
	}
	assert_int_equal(v.revision, s->rep->revision);
}

#define T(name) \
	cmocka_unit_test_setup_teardown(name, test_setup, test_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_refused_writes_valid_write_is_accepted),
		T(test_refused_writes_unsigned_ebadsig),
		T(test_refused_writes_other_key_signature_ebadsig),
		T(test_refused_writes_flipped_body_bit_ebadsig),
		T(test_refused_writes_unknown_key_eunknownkey),
		T(test_refused_writes_reader_apply_eperm),
		T(test_refused_writes_replayed_command_ereplay),
		T(test_refused_writes_stale_timestamp_eexpired),
		T(test_refused_writes_future_timestamp_eexpired),
		T(test_refused_writes_oversized_body_etoobig),
		T(test_refused_writes_oversized_request_etoobig),
		T(test_refused_writes_garbage_eproto),
		T(test_refused_writes_truncated_eproto),
		T(test_refused_writes_wrong_api_version_eversion),
		T(test_refused_writes_missing_header_eproto),
		T(test_refused_writes_flagd_still_serves),
	};

	// A dead flagd must not kill the test through SIGPIPE.
	signal(SIGPIPE, SIG_IGN);
	return (cmocka_run_group_tests_name(
	    "integration/refused_writes", tests, group_setup, group_teardown));
}
