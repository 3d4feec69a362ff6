// SPDX-License-Identifier: MIT
//
// fuzz_rollout_yaml.c — the rollout file parser (flagctl's spec_yaml):
// arbitrary bytes must yield specs that validate, or a clear error, and
// whatever parses must emit and parse back to the same specs.

#include <stdlib.h>

#include "codec.h"
#include "fuzz.h"
#include "spec_yaml.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Sluice__V1__RolloutSpec **specs, **again;
	size_t                    n, n2, len;
	char                      err[512];
	char                     *out;

	if (size > 256u * 1024u) {
		return (0);
	}
	if (ctl_yaml_parse((const char *) data, size, "fuzz", &specs, &n, err,
	        sizeof(err)) != SLUICE_OK) {
		return (0);
	}
	if (ctl_yaml_emit(specs, n, &out, &len) == SLUICE_OK) {
		if (ctl_yaml_parse(out, len, "emitted", &again, &n2, err,
		        sizeof(err)) != SLUICE_OK) {
			abort(); // what we emit must parse
		}
		if (n2 != n) {
			abort();
		}
		for (size_t i = 0; i < n; i++) {
			if (!sl_message_equal(
			        &specs[i]->base, &again[i]->base)) {
				abort(); // export then apply must be a no-op
			}
		}
		ctl_yaml_specs_free(again, n2);
		free(out);
	}
	ctl_yaml_specs_free(specs, n);
	return (0);
}
