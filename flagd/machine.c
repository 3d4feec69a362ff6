/* SPDX-License-Identifier: MIT */
/*
 * machine.c — flagd's state machine. One verified command becomes one
 * write transaction: re-read the actor's key, check role and scope, record
 * the nonce, run the action (apply, promote, rollback, pause, resume,
 * revert, key add/remove), bump the revision by one and append one audit
 * entry. Any error aborts the transaction, so a refused command changes
 * nothing. The outcome depends only on the store, the command, the actor
 * and now_ms, so every replica computes the same state.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "codec.h"
#include "config.h"
#include "envelope.h"
#include "keys.h"
#include "machine.h"
#include "rollout.h"

#define SUMMARY_MAX 256u

// The state of one command while it runs.
typedef struct mach {
	flagd_txn                 *t;
	const Sluice__V1__Command *cmd;
	const Sluice__V1__Key     *actor;
	uint64_t                   now_ms;
	uint64_t                   revision; // the revision being written
	flagd_result              *res;
	// The rollout to store, when the action is about one. Either owned
	// (unpacked from the store) or a stack value borrowing its spec.
	Sluice__V1__Rollout *out;
	const char          *subject;      // audit "rollout": name or key id
	char                 subj_buf[64]; // "node N" for membership
	char                 before[SUMMARY_MAX];
	char                 after[SUMMARY_MAX];
	bool                 noop; // apply of an identical spec
} mach;

static int fail_msg(mach *m, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail_msg(mach *m, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m->res->msg, sizeof(m->res->msg), fmt, ap);
	va_end(ap);
	return (code);
}

// A store failure: not the client's fault, so the message says so.
static int
store_fail(mach *m, int code, const char *what)
{
	return (
	    fail_msg(m, code, "store: %s: %s", what, sluice_strerror(code)));
}

void
flagd_result_init(flagd_result *res)
{
	memset(res, 0, sizeof(*res));
}

void
flagd_result_fini(flagd_result *res)
{
	if (res == NULL) {
		return;
	}
	if (res->rollout != NULL) {
		sluice__v1__rollout__free_unpacked(res->rollout, NULL);
	}
	if (res->audit != NULL) {
		sluice__v1__audit_entry__free_unpacked(res->audit, NULL);
	}
	flagd_result_init(res);
}

static const char *
stage_name(const Sluice__V1__Rollout *r, uint32_t i)
{
	if (i < r->spec->n_stages) {
		return (r->spec->stages[i]);
	}
	return ("?");
}

// "stage=canary(2) last_good=shadow state=active", last good as effective
// at now_ms, which is what a rollback would use.
static void
summarize(const Sluice__V1__Rollout *r, uint64_t now_ms, char *buf, size_t len)
{
	if (r == NULL) {
		snprintf(buf, len, "absent");
		return;
	}
	snprintf(buf, len, "stage=%s(%u) last_good=%s state=%s",
	    stage_name(r, r->stage), (unsigned) r->stage,
	    stage_name(r, sl_rollout_last_good(r, now_ms)),
	    sl_state_name(r->state));
}

static void
summarize_key(const Sluice__V1__Key *k, char *buf, size_t len)
{
	if (k == NULL) {
		snprintf(buf, len, "absent");
		return;
	}
	snprintf(buf, len, "role=%s scope=%s", sl_role_name(k->role),
	    *k->scope == '\0' ? "*" : k->scope);
}

static bool
scope_all(const Sluice__V1__Key *k)
{
	return (*k->scope == '\0' || strcmp(k->scope, "*") == 0);
}

// Loads a rollout named by a command, with the client's messages.
static int
load_rollout(mach *m, const char *name, Sluice__V1__Rollout **rp)
{
	int rv;

	if (!sl_rollout_name_valid(name)) {
		return (fail_msg(
		    m, SLUICE_EINVAL, "invalid rollout name \"%s\"", name));
	}
	rv = flagd_txn_get_rollout(m->t, name, rp);
	if (rv == SLUICE_ENOENT) {
		return (fail_msg(m, rv, "rollout \"%s\" not found", name));
	}
	if (rv != SLUICE_OK) {
		return (store_fail(m, rv, "reading rollout"));
	}
	return (SLUICE_OK);
}

// Every flag of spec must be free or already ours.
static int
check_flag_owners(mach *m, const Sluice__V1__RolloutSpec *spec)
{
	char owner[SL_KEY_ID_MAX + 256];
	int  rv;

	for (size_t i = 0; i < spec->n_flags; i++) {
		const char *fk = spec->flags[i]->key;

		rv = flagd_txn_flag_owner(m->t, fk, owner, sizeof(owner));
		if (rv == SLUICE_ENOENT) {
			continue;
		}
		if (rv != SLUICE_OK) {
			return (store_fail(m, rv, "reading flag index"));
		}
		if (strcmp(owner, spec->name) != 0) {
			return (fail_msg(m, SLUICE_EEXIST,
			    "flag \"%s\" belongs to rollout \"%s\"", fk,
			    owner));
		}
	}
	return (SLUICE_OK);
}

static const Sluice__V1__Flag *
find_flag(const Sluice__V1__RolloutSpec *s, const char *key)
{
	for (size_t i = 0; i < s->n_flags; i++) {
		if (strcmp(s->flags[i]->key, key) == 0) {
			return (s->flags[i]);
		}
	}
	return (NULL);
}

// Whether replacing old's spec by spec would change what clients see now:
// the stages up to the current one, and the current value of every flag.
static int
check_live_change(mach *m, const Sluice__V1__Rollout *old,
    const Sluice__V1__RolloutSpec *spec)
{
	const Sluice__V1__RolloutSpec *os  = old->spec;
	uint32_t                       cur = old->stage;
	const char                    *cs  = stage_name(old, cur);

	if (spec->n_stages <= cur) {
		return (fail_msg(m, SLUICE_ECONFLICT,
		    "rollout \"%s\" is at stage \"%s\", which the new spec "
		    "drops; use --force to apply anyway",
		    spec->name, cs));
	}
	for (uint32_t i = 0; i <= cur; i++) {
		if (strcmp(os->stages[i], spec->stages[i]) != 0) {
			return (fail_msg(m, SLUICE_ECONFLICT,
			    "the new spec renames or reorders stage %u "
			    "(\"%s\" -> \"%s\") at or before the current "
			    "stage \"%s\"; use --force to apply anyway",
			    (unsigned) i, os->stages[i], spec->stages[i], cs));
		}
	}
	for (size_t i = 0; i < os->n_flags; i++) {
		const Sluice__V1__Flag *of = os->flags[i];
		const Sluice__V1__Flag *nf = find_flag(spec, of->key);
		char                    a[64];
		char                    b[64];

		if (nf == NULL) {
			return (fail_msg(m, SLUICE_ECONFLICT,
			    "the new spec removes flag \"%s\", live at stage "
			    "\"%s\"; use --force to apply anyway",
			    of->key, cs));
		}
		if (cur >= of->n_values || cur >= nf->n_values) {
			continue; // validated specs have a value per stage
		}
		if (!sl_value_equal(of->values[cur], nf->values[cur])) {
			sl_value_format(of->values[cur], a, sizeof(a));
			sl_value_format(nf->values[cur], b, sizeof(b));
			return (fail_msg(m, SLUICE_ECONFLICT,
			    "the new spec changes flag \"%s\" at the current "
			    "stage \"%s\" from %s to %s; use --force to apply "
			    "anyway",
			    of->key, cs, a, b));
		}
	}
	return (SLUICE_OK);
}

// ------------------------------------------------------------ actions

static int
do_apply(mach *m, Sluice__V1__Rollout **ownp, Sluice__V1__Rollout *fresh)
{
	const Sluice__V1__ApplyRollout *ap   = m->cmd->apply;
	Sluice__V1__RolloutSpec        *spec = ap->spec;
	Sluice__V1__Rollout            *old  = NULL;
	char                            err[sizeof(m->res->msg)];
	uint32_t                        last;
	int                             rv;

	if ((rv = sl_spec_validate(spec, err, sizeof(err))) != SLUICE_OK) {
		return (fail_msg(m, rv, "%s", err));
	}
	rv = flagd_txn_get_rollout(m->t, spec->name, &old);
	if (rv != SLUICE_OK && rv != SLUICE_ENOENT) {
		return (store_fail(m, rv, "reading rollout"));
	}
	if (old != NULL && sl_message_equal(&old->spec->base, &spec->base)) {
		// Same spec: a no-op. The caller aborts the txn, so neither
		// the revision nor the nonce moves.
		m->noop = true;
		*ownp   = old;
		return (SLUICE_OK);
	}
	if ((rv = check_flag_owners(m, spec)) != SLUICE_OK) {
		goto fail;
	}
	last = (uint32_t) spec->n_stages - 1;
	sluice__v1__rollout__init(fresh);
	fresh->spec = spec;
	if (old == NULL) {
		fresh->stage     = 0;
		fresh->last_good = 0;
		fresh->state     = SLUICE__V1__ROLLOUT_STATE__STATE_ACTIVE;
		fresh->stage_since_ms   = m->now_ms;
		fresh->created_revision = m->revision;
		summarize(NULL, m->now_ms, m->before, sizeof(m->before));
		m->out = fresh;
		return (SLUICE_OK);
	}
	if (!ap->force &&
	    (rv = check_live_change(m, old, spec)) != SLUICE_OK) {
		goto fail;
	}
	summarize(old, m->now_ms, m->before, sizeof(m->before));
	fresh->stage            = old->stage;
	fresh->last_good        = old->last_good;
	fresh->state            = old->state;
	fresh->stage_since_ms   = old->stage_since_ms;
	fresh->created_revision = old->created_revision;
	if (fresh->stage > last) {
		// Forced onto fewer stages: stand on the last one, which is
		// now what clients evaluate.
		fresh->stage          = last;
		fresh->stage_since_ms = m->now_ms;
	}
	if (fresh->last_good > fresh->stage) {
		fresh->last_good = fresh->stage;
	}
	// "completed" means "at the final stage": keep it true when the
	// stage list changes under the rollout.
	if (fresh->state == SLUICE__V1__ROLLOUT_STATE__STATE_COMPLETED &&
	    fresh->stage < last) {
		fresh->state = SLUICE__V1__ROLLOUT_STATE__STATE_ACTIVE;
	} else if (fresh->state == SLUICE__V1__ROLLOUT_STATE__STATE_ACTIVE &&
	    fresh->stage == last) {
		fresh->state = SLUICE__V1__ROLLOUT_STATE__STATE_COMPLETED;
	}
	m->out = fresh;
	*ownp  = old;
	return (SLUICE_OK);
fail:
	if (old != NULL) {
		sluice__v1__rollout__free_unpacked(old, NULL);
	}
	return (rv);
}

// Resolves a to_stage name; EINVAL naming the rollout when unknown.
static int
target_stage(
    mach *m, const Sluice__V1__Rollout *r, const char *to, uint32_t *ip)
{
	int idx = sl_stage_index(r->spec, to);

	if (idx < 0) {
		return (fail_msg(m, SLUICE_EINVAL,
		    "rollout \"%s\" has no stage \"%s\"", r->spec->name, to));
	}
	*ip = (uint32_t) idx;
	return (SLUICE_OK);
}

static int
check_expect(mach *m, const Sluice__V1__Rollout *r, bool has, uint32_t want)
{
	if (has && r->stage != want) {
		return (fail_msg(m, SLUICE_ECONFLICT,
		    "rollout \"%s\" is at stage \"%s\" (%u), not at stage "
		    "%u as expected",
		    r->spec->name, stage_name(r, r->stage),
		    (unsigned) r->stage, (unsigned) want));
	}
	return (SLUICE_OK);
}

static int
check_prereqs(mach *m, const Sluice__V1__Rollout *r)
{
	for (size_t i = 0; i < r->spec->n_requires; i++) {
		const Sluice__V1__Prerequisite *p = r->spec->requires[i];
		Sluice__V1__Rollout            *o;
		int                             idx;
		int                             rv;

		rv = flagd_txn_get_rollout(m->t, p->rollout, &o);
		if (rv == SLUICE_ENOENT) {
			return (fail_msg(m, SLUICE_EPREREQ,
			    "rollout \"%s\" requires \"%s\" at stage \"%s\", "
			    "but \"%s\" does not exist",
			    r->spec->name, p->rollout, p->stage, p->rollout));
		}
		if (rv != SLUICE_OK) {
			return (store_fail(m, rv, "reading prerequisite"));
		}
		idx = sl_stage_index(o->spec, p->stage);
		if (idx < 0) {
			rv = fail_msg(m, SLUICE_EPREREQ,
			    "rollout \"%s\" requires \"%s\" at stage \"%s\", "
			    "but \"%s\" has no such stage",
			    r->spec->name, p->rollout, p->stage, p->rollout);
		} else if (o->stage < (uint32_t) idx) {
			rv = fail_msg(m, SLUICE_EPREREQ,
			    "rollout \"%s\" requires \"%s\" at stage \"%s\" "
			    "or "
			    "later; it is at \"%s\"",
			    r->spec->name, p->rollout, p->stage,
			    stage_name(o, o->stage));
		}
		sluice__v1__rollout__free_unpacked(o, NULL);
		if (rv != SLUICE_OK) {
			return (rv);
		}
	}
	return (SLUICE_OK);
}

static int
do_promote(mach *m, Sluice__V1__Rollout *r)
{
	const Sluice__V1__Promote *p      = m->cmd->promote;
	uint32_t                   last   = (uint32_t) r->spec->n_stages - 1;
	uint32_t                   target = 0;
	uint32_t                   good;
	int                        rv;

	// The compare-and-set comes first: a caller whose view is stale
	// learns that, whatever else has changed.
	if ((rv = check_expect(m, r, p->has_expect_stage, p->expect_stage)) !=
	    SLUICE_OK) {
		return (rv);
	}
	switch (r->state) {
	case SLUICE__V1__ROLLOUT_STATE__STATE_PAUSED:
		return (fail_msg(m, SLUICE_ESTATE,
		    "rollout \"%s\" is paused; resume first", r->spec->name));
	case SLUICE__V1__ROLLOUT_STATE__STATE_COMPLETED:
		return (fail_msg(m, SLUICE_ESTATE,
		    "rollout \"%s\" is already at its final stage \"%s\"",
		    r->spec->name, stage_name(r, r->stage)));
	case SLUICE__V1__ROLLOUT_STATE__STATE_ACTIVE:
	case SLUICE__V1__ROLLOUT_STATE__STATE_ROLLED_BACK:
	case _SLUICE__V1__ROLLOUT_STATE_IS_INT_SIZE:
		break;
	}
	if (*p->to_stage != '\0') {
		if ((rv = target_stage(m, r, p->to_stage, &target)) !=
		    SLUICE_OK) {
			return (rv);
		}
		if (target <= r->stage) {
			return (fail_msg(m, SLUICE_ESTATE,
			    "stage \"%s\" is not after the current stage "
			    "\"%s\"",
			    p->to_stage, stage_name(r, r->stage)));
		}
	} else {
		if (r->stage >= last) {
			return (fail_msg(m, SLUICE_ESTATE,
			    "rollout \"%s\" is already at its final stage "
			    "\"%s\"",
			    r->spec->name, stage_name(r, r->stage)));
		}
		target = r->stage + 1;
	}
	if ((rv = check_prereqs(m, r)) != SLUICE_OK) {
		return (rv);
	}
	// Promoting says the current stage was good.
	good = sl_rollout_last_good(r, m->now_ms);
	if (good < r->stage) {
		good = r->stage;
	}
	r->last_good      = good;
	r->stage          = target;
	r->stage_since_ms = m->now_ms;
	r->state = target == last ? SLUICE__V1__ROLLOUT_STATE__STATE_COMPLETED
	                          : SLUICE__V1__ROLLOUT_STATE__STATE_ACTIVE;
	return (SLUICE_OK);
}

static int
do_rollback(mach *m, Sluice__V1__Rollout *r)
{
	const Sluice__V1__Rollback *p = m->cmd->rollback;
	uint32_t                    good;
	uint32_t                    target = 0;
	int                         rv;

	if ((rv = check_expect(m, r, p->has_expect_stage, p->expect_stage)) !=
	    SLUICE_OK) {
		return (rv);
	}
	if (r->stage == 0) {
		return (fail_msg(m, SLUICE_ESTATE,
		    "rollout \"%s\" is at its first stage \"%s\"; nothing to "
		    "roll back",
		    r->spec->name, stage_name(r, 0)));
	}
	good = sl_rollout_last_good(r, m->now_ms);
	if (*p->to_stage != '\0') {
		if ((rv = target_stage(m, r, p->to_stage, &target)) !=
		    SLUICE_OK) {
			return (rv);
		}
		if (target >= r->stage) {
			return (fail_msg(m, SLUICE_ESTATE,
			    "stage \"%s\" is not before the current stage "
			    "\"%s\"",
			    p->to_stage, stage_name(r, r->stage)));
		}
	} else {
		if (good >= r->stage) {
			return (fail_msg(m, SLUICE_ESTATE,
			    "rollout \"%s\" is already at its last good stage "
			    "\"%s\"",
			    r->spec->name, stage_name(r, r->stage)));
		}
		target = good;
	}
	r->stage          = target;
	r->last_good      = good < target ? good : target;
	r->stage_since_ms = m->now_ms;
	r->state          = SLUICE__V1__ROLLOUT_STATE__STATE_ROLLED_BACK;
	return (SLUICE_OK);
}

static int
do_pause(mach *m, Sluice__V1__Rollout *r)
{
	switch (r->state) {
	case SLUICE__V1__ROLLOUT_STATE__STATE_ACTIVE:
	case SLUICE__V1__ROLLOUT_STATE__STATE_ROLLED_BACK:
		break;
	case SLUICE__V1__ROLLOUT_STATE__STATE_PAUSED:
		return (fail_msg(m, SLUICE_ESTATE,
		    "rollout \"%s\" is already paused", r->spec->name));
	case SLUICE__V1__ROLLOUT_STATE__STATE_COMPLETED:
	case _SLUICE__V1__ROLLOUT_STATE_IS_INT_SIZE:
	default:
		return (fail_msg(m, SLUICE_ESTATE,
		    "rollout \"%s\" is %s; only an active or rolled back "
		    "rollout can be paused",
		    r->spec->name, sl_state_name(r->state)));
	}
	r->state = SLUICE__V1__ROLLOUT_STATE__STATE_PAUSED;
	return (SLUICE_OK);
}

static int
do_resume(mach *m, Sluice__V1__Rollout *r)
{
	if (r->state != SLUICE__V1__ROLLOUT_STATE__STATE_PAUSED) {
		return (fail_msg(m, SLUICE_ESTATE,
		    "rollout \"%s\" is %s, not paused", r->spec->name,
		    sl_state_name(r->state)));
	}
	r->state = r->stage + 1 >= r->spec->n_stages
	    ? SLUICE__V1__ROLLOUT_STATE__STATE_COMPLETED
	    : SLUICE__V1__ROLLOUT_STATE__STATE_ACTIVE;
	// The rollback window counts time spent running, not paused: the
	// stage has to hold a full window again before it settles.
	r->stage_since_ms = m->now_ms;
	return (SLUICE_OK);
}

static int
do_revert(mach *m, Sluice__V1__Rollout *cur, Sluice__V1__Rollout **histp)
{
	const Sluice__V1__Revert *p   = m->cmd->revert;
	uint64_t                  now = m->revision - 1;
	Sluice__V1__Rollout      *h;
	int                       rv;

	if (p->revision > now) {
		return (fail_msg(m, SLUICE_EINVAL,
		    "revision %llu is in the future (the current revision is "
		    "%llu)",
		    (unsigned long long) p->revision,
		    (unsigned long long) now));
	}
	rv = flagd_txn_rollout_at(m->t, p->rollout, p->revision, &h);
	if (rv == SLUICE_ENOENT) {
		return (fail_msg(m, rv,
		    "rollout \"%s\" did not exist at revision %llu",
		    p->rollout, (unsigned long long) p->revision));
	}
	if (rv != SLUICE_OK) {
		return (store_fail(m, rv, "reading history"));
	}
	if ((rv = check_flag_owners(m, h->spec)) != SLUICE_OK) {
		sluice__v1__rollout__free_unpacked(h, NULL);
		return (rv);
	}
	// Spec, stage, last good and state come from history, so reverting
	// to R twice gives the same state; only the times are new.
	h->stage_since_ms   = m->now_ms;
	h->created_revision = cur->created_revision;
	*histp              = h;
	return (SLUICE_OK);
}

static int
validate_key(mach *m, const Sluice__V1__Key *k)
{
	if (!sl_key_id_valid(k->id)) {
		return (fail_msg(
		    m, SLUICE_EINVAL, "invalid key id \"%s\"", k->id));
	}
	if (k->public_key.len != SLUICE_PUBLICKEY_BYTES ||
	    k->public_key.data == NULL) {
		return (fail_msg(m, SLUICE_EINVAL,
		    "key \"%s\": public key must be %u bytes", k->id,
		    (unsigned) SLUICE_PUBLICKEY_BYTES));
	}
	switch (k->role) {
	case SLUICE__V1__ROLE__ROLE_ADMIN:
	case SLUICE__V1__ROLE__ROLE_OPERATOR:
	case SLUICE__V1__ROLE__ROLE_REPORTER:
	case SLUICE__V1__ROLE__ROLE_READER:
		return (SLUICE_OK);
	case SLUICE__V1__ROLE__ROLE_NONE:
	case _SLUICE__V1__ROLE_IS_INT_SIZE:
	default:
		return (fail_msg(
		    m, SLUICE_EINVAL, "key \"%s\" has no role", k->id));
	}
}

static int
do_key_add(mach *m)
{
	const Sluice__V1__Key *k = m->cmd->key_add->key;
	Sluice__V1__Key       *old;
	int                    rv;

	if ((rv = validate_key(m, k)) != SLUICE_OK) {
		return (rv);
	}
	rv = flagd_txn_get_key(m->t, k->id, &old);
	if (rv == SLUICE_OK) {
		sluice__v1__key__free_unpacked(old, NULL);
		return (fail_msg(
		    m, SLUICE_EEXIST, "key \"%s\" already exists", k->id));
	}
	if (rv != SLUICE_ENOENT) {
		return (store_fail(m, rv, "reading key"));
	}
	if ((rv = flagd_txn_put_key(m->t, k)) != SLUICE_OK) {
		return (store_fail(m, rv, "writing key"));
	}
	m->subject = k->id;
	summarize_key(NULL, m->before, sizeof(m->before));
	summarize_key(k, m->after, sizeof(m->after));
	return (SLUICE_OK);
}

static int
do_key_remove(mach *m)
{
	const char            *id = m->cmd->key_remove->id;
	Sluice__V1__Key      **ks;
	size_t                 n;
	size_t                 admins = 0;
	const Sluice__V1__Key *victim = NULL;
	int                    rv;

	if ((rv = flagd_txn_list_keys(m->t, &ks, &n)) != SLUICE_OK) {
		return (store_fail(m, rv, "listing keys"));
	}
	for (size_t i = 0; i < n; i++) {
		if (ks[i]->role == SLUICE__V1__ROLE__ROLE_ADMIN) {
			admins++;
		}
		if (strcmp(ks[i]->id, id) == 0) {
			victim = ks[i];
		}
	}
	if (victim == NULL) {
		rv = fail_msg(m, SLUICE_ENOENT, "key \"%s\" not found", id);
		goto done;
	}
	// Without an admin key nobody could ever manage keys or apply
	// rollouts again.
	if (victim->role == SLUICE__V1__ROLE__ROLE_ADMIN && admins <= 1) {
		rv = fail_msg(m, SLUICE_ESTATE,
		    "key \"%s\" is the last admin key; add another admin "
		    "first",
		    id);
		goto done;
	}
	if ((rv = flagd_txn_del_key(m->t, id)) != SLUICE_OK) {
		rv = store_fail(m, rv, "deleting key");
		goto done;
	}
	m->subject = id;
	summarize_key(victim, m->before, sizeof(m->before));
	summarize_key(NULL, m->after, sizeof(m->after));
done:
	flagd_keys_free(ks, n);
	return (rv);
}

// Membership: the entry records who asked for what; the configuration
// itself is libraft's, changed by the proposing node after the commit
// (flagd_result.member_op).
static int
do_member(mach *m, sl_action act)
{
	flagd_peer p;
	size_t     n;
	char       spec[600];
	char       err[200];

	if (act == SL_ACT_MEMBER_REMOVE) {
		uint64_t id = m->cmd->member_remove->id;

		if (id == 0) {
			return (fail_msg(m, SLUICE_EINVAL, "node id 0"));
		}
		snprintf(m->subj_buf, sizeof(m->subj_buf), "node %llu",
		    (unsigned long long) id);
		snprintf(m->before, sizeof(m->before), "member");
		snprintf(m->after, sizeof(m->after), "removed");
		m->res->member_id = id;
	} else {
		const Sluice__V1__MemberAdd *a = m->cmd->member_add;

		// Validated as one --peers entry would be: one parser.
		if (snprintf(spec, sizeof(spec), "%llu=%s@%s",
		        (unsigned long long) a->id, a->raft_address,
		        a->api_url) >= (int) sizeof(spec)) {
			return (fail_msg(
			    m, SLUICE_EINVAL, "member: address too long"));
		}
		if (flagd_peers_parse(spec, &p, 1, &n, err, sizeof(err)) !=
		    SLUICE_OK) {
			return (fail_msg(m, SLUICE_EINVAL, "member: %s", err));
		}
		snprintf(m->subj_buf, sizeof(m->subj_buf), "node %llu",
		    (unsigned long long) p.id);
		snprintf(m->before, sizeof(m->before), "not a member");
		// Truncated in the summary only; the address is whole below.
		if (snprintf(m->after, sizeof(m->after),
		        "voter at %.100s, api "
		        "%.140s",
		        p.raft, p.api) < 0) {
			m->after[0] = '\0';
		}
		m->res->member_id = p.id;
		snprintf(m->res->member_address,
		    sizeof(m->res->member_address), "%s@%s", p.raft, p.api);
	}
	m->subject        = m->subj_buf;
	m->res->member_op = (int) act;
	return (SLUICE_OK);
}

// ------------------------------------------------------------ driver

// Structure the decoder cannot promise: sub-messages present.
static int
check_shape(mach *m)
{
	const Sluice__V1__Command *c = m->cmd;
	bool                       ok;

	switch (c->action_case) {
	case SLUICE__V1__COMMAND__ACTION_APPLY:
		ok = c->apply != NULL && c->apply->spec != NULL;
		break;
	case SLUICE__V1__COMMAND__ACTION_PROMOTE:
		ok = c->promote != NULL;
		break;
	case SLUICE__V1__COMMAND__ACTION_ROLLBACK:
		ok = c->rollback != NULL;
		break;
	case SLUICE__V1__COMMAND__ACTION_PAUSE:
		ok = c->pause != NULL;
		break;
	case SLUICE__V1__COMMAND__ACTION_RESUME:
		ok = c->resume != NULL;
		break;
	case SLUICE__V1__COMMAND__ACTION_REVERT:
		ok = c->revert != NULL;
		break;
	case SLUICE__V1__COMMAND__ACTION_KEY_ADD:
		ok = c->key_add != NULL && c->key_add->key != NULL;
		break;
	case SLUICE__V1__COMMAND__ACTION_KEY_REMOVE:
		ok = c->key_remove != NULL;
		break;
	case SLUICE__V1__COMMAND__ACTION_MEMBER_ADD:
		ok = c->member_add != NULL;
		break;
	case SLUICE__V1__COMMAND__ACTION_MEMBER_REMOVE:
		ok = c->member_remove != NULL;
		break;
	case SLUICE__V1__COMMAND__ACTION__NOT_SET:
	case _SLUICE__V1__COMMAND__ACTION__CASE_IS_INT_SIZE:
	default:
		return (fail_msg(m, SLUICE_EINVAL, "command has no action"));
	}
	if (!ok) {
		return (fail_msg(m, SLUICE_EINVAL, "command is incomplete"));
	}
	if (c->nonce.len == 0 || c->nonce.data == NULL) {
		return (fail_msg(m, SLUICE_EINVAL, "command has no nonce"));
	}
	return (SLUICE_OK);
}

static int
check_access(mach *m, sl_action act, const char *rollout)
{
	const Sluice__V1__Key *k = m->actor;
	bool key    = act == SL_ACT_KEY_ADD || act == SL_ACT_KEY_REMOVE;
	bool member = act == SL_ACT_MEMBER_ADD || act == SL_ACT_MEMBER_REMOVE;
	char what[64];

	if (member) {
		snprintf(what, sizeof(what), "node %llu",
		    (unsigned long long) (act == SL_ACT_MEMBER_ADD
		            ? m->cmd->member_add->id
		            : m->cmd->member_remove->id));
	}
	if (!sl_role_allows(k->role, act)) {
		return (fail_msg(m, SLUICE_EPERM,
		    "key \"%s\" (%s) may not %s \"%s\"", k->id,
		    sl_role_name(k->role), sl_action_name(act),
		    member ? what
		        : key
		        ? (act == SL_ACT_KEY_ADD ? m->cmd->key_add->key->id
		                                 : m->cmd->key_remove->id)
		        : rollout));
	}
	if ((key || member) && !scope_all(k)) {
		return (fail_msg(m, SLUICE_EPERM,
		    "key \"%s\" is scoped to \"%s\"; managing %s needs an "
		    "unscoped admin key",
		    k->id, k->scope, key ? "keys" : "the cluster"));
	}
	if (!key && !member && !sl_key_scope_covers(k, rollout)) {
		return (fail_msg(m, SLUICE_EPERM,
		    "key \"%s\" (%s, scope \"%s\") may not %s \"%s\"", k->id,
		    sl_role_name(k->role), k->scope, sl_action_name(act),
		    rollout));
	}
	return (SLUICE_OK);
}

static int
run_action(mach *m, sl_action act, Sluice__V1__Rollout **ownp,
    Sluice__V1__Rollout *fresh)
{
	Sluice__V1__Rollout *r = NULL;
	Sluice__V1__Rollout *h = NULL;
	const char          *name;
	int                  rv;

	switch (act) {
	case SL_ACT_APPLY:
		return (do_apply(m, ownp, fresh));
	case SL_ACT_KEY_ADD:
		return (do_key_add(m));
	case SL_ACT_KEY_REMOVE:
		return (do_key_remove(m));
	case SL_ACT_MEMBER_ADD:
	case SL_ACT_MEMBER_REMOVE:
		return (do_member(m, act));
	case SL_ACT_PROMOTE:
	case SL_ACT_ROLLBACK:
	case SL_ACT_PAUSE:
	case SL_ACT_RESUME:
	case SL_ACT_REVERT:
		break;
	case SL_ACT_READ:
	case SL_ACT_REPORT:
	default:
		return (fail_msg(m, SLUICE_EINVAL, "not a write command"));
	}
	name = sl_command_rollout(m->cmd);
	if ((rv = load_rollout(m, name, &r)) != SLUICE_OK) {
		return (rv);
	}
	summarize(r, m->now_ms, m->before, sizeof(m->before));
	switch (act) {
	case SL_ACT_PROMOTE:
		rv = do_promote(m, r);
		break;
	case SL_ACT_ROLLBACK:
		rv = do_rollback(m, r);
		break;
	case SL_ACT_PAUSE:
		rv = do_pause(m, r);
		break;
	case SL_ACT_RESUME:
		rv = do_resume(m, r);
		break;
	case SL_ACT_REVERT:
		if ((rv = do_revert(m, r, &h)) == SLUICE_OK) {
			sluice__v1__rollout__free_unpacked(r, NULL);
			r = h;
		}
		break;
	case SL_ACT_READ:
	case SL_ACT_APPLY:
	case SL_ACT_KEY_ADD:
	case SL_ACT_KEY_REMOVE:
	case SL_ACT_REPORT:
	case SL_ACT_MEMBER_ADD:
	case SL_ACT_MEMBER_REMOVE:
	default:
		rv = SLUICE_EINTERNAL;
		break;
	}
	*ownp = r; // freed by the caller, error or not
	if (rv == SLUICE_OK) {
		m->out = r;
	}
	return (rv);
}

// Stores m->out (if any) and the audit entry, then commits. Fills res.
static int
finish(mach *m, sl_action act)
{
	Sluice__V1__AuditEntry e;
	ProtobufCMessage      *copy;
	int                    rv;

	// The generated init functions, not the __INIT macros: the macros
	// cast away const from protobuf_c_empty_string (-Wcast-qual).
	sluice__v1__audit_entry__init(&e);
	if ((rv = flagd_txn_set_revision(m->t, m->revision)) != SLUICE_OK) {
		return (store_fail(m, rv, "writing revision"));
	}
	if (m->out != NULL) {
		m->out->revision = m->revision;
		m->subject       = m->out->spec->name;
		summarize(m->out, m->now_ms, m->after, sizeof(m->after));
		if ((rv = flagd_txn_put_rollout(m->t, m->out)) != SLUICE_OK) {
			return (store_fail(m, rv, "writing rollout"));
		}
		if ((rv = sl_message_copy(&m->out->base, &copy)) !=
		    SLUICE_OK) {
			return (store_fail(m, rv, "copying rollout"));
		}
		m->res->rollout = (Sluice__V1__Rollout *) copy;
	}
	e.revision        = m->revision;
	e.time_ms         = m->now_ms;
	e.actor           = (char *) (uintptr_t) m->actor->id;
	e.action          = (char *) (uintptr_t) sl_action_name(act);
	e.rollout         = (char *) (uintptr_t) m->subject;
	e.before          = m->before;
	e.after           = m->after;
	e.reason          = m->cmd->reason;
	e.evidence_digest = m->cmd->evidence_digest;
	if ((rv = flagd_txn_audit_append(m->t, &e)) != SLUICE_OK) {
		return (store_fail(m, rv, "appending audit entry"));
	}
	if ((rv = sl_message_copy(&e.base, &copy)) != SLUICE_OK) {
		return (store_fail(m, rv, "copying audit entry"));
	}
	m->res->audit = (Sluice__V1__AuditEntry *) copy;
	return (SLUICE_OK);
}

int
flagd_machine_apply(flagd_store *s, const flagd_machine_opts *o,
    const char *actor, const Sluice__V1__Command *cmd, uint64_t now_ms,
    flagd_result *res)
{
	mach                 m;
	Sluice__V1__Rollout  fresh;
	Sluice__V1__Rollout *own = NULL;
	Sluice__V1__Key     *key = NULL;
	uint64_t             ttl;
	sl_action            act;
	int                  rv;

	flagd_result_init(res);
	memset(&m, 0, sizeof(m));
	m.cmd    = cmd;
	m.now_ms = now_ms;
	m.res    = res;
	ttl      = (o != NULL && o->nonce_ttl_ms != 0) ? o->nonce_ttl_ms
	                                               : 2u * SL_DEFAULT_SKEW_MS;

	if ((rv = check_shape(&m)) != SLUICE_OK) {
		goto out;
	}
	if ((rv = flagd_store_begin(s, true, &m.t)) != SLUICE_OK) {
		rv = store_fail(&m, rv, "begin");
		goto out;
	}
	m.revision = flagd_txn_revision(m.t) + 1;
	rv         = flagd_txn_get_key(m.t, actor, &key);
	if (rv == SLUICE_ENOENT) {
		rv = fail_msg(
		    &m, SLUICE_EUNKNOWNKEY, "key \"%s\" is not known", actor);
		goto out;
	}
	if (rv != SLUICE_OK) {
		rv = store_fail(&m, rv, "reading key");
		goto out;
	}
	m.actor = key;
	act     = sl_command_action(cmd);
	if ((rv = check_access(&m, act, sl_command_rollout(cmd))) !=
	    SLUICE_OK) {
		goto out;
	}
	// A nonce that would lapse at once protects nothing: such a command
	// could be replayed forever. The node's skew check normally stops
	// it earlier.
	if (cmd->timestamp_ms > UINT64_MAX - ttl ||
	    cmd->timestamp_ms + ttl <= now_ms) {
		rv = fail_msg(&m, SLUICE_EEXPIRED,
		    "command timestamp is older than the replay window");
		goto out;
	}
	rv = flagd_txn_nonce_use(m.t, cmd->nonce.data, cmd->nonce.len,
	    cmd->timestamp_ms + ttl, now_ms);
	if (rv == SLUICE_EREPLAY) {
		rv = fail_msg(&m, rv, "nonce already used: replayed command");
		goto out;
	}
	if (rv != SLUICE_OK) {
		rv = store_fail(&m, rv, "recording nonce");
		goto out;
	}
	if ((rv = run_action(&m, act, &own, &fresh)) != SLUICE_OK) {
		goto out;
	}
	if (m.noop) {
		ProtobufCMessage *copy;

		res->revision = m.revision - 1;
		if ((rv = sl_message_copy(&own->base, &copy)) != SLUICE_OK) {
			rv = store_fail(&m, rv, "copying rollout");
			goto out;
		}
		res->rollout = (Sluice__V1__Rollout *) copy;
		goto out; // aborts: nothing was written
	}
	if ((rv = finish(&m, act)) != SLUICE_OK) {
		goto out;
	}
	// The consensus index goes in the same transaction as the effects,
	// so LMDB and the raft log never disagree about what was applied.
	if (o != NULL && o->log_index != 0 &&
	    (rv = flagd_txn_set_applied(m.t, o->log_index)) != SLUICE_OK) {
		rv = store_fail(&m, rv, "writing applied index");
		goto out;
	}
	rv  = flagd_txn_commit(m.t);
	m.t = NULL;
	if (rv != SLUICE_OK) {
		rv = store_fail(&m, rv, "commit");
		goto out;
	}
	res->changed  = true;
	res->revision = m.revision;
out:
	flagd_txn_abort(m.t);
	if (own != NULL) {
		sluice__v1__rollout__free_unpacked(own, NULL);
	}
	if (key != NULL) {
		sluice__v1__key__free_unpacked(key, NULL);
	}
	if (rv != SLUICE_OK) {
		Sluice__V1__Rollout    *r = res->rollout;
		Sluice__V1__AuditEntry *e = res->audit;
		char                    msg[sizeof(res->msg)];

		memcpy(msg, res->msg, sizeof(msg));
		res->rollout = NULL;
		res->audit   = NULL;
		if (r != NULL) {
			sluice__v1__rollout__free_unpacked(r, NULL);
		}
		if (e != NULL) {
			sluice__v1__audit_entry__free_unpacked(e, NULL);
		}
		flagd_result_init(res);
		memcpy(res->msg, msg, sizeof(msg));
		res->revision = m.revision > 0 ? m.revision - 1 : 0;
	}
	res->code = rv;
	return (rv);
}

int
flagd_machine_bootstrap_keys(flagd_store *s, const Sluice__V1__Key *keys,
    size_t n, uint64_t now_ms, flagd_result *res)
{
	return (flagd_machine_bootstrap_keys_at(s, keys, n, now_ms, 0, res));
}

int
flagd_machine_bootstrap_keys_at(flagd_store *s, const Sluice__V1__Key *keys,
    size_t n, uint64_t now_ms, uint64_t log_index, flagd_result *res)
{
	Sluice__V1__AuditEntry e;
	Sluice__V1__Key      **have;
	size_t                 nhave;
	size_t                 admins = 0;
	ProtobufCMessage      *copy;
	mach                   m;
	int                    rv;

	flagd_result_init(res);
	sluice__v1__audit_entry__init(&e);
	memset(&m, 0, sizeof(m));
	m.res    = res;
	m.now_ms = now_ms;
	if ((rv = flagd_store_begin(s, true, &m.t)) != SLUICE_OK) {
		rv = store_fail(&m, rv, "begin");
		goto out;
	}
	m.revision = flagd_txn_revision(m.t) + 1;
	if ((rv = flagd_txn_list_keys(m.t, &have, &nhave)) != SLUICE_OK) {
		rv = store_fail(&m, rv, "listing keys");
		goto out;
	}
	flagd_keys_free(have, nhave);
	if (nhave != 0 || n == 0) {
		res->revision = m.revision - 1;
		goto out; // keys are managed through commands from now on
	}
	for (size_t i = 0; i < n; i++) {
		if ((rv = validate_key(&m, &keys[i])) != SLUICE_OK) {
			goto out;
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(keys[i].id, keys[j].id) == 0) {
				rv = fail_msg(&m, SLUICE_EINVAL,
				    "key \"%s\" is listed twice", keys[i].id);
				goto out;
			}
		}
		if (keys[i].role == SLUICE__V1__ROLE__ROLE_ADMIN) {
			admins++;
		}
		if ((rv = flagd_txn_put_key(m.t, &keys[i])) != SLUICE_OK) {
			rv = store_fail(&m, rv, "writing key");
			goto out;
		}
	}
	// Keys are managed by admins only: seeding none would lock every
	// key out of key management for good.
	if (admins == 0) {
		rv = fail_msg(&m, SLUICE_EINVAL,
		    "the authorized keys contain no admin key");
		goto out;
	}
	if ((rv = flagd_txn_set_revision(m.t, m.revision)) != SLUICE_OK) {
		rv = store_fail(&m, rv, "writing revision");
		goto out;
	}
	snprintf(m.before, sizeof(m.before), "keys=0");
	snprintf(m.after, sizeof(m.after), "keys=%zu admins=%zu", n, admins);
	e.revision = m.revision;
	e.time_ms  = now_ms;
	e.actor    = (char *) (uintptr_t) "flagd";
	e.action   = (char *) (uintptr_t) "bootstrap";
	e.before   = m.before;
	e.after    = m.after;
	e.reason   = (char *) (uintptr_t) "authorized keys";
	if ((rv = flagd_txn_audit_append(m.t, &e)) != SLUICE_OK) {
		rv = store_fail(&m, rv, "appending audit entry");
		goto out;
	}
	if (log_index != 0 &&
	    (rv = flagd_txn_set_applied(m.t, log_index)) != SLUICE_OK) {
		rv = store_fail(&m, rv, "writing applied index");
		goto out;
	}
	if ((rv = sl_message_copy(&e.base, &copy)) != SLUICE_OK) {
		rv = store_fail(&m, rv, "copying audit entry");
		goto out;
	}
	rv  = flagd_txn_commit(m.t);
	m.t = NULL;
	if (rv != SLUICE_OK) {
		protobuf_c_message_free_unpacked(copy, NULL);
		rv = store_fail(&m, rv, "commit");
		goto out;
	}
	res->audit    = (Sluice__V1__AuditEntry *) copy;
	res->changed  = true;
	res->revision = m.revision;
out:
	flagd_txn_abort(m.t);
	if (rv != SLUICE_OK) {
		res->revision = m.revision > 0 ? m.revision - 1 : 0;
	}
	res->code = rv;
	return (rv);
}
