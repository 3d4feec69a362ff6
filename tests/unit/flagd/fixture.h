/* SPDX-License-Identifier: MIT */
/*
 * fixture.h — shared helpers of the flagd unit tests: a store in a fresh
 * temporary directory, rollout specs and commands built from short text
 * forms, and test keys. Everything built here is malloc'd piece by piece,
 * so the protobuf-c *__free_unpacked functions release it. Include after
 * <cmocka.h>.
 */
#ifndef FLAGD_TEST_FIXTURE_H
#define FLAGD_TEST_FIXTURE_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"
#include "machine.h"
#include "store.h"

typedef struct fixture {
	char         dir[64];
	flagd_store *store;
} fixture;

static inline void *
fx_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	assert_non_null(p);
	return (p);
}

static inline char *
fx_strdup(const char *s)
{
	char *p = strdup(s);

	assert_non_null(p);
	return (p);
}

static inline void
fx_store_open(fixture *fx)
{
	flagd_store_opts o = { 0, true, false };

	assert_int_equal(flagd_store_open(&fx->store, fx->dir, &o), SLUICE_OK);
}

static inline fixture *
fx_new(void)
{
	fixture *fx = fx_xcalloc(1, sizeof(*fx));

	snprintf(fx->dir, sizeof(fx->dir), "/tmp/sluice-flagd-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	fx_store_open(fx);
	return (fx);
}

static inline void
fx_reopen(fixture *fx)
{
	flagd_store_close(fx->store);
	fx->store = NULL;
	fx_store_open(fx);
}

// Removes path and, when it is a directory, everything below it.
static inline void
fx_rmtree(const char *path)
{
	DIR           *d;
	struct dirent *de;
	char           sub[512];

	if ((d = opendir(path)) == NULL) {
		(void) unlink(path);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0) {
			continue;
		}
		if (snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name) >=
		    (int) sizeof(sub)) {
			continue;
		}
		fx_rmtree(sub);
	}
	closedir(d);
	(void) rmdir(path);
}

// Closes the store and removes the directory with everything in it.
static inline void
fx_free(fixture *fx)
{
	if (fx == NULL) {
		return;
	}
	flagd_store_close(fx->store);
	fx_rmtree(fx->dir);
	free(fx);
}

// ------------------------------------------------------------ specs

// Splits a comma-separated list into a malloc'd array of strdup'd items.
static inline char **
fx_split(const char *csv, size_t *np)
{
	char  *tmp = fx_strdup(csv);
	char **a   = NULL;
	size_t n   = 0;
	char  *save;

	for (char *tok = strtok_r(tmp, ",", &save); tok != NULL;
	     tok       = strtok_r(NULL, ",", &save)) {
		a = realloc(a, (n + 1) * sizeof(*a));
		assert_non_null(a);
		a[n++] = fx_strdup(tok);
	}
	free(tmp);
	*np = n;
	return (a);
}

// "true"/"false" -> bool, "25%" -> percent, digits -> int, else string.
static inline Sluice__V1__FlagValue *
fx_value(const char *text)
{
	Sluice__V1__FlagValue *v   = fx_xcalloc(1, sizeof(*v));
	size_t                 len = strlen(text);
	char                  *end;
	long long              n;

	sluice__v1__flag_value__init(v);
	if (strcmp(text, "true") == 0 || strcmp(text, "false") == 0) {
		v->kind_case  = SLUICE__V1__FLAG_VALUE__KIND_BOOL_VALUE;
		v->bool_value = text[0] == 't';
		return (v);
	}
	if (len > 1 && text[len - 1] == '%') {
		v->kind_case  = SLUICE__V1__FLAG_VALUE__KIND_PERCENT_BP;
		v->percent_bp = (uint32_t) (strtoul(text, NULL, 10) * 100u);
		return (v);
	}
	n = strtoll(text, &end, 10);
	if (len > 0 && *end == '\0') {
		v->kind_case = SLUICE__V1__FLAG_VALUE__KIND_INT_VALUE;
		v->int_value = n;
		return (v);
	}
	v->kind_case    = SLUICE__V1__FLAG_VALUE__KIND_STRING_VALUE;
	v->string_value = fx_strdup(text);
	return (v);
}

static inline Sluice__V1__RolloutSpec *
fx_spec(const char *name, const char *stages)
{
	Sluice__V1__RolloutSpec *s = fx_xcalloc(1, sizeof(*s));

	sluice__v1__rollout_spec__init(s);
	s->name        = fx_strdup(name);
	s->description = fx_strdup("test rollout");
	s->owner       = fx_strdup("data-eng");
	s->stages      = fx_split(stages, &s->n_stages);
	return (s);
}

