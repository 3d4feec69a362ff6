/* SPDX-License-Identifier: MIT */
/*
 * spec_yaml.h — the rollout file format (docs/rollout-format.md): YAML
 * documents <-> Sluice__V1__RolloutSpec. Parsing goes through libyaml's
 * document API, so line numbers come from libyaml's marks; emitting goes
 * through libyaml's emitter, so `flagctl export | flagctl apply -f -` is
 * a no-op. The module is named spec_yaml, not yaml, so that its header
 * never shadows libyaml's <yaml.h>.
 */
#ifndef CTL_SPEC_YAML_H
#define CTL_SPEC_YAML_H

#include <stdio.h>

#include "sl.h"

/*
 * Parses every document of a YAML stream into rollout specs, in file
 * order, and validates each with sl_spec_validate().
 * @param buf    the file contents (need not be NUL-terminated).
 * @param len    length of buf.
 * @param name   file name used in error messages ("-" reads as "<stdin>").
 * @param specsp OUT: malloc'd array of *np specs, each freed with
 *               sluice__v1__rollout_spec__free_unpacked(s, NULL); release
 *               everything with ctl_yaml_specs_free(). Written on success.
 * @param np     OUT: number of specs (>= 1).
 * @param err    on SLUICE_EINVAL, one line "NAME:LINE: reason" (":LINE"
 *               omitted when the problem concerns the whole document).
 * @return SLUICE_OK, SLUICE_EINVAL (syntax, unknown key, bad value, empty
 *         stream, invalid spec), SLUICE_ENOMEM.
 */
int ctl_yaml_parse(const char *buf, size_t len, const char *name,
    Sluice__V1__RolloutSpec ***specsp, size_t *np, char *err,
    size_t errlen) SLUICE_NODISCARD;

/*
 * Reads path ("-" = stdin) and parses it as ctl_yaml_parse() does.
 * @return as ctl_yaml_parse(), plus SLUICE_ENOENT / SLUICE_EIO when the
 *         file cannot be read (reason in err).
 */
int ctl_yaml_parse_file(const char *path, Sluice__V1__RolloutSpec ***specsp,
    size_t *np, char *err, size_t errlen) SLUICE_NODISCARD;

/* Frees the array and specs returned by ctl_yaml_parse(). NULL is a no-op. */
void ctl_yaml_specs_free(Sluice__V1__RolloutSpec **specs, size_t n);

/*
 * Writes specs as a YAML stream (one document each, "---" between them)
 * into a malloc'd, NUL-terminated buffer *bufp of *lenp bytes, freed by
 * the caller with free(). Strings are quoted where needed to parse back
 * to the same value.
 * @return SLUICE_OK, SLUICE_ENOMEM, SLUICE_EINTERNAL (emitter error).
 */
int ctl_yaml_emit(Sluice__V1__RolloutSpec *const *specs, size_t n, char **bufp,
    size_t *lenp) SLUICE_NODISCARD;

#endif /* CTL_SPEC_YAML_H */
