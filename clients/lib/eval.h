/* SPDX-License-Identifier: MIT */
/*
 * eval.h — flag evaluation on one rollout: the value a flag has for a
 * unit at a stage. Pure; no I/O; no allocation.
 */
#ifndef SL_EVAL_H
#define SL_EVAL_H

#include "sl.h"

/* The flag named key in r's spec, or NULL. */
const Sluice__V1__Flag *sl_rollout_flag(
    const Sluice__V1__Rollout *r, const char *key);

/*
 * Whether a percentage value is on for unit: bucket(rollout, unit) < bp.
 * For a bool value, the bool; int: != 0; string: non-empty.
 */
bool sl_value_on(const char *rollout, const Sluice__V1__FlagValue *v,
    const void *unit, size_t unit_len);

#endif /* SL_EVAL_H */