// Adds a flag whose values per stage are given as "false,true,...".
static inline void
fx_spec_flag(Sluice__V1__RolloutSpec *s, const char *key, const char *values)
{
	Sluice__V1__Flag *f = fx_xcalloc(1, sizeof(*f));
	char            **vs;
	size_t            n;

	sluice__v1__flag__init(f);
	f->key    = fx_strdup(key);
	vs        = fx_split(values, &n);
	f->values = fx_xcalloc(n, sizeof(*f->values));
	for (size_t i = 0; i < n; i++) {
		f->values[i] = fx_value(vs[i]);
		free(vs[i]);
	}
	free(vs);
	f->n_values = n;
	s->flags    = realloc(s->flags, (s->n_flags + 1) * sizeof(*s->flags));
	assert_non_null(s->flags);
	s->flags[s->n_flags++] = f;
}

static inline void
fx_spec_require(
    Sluice__V1__RolloutSpec *s, const char *rollout, const char *stage)
{
	Sluice__V1__Prerequisite *p = fx_xcalloc(1, sizeof(*p));

	sluice__v1__prerequisite__init(p);
	p->rollout = fx_strdup(rollout);
	p->stage   = fx_strdup(stage);
	s->requires =
	    realloc(s->requires, (s->n_requires + 1) * sizeof(*s->requires));
	assert_non_null(s->requires);
	s->requires[s->n_requires++] = p;
}

#define FX_STAGES "off,shadow,canary,half,full"

// The usual five-stage rollout with one bool flag and one percentage.
static inline Sluice__V1__RolloutSpec *
fx_spec_std(const char *name, const char *flag_prefix)
{
	Sluice__V1__RolloutSpec *s = fx_spec(name, FX_STAGES);
	char                     key[128];

	snprintf(key, sizeof(key), "%s.write", flag_prefix);
	fx_spec_flag(s, key, "false,true,true,true,true");
	snprintf(key, sizeof(key), "%s.read", flag_prefix);
	fx_spec_flag(s, key, "0%,0%,10%,50%,100%");
	return (s);
}

// ------------------------------------------------------------ commands

static inline Sluice__V1__Command *
fx_cmd(uint64_t ts)
{
	static uint64_t      seq;
	Sluice__V1__Command *c = fx_xcalloc(1, sizeof(*c));

	sluice__v1__command__init(c);
	c->timestamp_ms = ts;
	c->nonce.len    = 16;
	c->nonce.data   = fx_xcalloc(1, 16);
	seq++;
	memcpy(c->nonce.data, &seq, sizeof(seq));
	memcpy(c->nonce.data + 8, "sluice-t", 8);
	c->reason = fx_strdup("unit test");
	return (c);
}

// Takes ownership of spec.
static inline Sluice__V1__Command *
fx_cmd_apply(uint64_t ts, Sluice__V1__RolloutSpec *spec, bool force)
{
	Sluice__V1__Command *c = fx_cmd(ts);

	c->action_case = SLUICE__V1__COMMAND__ACTION_APPLY;
	c->apply       = fx_xcalloc(1, sizeof(*c->apply));
	sluice__v1__apply_rollout__init(c->apply);
	c->apply->spec  = spec;
	c->apply->force = force;
	return (c);
}

static inline Sluice__V1__Command *
fx_cmd_promote(uint64_t ts, const char *name, const char *to, int expect)
{
	Sluice__V1__Command *c = fx_cmd(ts);

	c->action_case = SLUICE__V1__COMMAND__ACTION_PROMOTE;
	c->promote     = fx_xcalloc(1, sizeof(*c->promote));
	sluice__v1__promote__init(c->promote);
	c->promote->rollout = fx_strdup(name);
	if (to != NULL) {
		c->promote->to_stage = fx_strdup(to);
	}
	if (expect >= 0) {
		c->promote->has_expect_stage = true;
		c->promote->expect_stage     = (uint32_t) expect;
	}
	return (c);
}

static inline Sluice__V1__Command *
fx_cmd_rollback(uint64_t ts, const char *name, const char *to, int expect)
{
	Sluice__V1__Command *c = fx_cmd(ts);

	c->action_case = SLUICE__V1__COMMAND__ACTION_ROLLBACK;
	c->rollback    = fx_xcalloc(1, sizeof(*c->rollback));
	sluice__v1__rollback__init(c->rollback);
	c->rollback->rollout = fx_strdup(name);
	if (to != NULL) {
		c->rollback->to_stage = fx_strdup(to);
	}
	if (expect >= 0) {
		c->rollback->has_expect_stage = true;
		c->rollback->expect_stage     = (uint32_t) expect;
	}
	return (c);
}

