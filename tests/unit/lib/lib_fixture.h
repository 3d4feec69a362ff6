/* SPDX-License-Identifier: MIT */
/*
 * lib_fixture.h — test rollouts for the client tests (test_snapshot.c,
 * test_cache.c, test_client.c), heap-allocated the way protobuf-c unpacks
 * them, so snapshot code can take them over and free them.
 *
 * fx_rollout("r", stage, n_stages, keep, max_stale_s) has stages s0..sN-1
 * and four flags: r.bool (on from stage 1), r.int (10 * stage), r.str
 * ("v<stage>") and r.pct (0 %, then 50 %, then 100 %).
 */
#ifndef LIB_FIXTURE_H
#define LIB_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "sl.h"

#define FX_MAX_STAGES 8

static Sluice__V1__Rollout *
fx_rollout(const char *name, uint32_t stage, uint32_t n_stages, bool keep,
    uint64_t max_stale_s)
{
	Sluice__V1__Rollout     r;
	Sluice__V1__RolloutSpec spec;
	Sluice__V1__Flag        flags[4];
	Sluice__V1__Flag       *fp[4];
	Sluice__V1__FlagValue   vals[4][FX_MAX_STAGES];
	Sluice__V1__FlagValue  *vp[4][FX_MAX_STAGES];
	char                    keys[4][80];
	char                    stages[FX_MAX_STAGES][16];
	char                   *sp[FX_MAX_STAGES];
	char                    strs[FX_MAX_STAGES][16];
	static const char      *suffix[4] = { "bool", "int", "str", "pct" };
	ProtobufCMessage       *out       = NULL;
	uint8_t                *buf;
	size_t                  len;

	sluice__v1__rollout__init(&r);
	sluice__v1__rollout_spec__init(&spec);
	spec.name        = (char *) (uintptr_t) name;
	spec.n_stages    = n_stages;
	spec.stages      = sp;
	spec.max_stale_s = max_stale_s;
	spec.on_stale    = keep ? SLUICE__V1__STALE_POLICY__STALE_KEEP
	                        : SLUICE__V1__STALE_POLICY__STALE_BASELINE;
	for (uint32_t i = 0; i < n_stages; i++) {
		snprintf(stages[i], sizeof(stages[i]), "s%u", (unsigned) i);
		snprintf(strs[i], sizeof(strs[i]), "v%u", (unsigned) i);
		sp[i] = stages[i];
	}
	for (int f = 0; f < 4; f++) {
		sluice__v1__flag__init(&flags[f]);
		snprintf(keys[f], sizeof(keys[f]), "%s.%s", name, suffix[f]);
		flags[f].key      = keys[f];
		flags[f].n_values = n_stages;
		flags[f].values   = vp[f];
		fp[f]             = &flags[f];
		for (uint32_t i = 0; i < n_stages; i++) {
			Sluice__V1__FlagValue *v = &vals[f][i];
			sluice__v1__flag_value__init(v);
			vp[f][i] = v;
			switch (f) {
			case 0:
				v->kind_case =
				    SLUICE__V1__FLAG_VALUE__KIND_BOOL_VALUE;
				v->bool_value = i >= 1;
				break;
			case 1:
				v->kind_case =
				    SLUICE__V1__FLAG_VALUE__KIND_INT_VALUE;
				v->int_value = 10 * (int64_t) i;
				break;
			case 2:
				v->kind_case =
				    SLUICE__V1__FLAG_VALUE__KIND_STRING_VALUE;
				v->string_value = strs[i];
				break;
			default:
				v->kind_case =
				    SLUICE__V1__FLAG_VALUE__KIND_PERCENT_BP;
				v->percent_bp = i == 0 ? 0
				    : i == 1           ? 5000
				                       : 10000;
				break;
			}
		}
	}
	spec.n_flags = 4;
	spec.flags   = fp;
	r.spec       = &spec;
	r.stage      = stage;
	r.state      = SLUICE__V1__ROLLOUT_STATE__STATE_ACTIVE;
	if (sl_pack(&r.base, &buf, &len) != SLUICE_OK ||
	    sl_unpack(&sluice__v1__rollout__descriptor, buf, len,
	        SL_MAX_REPLY_BYTES, &out) != SLUICE_OK) {
		abort();
	}
	free(buf);
	return ((Sluice__V1__Rollout *) out);
}

#endif /* LIB_FIXTURE_H */
