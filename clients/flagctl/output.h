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

/*
 * Appends item to the array *arrp, taking the reference. When item is
 * NULL or the append fails, drops the array and sets *arrp to NULL (a NULL
 * *arrp stays NULL and item is dropped), so a loop can fill an array and
 * check for OOM once at the end.
 */
void ctl_json_push(json_t **arrp, json_t *item);

/*
 * {"revision": revision, member: arr}, the shape of every --json listing;
 * takes the reference to arr (NULL: OOM upstream, returns NULL).
 */
json_t *ctl_json_listing(uint64_t revision, const char *member, json_t *arr);

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

/*
 * The audit table: one line per entry (revision, time, actor, action,
 * rollout, before -> after, reason) under a header, each column as wide
 * as its widest cell. Measure every entry to be printed with
 * ctl_audit_cols_add() after ctl_audit_cols_init(), then print the header
 * and the entries with the same widths.
 */
#define CTL_AUDIT_COLS 7

typedef struct ctl_audit_cols {
	size_t w[CTL_AUDIT_COLS];
} ctl_audit_cols;

void ctl_audit_cols_init(ctl_audit_cols *cols);
void ctl_audit_cols_add(ctl_audit_cols *cols, const Sluice__V1__AuditEntry *e);
void ctl_print_audit_header(FILE *f, const ctl_audit_cols *cols);
void ctl_print_audit(
    FILE *f, const ctl_audit_cols *cols, const Sluice__V1__AuditEntry *e);

/* The stage name at index i, or "#i" when out of range. */
const char *ctl_stage_name(
    const Sluice__V1__RolloutSpec *s, uint32_t i, char *buf, size_t buflen);

#endif /* CTL_OUTPUT_H */