static inline Sluice__V1__Command *
fx_cmd_pause(uint64_t ts, const char *name)
{
	Sluice__V1__Command *c = fx_cmd(ts);

	c->action_case = SLUICE__V1__COMMAND__ACTION_PAUSE;
	c->pause       = fx_xcalloc(1, sizeof(*c->pause));
	sluice__v1__pause__init(c->pause);
	c->pause->rollout = fx_strdup(name);
	return (c);
}

static inline Sluice__V1__Command *
fx_cmd_resume(uint64_t ts, const char *name)
{
	Sluice__V1__Command *c = fx_cmd(ts);

	c->action_case = SLUICE__V1__COMMAND__ACTION_RESUME;
	c->resume      = fx_xcalloc(1, sizeof(*c->resume));
	sluice__v1__resume__init(c->resume);
	c->resume->rollout = fx_strdup(name);
	return (c);
}

static inline Sluice__V1__Command *
fx_cmd_revert(uint64_t ts, const char *name, uint64_t rev)
{
	Sluice__V1__Command *c = fx_cmd(ts);

	c->action_case = SLUICE__V1__COMMAND__ACTION_REVERT;
	c->revert      = fx_xcalloc(1, sizeof(*c->revert));
	sluice__v1__revert__init(c->revert);
	c->revert->rollout  = fx_strdup(name);
	c->revert->revision = rev;
	return (c);
}

static inline Sluice__V1__Key *
fx_key(const char *id, Sluice__V1__Role role, const char *scope, uint8_t fill)
{
	Sluice__V1__Key *k = fx_xcalloc(1, sizeof(*k));

	sluice__v1__key__init(k);
	k->id              = fx_strdup(id);
	k->role            = role;
	k->scope           = fx_strdup(scope);
	k->public_key.len  = 32;
	k->public_key.data = fx_xcalloc(1, 32);
	memset(k->public_key.data, fill, 32);
	return (k);
}

// Takes ownership of k.
static inline Sluice__V1__Command *
fx_cmd_key_add(uint64_t ts, Sluice__V1__Key *k)
{
	Sluice__V1__Command *c = fx_cmd(ts);

	c->action_case = SLUICE__V1__COMMAND__ACTION_KEY_ADD;
	c->key_add     = fx_xcalloc(1, sizeof(*c->key_add));
	sluice__v1__key_add__init(c->key_add);
	c->key_add->key = k;
	return (c);
}

static inline Sluice__V1__Command *
fx_cmd_key_remove(uint64_t ts, const char *id)
{
	Sluice__V1__Command *c = fx_cmd(ts);

	c->action_case = SLUICE__V1__COMMAND__ACTION_KEY_REMOVE;
	c->key_remove  = fx_xcalloc(1, sizeof(*c->key_remove));
	sluice__v1__key_remove__init(c->key_remove);
	c->key_remove->id = fx_strdup(id);
	return (c);
}

static inline Sluice__V1__Command *
fx_cmd_member_add(uint64_t ts, uint64_t id, const char *raft, const char *api)
{
	Sluice__V1__Command *c = fx_cmd(ts);

	c->action_case = SLUICE__V1__COMMAND__ACTION_MEMBER_ADD;
	c->member_add  = fx_xcalloc(1, sizeof(*c->member_add));
	sluice__v1__member_add__init(c->member_add);
	c->member_add->id           = id;
	c->member_add->raft_address = fx_strdup(raft);
	c->member_add->api_url      = fx_strdup(api);
	return (c);
}

static inline Sluice__V1__Command *
fx_cmd_member_remove(uint64_t ts, uint64_t id)
{
	Sluice__V1__Command *c = fx_cmd(ts);

	c->action_case   = SLUICE__V1__COMMAND__ACTION_MEMBER_REMOVE;
	c->member_remove = fx_xcalloc(1, sizeof(*c->member_remove));
	sluice__v1__member_remove__init(c->member_remove);
	c->member_remove->id = id;
	return (c);
}

static inline void
fx_cmd_free(Sluice__V1__Command *c)
{
	sluice__v1__command__free_unpacked(c, NULL);
}

#endif /* FLAGD_TEST_FIXTURE_H */
