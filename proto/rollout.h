/* SPDX-License-Identifier: MIT */
/*
 * rollout.h — rollout rules every component shares: name and value
 * syntax, spec validation, percentages, gate conditions as text, stage
 * lookup, and the "last good" stage including the settled rule.
 */
#ifndef SL_ROLLOUT_H
#define SL_ROLLOUT_H

#include "sl.h"

#define SL_MIN_STAGES 2u
#define SL_MAX_STAGES 16u
#define SL_MAX_FLAGS 256u   /* per rollout */
#define SL_MAX_STRING 1024u /* string flag value, description */

/* [a-z0-9][a-z0-9._-]{0,62} */
bool sl_rollout_name_valid(const char *name);
/* Flag keys and stage names: [a-z0-9][a-z0-9._-]{0,62} as well. */
bool sl_flag_key_valid(const char *key);
bool sl_stage_name_valid(const char *name);

/*
 * Validates a spec: names, 2..16 distinct stages, each flag with exactly
 * one value per stage and one kind across stages, distinct flag keys,
 * percentages <= 10000, prerequisites well formed and not naming itself,
 * gates naming existing stages with sane conditions. SLUICE_OK or
 * SLUICE_EINVAL with a one-line reason in err.
 */
int sl_spec_validate(
    const Sluice__V1__RolloutSpec *s, char *err, size_t errlen);

/*
 * "10%", "12.5%", "12.34%" (0..100, at most two decimals) -> basis
 * points. EINVAL otherwise.
 */
int sl_percent_parse(const char *s, uint32_t *bpp);
/* bp -> shortest "12.34%" form ("10%", "12.5%"). */
void sl_percent_format(uint32_t bp, char *buf, size_t buflen);

/* The one-word kind of a value: "bool" "int" "string" "percent" "". */
const char *sl_value_kind(const Sluice__V1__FlagValue *v);
/* Text form: true/false, 42, the string, 12.5%. */
void sl_value_format(const Sluice__V1__FlagValue *v, char *buf, size_t buflen);
bool sl_value_equal(
    const Sluice__V1__FlagValue *a, const Sluice__V1__FlagValue *b);

/* Index of a stage by name, or -1. */
int sl_stage_index(const Sluice__V1__RolloutSpec *s, const char *name);

/* "active" "paused" "rolled_back" "completed". */
const char *sl_state_name(Sluice__V1__RolloutState st);

/*
 * The effective last good stage at now_ms: the current stage once it has
 * held for rollback_window_s without a rollback (settled), else
 * r->last_good. A rolled-back or paused rollout does not settle.
 */
uint32_t sl_rollout_last_good(const Sluice__V1__Rollout *r, uint64_t now_ms);

/*
 * When the current stage settles (ms since the epoch), or 0 when it
 * cannot (no window, stage 0, already last good, not active/completed).
 */
uint64_t sl_rollout_settles_at(const Sluice__V1__Rollout *r);

/* "error_rate mean < 0.01" <-> Condition. Strings malloc'd into c. */
int sl_condition_parse(
    const char *text, Sluice__V1__Condition *c, char *err, size_t errlen);
void sl_condition_format(
    const Sluice__V1__Condition *c, char *buf, size_t buflen);
void        sl_condition_clear(Sluice__V1__Condition *c);
const char *sl_aggregate_name(Sluice__V1__Aggregate a);
const char *sl_op_name(Sluice__V1__CompareOp op);

/*
 * Parses durations "90s", "5m", "24h", "2d", "1h30m" or plain seconds.
 * EINVAL otherwise. Formats back in the largest exact units.
 */
int  sl_duration_parse(const char *s, uint64_t *secondsp);
void sl_duration_format(uint64_t seconds, char *buf, size_t buflen);

#endif /* SL_ROLLOUT_H */
