/* SPDX-License-Identifier: MIT */
/*
 * output.h — how flagctl shows things: JSON documents (jansson) for
 * --json, and the human text forms shared by several verbs. Every JSON
 * builder returns a new reference or NULL on OOM; a NULL member makes the
 * enclosing builder return NULL too, so callers check once at the top.
 */
#ifndef CTL_OUTPUT_H
#define CTL_OUTPUT_H

#include <stdio.h>

#include <jansson.h>

#include "sl.h"

/*
 * Prints j as one JSON document and a newline on stdout, then drops the
 * reference. @return SLUICE_OK, SLUICE_ENOMEM (j NULL or dump failed).
 */
int ctl_json_print(json_t *j) SLUICE_NODISCARD;

/* A string that may not be valid UTF-8 (bytes are kept as they are). */
json_t *ctl_json_str(const char *s);

/* A value: true/false, an integer, a string, or "12.5%" for percentages. */
json_t *ctl_json_value(const Sluice__V1__FlagValue *v);

/* The spec with the same keys as the YAML format. */
json_t *ctl_json_spec(const Sluice__V1__RolloutSpec *s);

/*
 * A rollout's status at now_ms: rollout, stage, stage_index, last_good,
 * last_good_index, state, revision, created_revision, stage_since,
 * settles_at (null if never), stages, and flags with their value now.
 */
json_t *ctl_json_status(const Sluice__V1__Rollout *r, uint64_t now_ms);

/* An audit entry; hashes and digests in lowercase hex. */
json_t *ctl_json_audit(const Sluice__V1__AuditEntry *e);

/* A key: id, role, scope, public_key (base64). */
json_t *ctl_json_key(const Sluice__V1__Key *k);

/* The human status block of a rollout. */
void ctl_print_status(FILE *f, const Sluice__V1__Rollout *r, uint64_t now_ms);

/* One line per audit entry: revision, time, actor, action, what changed. */
void ctl_print_audit(FILE *f, const Sluice__V1__AuditEntry *e);

/* The stage name at index i, or "#i" when out of range. */
const char *ctl_stage_name(
    const Sluice__V1__RolloutSpec *s, uint32_t i, char *buf, size_t buflen);

#endif /* CTL_OUTPUT_H */
