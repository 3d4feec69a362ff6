// SPDX-License-Identifier: MIT
//
// fuzz_report.c — metric report decoding and verification: decode a
// SignedReport with its size limit, verify it against a fixed key, and
// decode the signed body.

#include "codec.h"
#include "envelope.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ProtobufCMessage         *m;
	Sluice__V1__SignedReport *sr;
	Sluice__V1__MetricReport *r;

	if (sl_crypto_init() != SLUICE_OK) {
		return (0);
	}
	if (sl_unpack(&sluice__v1__signed_report__descriptor, data, size,
	        SL_MAX_REPORT_BYTES + 1024u, &m) != SLUICE_OK) {
		return (0);
	}
	sr = (Sluice__V1__SignedReport *) m;
	if (sl_report_verify(sr, fuzz_pk, sizeof(fuzz_pk)) == SLUICE_OK) {
		// Only a forgery would get here; keep decoding anyway.
	}
	if (sl_report_open(sr, &r) == SLUICE_OK) {
		sluice__v1__metric_report__free_unpacked(r, NULL);
	}
	protobuf_c_message_free_unpacked(m, NULL);
	return (0);
}
