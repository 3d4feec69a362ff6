// SPDX-License-Identifier: MIT
//
// fuzz_gk_report.c — gatekeeper's report path: decode a SignedReport with
// its size limit, verify it with gk_report_verify against a key set that
// holds the fuzz key (id "fuzz", reporter, every rollout), then run the
// pure gate evaluation over the report with every aggregate and
// comparison, so the signed-report seeds reach gate.c too.

#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "fuzz.h"
#include "gate.h"
#include "reports.h"

static gk_keys *
fuzz_keys(void)
{
	static gk_keys     *ks;
	Sluice__V1__KeyList l;
	Sluice__V1__Key     k, *kp[1] = { &k };
	ProtobufCMessage   *m;
	uint8_t            *buf;
	size_t              len;

	if (ks != NULL) {
		return (ks);
	}
	if (gk_keys_alloc(&ks) != SLUICE_OK) {
		abort();
	}
	sluice__v1__key_list__init(&l);
	sluice__v1__key__init(&k);
	k.id              = (char *) (uintptr_t) "fuzz";
	k.public_key.data = (uint8_t *) (uintptr_t) fuzz_pk;
	k.public_key.len  = sizeof(fuzz_pk);
	k.role            = SLUICE__V1__ROLE__ROLE_REPORTER;
	k.scope           = (char *) (uintptr_t) "";
	l.keys            = kp;
	l.n_keys          = 1;
	if (sl_pack(&l.base, &buf, &len) != SLUICE_OK ||
	    sl_unpack(&sluice__v1__key_list__descriptor, buf, len, 1u << 16,
	        &m) != SLUICE_OK) {
		abort();
	}
	free(buf);
	gk_keys_set(ks, (Sluice__V1__KeyList *) m);
	return (ks);
}

static void
evaluate(const Sluice__V1__MetricReport *r)
{
	Sluice__V1__Gate      g;
	Sluice__V1__Condition c[9], *cp[9];
	gk_sample             s[2] = { { 1000, r }, { 2000, r } };
	gk_gate_state         st;
	gk_eval               ev;
	double                scratch[4];

	sluice__v1__gate__init(&g);
	for (int i = 0; i < 9; i++) {
		sluice__v1__condition__init(&c[i]);
		c[i].metric    = r->n_metrics > 0 && r->metrics[0] != NULL
		       ? r->metrics[0]->key
		       : (char *) (uintptr_t) "m";
		c[i].aggregate = (Sluice__V1__Aggregate) (i + 1);
		c[i].op        = (Sluice__V1__CompareOp) (i % 6 + 1);
		c[i].threshold = 0.5;
		cp[i]          = &c[i];
	}
	g.conditions           = cp;
	g.n_conditions         = 9;
	g.window_reports       = 1 + (uint32_t) (r->sequence % 3);
	g.window_seconds       = (uint32_t) (r->time_ms % 5);
	g.min_samples          = (uint32_t) (r->sequence % 4);
	g.consecutive_failures = 2;
	g.soak_reports         = 1;
	g.auto_promote         = true;
	g.deadline_seconds     = 1;
	gk_gate_stage_reset(&st, 0, 0);
	for (size_t n = 0; n <= 2; n++) {
		if (gk_gate_evaluate(&g, s, n, &st, 2500, n > 0, scratch,
		        &ev) != SLUICE_OK) {
			abort();
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	gk_verified v = { 0 };
	gk_reject   why;

	if (sl_crypto_init() != SLUICE_OK) {
		return (0);
	}
	// Any time is fresh: the corpus must not age out.
	if (gk_report_verify(fuzz_keys(), data, size, 0, UINT64_MAX, &v,
	        &why) == SLUICE_OK) {
		evaluate(v.r);
		gk_verified_clear(&v);
	} else if (why == GK_REJ_NONE) {
		abort(); // a rejection always names its reason
	}
	return (0);
}
