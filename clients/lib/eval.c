// SPDX-License-Identifier: MIT
//
// eval.c — evaluating one flag value for one unit. Pure and
// allocation-free, so the client can call it on its hot path against an
// immutable snapshot without taking a lock.

#include <string.h>

#include "eval.h"

const Sluice__V1__Flag *
sl_rollout_flag(const Sluice__V1__Rollout *r, const char *key)
{
	if (r == NULL || r->spec == NULL || key == NULL) {
		return (NULL);
	}
	for (size_t i = 0; i < r->spec->n_flags; i++) {
		const Sluice__V1__Flag *f = r->spec->flags[i];
		if (f != NULL && f->key != NULL && strcmp(f->key, key) == 0) {
			return (f);
		}
	}
	return (NULL);
}

bool
sl_value_on(const char *rollout, const Sluice__V1__FlagValue *v,
    const void *unit, size_t unit_len)
{
	if (v == NULL) {
		return (false);
	}
	switch ((int) v->kind_case) {
	case SLUICE__V1__FLAG_VALUE__KIND_BOOL_VALUE:
		return (v->bool_value != 0);
	case SLUICE__V1__FLAG_VALUE__KIND_INT_VALUE:
		return (v->int_value != 0);
	case SLUICE__V1__FLAG_VALUE__KIND_STRING_VALUE:
		return (v->string_value != NULL && v->string_value[0] != '\0');
	case SLUICE__V1__FLAG_VALUE__KIND_PERCENT_BP:
		// 0 is off for everyone, >= 10000 on for everyone; no need
		// to hash in either case.
		if (v->percent_bp == 0) {
			return (false);
		}
		if (v->percent_bp >= SLUICE_BUCKETS) {
			return (true);
		}
		return (
		    sluice_bucket(rollout, unit, unit_len) < v->percent_bp);
	default:
		return (false);
	}
}
